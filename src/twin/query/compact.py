"""Compact in-memory layers: geometries kept as WKB, found through a packed tree of boxes.

A shapely geometry costs about 700 bytes in memory (the Python object, the
GEOS geometry, its rings and coordinate sequences); the same footprint as
WKB costs about 100. A layer of millions of features is therefore held as

- its attribute columns (a DataFrame indexed by ``uid``, Arrow-backed strings),
- its geometries as one Arrow binary array of WKB (:class:`WKBGeometries`),
  decoded on demand for the few features a request touches,
- a packed R-tree over the features' bounding boxes (:class:`BoxTree`):
  float64 boxes sorted tile by tile (Sort-Tile-Recursive) in nodes of
  :data:`NODE` boxes, queried level by level with NumPy.

A query takes the candidates whose boxes meet the query's box from the tree,
decodes them, and keeps those that pass the predicate: the same positions as a
shapely STRtree over the decoded geometries would give.

Examples
--------
>>> import shapely
>>> squares = np.array([shapely.box(i, 0, i + 1, 1) for i in range(10)])
>>> parts = CompactParts.from_geometries(squares)
>>> parts.query(shapely.box(2.5, 0.5, 4.2, 0.6)).tolist()
[2, 3, 4]
>>> parts.geometries[3].equals(squares[3])
True
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, overload

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from twin.errors import UsageError

__all__ = [
    "COMPACT_ABOVE",
    "COMPACT_BATCH",
    "COMPACT_ENV",
    "NODE",
    "BoxTree",
    "CompactParts",
    "WKBGeometries",
    "compact_limit",
    "own_buffers",
    "release_freed_memory",
]

#: Layers of more features than this are held compact (WKB and a tree of boxes).
COMPACT_ABOVE = 2_000_000
#: Environment variable that overrides :data:`COMPACT_ABOVE` (0: every layer compact).
COMPACT_ENV = "TWIN_COMPACT_ABOVE"
#: Rows a compact layer is read in at a time (memory holds one batch as shapely).
COMPACT_BATCH = 200_000

NODE = 16  # boxes a node of the packed tree holds

Bounds = tuple[float, float, float, float]


class BoxTree:
    """A static packed R-tree over ``(n, 4)`` bounding boxes (minx, miny, maxx, maxy).

    Boxes with a NaN (empty or missing geometries) are left out, as an STRtree
    leaves out empty geometries. Memory: the sorted boxes (32 bytes each), their
    positions (8 bytes) and the upper levels (about 1/15 of that).

    Each level holds its boxes as keys ``(minx, miny, -maxx, -maxy)``, padded
    to whole nodes with infinities: a box meets the query ``(x0, y0, x1, y1)``
    when its key is at most ``(x1, y1, -x0, -y0)`` in all four, one
    comparison a level. A query scans the first level of at most
    :data:`SCAN` nodes whole and descends from there.

    Examples
    --------
    >>> tree = BoxTree(np.array([[0, 0, 1, 1], [5, 5, 6, 6], [np.nan] * 4]))
    >>> tree.candidates((0.5, 0.5, 5.0, 5.0)).tolist()
    [0, 1]
    >>> tree.candidates((2, 2, 3, 3)).tolist()
    []
    """

    def __init__(self, bounds: np.ndarray) -> None:
        bounds = np.asarray(bounds, dtype=np.float64).reshape(-1, 4)
        present = np.flatnonzero(~np.isnan(bounds).any(axis=1))
        self.order = present[_str_order(bounds[present])]
        keys = bounds[self.order] * np.array([1.0, 1.0, -1.0, -1.0])
        self.levels = [_padded(keys)]
        while len(self.levels[-1]) > NODE:
            below = self.levels[-1]
            self.levels.append(_padded(np.minimum.reduceat(below, np.arange(0, len(below), NODE))))
        self._start = next(d for d, level in enumerate(self.levels) if len(level) <= SCAN)

    def __len__(self) -> int:
        return len(self.order)

    @property
    def nbytes(self) -> int:
        """Bytes held by the tree's arrays."""
        return int(self.order.nbytes + sum(level.nbytes for level in self.levels))

    def candidates(self, box: Bounds) -> np.ndarray:
        """Positions (ascending) of the boxes that meet ``box``, edges included."""
        return np.sort(self.order[self._leaves(box)])

    def search(self, box: Bounds) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`candidates` and their boxes as keys ``(minx, miny, -maxx, -maxy)``."""
        leaves = self._leaves(box)
        positions = self.order[leaves]
        ranked = np.argsort(positions)
        return positions[ranked], self.levels[0][leaves[ranked]]

    def _leaves(self, box: Bounds) -> np.ndarray:
        x0, y0, x1, y1 = box
        query = np.array([x1, y1, -x0, -y0])
        ids = np.flatnonzero(_meets(self.levels[self._start], query))
        for depth in range(self._start - 1, -1, -1):
            ids = (ids[:, None] * NODE + _SLOTS).ravel()
            ids = ids[_meets(self.levels[depth][ids], query)]
        return ids


SCAN = 2048  # nodes of the level a query scans whole
_SLOTS = np.arange(NODE)


def _padded(keys: np.ndarray) -> np.ndarray:
    """``keys`` with rows of infinities up to a whole number of nodes (they meet nothing)."""
    extra = -len(keys) % NODE
    if extra:
        keys = np.vstack([keys, np.full((extra, 4), np.inf)])
    return np.ascontiguousarray(keys)


def _meets(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Which rows of ``keys`` are at most ``query`` in all four columns."""
    return _all4(keys <= query)


def _all4(flags: np.ndarray) -> np.ndarray:
    """Which rows of an ``(n, 4)`` boolean array are true in all four columns."""
    return np.asarray(np.ascontiguousarray(flags).view(np.uint32).ravel() == 0x01010101)


INNER_FROM = 32  # candidates from which an intersects query looks for a box inside its geometry
_INNER_MARGINS = (0.02, 0.1)  # share of the width and height tried off each side


def _inner_box(geometry: shapely.Geometry) -> Bounds | None:
    """A box the polygon ``geometry`` covers: its bounds shrunk by a few per cent (a
    rectangle turned or bent by a projection), checked exactly; None if none is."""
    if shapely.get_type_id(geometry) != 3:  # a polygon
        return None
    x0, y0, x1, y1 = shapely.bounds(geometry).tolist()
    for margin in _INNER_MARGINS:
        dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
        inner = (x0 + dx, y0 + dy, x1 - dx, y1 - dy)
        if shapely.covers(geometry, shapely.box(*inner)):
            return inner
    return None


def _str_order(bounds: np.ndarray) -> np.ndarray:
    """Sort-Tile-Recursive order of boxes: vertical slices by centre x, each sorted by y."""
    n = len(bounds)
    if n == 0:
        return np.empty(0, dtype=np.intp)
    cx = (bounds[:, 0] + bounds[:, 2]) / 2
    cy = (bounds[:, 1] + bounds[:, 3]) / 2
    leaves = math.ceil(n / NODE)
    per_slice = NODE * math.ceil(math.sqrt(leaves))
    by_x = np.argsort(cx, kind="stable")
    slice_of = np.empty(n, dtype=np.intp)
    slice_of[by_x] = np.arange(n) // per_slice
    return np.lexsort((cy, slice_of))


def own_buffers(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its Arrow-backed columns (and index) copied into one chunk each.

    Strings read through GDAL's Arrow stream share the read batch's buffers,
    its WKB included: keeping a column alive would keep the whole batch. A
    copy owns only its own bytes, in one chunk (rows are taken from it fast).

    Examples
    --------
    >>> frame = pd.DataFrame({"name": pd.array(["a", None], dtype="str")}, index=["u1", "u2"])
    >>> own_buffers(frame).equals(frame)
    True
    """
    columns = {name: _own(frame[name].array) for name in frame.columns}
    index = pd.Index(_own(frame.index.array), name=frame.index.name)
    return pd.DataFrame(columns, index=index, copy=False)


def _own(values: Any) -> Any:
    if not isinstance(values, pd.arrays.ArrowExtensionArray | pd.arrays.ArrowStringArray):
        return values
    data = pa.array(values)
    chunks = data.chunks if isinstance(data, pa.ChunkedArray) else [data]
    joined = pa.concat_arrays(chunks) if chunks else pa.array([], type=data.type)
    return pd.array(joined, dtype=values.dtype)


class WKBGeometries:
    """Geometries held as WKB in one Arrow array, decoded when indexed.

    ``geometries[i]`` gives one shapely geometry (None where missing);
    ``geometries[positions]`` (integers or a boolean mask) an object array, as
    indexing the array of shapely geometries would.

    Examples
    --------
    >>> store = WKBGeometries.of(np.array([shapely.Point(1, 2), None, shapely.Point(3, 4)]))
    >>> len(store), store[0].x, store[1] is None
    (3, 1.0, True)
    >>> [g.x for g in store[np.array([2, 0])]]
    [3.0, 1.0]
    """

    def __init__(self, wkb: pa.Array) -> None:
        self.wkb = wkb

    @classmethod
    def of(cls, geometries: np.ndarray) -> WKBGeometries:
        """WKB of shapely ``geometries`` (an object array)."""
        return cls(pa.array(shapely.to_wkb(geometries), type=pa.large_binary()))

    def __len__(self) -> int:
        return len(self.wkb)

    @property
    def nbytes(self) -> int:
        """Bytes held by the WKB array (payload, offsets, validity)."""
        return int(self.wkb.nbytes)

    @overload
    def __getitem__(self, key: int | np.integer[Any]) -> shapely.Geometry | None: ...

    @overload
    def __getitem__(self, key: np.ndarray | list[int] | slice) -> np.ndarray: ...

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, int | np.integer):
            value = self.wkb[int(key)].as_py()
            return None if value is None else shapely.from_wkb(value)
        if isinstance(key, slice):
            return self._decode(self.wkb[key])
        positions = np.asarray(key)
        if positions.dtype == bool:
            positions = np.flatnonzero(positions)
        return self._decode(self.wkb.take(pa.array(positions.astype(np.int64, copy=False))))

    def decode_all(self) -> np.ndarray:
        """Every geometry, decoded (as much memory as a shapely array of the layer)."""
        return self._decode(self.wkb)

    @staticmethod
    def _decode(wkb: pa.Array) -> np.ndarray:
        if len(wkb) == 0:
            return np.empty(0, dtype=object)
        return np.asarray(shapely.from_wkb(wkb.to_numpy(zero_copy_only=False)), dtype=object)


@dataclass(frozen=True, eq=False)
class CompactParts:
    """A layer's geometries as WKB with their boxes and tree; attributes beside them.

    Attributes
    ----------
    geometries : WKBGeometries
        One WKB value a feature, in row order.
    tree : BoxTree
        The packed tree over the features' bounding boxes.
    attributes : pandas.DataFrame
        The layer's other columns, indexed like its frame (``uid``).
    geometry_name : str
        The geometry column's name in the frame.
    columns : list of str
        Every column of the frame in order, the geometry's included.
    crs : object
        The frame's CRS.
    """

    geometries: WKBGeometries
    tree: BoxTree
    attributes: pd.DataFrame
    geometry_name: str = "geometry"
    columns: tuple[str, ...] = ("geometry",)
    crs: Any = None

    @classmethod
    def from_geometries(cls, geometries: np.ndarray) -> CompactParts:
        """Parts of bare geometries (no attributes), for tests and examples."""
        frame = gpd.GeoDataFrame(geometry=list(geometries))
        return cls.from_frames([frame])

    @classmethod
    def from_frames(cls, frames: Iterable[gpd.GeoDataFrame]) -> CompactParts:
        """Parts of a layer read a batch of rows at a time (each batch released once taken).

        The batches come in the layer's row order; all share the same columns.
        """
        wkb: list[pa.Array] = []
        boxes: list[np.ndarray] = []
        attributes: list[pd.DataFrame] = []
        first: gpd.GeoDataFrame | None = None
        for frame in frames:
            geoms = np.asarray(frame.geometry.array, dtype=object)
            wkb.append(pa.array(shapely.to_wkb(geoms), type=pa.large_binary()))
            boxes.append(shapely.bounds(geoms))
            attributes.append(own_buffers(pd.DataFrame(frame.drop(columns=frame.geometry.name))))
            if first is None:
                first = frame.iloc[:0]
            del frame, geoms
        if first is None:
            raise ValueError("a layer needs at least one batch of rows (possibly empty)")
        table = own_buffers(pd.concat(attributes)) if len(attributes) > 1 else attributes[0]
        attributes.clear()
        joined = pa.concat_arrays(wkb) if wkb else pa.array([], type=pa.large_binary())
        return cls(
            geometries=WKBGeometries(joined),
            tree=BoxTree(np.concatenate(boxes) if boxes else np.empty((0, 4))),
            attributes=table,
            geometry_name=first.geometry.name,
            columns=tuple(first.columns),
            crs=first.crs,
        )

    def __len__(self) -> int:
        return len(self.geometries)

    @property
    def nbytes(self) -> int:
        """Bytes held: WKB, tree and attribute columns (with the uid index)."""
        attributes = int(self.attributes.memory_usage(index=True, deep=False).sum())
        return self.geometries.nbytes + self.tree.nbytes + attributes

    def query(
        self,
        geometry: shapely.Geometry,
        *,
        predicate: str | None = "intersects",
        distance: float | None = None,
    ) -> np.ndarray:
        """Positions (ascending) as :meth:`shapely.STRtree.query` gives them for one geometry.

        ``predicate=None``: the features whose boxes meet the geometry's box;
        ``"dwithin"`` needs ``distance``; any other predicate is shapely's
        function of that name, called as ``predicate(geometry, feature)``.
        """
        x0, y0, x1, y1 = shapely.bounds(geometry).tolist()
        if predicate == "dwithin":
            if distance is None:
                raise ValueError("predicate 'dwithin' needs a distance")
            x0, y0, x1, y1 = x0 - distance, y0 - distance, x1 + distance, y1 + distance
        if math.isnan(x0):  # an empty query geometry meets nothing
            return np.empty(0, dtype=np.intp)
        rows, keys = self.tree.search((x0, y0, x1, y1))
        if predicate is None or not len(rows):
            return rows.astype(np.intp, copy=False)
        if predicate == "dwithin":
            keep = shapely.dwithin(self.geometries[rows], geometry, distance)
            return rows[np.asarray(keep, dtype=bool)].astype(np.intp, copy=False)
        test = getattr(shapely, predicate, None)
        if test is None or not callable(test):
            raise ValueError(f"unknown spatial predicate {predicate!r}")
        if len(rows) > 1:  # GEOS tests a prepared geometry against many at once faster
            shapely.prepare(geometry)
        keep = np.zeros(len(rows), dtype=bool)
        if predicate == "intersects" and len(rows) >= INNER_FROM:
            # A feature whose box lies in a box inside the query meets it: not decoded.
            inner = _inner_box(geometry)
            if inner is not None:
                ix0, iy0, ix1, iy1 = inner
                keep = _all4(keys >= np.array([ix0, iy0, -ix1, -iy1]))
        check = np.flatnonzero(~keep)
        keep[check] = test(geometry, self.geometries[rows[check]])
        return rows[keep].astype(np.intp, copy=False)

    def frame(self) -> gpd.GeoDataFrame:
        """The layer as one GeoDataFrame again, every geometry decoded."""
        data = gpd.GeoDataFrame(
            self.attributes.copy(),
            geometry=gpd.GeoSeries(
                self.geometries.decode_all(), index=self.attributes.index, crs=self.crs
            ),
            crs=self.crs,
        )
        if self.geometry_name != "geometry":
            data = data.rename_geometry(self.geometry_name)
        return data[list(self.columns)]


def release_freed_memory() -> None:
    """Hand memory freed by a load back to the system: Arrow's pool and glibc's heap.

    Reading a layer leaves its batches' buffers freed but kept by the
    allocators; without this a snapshot's resident size stays well above
    what it holds.
    """
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def compact_limit() -> int:
    """Feature count past which a layer is held compact: ``TWIN_COMPACT_ABOVE`` or
    :data:`COMPACT_ABOVE` (2,000,000).

    Examples
    --------
    >>> compact_limit() == int(os.environ.get("TWIN_COMPACT_ABOVE", COMPACT_ABOVE))
    True
    """
    text = os.environ.get(COMPACT_ENV, "").strip()
    if not text:
        return COMPACT_ABOVE
    try:
        value = int(text)
    except ValueError:
        raise UsageError(
            f"{COMPACT_ENV}={text!r} must be a whole number of features (e.g. 2000000)"
        ) from None
    if value < 0:
        raise UsageError(f"{COMPACT_ENV}={text!r} must not be negative")
    return value
