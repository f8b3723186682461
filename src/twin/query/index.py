"""The twin held in memory for queries: every layer with an STRtree, reloaded on change.

A :class:`CityIndex` is one immutable snapshot of a twin file: each layer as a
GeoDataFrame in the twin CRS (indexed by ``uid``), its shapely STRtree and its
:class:`~twin.model.LayerInfo`. A :class:`~twin.query.live.LiveIndex` holds the current snapshot
for a long-running service and swaps in a new one, whole, when the twin file
changes (a re-import replaces the file with one atomic rename, so its identity
changes): readers keep the snapshot they took, and no query ever sees half of
an import.

Examples
--------
>>> from twin.query.index import CityIndex
>>> index = CityIndex.load(sample_twin_path)
>>> layer = index.layer("buildings")
>>> hits = layer.bbox(tuple(city.layer("buildings").total_bounds))
>>> len(hits) == len(layer.frame)
True
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from twin.errors import FeatureNotFoundError, LayerNotFoundError, UsageError
from twin.kinds import Classification
from twin.model import LayerInfo, Twin
from twin.query.compact import (
    COMPACT_ABOVE,
    COMPACT_BATCH,
    CompactParts,
    WKBGeometries,
    compact_limit,
    release_freed_memory,
)
from twin.query.delta import (
    MAX_CHANGED_SHARE,
    MAX_LOOKUP_DEPTH,
    Lineage,
    PatchedTree,
    UidLookup,
    patch,
    read_delta,
)
from twin.store import PostgisStore, is_url

__all__ = [
    "COMPACT_ABOVE",
    "CityIndex",
    "IndexedLayer",
    "compact_limit",
    "file_identity",
    "transformer",
]

log = logging.getLogger(__name__)

# Who wants to know which layers are read: set per request by the API (for its audit log).
_LAYER_READS: contextvars.ContextVar[Callable[[list[str]], None] | None] = contextvars.ContextVar(
    "twin_layer_reads", default=None
)


def on_layer_reads(callback: Callable[[list[str]], None] | None) -> contextvars.Token[Any]:
    """Call ``callback(names)`` whenever a layer is resolved in this context (see :func:`read`).

    The API sets it once per request, so every layer a query reaches is recorded
    where it is resolved, whichever route asked.
    """
    return _LAYER_READS.set(callback)


@contextlib.contextmanager
def recording_reads() -> Iterator[set[str]]:
    """Collect the layers resolved inside the block; the outer listener hears them too.

    Examples
    --------
    >>> with recording_reads() as seen:
    ...     _ = index.layer("buildings")
    >>> sorted(seen)
    ['buildings']
    """
    seen: set[str] = set()
    outer = _LAYER_READS.get()

    def record(names: list[str]) -> None:
        seen.update(names)
        if outer is not None:
            outer(names)

    token = _LAYER_READS.set(record)
    try:
        yield seen
    finally:
        _LAYER_READS.reset(token)


def note_reads(names: list[str]) -> None:
    """Tell the current context's listener (if any) that ``names`` are being read."""
    callback = _LAYER_READS.get()
    if callback is not None and names:
        callback(names)


FileIdentity = tuple[int, int, int, int]
Bounds = tuple[float, float, float, float]


def file_identity(path: str | os.PathLike[str]) -> FileIdentity:
    """What tells one version of the twin file from the next: device, inode, mtime, size.

    A write replaces the file with an atomic rename, so the inode changes even
    when the modification time and the size happen to be the same.

    Examples
    --------
    >>> file_identity(sample_twin_path) == file_identity(sample_twin_path)
    True
    """
    stat = os.stat(path)
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def transformer(source: str, target: str) -> pyproj.Transformer:
    """A cached ``always_xy`` transformer between two CRS given as user input text.

    Examples
    --------
    >>> forward = transformer("EPSG:4544", "OGC:CRS84")
    >>> lon, lat = forward.transform(505700.0, 3392300.0)
    >>> round(lon, 3), round(lat, 3)
    (105.059, 30.651)
    """
    return pyproj.Transformer.from_crs(
        pyproj.CRS.from_user_input(source), pyproj.CRS.from_user_input(target), always_xy=True
    )


class IndexedLayer:
    """One layer in memory: its features, their spatial index and the layer's metadata.

    Positions returned by the query methods are row positions in :attr:`frame`
    (use ``frame.iloc[positions]``) and in :attr:`geometries`, sorted ascending.

    A layer is held whole (a GeoDataFrame and a shapely STRtree: built with
    :meth:`from_frame` or the constructor) or, past
    :data:`COMPACT_ABOVE` features, compact (:meth:`from_parts`): its
    geometries as WKB decoded on demand and a packed tree over their boxes
    (:mod:`twin.query.compact`), about a fifth of the memory. Both answer
    every method the same; :attr:`attributes`, :attr:`fields` and
    :attr:`geometries` are cheap either way, while :attr:`frame` and
    :attr:`tree` of a compact layer decode every geometry once (and keep it).

    Examples
    --------
    >>> layer = index.layer("buildings")
    >>> layer.kind, len(layer.frame) == len(city.layer("buildings"))
    ('building', True)
    >>> layer.compact
    False
    """

    def __init__(
        self,
        info: LayerInfo,
        frame: gpd.GeoDataFrame | None = None,  # indexed by uid, in the twin CRS
        geometries: np.ndarray | None = None,  # the frame's shapely geometries, object array
        tree: shapely.STRtree | None = None,
        *,
        parts: CompactParts | None = None,
    ) -> None:
        if parts is None and (frame is None or geometries is None or tree is None):
            raise TypeError("IndexedLayer needs frame, geometries and tree, or compact parts")
        self.info = info
        self._frame = frame
        self._geometries = geometries
        self._tree = tree
        self.parts = parts
        self._whole = threading.Lock()
        self.lineage: Lineage | None = None  # set on a layer patched from an older one
        self.lookup: UidLookup | None = None  # positions by uid without hashing every uid

    @classmethod
    def from_frame(cls, info: LayerInfo, frame: gpd.GeoDataFrame) -> IndexedLayer:
        """Index ``frame`` (a layer read with :meth:`twin.Twin.layer`)."""
        geometries = np.asarray(frame.geometry.array, dtype=object)
        return cls(info=info, frame=frame, geometries=geometries, tree=shapely.STRtree(geometries))

    @classmethod
    def from_parts(cls, info: LayerInfo, parts: CompactParts) -> IndexedLayer:
        """A compact layer (see :class:`~twin.query.compact.CompactParts`)."""
        return cls(info=info, parts=parts)

    def __repr__(self) -> str:
        mode = "compact" if self.compact else "whole"
        return f"IndexedLayer({self.name!r}, {self.kind}, {len(self)} features, {mode})"

    @property
    def compact(self) -> bool:
        """Whether the geometries are held as WKB (see :mod:`twin.query.compact`)."""
        return self.parts is not None

    @property
    def materialized(self) -> bool:
        """Whether every geometry is held as shapely (whole, or compact asked for its frame)."""
        return self._frame is not None

    @property
    def frame(self) -> gpd.GeoDataFrame:
        """The layer as a GeoDataFrame indexed by uid, in the twin CRS.

        A compact layer decodes every geometry the first time (and keeps the
        frame): prefer :attr:`attributes` and :attr:`geometries`.
        """
        if self._frame is None:
            with self._whole:
                if self._frame is None:
                    assert self.parts is not None
                    log.warning(
                        "layer %s (%d features, compact) decoded whole for a query "
                        "that reads its every geometry",
                        self.name,
                        len(self),
                    )
                    self._frame = self.parts.frame()
        return self._frame

    @property
    def geometries(self) -> np.ndarray | WKBGeometries:
        """The geometries by position: ``geometries[positions]`` gives shapely geometries."""
        if self.parts is not None:
            return self.parts.geometries
        assert self._geometries is not None
        return self._geometries

    @property
    def tree(self) -> shapely.STRtree:
        """A shapely STRtree over the geometries (a compact layer builds one on first use)."""
        if self._tree is None:
            geometries = np.asarray(self.frame.geometry.array, dtype=object)
            with self._whole:
                if self._tree is None:
                    self._tree = shapely.STRtree(geometries)
        return self._tree

    @property
    def attributes(self) -> pd.DataFrame:
        """The attribute columns by uid; a whole layer's frame (geometry column included).

        Pick columns by :attr:`fields`.
        """
        if self.parts is not None:
            return self.parts.attributes
        return self.frame

    @property
    def fields(self) -> list[str]:
        """The attribute column names, in order (the geometry column left out)."""
        if self.parts is not None:
            skip = self.parts.geometry_name
            return [c for c in self.parts.columns if c != skip]
        geometry = self.frame.geometry.name
        return [c for c in self.frame.columns if c != geometry]

    @property
    def columns(self) -> list[str]:
        """Every column of :attr:`frame`, in order (the geometry column included)."""
        if self.parts is not None:
            return list(self.parts.columns)
        return list(self.frame.columns)

    @property
    def uids(self) -> pd.Index:
        """The features' uids, by position."""
        return self.attributes.index

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def classification(self) -> Classification:
        return Classification(self.info.classification)

    def __len__(self) -> int:
        return len(self.parts) if self.parts is not None else len(self.frame)

    def bbox(self, bounds: Bounds) -> np.ndarray:
        """Positions of the features that intersect the box ``(minx, miny, maxx, maxy)``."""
        return self.query(shapely.box(*bounds), predicate="intersects")

    def query(
        self,
        geometry: shapely.Geometry,
        *,
        predicate: str | None = "intersects",
        distance: float | None = None,
    ) -> np.ndarray:
        """Positions of the features related to ``geometry`` (twin CRS) by ``predicate``.

        ``predicate=None`` gives the features whose envelopes intersect the
        geometry's envelope (the tree's candidates); ``predicate="dwithin"``
        needs ``distance`` (metres, the twin CRS being projected).
        """
        if self.parts is not None:
            return self.parts.query(geometry, predicate=predicate, distance=distance)
        if predicate == "dwithin":
            hits = self.tree.query(geometry, predicate="dwithin", distance=distance)
        else:
            hits = self.tree.query(geometry, predicate=predicate)
        return np.sort(np.asarray(hits, dtype=np.intp))

    def within_distance(self, geometry: shapely.Geometry, distance_m: float) -> np.ndarray:
        """Positions of the features within ``distance_m`` of ``geometry`` (twin CRS)."""
        return self.query(geometry, predicate="dwithin", distance=distance_m)

    def position(self, uid: str) -> int:
        """Row position of the feature ``uid``; :class:`FeatureNotFoundError` if absent."""
        if self.lookup is not None:  # a patched layer: through the older layers' lookups
            found = self.lookup.find(uid)
            if found < 0:
                raise FeatureNotFoundError(f"layer {self.name} has no feature {uid!r}")
            return found
        index = self.uids
        if uid not in index:
            raise FeatureNotFoundError(f"layer {self.name} has no feature {uid!r}")
        location = index.get_loc(uid)
        if not isinstance(location, int):  # a duplicated uid cannot happen in a twin
            raise FeatureNotFoundError(f"layer {self.name} holds {uid!r} more than once")
        return location


@dataclass(frozen=True, eq=False)
class CityIndex:
    """One in-memory snapshot of a twin: every layer indexed, in the twin CRS.

    Attributes
    ----------
    path : Path
        The twin file.
    crs : pyproj.CRS
        The twin CRS (every geometry here is in it).
    crs_text : str
        The twin CRS as stored (``"EPSG:4544"``).
    name : str
        The twin's title.
    layers : dict of str to IndexedLayer
        Every layer, in import order.
    identity : tuple
        :func:`file_identity` of the file this snapshot was read from.
    loaded_at : float
        ``time.time()`` when the snapshot was complete.
    load_s : float
        Seconds the load took.
    updates : dict of str to str
        For a snapshot made by :meth:`updated`: each layer ``"kept"``,
        ``"patched"`` (from its change sets) or ``"read: <why>"``; empty after :meth:`load`.

    Examples
    --------
    >>> snapshot = CityIndex.load(sample_twin_path)
    >>> "buildings" in snapshot.layers
    True
    """

    path: Path
    crs: pyproj.CRS | None
    crs_text: str
    name: str
    layers: dict[str, IndexedLayer]
    identity: FileIdentity
    loaded_at: float
    load_s: float
    _twin: Twin = field(repr=False)
    updates: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        attempts: int = 5,
        previous: CityIndex | None = None,
        compact_above: int | None = None,
    ) -> CityIndex:
        """Read every layer of the twin at ``path`` (a file or a PostGIS URL) and index it.

        If the file is replaced while it is being read (a concurrent import),
        or the PostGIS twin commits meanwhile, the read starts again, up to
        ``attempts`` times, so a snapshot never mixes two versions.

        A layer of more than ``compact_above`` features (default
        :func:`compact_limit`) is read in batches and held compact (see
        :class:`IndexedLayer`), one such layer at a time, before the others
        are read side by side: the load's peak stays near the snapshot's size.

        With ``previous`` (an older snapshot of the same PostGIS twin), a layer
        whose metadata is unchanged (same last import, update time, count,
        classification) is taken over from it instead of read again: a build,
        or an import of another layer, reloads only what changed.
        """
        target: str | Path = str(path) if is_url(path) else Path(path)
        for _ in range(attempts):
            started = time.perf_counter()
            city = Twin.open(target)
            before = identity_of(city)
            infos = city.layer_infos()
            kept = _unchanged(previous, infos) if isinstance(city.store, PostgisStore) else {}
            todo = [info for info in infos if info.name not in kept]
            kept.update(_read_layers(city, todo, compact_above))
            layers = {info.name: kept[info.name] for info in infos}  # in the twin's order
            meta = city.meta
            after = identity_of(city)
            if before == after and after is not None:
                release_freed_memory()
                seconds = time.perf_counter() - started
                log.info("indexed %d layers of %s in %.2f s", len(layers), city.location, seconds)
                return cls._made(city, meta, layers, after, seconds)
            log.info("%s changed while it was read; reading it again", city.location)
        raise UsageError(f"{path} kept changing while it was read; try again when imports end")

    def updated(self, *, max_share: float = MAX_CHANGED_SHARE, attempts: int = 5) -> CityIndex:
        """A snapshot of the twin as it is now, built from this one and the change sets.

        A layer whose metadata is unchanged is shared as it is; a re-imported
        layer gets the rows its imports changed (:mod:`twin.query.delta`), the
        rest of its frame kept, and its STRtree kept with the rows read indexed
        beside it (:class:`~twin.query.delta.PatchedTree`). A layer the change sets
        cannot bring up to date (see :func:`~twin.query.delta.read_delta`), a
        new layer, or a new twin CRS is read whole. The answer equals a
        :meth:`load` of the new version; :attr:`updates` says what was done to
        each layer.

        Examples
        --------
        >>> snapshot = CityIndex.load(sample_twin_path)
        >>> again = snapshot.updated()
        >>> again.layers["buildings"] is snapshot.layers["buildings"], again.updates["buildings"]
        (True, 'kept')
        """
        for _ in range(attempts):
            started = time.perf_counter()
            city = Twin.open(self._target())
            before = identity_of(city)
            meta = city.meta
            if before is None or meta["crs"] != self.crs_text:
                return CityIndex.load(self._target())
            layers, updates = _updated_layers(self, city, max_share)
            if _unexplained(city, before, self.identity, updates):
                return CityIndex.load(self._target())
            after = identity_of(city)
            if before == after:
                seconds = time.perf_counter() - started
                log.info(
                    "updated %d layers of %s in %.2f s: %s",
                    len(layers),
                    city.location,
                    seconds,
                    updates,
                )
                return CityIndex._made(city, meta, layers, after, seconds, updates)
            log.info("%s changed while it was updated; updating again", city.location)
        raise UsageError(f"{self.path} kept changing while it was read; try again when imports end")

    @classmethod
    def _made(
        cls,
        city: Twin,
        meta: dict[str, Any],
        layers: dict[str, IndexedLayer],
        identity: FileIdentity,
        seconds: float,
        updates: dict[str, str] | None = None,
    ) -> CityIndex:
        """The snapshot of ``city`` at ``identity`` holding ``layers``."""
        return cls(
            path=city.path,
            crs=city.crs,
            crs_text=meta["crs"],
            name=meta.get("name", city.path.stem),
            layers=layers,
            identity=identity,
            loaded_at=time.time(),
            load_s=seconds,
            _twin=city,
            updates=updates or {},
        )

    def _target(self) -> str | Path:
        """What :meth:`Twin.open` takes to open this twin again: its URL or its file."""
        store = self._twin.store
        return store.url if isinstance(store, PostgisStore) else self.path

    @property
    def generation(self) -> FileIdentity:
        """A value that differs between any two versions of the file (its identity)."""
        return self.identity

    @property
    def remote(self) -> bool:
        """Whether the twin lives in PostGIS (its identity is the commit counter)."""
        return isinstance(self._twin.store, PostgisStore)

    @property
    def version_tag(self) -> str:
        """The snapshot's version in short: the PostGIS commit counter, or inode.mtime_ns.

        Examples
        --------
        >>> index.version_tag == f"{index.identity[1]}.{index.identity[2]}"
        True
        """
        if self.remote:
            return str(self.identity[-1])
        return f"{self.identity[1]}.{self.identity[2]}"

    def is_current(self) -> bool:
        """Whether the twin is still the version this snapshot was read from.

        For a PostGIS twin this asks the database (one small query), and raises
        :class:`~twin.errors.DatabaseUnavailableError` when it cannot be reached.

        Examples
        --------
        >>> index.is_current()
        True
        """
        return identity_of(self._twin) == self.identity

    @property
    def twin(self) -> Twin:
        """The :class:`~twin.Twin` on the same file, for history and relation reads."""
        return self._twin

    def __contains__(self, name: object) -> bool:
        return name in self.layers

    def __iter__(self) -> Iterator[IndexedLayer]:
        return iter(self.layers.values())

    def layer(self, name: str) -> IndexedLayer:
        """The layer called ``name``; :class:`LayerNotFoundError` when there is none."""
        try:
            found = self.layers[name]
        except KeyError:
            listing = ", ".join(self.layers) or "none"
            raise LayerNotFoundError(
                f"the twin has no layer {name!r}; its layers: {listing}"
            ) from None
        note_reads([name])
        return found

    def names(
        self,
        *,
        kind: str | None = None,
        max_classification: Classification | str = Classification.RESTRICTED,
    ) -> list[str]:
        """Layer names, optionally of one kind and at most a classification level.

        Examples
        --------
        >>> index.names(kind="building", max_classification="public")
        ['buildings']
        """
        ceiling = Classification(max_classification).rank
        return [
            item.name
            for item in self.layers.values()
            if (kind is None or item.kind == kind) and item.classification.rank <= ceiling
        ]

    def to_twin(self, source: str | pyproj.CRS) -> pyproj.Transformer:
        """Transformer from ``source`` (e.g. ``"OGC:CRS84"``) to the twin CRS, x/y order."""
        return transformer(_crs_key(source), self.crs_text)

    def from_twin(self, target: str | pyproj.CRS) -> pyproj.Transformer:
        """Transformer from the twin CRS to ``target``, x/y order."""
        return transformer(self.crs_text, _crs_key(target))

    def changed(self) -> bool:
        """Whether the twin is no longer the version this snapshot was read from.

        A twin file gone for a moment (being replaced) or deleted counts as
        unchanged: keep serving.
        """
        seen = identity_of(self._twin)
        return seen is not None and seen != self.identity


def identity_of(city: Twin) -> FileIdentity | None:
    """The twin's version now: its file identity, or ``(0, 0, 0, commits)`` in PostGIS."""
    if isinstance(city.store, PostgisStore):
        return (0, *city.store.version())
    return _identity_or_none(city.path)


def _identity_or_none(path: Path) -> FileIdentity | None:
    try:
        return file_identity(path)
    except FileNotFoundError:
        return None


def _unexplained(
    city: Twin, now: FileIdentity, then: FileIdentity, updates: dict[str, str]
) -> bool:
    """Whether a twin file changed with no layer its change sets explain (a build, a
    copy put in its place, a damaged file): then it is read whole, as a check."""
    if isinstance(city.store, PostgisStore) or now == then:
        return False
    return all(how == "kept" for how in updates.values())


def _unchanged(previous: CityIndex | None, infos: list[LayerInfo]) -> dict[str, IndexedLayer]:
    """The layers of ``previous`` whose metadata equals their new ``infos``."""
    if previous is None:
        return {}
    old = previous.layers
    return {i.name: old[i.name] for i in infos if i.name in old and old[i.name].info == i}


#: A patched layer keeps its STRtree and indexes the rows read beside it (a
#: :class:`~twin.query.delta.PatchedTree`) while they are at most this share of
#: it and the patches on patches at most this deep; past that, one tree again.
MAX_TREE_SHARE = 0.05
MAX_TREE_DEPTH = 4


def _updated_layers(
    old: CityIndex, city: Twin, max_share: float
) -> tuple[dict[str, IndexedLayer], dict[str, str]]:
    """Every layer of ``city`` now: kept from ``old``, patched from its change sets, or read."""
    layers: dict[str, IndexedLayer] = {}
    updates: dict[str, str] = {}
    todo: list[LayerInfo] = []
    infos = city.layer_infos()
    for info in infos:
        before = old.layers.get(info.name)
        if before is not None and before.info == info:
            layers[info.name], updates[info.name] = before, "kept"
            continue
        patched = _patched(city, before, info, max_share)
        if isinstance(patched, str):
            updates[info.name] = f"read: {patched}"
            todo.append(info)
        else:
            layers[info.name], updates[info.name] = patched, "patched"
    layers.update(_read_layers(city, todo, None))
    return {info.name: layers[info.name] for info in infos}, updates


def _read_layers(
    city: Twin, infos: list[LayerInfo], compact_above: int | None
) -> dict[str, IndexedLayer]:
    """Read and index ``infos``: layers past ``compact_above`` compact, one at a time."""
    limit = compact_limit() if compact_above is None else compact_above
    read = {info.name: _load_compact(city, info) for info in infos if info.feature_count > limit}
    todo = [info for info in infos if info.feature_count <= limit]
    # GDAL reads and GEOS builds trees without the GIL: layers load side by side.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        read.update((item.name, item) for item in pool.map(_load_layer, [city] * len(todo), todo))
    return read


def _patched(
    city: Twin, before: IndexedLayer | None, info: LayerInfo, max_share: float
) -> IndexedLayer | str:
    """The layer brought up to date from its change sets, or why it must be read whole."""
    if before is None:
        return "a new layer"
    if before.compact:  # patching would decode every geometry of a layer kept as WKB
        return "held compact"
    delta = read_delta(city, before.frame, before.info, info, max_share=max_share)
    if isinstance(delta, str):
        return delta
    patched = patch(before.frame, delta)
    if patched is None:
        return "its uids are not those its change sets give"
    geometries = np.asarray(patched.frame.geometry.array, dtype=object)
    small = len(patched.new_rows) <= MAX_TREE_SHARE * len(geometries)
    if small and getattr(before.tree, "depth", 0) < MAX_TREE_DEPTH:
        tree: shapely.STRtree = PatchedTree(
            before.tree, patched.old_rows, patched.new_rows, geometries
        )
    else:  # many rows new, or many patches on patches: one tree again
        tree = shapely.STRtree(geometries)
    layer = IndexedLayer(info=info, frame=patched.frame, geometries=geometries, tree=tree)
    layer.lineage = Lineage(weakref.ref(before), patched.positions, len(before))
    older = before.lookup
    base = older if older is not None and older.depth < MAX_LOOKUP_DEPTH else before.uids
    read = layer.lineage.read_rows
    layer.lookup = UidLookup(base, patched.old_rows, layer.uids[read], read)
    return layer


def _load_layer(city: Twin, info: LayerInfo) -> IndexedLayer:
    return IndexedLayer.from_frame(info, city.layer(info.name))


def _load_compact(city: Twin, info: LayerInfo) -> IndexedLayer:
    batches = city.layer_batches(info.name, batch_size=COMPACT_BATCH)
    parts = CompactParts.from_frames(batches)
    log.info(
        "layer %s held compact: %d features, %.0f MiB", info.name, len(parts), parts.nbytes / 2**20
    )
    return IndexedLayer.from_parts(info, parts)


def _crs_key(crs: str | pyproj.CRS) -> str:
    return crs if isinstance(crs, str) else crs.to_wkt()
