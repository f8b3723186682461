"""Partitioned builds: the relations computed tile by tile, in this process or on dask.

``twin build --tile-features N`` cuts the twin's extent into a grid of tiles
holding about ``N`` features of the largest layer each. Every feature belongs
to exactly one tile: the one holding the centre of its box (from the layer's
R-tree; no geometry is read to decide). A tile reads its own features of each
from layer, then every target layer through GDAL's spatial filter over the
box of those features grown by the relation's reach (0 for largest share,
``max_distance_m`` for sensors, ``max_service_m`` for service connections),
so a footprint straddling a tile edge, or a pipe just across it, is still
there. Targets are kept in fid order, so ties go to the same target as in a
whole-layer build: the rows are identical, row for row, and written at the
same fids, each tile's as soon as it is done. Features without a geometry (not
in the R-tree) form one last part.

Memory is bounded by a tile and its halo, not by the city. The tiles are
independent: with ``engine="dask"`` they run on a ``dask.distributed``
cluster (the scheduler's address, or a local cluster), each worker reading the
twin's file itself; the writes stay in this process.

Examples
--------
>>> import shutil, tempfile, pathlib
>>> from twin import Twin
>>> copy = pathlib.Path(tempfile.mkdtemp()) / "copy.gpkg"
>>> _ = shutil.copyfile(city.path, copy)
>>> report = build_partitioned(Twin.open(copy), tile_features=500, force=True)
>>> report.recomputed["building_parcel:buildings->parcels"] == city.info("buildings").feature_count
True
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pyogrio

from twin.build import (
    DEFAULT_MAX_DISTANCE_M,
    DEFAULT_MAX_SERVICE_M,
    BuildReport,
    BuildWork,
    FeatureArrays,
    RelationPlan,
    build_relations,
    relation_rows,
)
from twin.errors import UsageError
from twin.relate import geoms_from_wkb
from twin.store import parts
from twin.store import relations as relstore

if TYPE_CHECKING:
    from twin.model import LayerInfo, Twin
    from twin.store.base import StoreSession

__all__ = ["TileJob", "build_partitioned", "compute_tile", "tile_jobs", "tiles_by_default"]

Fids = npt.NDArray[np.int64]
Box = tuple[float, float, float, float]
ENGINES = ("local", "dask")
#: Features of the largest layer per tile by default (about 0.5 GiB at the peak).
TILE_FEATURES = 250_000
#: A whole-layer build is faster up to here; past it, ``twin build`` goes tile by tile.
PARTITION_ABOVE = 2_000_000
_MARGIN_M = 1.0  # grown boxes are grown a little more: R-tree boxes are float32


@dataclass(frozen=True)
class TileJob:
    """One tile's work: the fids it owns per from layer, and the relations to compute.

    Small and picklable: a dask worker gets this and the twin's path, nothing else.
    """

    path: str
    owned: dict[str, Fids]  # from layer -> owned fids, sorted
    boxes: dict[str, Box | None]  # from layer -> box of the owned features (None: no geometry)
    plans: tuple[RelationPlan, ...]
    pipes: frozenset[str]  # layers with a network column
    max_distance_m: float
    max_service_m: float
    #: from layer -> each owned fid's position in the layer (set by the writer on submit)
    positions: dict[str, Fids] | None = None

    def reach(self, plan: RelationPlan) -> float:
        if plan.network is not None:
            return self.max_service_m
        return self.max_distance_m if plan.relation == "sensor_building" else 0.0


TileRows = list[tuple[int, Fids, relstore.RelationRows]]  # plan index, fids, rows


@dataclass(frozen=True)
class PackedTile:
    """A tile's rows ready to store: counts per plan, and the rows as one SQLite image."""

    counts: tuple[tuple[int, int, int], ...]  # plan index, rows, rows without a target
    image: bytes  # twin.store.parts.pack_parts: rows at plan << 32 | position


def compute_packed(job: TileJob) -> PackedTile:
    """:func:`compute_tile`, then the rows packed where they were computed (runs anywhere).

    The job must carry ``positions``. Raises ``RuntimeError`` if a feature the tile
    owns was not read (the writer would otherwise leave its row out).
    """
    if job.positions is None:
        raise ValueError("a packed tile needs the positions of its owned features")
    tile = compute_tile(job)
    placed = []
    for i, fids, rows in tile:
        layer = job.plans[i].from_layer
        owned = job.owned[layer]
        if len(fids) != len(owned):
            raise RuntimeError(f"a tile read {len(fids)} of its {len(owned)} {layer} features")
        placed.append((i, job.positions[layer], rows))
    counts = tuple((i, len(rows), rows.unrelated) for i, _, rows in tile)
    return PackedTile(counts=counts, image=parts.pack_parts(placed))


def compute_tile(job: TileJob) -> TileRows:
    """The rows of every relation for the features one tile owns (runs anywhere).

    Each layer is read once: a layer that is both a from layer (its owned features)
    and a target (every feature within reach of the tile's sources) is read over the
    union of the two boxes, its owned features picked out by fid. Targets beyond the
    reach change no row: they neither overlap a source nor lie within its distance.
    """
    boxes = _read_boxes(job)
    read = {name: _read(job, name, box=box) for name, box in boxes.items()}
    sources = {}
    for name, fids in job.owned.items():
        if not len(fids):
            continue
        if name in read:
            sources[name] = _pick(*read[name], fids)
        else:  # features without a geometry: by fid
            sources[name] = _read(job, name, fids=fids)
    out: TileRows = []
    for i, plan in enumerate(job.plans):
        source = sources.get(plan.from_layer)
        if source is None:
            continue
        fids, arrays = source
        target = read.get(plan.to_layer, (None, _empty(plan.to_layer in job.pipes)))[1]
        rows = relation_rows(
            plan,
            arrays,
            target,
            max_distance_m=job.max_distance_m,
            max_service_m=job.max_service_m,
        )
        out.append((i, fids, rows))
    return out


def _read_boxes(job: TileJob) -> dict[str, Box]:
    """The box each layer is read over: its owned features' box, grown by each relation's
    reach for the layers it is a target of (a union where it is both)."""
    wanted: dict[str, list[float]] = {}
    for plan in job.plans:
        box = job.boxes.get(plan.from_layer)
        if len(job.owned.get(plan.from_layer, ())) and box is not None:
            grown = _grown(box, job.reach(plan) + _MARGIN_M)
            wanted[plan.to_layer] = _union(wanted.get(plan.to_layer), grown)
    for name, fids in job.owned.items():
        box = job.boxes.get(name)
        if len(fids) and box is not None:
            wanted[name] = _union(wanted.get(name), list(box))
    return {name: (b[0], b[1], b[2], b[3]) for name, b in wanted.items()}


def _pick(got: Fids, arrays: FeatureArrays, fids: Fids) -> tuple[Fids, FeatureArrays]:
    """The features of ``fids`` among those read (both in fid order)."""
    keep = np.isin(got, fids)
    network = arrays.network[keep] if arrays.network is not None else None
    return got[keep], FeatureArrays(arrays.geoms[keep], arrays.uids[keep], network)


def _grown(box: Box, by: float) -> list[float]:
    return [box[0] - by, box[1] - by, box[2] + by, box[3] + by]


def _union(a: list[float] | None, b: list[float]) -> list[float]:
    if a is None:
        return b
    return [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]


def _empty(pipes: bool) -> FeatureArrays:
    none = np.empty(0, dtype=object)
    return FeatureArrays(none, none, none if pipes else None)


def _read(
    job: TileJob, name: str, *, fids: Fids | None = None, box: Box | None = None
) -> tuple[Fids, FeatureArrays]:
    """Features of a layer: those of ``fids`` (read through their box), or all in ``box``."""
    pipes = name in job.pipes
    columns = ["uid", "network"] if pipes else ["uid"]
    if fids is not None:
        box = job.boxes.get(name)
    if box is not None:
        meta, table = pyogrio.read_arrow(
            job.path, layer=name, columns=columns, bbox=box, return_fids=True
        )
    else:  # features without a geometry: by fid
        where = f"fid IN ({','.join(str(int(f)) for f in fids)})" if fids is not None else "0"
        meta, table = pyogrio.read_arrow(
            job.path, layer=name, columns=columns, where=where, return_fids=True
        )
    got = table.column(meta["fid_column"] or "fid").to_numpy(zero_copy_only=False)
    keep = np.argsort(got, kind="stable")
    if fids is not None:
        keep = keep[np.isin(got[keep], fids)]
    wkb = table.column(meta["geometry_name"] or "wkb_geometry").to_numpy(zero_copy_only=False)
    arrays = FeatureArrays(
        geoms=geoms_from_wkb(wkb[keep]),
        uids=table.column("uid").to_numpy(zero_copy_only=False)[keep].astype(object),
        network=table.column("network").to_numpy(zero_copy_only=False)[keep] if pipes else None,
    )
    return got[keep].astype(np.int64), arrays


# --------------------------------------------------------------------------- tiles


def tile_jobs(
    path: Path,
    plans: list[RelationPlan],
    infos: list[LayerInfo],
    *,
    tile_features: int,
    max_distance_m: float,
    max_service_m: float,
) -> Iterator[TileJob]:
    """The tiles of a partitioned build over ``plans``, then the part without geometries.

    Parameters
    ----------
    path : Path
        The twin file the tiles read.
    plans : list of RelationPlan
    infos : list of LayerInfo
    tile_features : int
        About how many features of the largest from layer a tile holds.
    """
    if tile_features < 1:
        raise UsageError(f"tile_features must be at least 1, not {tile_features}")
    sources = list(dict.fromkeys(p.from_layer for p in plans))
    boxes = {name: parts.feature_boxes(path, name) for name in sources}
    centres = {name: (b[:, :2] + b[:, 2:]) / 2 for name, (_, b) in boxes.items()}
    every = np.vstack([c for c in centres.values() if len(c)] or [np.zeros((1, 2))])
    (x0, y0), (x1, y1) = every.min(axis=0), every.max(axis=0)
    biggest = max((len(c) for c in centres.values()), default=0)
    nx, ny = _grid_shape(math.ceil(biggest / tile_features), x1 - x0, y1 - y0)
    width, height = max((x1 - x0) / nx, 1e-9), max((y1 - y0) / ny, 1e-9)
    pipes = frozenset(i.name for i in infos if i.kind == "pipe")
    common = {
        "path": str(path),
        "plans": tuple(plans),
        "pipes": pipes,
        "max_distance_m": max_distance_m,
        "max_service_m": max_service_m,
    }
    cells = {
        name: np.clip(((c[:, 0] - x0) // width), 0, nx - 1).astype(np.int64) * ny
        + np.clip(((c[:, 1] - y0) // height), 0, ny - 1).astype(np.int64)
        for name, c in centres.items()
    }
    orders = {name: np.argsort(cell, kind="stable") for name, cell in cells.items()}
    starts = {
        name: np.searchsorted(cells[name][orders[name]], np.arange(nx * ny + 1)) for name in sources
    }
    for t in range(nx * ny):
        owned, tile_boxes = {}, {}
        for name in sources:
            rows = orders[name][starts[name][t] : starts[name][t + 1]]
            fid, box = boxes[name]
            owned[name] = np.sort(fid[rows])
            tile_boxes[name] = _box_of(box[rows])
        if any(len(f) for f in owned.values()):
            yield TileJob(owned=owned, boxes=tile_boxes, **common)  # type: ignore[arg-type]
    loose = {name: parts.unboxed_fids(path, name) for name in sources}
    if any(len(f) for f in loose.values()):
        yield TileJob(owned=loose, boxes=dict.fromkeys(sources), **common)  # type: ignore[arg-type]


def _grid_shape(tiles: int, width: float, height: float) -> tuple[int, int]:
    """Columns and rows of about ``tiles`` tiles of roughly square shape."""
    tiles = max(tiles, 1)
    aspect = width / height if height > 0 else float(tiles)
    nx = max(1, min(tiles, round(math.sqrt(tiles * aspect)) if aspect > 0 else 1))
    return nx, max(1, math.ceil(tiles / nx))


def _box_of(box: npt.NDArray[np.float64]) -> Box | None:
    if not len(box):
        return None
    return (
        float(box[:, 0].min()),
        float(box[:, 1].min()),
        float(box[:, 2].max()),
        float(box[:, 3].max()),
    )


# --------------------------------------------------------------------------- running


def tiles_by_default(infos: list[LayerInfo]) -> int | None:
    """The tile size a build uses unasked: :data:`TILE_FEATURES` past :data:`PARTITION_ABOVE`.

    Examples
    --------
    >>> tiles_by_default(city.layer_infos()) is None
    True
    """
    biggest = max((i.feature_count for i in infos), default=0)
    return TILE_FEATURES if biggest > PARTITION_ABOVE else None


def build_partitioned(
    city: Twin,
    *,
    tile_features: int | None = TILE_FEATURES,
    engine: str = "local",
    scheduler: str | None = None,
    max_distance_m: float = DEFAULT_MAX_DISTANCE_M,
    max_service_m: float = DEFAULT_MAX_SERVICE_M,
    force: bool = False,
    progress: Callable[[str, float], None] | None = None,
) -> BuildReport:
    """:func:`twin.build.build_relations`, tile by tile: the same rows with bounded memory.

    Parameters
    ----------
    city : Twin
    tile_features : int, default 250,000
        About how many features of the largest layer one tile holds (None: the default).
    engine : {"local", "dask"}, default "local"
        Where the tiles are computed: in this process, or on ``dask.distributed``.
    scheduler : str, optional
        With ``engine="dask"``: the scheduler's address (``tcp://host:8786``); without it,
        a local cluster of two workers (threads of this process) is started for the build.
    max_distance_m, max_service_m, force, progress
        As for :func:`~twin.build.build_relations`.

    Returns
    -------
    BuildReport
    """
    tile_features = TILE_FEATURES if tile_features is None else tile_features
    if engine not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    for name, value in (("max_distance_m", max_distance_m), ("max_service_m", max_service_m)):
        if not math.isfinite(value):
            raise UsageError(f"a partitioned build needs a finite {name}, not {value}")
    if scheduler is not None and engine != "dask":
        raise UsageError("a scheduler address needs engine='dask'")

    with _client_soon(scheduler) if engine == "dask" else contextlib.nullcontext() as client:

        def storer(
            city: Twin,
            session: StoreSession,
            infos: list[LayerInfo],
            todo: BuildWork,
            report: BuildReport,
            *,
            progress: Callable[[str, float], None] | None,
        ) -> None:
            con = parts.session_connection(session)
            jobs = list(
                tile_jobs(
                    city.path,
                    todo.plans,
                    infos,
                    tile_features=tile_features,
                    max_distance_m=report.max_distance_m,
                    max_service_m=report.max_service_m,
                )
            )
            run = _ahead if client is None else _dask_runner(client.result()[0])
            _write(city, con, infos, todo, report, jobs, run, progress)

        return build_relations(
            city,
            max_distance_m=max_distance_m,
            max_service_m=max_service_m,
            force=force,
            progress=progress,
            storer=storer,
        )


Runner = Callable[[Iterable[TileJob]], Iterator[tuple[TileJob, PackedTile]]]


def _write(
    city: Twin,
    con: parts.Connection,
    infos: list[LayerInfo],
    todo: BuildWork,
    report: BuildReport,
    jobs: list[TileJob],
    run: Runner,
    progress: Callable[[str, float], None] | None,
) -> None:
    """Open every set, store each tile's packed rows as they come, then close the sets."""
    counts = {info.name: info.feature_count for info in infos}
    new_rows = sum(counts[p.from_layer] for p in todo.plans)
    dropped_rows = sum(s.n_rows for s in todo.stale)
    writer = relstore.RelationWriter(
        con, bulk=relstore.is_bulk(new_rows, dropped_rows, todo.stored_rows)
    )  # the session's own connection: the same writer its relation_writer() gives
    writer.drop(todo.stale)
    build_id = report.build_id or 0
    set_ids = [
        parts.open_set(
            con,
            (p.relation, p.from_layer, p.to_layer, p.network),
            inputs=todo.inputs[p],
            build_id=build_id,
        )
        for p in todo.plans
    ]
    fids = {name: parts.layer_fids(city.path, name) for name in {p.from_layer for p in todo.plans}}
    written = {name: np.zeros(len(f), dtype=bool) for name, f in fids.items()}
    n_rows, n_unrelated = [0] * len(todo.plans), [0] * len(todo.plans)
    for done, (job, tile) in enumerate(run(_placed(jobs, fids)), start=1):
        parts.put_packed(con, tile.image, {i: set_ids[i] for i, _, _ in tile.counts})
        for i, rows, unrelated in tile.counts:
            n_rows[i] += rows
            n_unrelated[i] += unrelated
        for name, positions in (job.positions or {}).items():
            if any(todo.plans[i].from_layer == name for i, _, _ in tile.counts):
                written[name][positions] = True
        if progress:
            progress(f"tile {done} of {len(jobs)}", done / max(len(jobs), 1))
    parts.release_packed(con)
    missing = [name for name, w in written.items() if not w.all()]
    if missing:
        raise RuntimeError(f"partitioned build left features of {', '.join(missing)} out")
    for i, plan in enumerate(todo.plans):
        parts.close_set(con, set_ids[i], n_rows[i], n_unrelated[i])
        report.recomputed[plan.key] = n_rows[i]
        report.unrelated[plan.key] = n_unrelated[i]
    parts.spill_sorts_to_file(con)
    writer.finish()


def _placed(jobs: Iterable[TileJob], fids: dict[str, Fids]) -> Iterator[TileJob]:
    """Each job with its owned features' positions in their layers (made as it is sent)."""
    for job in jobs:
        positions = {}
        for name, owned in job.owned.items():
            where = np.searchsorted(fids[name], owned)
            if len(owned) and not np.array_equal(
                fids[name][np.minimum(where, len(fids[name]) - 1)], owned
            ):
                raise RuntimeError(f"a tile owns {name} features the layer does not hold")
            positions[name] = where.astype(np.int64)
        yield replace(job, positions=positions)


def _ahead(jobs: Iterable[TileJob]) -> Iterator[tuple[TileJob, PackedTile]]:
    """Each tile computed and packed in a worker thread while the previous one is written
    (GEOS, GDAL and SQLite release the GIL); one tile ahead at most, so memory holds two."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-tile") as pool:
        pending: deque[tuple[TileJob, Future[PackedTile]]] = deque()
        for job in jobs:
            pending.append((job, pool.submit(compute_packed, job)))
            if len(pending) > 1:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def _dask_runner(client: object) -> Runner:
    def run(jobs: Iterable[TileJob]) -> Iterator[tuple[TileJob, PackedTile]]:
        return _on_dask(client, jobs)

    return run


def _on_dask(client: object, jobs: Iterable[TileJob]) -> Iterator[tuple[TileJob, PackedTile]]:
    """Each tile computed and packed on the cluster; results as they complete (a few tiles
    in flight, so the writer stores one while the workers compute the next)."""
    from dask.distributed import Client, as_completed

    assert isinstance(client, Client)
    queue = iter(jobs)
    window = max(2, 2 * len(client.scheduler_info().get("workers", {})))
    sent: dict[object, TileJob] = {}

    def submit(job: TileJob) -> object:
        future = client.submit(compute_packed, job, pure=False)
        sent[future.key] = job
        return future

    running = as_completed([submit(job) for job in _take(queue, window)], loop=client.loop)
    for future in running:
        packed = future.result()
        yield sent.pop(future.key), packed
        future.release()
        following = next(queue, None)
        if following is not None:
            running.add(submit(following))


def _take(queue: Iterator[TileJob], n: int) -> list[TileJob]:
    return [job for _, job in zip(range(n), queue, strict=False)]


@contextlib.contextmanager
def _client_soon(scheduler: str | None) -> Iterator[Future[tuple[object, object]]]:
    """The dask client (and its cluster), connected or started in a thread meanwhile.

    Worker processes take seconds to start and import; the build reads the twin's
    layers and cuts its tiles in the meantime. Both are closed on the way out.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-dask") as pool:
        future = pool.submit(_connect, scheduler)
        try:
            yield future
        finally:
            if future.exception() is None:  # a failed start was raised to the build
                client, cluster = future.result()
                client.close()  # type: ignore[attr-defined]
                if cluster is not None:
                    cluster.close()  # type: ignore[attr-defined]


def _connect(scheduler: str | None) -> tuple[object, object]:
    """A client of the scheduler at ``scheduler``, or of a local two-worker cluster.

    The local cluster's two workers are threads of this process (dask's in-process
    transport): on one machine, worker processes only add their start-up and the pickling
    of every tile's rows, and a tile's work (GDAL reads, GEOS, NumPy) releases the GIL.
    For worker processes, start a cluster and give its address.
    """
    from dask.distributed import Client, LocalCluster

    if scheduler is None:
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        )
        try:
            return Client(cluster, set_as_default=False), cluster
        except BaseException:
            cluster.close()
            raise
    try:
        return Client(scheduler, timeout="10s", set_as_default=False), None
    except OSError as exc:
        raise UsageError(f"no dask scheduler answers at {scheduler}: {exc}") from exc
