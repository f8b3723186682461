"""``twin build``: compute the cross-layer relations and store them in the twin.

Relations are planned from the layers' kinds:

==================  =========================================  ==================
relation            from → to                                  rule
==================  =========================================  ==================
building_parcel     each building layer → each parcel layer    largest share
sensor_building     each sensor layer → each building layer    inside, else nearest
                                                               within max_distance_m
sensor_parcel       each sensor layer → each parcel layer      inside
feature_district    every layer → each district layer          largest share
feature_grid        every layer → each grid layer              largest share
service_<network>   each building layer → each pipe layer      nearest pipe of that
                    holding pipes of that network              network within
                                                               max_service_m
==================  =========================================  ==================

A rebuild recomputes only the relations whose input layers were re-imported
since the last build, or whose option changed (each stored relation remembers
the imports and option it was built from), and drops relations whose layers
are gone. Rows with no ``to_uid`` are the flagged ones: a building on no
parcel, a sensor with no building near, a building with no pipe within reach.

Layers are read ahead in one thread, relations computed in two others, and
written to the twin in the calling one (GDAL, GEOS and SQLite release the GIL),
so the costs overlap.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from twin import settings
from twin.errors import BuildNeeded, BuildNeededError, UsageError
from twin.relate import (
    geoms_from_wkb,
    inner_boxes,
    largest_share_positions,
    nearest_positions,
)
from twin.store import relations as relstore
from twin.store import schema
from twin.store.base import StoreSession

if TYPE_CHECKING:
    from twin.model import LayerInfo, Twin

DEFAULT_MAX_DISTANCE_M = settings.SENSOR_DISTANCE_M
DEFAULT_MAX_SERVICE_M = settings.SERVICE_DISTANCE_M
SERVICE_PREFIX = "service_"
_SENSOR_KINDS = ("sensor",)


@dataclass(frozen=True)
class RelationPlan:
    """One relation to compute: its rule and the two layers it links."""

    relation: str
    from_layer: str
    to_layer: str
    network: str | None = None  # service relations: the pipes' network value

    @property
    def key(self) -> str:
        return f"{self.relation}:{self.from_layer}->{self.to_layer}"

    def option(self, max_distance_m: float, max_service_m: float) -> float | None:
        """The build option this relation depends on, if any."""
        if self.relation == "sensor_building":
            return max_distance_m
        return max_service_m if self.network is not None else None


@dataclass
class BuildReport:
    """What a build computed, kept and dropped.

    Examples
    --------
    >>> BuildReport().max_service_m
    50.0
    """

    build_id: int | None = None
    time: str | None = None
    max_distance_m: float = DEFAULT_MAX_DISTANCE_M
    max_service_m: float = DEFAULT_MAX_SERVICE_M
    recomputed: dict[str, int] = field(default_factory=dict)  # key -> rows
    unrelated: dict[str, int] = field(default_factory=dict)  # key -> rows with no target
    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def plan_relations(
    infos: list[LayerInfo], networks: dict[str, list[str]] | None = None
) -> list[RelationPlan]:
    """Every relation the twin's layers call for, in a stable order.

    Parameters
    ----------
    infos : list of LayerInfo
        The twin's layers.
    networks : dict, optional
        The ``network`` values each pipe layer holds; no service relations without it.
    """
    by_kind: dict[str, list[str]] = {}
    for info in infos:
        by_kind.setdefault(info.kind, []).append(info.name)
    buildings, parcels = by_kind.get("building", []), by_kind.get("parcel", [])
    plans = [RelationPlan("building_parcel", b, p) for b in buildings for p in parcels]
    for sensor_layer in (s for kind in _SENSOR_KINDS for s in by_kind.get(kind, [])):
        plans += [RelationPlan("sensor_building", sensor_layer, b) for b in buildings]
        plans += [RelationPlan("sensor_parcel", sensor_layer, p) for p in parcels]
    plans += [
        RelationPlan(f"{SERVICE_PREFIX}{network}", b, pipes, network)
        for b in buildings
        for pipes, values in (networks or {}).items()
        for network in values
    ]
    for info in infos:
        plans += [
            RelationPlan("feature_district", info.name, d)
            for d in by_kind.get("district", [])
            if d != info.name
        ]
        plans += [
            RelationPlan("feature_grid", info.name, g)
            for g in by_kind.get("grid", [])
            if g != info.name and info.kind != "district"
        ]
    return plans


def build_relations(
    city: Twin,
    *,
    max_distance_m: float = DEFAULT_MAX_DISTANCE_M,
    max_service_m: float = DEFAULT_MAX_SERVICE_M,
    force: bool = False,
    progress: Callable[[str, float], None] | None = None,
    storer: Storer | None = None,
) -> BuildReport:
    """Compute the relations that changed and store them atomically.

    Parameters
    ----------
    city : Twin
        The twin to build.
    max_distance_m : float, default 30
        How far a sensor outside every building may be from its nearest building.
    max_service_m : float, default 50
        How far a building may be from the pipe that serves it.
    force : bool, default False
        Recompute every relation, changed inputs or not.
    progress : callable, optional
        Called as ``progress(relation_key, fraction)``.
    storer : callable, optional
        Computes and writes the relations of ``todo`` (default: whole layers in this
        process; :mod:`twin.partition` passes its tiled one).
    """
    for name, value in (("max_distance_m", max_distance_m), ("max_service_m", max_service_m)):
        if not value >= 0:
            raise UsageError(f"{name} must be a distance in metres >= 0, not {value}")
    started = time.perf_counter()
    report = BuildReport(max_distance_m=max_distance_m, max_service_m=max_service_m)
    with city.store.session() as session:
        force = session.prepare_relations() or force
        # Under the write lock, the twin is what the session started from: read layers
        # from the store (the session is being written), and record exactly what was read.
        infos = city.layer_infos()
        todo = _decide(city, session.relation_sets(), infos, report, force=force)
        build_id = _record_build(session, report, {i.name: i.last_import for i in infos})
        (storer or _store)(city, session, infos, todo, report, progress=progress)
        report.seconds = time.perf_counter() - started
        session.set_build_report(build_id, report.to_dict())
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class _Todo:
    """What a build recomputes: plans with their inputs, and the stored sets they replace."""

    plans: list[RelationPlan]
    inputs: dict[RelationPlan, list[object]]
    stale: list[relstore.StoredSet]
    stored_rows: int


#: The relations a build recomputes and the stored sets they replace (given to a storer).
BuildWork = _Todo


class Storer(Protocol):
    """Computes and writes a build's relations through the build's store session."""

    def __call__(
        self,
        city: Twin,
        session: StoreSession,
        infos: list[LayerInfo],
        todo: BuildWork,
        report: BuildReport,
        *,
        progress: Callable[[str, float], None] | None,
    ) -> None: ...


def _decide(
    city: Twin,
    previous: dict[str, relstore.StoredSet],
    infos: list[LayerInfo],
    report: BuildReport,
    *,
    force: bool,
) -> _Todo:
    """Plan every relation, keep those whose inputs are unchanged, fill the report's lists."""
    plans = plan_relations(infos, _pipe_networks(city, infos))
    imports = {info.name: info.last_import for info in infos}
    options = (report.max_distance_m, report.max_service_m)
    inputs: dict[RelationPlan, list[object]] = {
        p: [imports[p.from_layer], imports[p.to_layer], p.option(*options)] for p in plans
    }
    todo = [p for p in plans if force or _inputs_of(previous.get(p.key)) != inputs[p]]
    # Largest from layers first: their geometries are let go of early.
    counts = {info.name: info.feature_count for info in infos}
    todo.sort(key=lambda p: -counts[p.from_layer])
    planned, redone = {p.key for p in plans}, {p.key for p in todo}
    report.kept = [p.key for p in plans if p.key not in redone]
    report.dropped = sorted(set(previous) - planned)
    report.time = schema.now_utc()
    return _Todo(
        plans=todo,
        inputs=inputs,
        stale=[s for s in previous.values() if s.key not in planned or s.key in redone],
        stored_rows=sum(s.n_rows for s in previous.values()),
    )


def _store(
    city: Twin,
    session: StoreSession,
    infos: list[LayerInfo],
    todo: _Todo,
    report: BuildReport,
    *,
    progress: Callable[[str, float], None] | None,
) -> None:
    """Drop the stale sets, then compute and write each relation of ``todo``."""
    counts = {info.name: info.feature_count for info in infos}
    new_rows = sum(counts[p.from_layer] for p in todo.plans)
    dropped_rows = sum(s.n_rows for s in todo.stale)
    writer = session.relation_writer(
        bulk=relstore.is_bulk(new_rows, dropped_rows, todo.stored_rows)
    )
    writer.drop(todo.stale)
    coming = new_rows
    with _LayerCache(city, infos, todo.plans) as layers:
        computed = _computed(
            todo.plans, layers, report.max_distance_m, report.max_service_m, sizes=counts
        )
        for i, (plan, rows) in enumerate(computed):
            if progress:
                progress(plan.key, i / max(len(todo.plans), 1))
            key = (plan.relation, plan.from_layer, plan.to_layer, plan.network)
            writer.put(key, rows, inputs=todo.inputs[plan], build_id=report.build_id or 0)
            report.recomputed[plan.key] = len(rows)
            report.unrelated[plan.key] = rows.unrelated
            coming -= counts[plan.from_layer]
            if 0 < coming <= _INDEX_BEFORE_LAST * new_rows:
                # The last (small) relations are still computing: index what is written
                # beside them; their rows then update the indexes as they are put.
                writer.index_now()
    writer.finish()


def last_build(city: Twin) -> dict[str, object] | None:
    """The inputs of the newest build (``layers``: import per layer, ``options``), if any."""
    return city.store.last_build()


def _record_build(
    session: StoreSession, report: BuildReport, imports: dict[str, int | None]
) -> int:
    inputs = {
        "layers": imports,
        "options": {"max_distance_m": report.max_distance_m, "max_service_m": report.max_service_m},
    }
    report.build_id = session.record_build(report.time or schema.now_utc(), inputs)
    return report.build_id


def _inputs_of(stored: relstore.StoredSet | None) -> list[object] | None:
    return None if stored is None else stored.inputs


def _pipe_networks(city: Twin, infos: list[LayerInfo]) -> dict[str, list[str]]:
    """The distinct ``network`` values of each pipe layer."""
    return {
        info.name: city.store.distinct(info.name, "network")
        for info in infos
        if info.kind == "pipe"
    }


# --------------------------------------------------------------------------- computing


def compute_relation(
    layers: _LayerCache, plan: RelationPlan, *, max_distance_m: float, max_service_m: float
) -> relstore.RelationRows:
    """The rows of one relation: one per feature of the from layer."""
    return relation_rows(
        plan,
        layers.get(plan.from_layer),
        layers.get(plan.to_layer),
        max_distance_m=max_distance_m,
        max_service_m=max_service_m,
    )


def relation_rows(
    plan: RelationPlan,
    source: _Layer,
    target: _Layer,
    *,
    max_distance_m: float,
    max_service_m: float,
) -> relstore.RelationRows:
    """The rows of one relation between the features of two layers (or of two tiles of them)."""
    if plan.network is not None and target.network is not None:
        target = target.subset(target.network == plan.network)
    if plan.relation == "sensor_building" or plan.network is not None:
        reach = max_distance_m if plan.network is None else max_service_m
        found, distance = nearest_positions(source.geoms, target.geoms, max_distance_m=reach)
        inside = (distance == 0) & (plan.relation == "sensor_building")
        return relstore.RelationRows(
            from_uid=source.uid_list,
            to_uid=_labels(target.uids, found),
            share=np.where(inside, 1.0, np.nan),
            distance_m=distance,
            n_candidates=(found >= 0).astype(np.int64),
        )
    # A zone layer with many features per zone (grid cells, districts) finds its inner
    # boxes once for every feature layer related to it.
    many = len(source.geoms) >= _FEATURES_PER_INNER_BOX * len(target.geoms)
    inner = target.inner_boxes if many else None
    best, share, n_zones = largest_share_positions(source.geoms, target.geoms, inner=inner)
    return relstore.RelationRows(
        from_uid=source.uid_list,
        to_uid=_labels(target.uids, best),
        share=share,
        distance_m=np.full(len(share), np.nan),
        n_candidates=n_zones.astype(np.int64),
    )


def _labels(uids: np.ndarray, positions: np.ndarray) -> np.ndarray:
    labels = np.full(len(positions), None, dtype=object)
    hit = positions >= 0
    labels[hit] = uids[positions[hit]]
    return labels


def _computed(
    plans: list[RelationPlan],
    layers: _LayerCache,
    max_distance_m: float,
    max_service_m: float,
    *,
    sizes: dict[str, int],
) -> Iterator[tuple[RelationPlan, relstore.RelationRows]]:
    """Each plan's rows, in order, computed ahead of the writer by :data:`_WORKERS` threads
    (GEOS releases the GIL: two relations compute at once), as long as the relations
    computed or computing ahead hold at most :data:`_AHEAD_ROWS` rows (``sizes``: rows
    per from layer), and at least :data:`_WORKERS` relations."""
    # A relation prepares its target layer's geometries in place, and GEOS prepared
    # geometries must not be used by two threads at once: relations onto the same layer
    # take turns (those onto other layers run beside them).
    turns = {name: threading.Lock() for name in {p.to_layer for p in plans}}

    def compute(plan: RelationPlan) -> relstore.RelationRows:
        with turns[plan.to_layer]:
            rows = compute_relation(
                layers, plan, max_distance_m=max_distance_m, max_service_m=max_service_m
            )
        layers.done(plan)
        rows.unrelated  # noqa: B018 -- counted here, off the writer's thread
        return rows

    pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="twin-build")
    pending: deque[tuple[RelationPlan, Future[relstore.RelationRows]]] = deque()
    queue = deque(plans)

    def submit() -> None:
        held = sum(sizes[p.from_layer] for p, _ in pending)
        while queue and (
            len(pending) < _WORKERS or held + sizes[queue[0].from_layer] <= _AHEAD_ROWS
        ):
            plan = queue.popleft()
            held += sizes[plan.from_layer]
            pending.append((plan, pool.submit(compute, plan)))

    try:
        submit()
        while pending:
            plan, future = pending.popleft()
            rows = future.result()
            submit()
            yield plan, rows
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# A bulk write's uid indexes are rebuilt once no more than this share of its rows is
# still to come (updating them costs about 1.5x sorting them, but the sort overlaps the
# last relations' computing instead of following it).
_INDEX_BEFORE_LAST = 0.25
# Rows of the relations computed ahead of the one being written: the workers never wait
# for the writer (about 40 MB per million rows), even while it builds the indexes.
_AHEAD_ROWS = 4_000_000
# Relations with at least this many features per zone use the zone layer's inner boxes.
_FEATURES_PER_INNER_BOX = 8
# Threads computing relations. Two use both cores of a small machine while the writer
# waits for rows; the GEOS work of a relation releases the GIL.
_WORKERS = 2


@dataclass(frozen=True)
class _Layer:
    """One layer's geometries and uids, read once per build."""

    geoms: np.ndarray
    uids: np.ndarray  # object array of str
    network: np.ndarray | None = None

    @property
    def uid_list(self) -> list[str]:
        return list(self.uids.tolist())

    @cached_property
    def inner_boxes(self) -> np.ndarray:
        """The :func:`~twin.relate.inner_boxes` of the layer's geometries (found once)."""
        return inner_boxes(self.geoms)

    def subset(self, mask: np.ndarray) -> _Layer:
        return _Layer(self.geoms[mask], self.uids[mask])


#: The public name of the per-layer arrays :func:`relation_rows` relates.
FeatureArrays = _Layer


class _LayerCache:
    """Each layer read once per build, ahead of need, and let go once no relation needs it.

    A reader thread reads the layers in the order the plans first use them, so
    the computing thread rarely waits for a read. A context manager: leaving
    it stops the reader.
    """

    def __init__(self, city: Twin, infos: list[LayerInfo], plans: list[RelationPlan]) -> None:
        self.city = city
        self.kinds = {info.name: info.kind for info in infos}
        self.uses = Counter(name for p in plans for name in (p.from_layer, p.to_layer))
        self.lock = threading.Lock()
        self.reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-read")
        order = dict.fromkeys(name for p in plans for name in (p.from_layer, p.to_layer))
        self.layers = {name: self.reader.submit(self._read, name) for name in order}

    def __enter__(self) -> _LayerCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.shutdown(wait=True, cancel_futures=True)

    def get(self, name: str) -> _Layer:
        return self.layers[name].result()

    def done(self, plan: RelationPlan) -> None:
        with self.lock:  # called by every computing thread
            for name in (plan.from_layer, plan.to_layer):
                self.uses[name] -= 1
                if self.uses[name] <= 0:
                    self.layers.pop(name, None)

    def _read(self, name: str) -> _Layer:
        # Straight from Arrow: uids and geometries are all a relation needs.
        pipes = self.kinds.get(name) == "pipe"
        wkb, columns = self.city.store.read_wkb(name, ["uid", "network"] if pipes else ["uid"])
        return _Layer(
            geoms=_decoded(wkb),
            uids=columns["uid"].astype(object),
            network=columns["network"] if pipes else None,
        )


def _decoded(wkb: np.ndarray) -> np.ndarray:
    """:func:`geoms_from_wkb`, a large layer's second half decoded by a second thread.

    The first relations wait for the largest layer: while it is read, the
    computing threads are idle, so its decoding (GEOS, the GIL released) takes
    both cores.
    """
    if len(wkb) < _SPLIT_DECODE:
        return geoms_from_wkb(wkb)
    half = len(wkb) // 2
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-decode") as helper:
        second = helper.submit(geoms_from_wkb, wkb[half:])
        first = geoms_from_wkb(wkb[:half])
        return np.concatenate([first, second.result()])


# Layers with at least this many features are decoded by two threads.
_SPLIT_DECODE = 200_000


# --------------------------------------------------------------------------- reading


def service_connections(
    city: Twin, network: str, *, buildings: str | None = None, max_service_m: float | None = None
) -> pd.DataFrame:
    """The stored service connections of one network (see :meth:`twin.Twin.service_connections`)."""
    infos = city.layer_infos()
    buildings = _building_layer(city, infos, buildings)
    built = _current_build(city, infos, buildings)
    reach = float(built["options"]["max_service_m"])  # type: ignore[index]
    if max_service_m is None:
        max_service_m = reach
    elif max_service_m > reach:
        raise BuildNeededError(
            BuildNeeded(
                "beyond_reach",
                city.location,
                parameter="max_service_m",
                value=float(max_service_m),
                built=reach,
            )
        )
    stored = city.store.relation_sets().values()
    sets = [
        s for s in stored if s.relation == SERVICE_PREFIX + network and s.from_layer == buildings
    ]
    if not sets:
        have = sorted({s.network for s in stored if s.network is not None})
        raise UsageError(
            f"the twin has no {network!r} pipes to connect buildings to; networks with "
            f"pipes: {', '.join(have) or 'none (import a pipe layer)'}"
        )
    parts = [city.store.linked_rows(s).assign(pipe_layer=s.to_layer) for s in sets]
    links = pd.concat(parts, ignore_index=True)
    links = links[links["distance_m"] <= max_service_m]
    if len(sets) > 1:  # the nearest pipe over every layer of that network
        links = links.sort_values(["distance_m", "pipe_layer"], kind="stable")
        links = links.drop_duplicates("from_uid").sort_values("row", kind="stable")
    return pd.DataFrame(
        {
            "pipe_layer": links["pipe_layer"].to_numpy(dtype=object),
            "pipe": links["to_uid"].to_numpy(dtype=object),
            "distance_m": links["distance_m"].to_numpy(dtype=float),
        },
        index=pd.Index(links["from_uid"].to_numpy(dtype=object), name="uid"),
    )


#: The stored largest-share relation of each zone kind (buildings -> parcels has its own).
ZONE_RELATIONS = {"grid": "feature_grid", "district": "feature_district"}


def current_zone_set(city: Twin, layer: str, zone_layer: str) -> relstore.StoredSet | None:
    """The stored largest-share relation set ``layer`` -> ``zone_layer``, if the last
    build made it and neither layer was re-imported since; None otherwise (and for a
    snapshot's view, which reads no file).

    Examples
    --------
    >>> current_zone_set(city, "buildings", "grids").relation
    'feature_grid'
    """
    if not hasattr(city, "store"):  # a snapshot's view (twin.query) reads no file
        return None
    infos = {i.name: i for i in city.layer_infos()}
    if layer not in infos or zone_layer not in infos:
        return None
    kinds = (infos[layer].kind, infos[zone_layer].kind)
    relation = (
        "building_parcel" if kinds == ("building", "parcel") else ZONE_RELATIONS.get(kinds[1])
    )
    built = city.store.last_build()
    if relation is None or built is None:
        return None
    imports: dict[str, object] = built["layers"]  # type: ignore[assignment]
    if any(imports.get(name, -1) != infos[name].last_import for name in (layer, zone_layer)):
        return None
    sets = [
        s
        for s in city.store.relation_sets().values()
        if (s.relation, s.from_layer, s.to_layer) == (relation, layer, zone_layer)
    ]
    return sets[0] if len(sets) == 1 else None


def stored_zone_shares(city: Twin, layer: str, zone_layer: str) -> pd.DataFrame | None:
    """The stored largest-share relation ``layer`` -> ``zone_layer`` when the build is current.

    Returns None when there is no such relation, or when either layer was
    re-imported since the last build: the caller then computes the overlay itself.

    Returns
    -------
    pandas.DataFrame or None
        Indexed by feature uid: ``zone`` (uid, missing when in no zone), ``share``
        (of the feature inside that zone) and ``n_zones`` (zones it overlaps).

    Examples
    --------
    >>> shares = stored_zone_shares(city, "buildings", "grids")
    >>> len(shares) == len(city.layer("buildings")), bool((shares["share"] <= 1 + 1e-9).all())
    (True, True)
    """
    found = current_zone_set(city, layer, zone_layer)
    if found is None:
        return None
    rows = city.store.relation_rows([found])
    return pd.DataFrame(
        {
            "zone": rows["to_uid"].astype(object).to_numpy(),
            "share": rows["share"].to_numpy(dtype=float),
            "n_zones": rows["n_candidates"].to_numpy(dtype=np.int64),
        },
        index=pd.Index(rows["from_uid"].to_numpy(dtype=object), name="uid"),
    )


def _building_layer(city: Twin, infos: list[LayerInfo], name: str | None) -> str:
    layers = [i.name for i in infos if i.kind == "building"]
    if name is None and len(layers) == 1:
        return layers[0]
    if name is not None and name in layers:
        return name
    if not layers:
        raise UsageError(f"{city.path.name} has no building layer: import one with kind='building'")
    if name is None:
        raise UsageError(
            f"the twin has several building layers ({', '.join(layers)}): name one with buildings="
        )
    raise UsageError(f"{name!r} is not a building layer; the twin's: {', '.join(layers)}")


def _current_build(city: Twin, infos: list[LayerInfo], buildings: str) -> dict[str, object]:
    """The last build's inputs, if no building or pipe layer changed since."""
    built = city.store.last_build()
    if built is None:
        raise BuildNeededError(BuildNeeded("no_build", city.location))
    layers: dict[str, object] = built["layers"]  # type: ignore[assignment]
    changed = sorted(
        i.name
        for i in infos
        if (i.kind == "pipe" or i.name == buildings) and layers.get(i.name, -1) != i.last_import
    )
    if changed:
        raise BuildNeededError(BuildNeeded("stale", city.location, layers=tuple(changed)))
    return built
