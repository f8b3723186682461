"""Bringing one layer of a snapshot up to date from the twin's change sets.

A re-import changes a few features of a large layer: reading the whole layer
again (tens of seconds at a million buildings) only to find most rows as they
were is what a long-running service must avoid. :func:`read_delta` asks the
store what changed in a layer since the snapshot's import (the change sets of
``twin_changes``), reads only those features, and the layer's uids in their
stored order (one column); :func:`apply_delta` then builds the layer's new
frame from the old one: old rows minus the changed and removed ones, plus the
rows read, in the stored order, so the frame equals a full read of the layer
row for row and dtype for dtype.

When the change sets cannot tell the whole story, :func:`read_delta` returns
the reason instead and the caller reads the layer whole: no recorded import
(a first import lists no uids), a history that does not follow on from the
snapshot's import (a twin file restored from elsewhere), too large a share
of the layer changed, other columns (a new delivery's schema), or uids that
the change sets do not explain.

Examples
--------
>>> import twin
>>> old = city.layer("buildings")
>>> info = city.info("buildings")
>>> delta = read_delta(city, old, info, info)  # the same version: nothing to read
>>> len(delta.touched), apply_delta(old, delta).equals(old)
(0, True)
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from twin.model import LayerInfo, Twin
from twin.settings import MAX_CHANGED_SHARE
from twin.store.order import order_key, uid_digest

__all__ = [
    "CARRY_LIMIT",
    "MAX_CHANGED_SHARE",
    "MAX_LOOKUP_DEPTH",
    "CarriedArray",
    "LayerDelta",
    "Lineage",
    "Patch",
    "PatchedTree",
    "UidLookup",
    "apply_delta",
    "patch",
    "predicted",
    "read_delta",
    "taken_frame",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerDelta:
    """What changed in one layer between two versions of the twin.

    Attributes
    ----------
    touched : ndarray of str
        Every uid added, changed or removed by the imports in between.
    rows : GeoDataFrame
        The current rows of the touched uids still in the layer (indexed by uid).
    order : Index of str
        Every uid of the layer now, in its stored order.
    imports : list of int
        The imports the change sets come from, oldest first.
    positions : ndarray of int, optional
        For each uid of ``order``, its row in ``concat([old frame, rows])``, when
        the order was predicted from the change sets (see :func:`predicted`);
        None when it was read from the store.
    """

    touched: np.ndarray
    rows: gpd.GeoDataFrame
    order: pd.Index
    imports: list[int]
    positions: np.ndarray | None = None


def read_delta(
    city: Twin,
    frame: gpd.GeoDataFrame,
    old: LayerInfo,
    new: LayerInfo,
    *,
    max_share: float = MAX_CHANGED_SHARE,
) -> LayerDelta | str:
    """Read what changed in layer ``new.name`` since version ``old`` (held as ``frame``).

    Parameters
    ----------
    city : Twin
        The twin as it is now.
    frame : GeoDataFrame
        The layer as the snapshot holds it (read at version ``old``).
    old, new : LayerInfo
        The layer's metadata then and now.
    max_share : float, default MAX_CHANGED_SHARE
        Above this share of the layer touched, give up: reading it whole is as quick.

    Returns
    -------
    LayerDelta or str
        The change, or why it cannot be had from the change sets (read the layer whole).
    """
    imports = _imports_between(city, old, new)
    if isinstance(imports, str):
        return imports
    rows = city.store.layer_changes(new.name, old.last_import or 0)
    rows = rows[rows["import_id"].astype(np.int64) <= (new.last_import or 0)]
    touched = pd.unique(rows["uid"].astype(object).to_numpy())
    limit = max_share * max(len(frame), new.feature_count, 1)
    if len(touched) > limit:
        return f"{len(touched)} features changed, more than {max_share:.0%} of the layer"
    recorded = city.store.meta().get(order_key(new.name))
    carried = _recorded(city, frame, old, new, rows, recorded)
    if carried is None:
        fresh = city.features(new.name, touched)
        if list(fresh.columns) != list(frame.columns):
            return "its columns changed"
        guess = predicted(frame.index, rows, fresh.index, recorded, new.last_import)
    else:  # the importer wrote the rows read (and where they go): one value read
        fresh, guess = carried
    if guess is None:  # no digest recorded, or the delivery moved features: read the order
        order, positions = city.store.uid_order(new.name), None
    else:
        order, positions = guess
    if len(order) != new.feature_count:
        return "the layer changed while it was read"
    return LayerDelta(
        touched=np.asarray(touched, dtype=object),
        rows=fresh,
        order=order,
        imports=imports,
        positions=positions,
    )


def _recorded(
    city: Twin,
    frame: gpd.GeoDataFrame,
    old: LayerInfo,
    new: LayerInfo,
    changes: pd.DataFrame,
    recorded: str | None,
) -> tuple[gpd.GeoDataFrame, tuple[pd.Index, np.ndarray] | None] | None:
    """The rows read as the one import since ``old`` recorded them
    (:meth:`~twin.model.Twin.delta_rows`), with the uids now and their positions when it
    kept the order :func:`predicted` predicts (else None: read the stored order).
    None when it recorded none, or they do not check out: the rows must be exactly the
    added and changed uids, and the uids they give in the order the import's digest holds.
    """
    ids = changes["import_id"].astype(np.int64).to_numpy()
    if old.last_import is None or new.last_import is None or (ids != new.last_import).any():
        return None
    found = city.delta_rows(new.name, new.last_import, old.last_import)
    if found is None:
        return None
    rows, positions = found
    read = changes["uid"].astype(object).to_numpy()[changes["change"].astype(str) != "removed"]
    if list(rows.columns) != list(frame.columns) or len(rows) != len(read):
        return None
    if not _member(_uids(rows.index), read).all():
        return None
    if not len(positions):  # the delivery moved features
        return rows, None
    if len(positions) != new.feature_count or positions.min() < 0:
        return None
    if positions.max() >= len(frame) + len(rows):
        return None
    both = pa.chunked_array([*_uids(frame.index).chunks, *_uids(rows.index).chunks])
    joined = both.take(pa.array(positions)).combine_chunks()
    if recorded != f"{new.last_import}:{uid_digest(joined)}":
        return None
    return rows, (pd.Index(pd.array(joined, dtype="str"), name="uid"), positions)


def predicted(
    uids: pd.Index,
    changes: pd.DataFrame,
    rows: pd.Index,
    recorded: str | None,
    last_import: int | None,
) -> tuple[pd.Index, np.ndarray] | None:
    """The layer's uids in their stored order, and where each row comes from.

    Each import drops its removed uids and appends its added ones in the order
    it lists them, changed ones keeping their place: the order a delivery that
    keeps its features' order gives. The prediction counts only when its
    digest is the one import ``last_import`` recorded (``recorded``, see
    :mod:`twin.store.order`); else None: read the stored order.

    Parameters
    ----------
    uids : Index
        The layer's uids before, in order.
    changes : DataFrame
        The change sets since (``import_id``, ``uid``, ``change``), oldest first.
    rows : Index
        The uids of the rows read (the touched features still in the layer).
    recorded : str or None
        What the store holds under :func:`~twin.store.order.order_key`.
    last_import : int or None
        The layer's last import now.

    Returns
    -------
    (Index, ndarray of int) or None
        The uids now, and for each its row in ``concat([old frame, rows])``.

    Examples
    --------
    >>> from twin.store.order import order_value
    >>> changes = pd.DataFrame({"import_id": [3, 3, 3, 4], "uid": ["b", "c", "d", "e"],
    ...                         "change": ["removed", "changed", "added", "added"]})
    >>> rows = pd.Index(["c", "d", "e"])
    >>> order, positions = predicted(pd.Index(["a", "b", "c"]), changes, rows,
    ...                              order_value(4, ["a", "c", "d", "e"]), 4)
    >>> list(order), positions.tolist()
    (['a', 'c', 'd', 'e'], [0, 3, 4, 5])
    >>> predicted(pd.Index(["a", "b", "c"]), changes, rows,
    ...           order_value(4, ["d", "a", "c", "e"]), 4) is None  # moved: read it
    True
    """
    if recorded is None or not recorded.startswith(f"{last_import}:"):
        return None
    order, source = _uids(uids), np.arange(len(uids), dtype=np.intp)
    ids = changes["import_id"].astype(np.int64).to_numpy()
    kinds = changes["change"].astype(str).to_numpy()
    values = changes["uid"].astype(object).to_numpy()
    for import_id in np.unique(ids):
        mine = ids == import_id
        removed = values[mine & (kinds == "removed")]
        if len(removed):
            keep = ~_member(order, removed)
            order, source = pc.filter(order, pa.array(keep)), source[keep]
        added = values[mine & (kinds == "added")]
        if len(added):
            order = pa.chunked_array([*order.chunks, *_uids(added).chunks])
            source = np.concatenate([source, np.full(len(added), -1, dtype=np.intp)])
    if recorded != f"{last_import}:{uid_digest(order)}":
        return None
    touched = _member(order, rows)  # read again: every added one, and the changed
    slots = np.flatnonzero(touched)
    joined = order.combine_chunks() if order.num_chunks != 1 else order.chunk(0)
    index = pd.Index(pd.array(joined, dtype="str"), name="uid")
    found = rows.get_indexer(index[slots])
    if len(slots) != len(rows) or (found < 0).any() or not touched[source < 0].all():
        return None
    positions = source.copy()
    positions[slots] = len(uids) + found
    return index, positions


def _imports_between(city: Twin, old: LayerInfo, new: LayerInfo) -> list[int] | str:
    """The imports of the layer after ``old`` up to ``new``, or why they do not chain."""
    if old.last_import is None or new.last_import is None:
        return "no import recorded"
    if new.last_import < old.last_import:
        return "its history does not follow on from the snapshot's"
    rows = city.store.import_rows(new.name)
    ids = rows["import_id"].astype(np.int64).to_numpy()
    then = rows[ids == old.last_import]
    if then.empty or str(then["time"].iloc[0]) != str(old.updated):
        return "its history does not follow on from the snapshot's"
    between = rows[(ids > old.last_import) & (ids <= new.last_import)]
    if (between["initial"].astype(np.int64) != 0).any():
        return "it was imported afresh"
    return [int(i) for i in between["import_id"]]


def apply_delta(frame: gpd.GeoDataFrame, delta: LayerDelta) -> gpd.GeoDataFrame | None:
    """The layer's new frame: ``frame`` minus the touched uids plus ``delta.rows``, in order.

    None when the stored uids are not the old ones less the removed plus the
    added (a change the change sets do not list): read the layer whole then.

    Examples
    --------
    >>> import shapely
    >>> old = gpd.GeoDataFrame({"h": [1.0, 2.0, 3.0]}, geometry=[shapely.Point(i, 0)
    ...     for i in range(3)], index=pd.Index(["a", "b", "c"], name="uid"))
    >>> rows = gpd.GeoDataFrame({"h": [9.0, 4.0]}, geometry=[shapely.Point(1, 1),
    ...     shapely.Point(3, 0)], index=pd.Index(["b", "d"], name="uid"))
    >>> delta = LayerDelta(np.array(["b", "c", "d"], dtype=object), rows,
    ...                    pd.Index(["a", "b", "d"]), [2])
    >>> apply_delta(old, delta)["h"].to_dict()
    {'a': 1.0, 'b': 9.0, 'd': 4.0}
    """
    patched = patch(frame, delta)
    return None if patched is None else patched.frame


@dataclass(frozen=True)
class Patch:
    """A layer's new frame and where its rows came from.

    Attributes
    ----------
    frame : GeoDataFrame
        The new frame (what a full read gives).
    old_rows : ndarray of int
        For each row of the old frame, its position in the new one (-1: changed or removed).
    new_rows : ndarray of int
        Positions in the new frame of the rows read (added and changed), ascending.
    positions : ndarray of int
        For each row of the new frame, its row in ``concat([old frame, rows read])``:
        any per-row array derived from the old frame is patched the same way.
    """

    frame: gpd.GeoDataFrame
    old_rows: np.ndarray
    new_rows: np.ndarray
    positions: np.ndarray


def patch(frame: gpd.GeoDataFrame, delta: LayerDelta) -> Patch | None:
    """:func:`apply_delta` with the row correspondence (for :class:`PatchedTree`)."""
    if delta.positions is not None:  # its order is the new index, made by predicted()
        same = delta.order.dtype == frame.index.dtype and delta.order.name == frame.index.name
        return _placed(frame, delta.rows, delta.positions, delta.order if same else None)
    order, rows = _uids(delta.order), delta.rows
    old = _uids(frame.index)
    kept = ~_member(old, delta.touched)
    is_new = _member(order, rows.index)
    if int(kept.sum()) + len(rows) != len(order) or int(is_new.sum()) != len(rows):
        return None
    positions = np.empty(len(order), dtype=np.intp)
    old_positions = np.flatnonzero(kept)
    if not pc.filter(order, ~is_new).equals(pc.filter(old, kept)):  # the delivery was reordered
        old_positions = frame.index.get_indexer(pd.Index(delta.order)[~is_new])
        if (old_positions < 0).any():
            return None
    positions[~is_new] = old_positions
    positions[is_new] = len(frame) + rows.index.get_indexer(pd.Index(delta.order)[is_new])
    return _placed(frame, rows, positions)


def _placed(
    frame: gpd.GeoDataFrame,
    rows: gpd.GeoDataFrame,
    positions: np.ndarray,
    index: pd.Index | None = None,
) -> Patch:
    """The patch taking row ``positions[i]`` of ``concat([frame, rows])`` to row ``i``
    (``index``: the uids that gives, when known already)."""
    is_new = positions >= len(frame)
    old_rows = np.full(len(frame), -1, dtype=np.intp)
    old_rows[positions[~is_new]] = np.flatnonzero(~is_new)
    patched = _same_types(taken_frame(frame, rows, positions, index), frame, rows)
    return Patch(patched, old_rows, np.flatnonzero(is_new), positions)


def taken_frame(
    frame: gpd.GeoDataFrame,
    rows: gpd.GeoDataFrame,
    positions: np.ndarray,
    index: pd.Index | None = None,
) -> gpd.GeoDataFrame:
    """``pd.concat([frame, rows]).take(positions)``, made column by column.

    Each column's two arrays are joined and taken once, with no frame of both
    in between; an Arrow column is joined into one chunk first (Arrow takes from
    a chunked array far slower than from one array). A column whose dtype differs
    between the two goes through ``pd.concat``, which decides the common dtype.
    ``index``, when given, is used as the result's index instead of taking the
    uids: it must be what the take gives (:func:`predicted` makes it).

    Examples
    --------
    >>> old = gpd.GeoDataFrame({"h": [1, 2]}, geometry=[shapely.Point(0, 0),
    ...     shapely.Point(1, 0)], index=pd.Index(["a", "b"], name="uid"))
    >>> rows = gpd.GeoDataFrame({"h": [5.5]}, geometry=[shapely.Point(2, 0)],
    ...     index=pd.Index(["c"], name="uid"))
    >>> taken = taken_frame(old, rows, np.array([2, 0]))
    >>> taken.equals(pd.concat([old, rows]).take([2, 0])), taken["h"].tolist()
    (True, [5.5, 1.0])
    """
    if not len(rows):
        return frame.take(positions)
    columns = {name: _taken(frame, rows, name, positions) for name in frame.columns}
    if index is None:
        uids = _joined(frame.index.array, rows.index.array, positions)
        index = pd.Index(uids, name=frame.index.name)
    taken = pd.DataFrame(columns, index=index, columns=frame.columns, copy=False)
    # copy=False: the columns are new arrays; without it geopandas copies every one again
    return gpd.GeoDataFrame(taken, geometry=frame.geometry.name, crs=frame.crs, copy=False)


def _taken(frame: pd.DataFrame, rows: pd.DataFrame, name: Any, positions: np.ndarray) -> Any:
    """Column ``name`` of ``concat([frame, rows])`` at ``positions``, as an array."""
    old, new = frame[name].array, rows[name].array
    if old.dtype != new.dtype:  # e.g. int64 with nulls read as float64: pandas decides
        return pd.concat([frame[[name]], rows[[name]]])[name].array.take(positions)
    return _joined(old, new, positions)


def _joined(old: Any, new: Any, positions: np.ndarray) -> Any:
    """``concat([old, new])[positions]`` for two pandas arrays of one dtype, without
    making the concatenation (a copy of the whole column, freed at once)."""
    if isinstance(old, _ARROW_ARRAYS):
        both = pa.array(old), pa.array(new)
        chunks = [c for held in both for c in getattr(held, "chunks", [held])]
        if len({c.type for c in chunks}) == 1:
            taken = pa.chunked_array(chunks).take(pa.array(positions))
            return pd.array(pa.concat_arrays(taken.chunks), dtype=old.dtype)  # one chunk
    if not len(old):
        return new.take(positions)
    is_new = positions >= len(old)
    taken = old.take(np.where(is_new, 0, positions))
    if is_new.any():
        taken[is_new] = new.take(positions[is_new] - len(old))
    return taken


_ARROW_ARRAYS = (pd.arrays.ArrowExtensionArray, pd.arrays.ArrowStringArray)


class PatchedTree(shapely.STRtree):
    """The STRtree of a patched layer: the old tree less the rows gone, plus a small tree.

    Rebuilding the STRtree of a million geometries takes a good part of a
    second in every worker; a patched layer keeps its old tree, whose hits on
    changed or removed rows are dropped and the others renumbered, and indexes
    only the rows read in a tree of their own. :meth:`query` answers exactly as
    a tree over the new frame's geometries (the same set of positions; callers
    sort them); :meth:`nearest` and :meth:`query_nearest` build that whole tree
    on first use.

    Examples
    --------
    >>> points = np.array([shapely.Point(i, 0) for i in range(4)], dtype=object)
    >>> moved = points.copy(); moved[1] = shapely.Point(1, 5)   # row 1 changed
    >>> tree = PatchedTree(shapely.STRtree(points), np.array([0, -1, 2, 3]), np.array([1]), moved)
    >>> sorted(tree.query(shapely.box(0.5, -1, 3.5, 6)).tolist()), len(tree)
    ([1, 2, 3], 4)
    """

    def __init__(
        self,
        base: shapely.STRtree,
        old_rows: np.ndarray,
        new_rows: np.ndarray,
        geometries: np.ndarray,
    ) -> None:  # the base tree is built already: no STRtree.__init__
        self.base = base
        self.old_rows = np.asarray(old_rows, dtype=np.intp)
        self.new_rows = np.asarray(new_rows, dtype=np.intp)
        self.extra = shapely.STRtree(geometries[self.new_rows])
        self._geometries = geometries
        self.depth = getattr(base, "depth", 0) + 1
        self._whole: shapely.STRtree | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._geometries)

    def query(self, geometry: Any, predicate: Any = None, distance: Any = None) -> Any:
        """Positions (new frame) of the geometries related to ``geometry``, as STRtree.query."""
        first = self.base.query(geometry, predicate=predicate, distance=distance)
        second = self.extra.query(geometry, predicate=predicate, distance=distance)
        if first.ndim == 1:
            mapped = self.old_rows[first]
            return np.concatenate([mapped[mapped >= 0], self.new_rows[second]])
        mapped = self.old_rows[first[1]]
        keep = mapped >= 0
        return np.concatenate(
            [
                np.vstack([first[0][keep], mapped[keep]]),
                np.vstack([second[0], self.new_rows[second[1]]]),
            ],
            axis=1,
        )

    def nearest(self, geometry: Any) -> Any:
        return self.whole().nearest(geometry)

    def query_nearest(self, geometry: Any, *args: Any, **kwargs: Any) -> Any:
        return self.whole().query_nearest(geometry, *args, **kwargs)

    def whole(self) -> shapely.STRtree:
        """One STRtree over every geometry (built once, on first use)."""
        with self._lock:
            if self._whole is None:
                self._whole = shapely.STRtree(self._geometries)
            return self._whole


@dataclass(frozen=True, eq=False)
class Lineage:
    """Where the rows of a patched layer come from (see :func:`patch`).

    Row ``i`` of the layer is row ``positions[i]`` of the older layer's rows
    followed by the rows read from the change sets. A per-row array a service
    derived from the older layer (GeoJSON texts) is carried over with
    :meth:`carry`, only the rows read derived anew (a :class:`CarriedArray`:
    no copy of the older array). The older layer is held weakly: once its
    snapshot is gone, there is nothing to carry.

    Examples
    --------
    >>> older = index.layer("roads")
    >>> lineage = Lineage(weakref.ref(older), np.array([2, 0, 3]), 3)
    >>> carried = lineage.carry(pa.array(["a", "b", "c"]), pa.array(["new"]))
    >>> carried.take(pa.array([0, 1, 2])).to_pylist()
    ['c', 'a', 'new']
    >>> lineage.read_rows.tolist()  # rows of the layer that were read
    [2]
    """

    base: weakref.ref[Any]  # the older IndexedLayer
    positions: np.ndarray
    base_rows: int  # rows of the older layer

    @property
    def read_rows(self) -> np.ndarray:
        """Positions in this layer of the rows read (their order in the read rows)."""
        found = np.flatnonzero(self.positions >= self.base_rows)
        return found[np.argsort(self.positions[found], kind="stable")]

    def carry(self, old: pa.Array | CarriedArray, read: pa.Array) -> CarriedArray:
        """The per-row array of this layer from ``old`` (the older layer's, by row) and
        ``read`` (the rows read, in :attr:`read_rows` order)."""
        return CarriedArray.of(old, read, self)


#: Patched lookups chained at most this deep; the next patch starts from its layer's uids.
MAX_LOOKUP_DEPTH = 8


class UidLookup:
    """Row positions by uid in a patched layer, without hashing its every uid.

    A uid read by the patch is found among the rows read (a small index);
    any other in the older layer (its own lookup, or its uid index, hashed
    once), then moved to its new row (``old_rows``; -1: removed). Holds the
    older layer's uids (not its rows) until a later patch starts afresh
    (:data:`MAX_LOOKUP_DEPTH`).

    Examples
    --------
    >>> older = pd.Index(["a", "b", "c", "d"])
    >>> lookup = UidLookup(older, np.array([0, -1, -1, 1]), pd.Index(["c", "e"]), np.array([2, 3]))
    >>> [lookup.find(u) for u in ["a", "b", "c", "d", "e", "x"]]
    [0, -1, 2, 1, 3, -1]
    >>> UidLookup(lookup, np.array([1, 0, 2, 3]), pd.Index([]), np.array([], dtype=int)).find("d")
    0
    """

    def __init__(
        self, base: UidLookup | pd.Index, old_rows: np.ndarray, read: pd.Index, read_rows: Any
    ) -> None:
        self.base, self.old_rows = base, np.asarray(old_rows, dtype=np.intp)
        self.read, self.read_rows = read, np.asarray(read_rows, dtype=np.intp)
        self.depth: int = base.depth + 1 if isinstance(base, UidLookup) else 1

    def find(self, uid: str) -> int:
        """The row of ``uid``, or -1."""
        at = _location(self.read, uid)
        if at >= 0:
            return int(self.read_rows[at])
        if isinstance(self.base, UidLookup):
            before = self.base.find(uid)
        else:
            before = _location(self.base, uid)
        return -1 if before < 0 else int(self.old_rows[before])


def _location(index: pd.Index, uid: str) -> int:
    try:
        found = index.get_loc(uid)
    except (KeyError, TypeError):
        return -1
    return found if isinstance(found, int) else -1


#: A carried array whose rows read again exceed this share of its base is copied whole.
CARRY_LIMIT = 0.1


class CarriedArray:
    """A per-row Arrow array of a patched layer, held as the older array (never copied)
    plus the rows read, and where each row of the layer is in them.

    :meth:`take` answers as ``Array.take`` would on the whole array, at a cost
    in proportion to the rows taken. Carried through further patches it keeps
    the first base; past :data:`CARRY_LIMIT` rows read it is made whole again.

    Examples
    --------
    >>> carried = CarriedArray(pa.array(["a", "b"]), pa.array(["c"]), np.array([2, 0]))
    >>> carried.take(pa.array([1, 0])).to_pylist(), len(carried)
    (['a', 'c'], 2)
    >>> carried.whole().to_pylist()
    ['c', 'a']
    """

    def __init__(self, base: pa.Array, extra: pa.Array, source: np.ndarray) -> None:
        self.base, self.extra = base, extra
        self.source = np.asarray(source, dtype=np.int64)

    @classmethod
    def of(cls, old: pa.Array | CarriedArray, read: pa.Array, lineage: Lineage) -> CarriedArray:
        """``old`` (by row of the older layer) carried to the layer ``lineage`` describes."""
        if isinstance(old, CarriedArray):
            base, extra, prior = old.base, old.extra, old.source
        else:
            base, extra, prior = old, read.slice(0, 0), np.arange(len(old), dtype=np.int64)
        positions = lineage.positions
        kept = positions < lineage.base_rows
        source = np.empty(len(positions), dtype=np.int64)
        source[kept] = prior[positions[kept]]
        source[~kept] = len(base) + len(extra) + positions[~kept] - lineage.base_rows
        carried = cls(base, pa.concat_arrays([extra, read]), source)
        if len(carried.extra) > CARRY_LIMIT * max(len(base), 1):
            return cls(carried.whole(), read.slice(0, 0), np.arange(len(source)))
        return carried

    def __len__(self) -> int:
        return len(self.source)

    def take(self, indices: Any) -> pa.Array:
        """The values at row ``indices`` (an Arrow or NumPy integer array)."""
        where = self.source[np.asarray(indices, dtype=np.int64)]
        in_base = where < len(self.base)
        if in_base.all():
            return self.base.take(pa.array(where))
        first = self.base.take(pa.array(where[in_base]))
        second = self.extra.take(pa.array(where[~in_base] - len(self.base)))
        order = np.empty(len(where), dtype=np.int64)
        order[in_base] = np.arange(len(first))
        order[~in_base] = len(first) + np.arange(len(second))
        return pa.concat_arrays([first, second]).take(pa.array(order))

    def whole(self) -> pa.Array:
        """Every row as one Arrow array (a copy)."""
        return pa.concat_arrays([self.base, self.extra]).take(pa.array(self.source))


def _uids(values: Any) -> pa.ChunkedArray:
    """Uids as a chunked Arrow string array (no copy when pandas holds them in Arrow)."""
    array = pa.array(getattr(values, "array", values))
    if not pa.types.is_large_string(array.type):
        array = array.cast(pa.large_string())
    return array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])


def _member(values: pa.ChunkedArray, of: Any) -> np.ndarray:
    """Whether each of ``values`` is one of ``of``, as a numpy mask."""
    found = pc.is_in(values, value_set=_uids(np.asarray(of, dtype=object)))
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def _same_types(
    combined: gpd.GeoDataFrame, frame: gpd.GeoDataFrame, rows: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """Give integer and boolean columns the dtype a full read gives them.

    A store reads an integer column as ``int64`` when it holds no null and as
    ``float64`` when it does (booleans: ``bool`` or ``object``), so the nulls
    that remain decide, as they would for a full read.
    """
    for name in combined.columns:
        if name == combined.geometry.name:
            continue
        values = combined[name]
        for dtype in (frame[name].dtype, rows[name].dtype):
            plain = isinstance(dtype, np.dtype) and dtype.kind in "iub"
            if plain and values.dtype != dtype and not values.isna().any():
                combined[name] = values.astype(dtype)
                break
    return combined
