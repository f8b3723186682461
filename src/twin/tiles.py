"""Mapbox Vector Tiles (MVT 2.1) of twin layers, in Web Mercator, encoded with numpy.

A :class:`TileSource` is one layer made ready for tiling once: its geometries in
EPSG:3857, the few attributes a map styles by (per kind: height, road class,
network and diameter, valve status, sensor type …) as per-feature category codes
with their protobuf value messages already written. :meth:`TileSource.tile` then
cuts one tile: candidates from the layer's STRtree, clipped to the tile and its
buffer, simplified to the tile's pixel size (so the tolerance follows the zoom),
quantised to the tile grid, and written as protobuf without a Python loop over
features — every varint, geometry command and tag of a tile is computed on
arrays at once.

Tiles follow the XYZ scheme (``y`` counted from the north, as in OGC API -
Tiles' WebMercatorQuad ``tileRow``). Polygon rings follow the MVT winding rule
(exterior rings positive in tile coordinates); rings that collapse to no area
on the tile grid are dropped.

Examples
--------
>>> import geopandas as gpd, shapely
>>> from twin.tiles import TileSource, tile_bounds
>>> frame = gpd.GeoDataFrame(
...     {"name": ["天阳花园1栋"], "floors": [14]},
...     geometry=[shapely.box(505600, 3392200, 505640, 3392230)],
...     crs="EPSG:4544",
...     index=pd.Index(["buildings.JZ1"], name="uid"),
... )
>>> source = TileSource.from_frame("buildings", "building", frame)
>>> z, x, y = source.tile_of(16, source.bounds[0], source.bounds[1])
>>> data = source.tile(z, x, y)
>>> import mapbox_vector_tile
>>> layer = mapbox_vector_tile.decode(data)["buildings"]
>>> layer["features"][0]["properties"]["uid"], layer["features"][0]["properties"]["height"]
('buildings.JZ1', 42.0)
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyproj
import shapely

from twin.errors import UsageError
from twin.mercator import WEB_MERCATOR, projected, transformer_between

__all__ = [
    "EXTENT",
    "MAX_ZOOM",
    "TileSource",
    "encode_layer",
    "tile_bounds",
    "tile_fields",
    "zoom_range",
]

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
#: Half the width of the Web Mercator square, metres.
ORIGIN = 20037508.342789244


#: Simplification tolerance, in tile pixels (1/EXTENT of a tile).
SIMPLIFY_PX = 1.0
#: Metres per storey when a building has floors and no height.
STOREY_M = 3.0

#: Lowest zoom at which each kind is tiled (below it a tile is empty): big
#: layers would otherwise put a whole city in one tile.
MIN_ZOOM = {
    "district": 0,
    "grid": 10,
    "road": 10,
    "water": 8,
    "parcel": 12,
    "pipe": 12,
    "building": 13,
    "sensor": 12,
}
DEFAULT_MIN_ZOOM = 13
#: Highest zoom with its own tiles (maps draw deeper zooms from these).
SOURCE_MAX_ZOOM = 16

#: Attributes carried in tiles (when the layer has them), besides ``uid``.
TILE_FIELDS = (
    "name",
    "road_class",
    "network",
    "diameter_mm",
    "status",
    "sensor_type",
    "use",
    "land_use",
    "district_code",
    "grid_code",
    "source_type",
    "poi_type",
    "state",
)

_POINT, _LINE, _POLYGON = 1, 2, 3
_TYPES = {"Point": _POINT, "MultiPoint": _POINT, "LineString": _LINE}
_TYPES |= {"MultiLineString": _LINE, "Polygon": _POLYGON, "MultiPolygon": _POLYGON}


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The tile's box in EPSG:3857 metres: ``(minx, miny, maxx, maxy)``.

    Examples
    --------
    >>> tile_bounds(0, 0, 0) == (-ORIGIN, -ORIGIN, ORIGIN, ORIGIN)
    True
    >>> [round(v) for v in tile_bounds(1, 1, 0)]
    [0, 0, 20037508, 20037508]
    """
    check_tile(z, x, y)
    size = 2 * ORIGIN / (1 << z)
    return (
        -ORIGIN + x * size,
        ORIGIN - (y + 1) * size,
        -ORIGIN + (x + 1) * size,
        ORIGIN - y * size,
    )


def check_tile(z: int, x: int, y: int) -> None:
    """Raise :class:`~twin.errors.UsageError` unless ``z/x/y`` is a tile of the XYZ grid."""
    if not 0 <= z <= MAX_ZOOM:
        raise UsageError(f"zoom {z}: give a zoom level from 0 to {MAX_ZOOM}")
    if not (0 <= x < (1 << z) and 0 <= y < (1 << z)):
        raise UsageError(f"tile {z}/{x}/{y}: x and y run from 0 to {(1 << z) - 1} at zoom {z}")


def zoom_range(kind: str) -> tuple[int, int]:
    """The zooms a layer of ``kind`` has tiles at (minzoom, maxzoom), as in its TileJSON.

    Examples
    --------
    >>> zoom_range("building"), zoom_range("district")
    ((13, 16), (0, 16))
    """
    return MIN_ZOOM.get(kind, DEFAULT_MIN_ZOOM), SOURCE_MAX_ZOOM


# --------------------------------------------------------------------------- protobuf


def _varint_sizes(values: np.ndarray) -> np.ndarray:
    sizes = np.ones(len(values), dtype=np.int64)
    for bits in range(7, 64, 7):
        sizes += values >= np.uint64(1 << bits)
    return sizes


def _varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Protobuf varints of unsigned ``values``: (bytes as uint8, byte count of each)."""
    v = np.asarray(values, dtype=np.uint64)
    sizes = _varint_sizes(v)
    starts = np.cumsum(sizes) - sizes
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    for j in range(int(sizes.max()) if len(sizes) else 0):
        m = sizes > j
        chunk = (v[m] >> np.uint64(7 * j)) & np.uint64(0x7F)
        more = (sizes[m] > j + 1).astype(np.uint64) << np.uint64(7)
        out[starts[m] + j] = (chunk | more).astype(np.uint8)
    return out, sizes


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.int64)
    return ((v << 1) ^ (v >> 63)).astype(np.uint64)


def _per_owner(sizes: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(owner, weights=sizes, minlength=n).astype(np.int64)


def _interleave(chunks: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate, record by record, several byte streams split into records.

    ``chunks`` are ``(flat bytes, bytes per record)``; record ``i`` of the result
    is record ``i`` of each chunk in turn. Returns (bytes, bytes per record).
    """
    lengths = np.vstack([c[1] for c in chunks])
    per_record = lengths.sum(axis=0)
    record_start = np.cumsum(per_record) - per_record
    out = np.empty(int(per_record.sum()), dtype=np.uint8)
    offset = record_start.copy()
    for flat, counts in chunks:
        source_start = np.cumsum(counts) - counts
        out[np.arange(len(flat)) + np.repeat(offset - source_start, counts)] = flat
        offset += counts
    return out, per_record


def _gather(flat: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The byte ranges ``flat[offsets[i]:offsets[i]+lengths[i]]`` one after another."""
    if len(lengths) == 0:
        return np.empty(0, dtype=np.uint8)
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return flat[np.repeat(offsets, lengths) + within]


def _field_bytes(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _varint(len(payload)) + payload


@dataclass(frozen=True)
class _Column:
    """One tile attribute: per-feature category codes (-1: no value) and encoded values."""

    key: str
    codes: np.ndarray  # int64 per feature
    messages: np.ndarray  # uint8: each category's Layer.values entry (tag, length, Value)
    offsets: np.ndarray
    lengths: np.ndarray

    @classmethod
    def from_values(cls, key: str, values: pd.Series) -> _Column:
        codes, categories = pd.factorize(values, use_na_sentinel=True)
        if len(categories) and pd.api.types.is_string_dtype(categories.dtype):
            flat, lengths = _string_messages(categories)
        else:  # numbers and flags: few distinct values
            encoded = [_value_message(v) for v in categories]
            lengths = np.fromiter((len(m) for m in encoded), dtype=np.int64, count=len(encoded))
            flat = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        return cls(key, codes.astype(np.int64), flat, np.cumsum(lengths) - lengths, lengths)


def _string_messages(texts: Any) -> tuple[np.ndarray, np.ndarray]:
    """Layer.values entries (``0x22 len [0x0a len utf-8]``) of many strings, on arrays.

    Examples
    --------
    >>> flat, lengths = _string_messages(pd.Index(["ab", "成都"], dtype="str"))
    >>> bytes(flat[: lengths[0]]), lengths.tolist()
    (b'"\\x04\\n\\x02ab', [6, 10])
    """
    values = getattr(texts, "array", texts)
    if len(values) > MESSAGE_BATCH:  # a batch at a time: each numpy step holds the interpreter
        parts = [
            _string_messages(values[start : start + MESSAGE_BATCH])
            for start in range(0, len(values), MESSAGE_BATCH)
        ]
        return np.concatenate([f for f, _ in parts]), np.concatenate([n for _, n in parts])
    text, size = _utf8(values)
    inner_len, inner_sizes = _varints(size)
    outer_len, outer_sizes = _varints(1 + inner_sizes + size)
    ones = np.ones(len(size), dtype=np.int64)
    tag = np.full(len(size), 0x22, dtype=np.uint8)
    string_tag = np.full(len(size), 0x0A, dtype=np.uint8)
    return _interleave(
        [(tag, ones), (outer_len, outer_sizes), (string_tag, ones), (inner_len, inner_sizes),
         (text, size)]
    )  # fmt: skip


#: Strings written as Layer.values entries in one go (a batch holds the interpreter
#: lock for a few milliseconds; a million uids at once held it for a tenth of a second).
MESSAGE_BATCH = 65536


def _utf8(texts: Any) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of ``texts`` end to end, and each one's byte count.

    Arrow strings (a pandas ``str`` column's categories) give their buffers as
    they are: encoding a million uids one by one in Python held the interpreter
    lock for a good part of a second. Anything else is written with ``str()``.

    Examples
    --------
    >>> text, size = _utf8(["a", "成都"])
    >>> bytes(text).decode(), size.tolist()
    ('a成都', [1, 6])
    """
    values = getattr(texts, "array", texts)
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, pd.StringDtype) and dtype.storage.startswith("pyarrow"):
        array = pa.array(values)
        array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        if array.null_count == 0:
            array = array.cast(pa.large_string())
            offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)
            offsets = offsets[array.offset : array.offset + len(array) + 1]
            data = np.frombuffer(array.buffers()[2] or b"", dtype=np.uint8)
            return data[offsets[0] : offsets[-1]].copy(), np.diff(offsets)
    encoded = [str(t).encode("utf-8") for t in values]
    size = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), size


def _value_message(value: object) -> bytes:
    if isinstance(value, bool | np.bool_):
        body = b"\x38" + (b"\x01" if value else b"\x00")
    elif isinstance(value, int | np.integer):
        body = b"\x30" + _varint(int(_zigzag(np.array([int(value)]))[0]))
    elif isinstance(value, float | np.floating):
        body = b"\x19" + struct.pack("<d", float(value))
    else:
        body = _field_bytes(0x0A, str(value).encode("utf-8"))
    return _field_bytes(0x22, body)


# --------------------------------------------------------------------------- geometry


def _geometry_streams(
    geoms: np.ndarray, kind: int, origin: tuple[float, float], scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Command integers of each geometry on the tile grid.

    Returns (command integers, owning geometry of each, whether each geometry kept any).
    """
    parts, owner = shapely.get_parts(geoms, return_index=True)
    if kind == _POLYGON:
        keep = shapely.get_type_id(parts) == 3
        parts, owner = parts[keep], owner[keep]
        seqs, part_of = shapely.get_rings(parts, return_index=True)
        exterior = (
            np.r_[True, part_of[1:] != part_of[:-1]] if len(part_of) else part_of.astype(bool)
        )
        seq_owner = owner[part_of]
    elif kind == _LINE:
        keep = shapely.get_type_id(parts) == 1
        seqs, seq_owner = parts[keep], owner[keep]
    else:
        seqs, seq_owner = parts, owner
    coords, seq_of = shapely.get_coordinates(seqs, return_index=True)
    q = np.empty(coords.shape, dtype=np.int64)
    q[:, 0] = np.rint((coords[:, 0] - origin[0]) * scale)
    q[:, 1] = np.rint((origin[1] - coords[:, 1]) * scale)
    if kind == _POINT:  # one MoveTo per geometry, with every point
        seq_of, seqs_n = seq_owner[seq_of], len(geoms)
        seq_owner = np.arange(len(geoms))
    else:
        seqs_n = len(seqs)
        first = np.r_[True, seq_of[1:] != seq_of[:-1]] if len(seq_of) else seq_of.astype(bool)
        same = ~first & np.r_[False, (q[1:] == q[:-1]).all(axis=1)] if len(q) else first
        if kind == _POLYGON:  # drop each ring's closing vertex, and repeats on the grid
            last = np.r_[seq_of[1:] != seq_of[:-1], True] if len(seq_of) else first
            same |= last
        q, seq_of = q[~same], seq_of[~same]
    counts = np.bincount(seq_of, minlength=seqs_n)
    if kind == _POLYGON:
        q, seq_of, counts, kept_seq = _wind(q, seq_of, counts, exterior)
    elif kind == _LINE:
        kept_seq = counts >= 2
    else:
        kept_seq = counts >= 1
    keep_vertex = kept_seq[seq_of]
    q, seq_of = q[keep_vertex], seq_of[keep_vertex]
    return _commands(q, seq_of, counts, kept_seq, seq_owner, kind, len(geoms))


def _wind(
    q: np.ndarray, seq_of: np.ndarray, counts: np.ndarray, exterior: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Drop rings without area on the grid (and the holes of a dropped shell); fix winding."""
    starts = np.cumsum(counts) - counts
    nxt = np.arange(len(q)) + 1
    ends = starts + counts - 1
    has = counts > 0
    nxt[ends[has]] = starts[has]
    nxt = np.minimum(nxt, max(len(q) - 1, 0))
    cross = q[:, 0] * q[nxt, 1] - q[nxt, 0] * q[:, 1]
    area2 = np.bincount(seq_of, weights=cross, minlength=len(counts))
    valid = (counts >= 3) & (area2 != 0)
    shell = np.cumsum(exterior) - 1  # which shell each ring belongs to
    shell_ok = valid[exterior]
    kept = valid & shell_ok[shell] if len(shell) else valid
    reverse = np.where(exterior, area2 < 0, area2 > 0)
    pos = np.arange(len(q))
    flip = reverse[seq_of]
    ring_start, ring_n = starts[seq_of], counts[seq_of]
    order = np.where(flip, ring_start + ring_n - 1 - (pos - ring_start), pos)
    return q[order], seq_of, counts, kept


def _commands(
    q: np.ndarray,
    seq_of: np.ndarray,
    counts: np.ndarray,
    kept_seq: np.ndarray,
    seq_owner: np.ndarray,
    kind: int,
    n_geoms: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = counts[kept_seq]
    owner = seq_owner[kept_seq]
    # MoveTo(n) + n points; or MoveTo(1) + point + LineTo(n-1) + n-1 points (+ ClosePath)
    size = 2 * n + 1 if kind == _POINT else 2 * n + 2 + (kind == _POLYGON)
    out = np.empty(int(size.sum()), dtype=np.uint64)
    start = np.cumsum(size) - size
    # deltas from the previous vertex of the same feature (the cursor starts at 0, 0)
    feature_of_vertex = np.repeat(owner, n)
    delta = np.diff(q, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    new_feature = np.r_[True, feature_of_vertex[1:] != feature_of_vertex[:-1]] if len(q) else []
    delta[new_feature] = q[new_feature]
    k = np.arange(len(q)) - np.repeat(np.cumsum(n) - n, n)
    s = np.repeat(start, n)
    if kind == _POINT:
        px = s + 1 + 2 * k
        out[start] = (n.astype(np.uint64) << np.uint64(3)) | np.uint64(1)
    else:
        px = s + 1 + 2 * k + (k > 0)
        out[start] = np.uint64(9)  # MoveTo, one point
        out[start + 3] = ((n - 1).astype(np.uint64) << np.uint64(3)) | np.uint64(2)  # LineTo
        if kind == _POLYGON:
            out[start + size - 1] = np.uint64(15)  # ClosePath
    out[px] = _zigzag(delta[:, 0])
    out[px + 1] = _zigzag(delta[:, 1])
    has_any = np.zeros(n_geoms, dtype=bool)
    has_any[owner] = True
    return out, np.repeat(owner, size), has_any


# --------------------------------------------------------------------------- layer


def encode_layer(
    name: str,
    geoms: np.ndarray,
    columns: Sequence[_Column],
    rows: np.ndarray,
    *,
    kind: int,
    origin: tuple[float, float],
    scale: float,
) -> bytes:
    """One MVT layer of ``geoms`` (EPSG:3857, already clipped), attributes at ``rows``."""
    ints, owner, kept = _geometry_streams(geoms, kind, origin, scale)
    if not kept.any():
        return b""
    remap = np.cumsum(kept) - 1
    n = int(kept.sum())
    rows = rows[kept]
    geometry, sizes = _varints(ints)
    geometry_len = _per_owner(sizes, remap[owner], n)
    tags, tag_len, values = _tags(columns, rows)
    tag_len_bytes, tag_len_sizes = _varints(tag_len)
    geom_len_bytes, geom_len_sizes = _varints(geometry_len)
    ones = np.ones(n, dtype=np.int64)
    body_len = 1 + tag_len_sizes + tag_len + 3 + geom_len_sizes + geometry_len
    wrap_bytes, wrap_sizes = _varints(body_len)
    features, _ = _interleave(
        [
            (np.full(n, 0x12, dtype=np.uint8), ones),
            (wrap_bytes, wrap_sizes),
            (np.full(n, 0x12, dtype=np.uint8), ones),
            (tag_len_bytes, tag_len_sizes),
            (tags, tag_len),
            (np.tile(np.array([0x18, kind, 0x22], dtype=np.uint8), n), 3 * ones),
            (geom_len_bytes, geom_len_sizes),
            (geometry, geometry_len),
        ]
    )
    keys = b"".join(_field_bytes(0x1A, c.key.encode("utf-8")) for c in columns)
    body = (
        b"\x78\x02"
        + _field_bytes(0x0A, name.encode("utf-8"))
        + features.tobytes()
        + keys
        + values
        + b"\x28"
        + _varint(EXTENT)
    )
    return _field_bytes(0x1A, body)


def _tags(columns: Sequence[_Column], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, bytes]:
    """Packed tags of each feature (bytes, bytes per feature) and the Layer.values entries."""
    n = len(rows)
    pairs = np.zeros((n, len(columns), 2), dtype=np.uint64)
    present = np.zeros((n, len(columns)), dtype=bool)
    values: list[np.ndarray] = []
    base = 0
    for j, column in enumerate(columns):
        codes = column.codes[rows]
        has = codes >= 0
        unique, inverse = np.unique(codes[has], return_inverse=True)
        pairs[:, j, 0] = j
        pairs[has, j, 1] = (base + inverse).astype(np.uint64)
        present[:, j] = has
        values.append(_gather(column.messages, column.offsets[unique], column.lengths[unique]))
        base += len(unique)
    flat = pairs[np.repeat(present[:, :, None], 2, axis=2)]
    encoded, sizes = _varints(flat)
    owner = np.repeat(np.arange(n), 2 * present.sum(axis=1))
    return encoded, _per_owner(sizes, owner, n), np.concatenate(values).tobytes()


# --------------------------------------------------------------------------- source


@dataclass(frozen=True, eq=False)
class TileSource:
    """A layer made ready for tiling: geometries in EPSG:3857, tree, attribute columns.

    Build it once per layer (:meth:`from_frame`); :meth:`tile` is then safe to
    call from several threads.
    """

    name: str
    kind: str
    geometry_type: int
    mercator: np.ndarray | MercatorView
    tree: shapely.STRtree | BoxQuery
    columns: tuple[_Column, ...]
    bounds: tuple[float, float, float, float]  # lon/lat
    minzoom: int
    maxzoom: int
    tree_crs: pyproj.Transformer | None = None  # EPSG:3857 to the tree's CRS, if not 3857

    @classmethod
    def from_frame(
        cls,
        name: str,
        kind: str,
        frame: gpd.GeoDataFrame,
        *,
        tree: shapely.STRtree | None = None,
        pause: Callable[[], object] | None = None,
        mercator: np.ndarray | None = None,
    ) -> TileSource:
        """Prepare ``frame`` (a twin layer indexed by uid, in a projected CRS) for tiling.

        The geometries are projected :data:`twin.mercator.PROJECT_BATCH` at a time (GEOS holds
        the interpreter lock for a whole call: a million buildings at once stalled
        a service's requests for a second); ``pause()``, when given, is called
        between two batches (a background preparation waits for its requests).
        ``mercator``, when given, is the frame's geometries in EPSG:3857 already
        (see :func:`twin.mercator.carried_mercator`).
        """
        if frame.crs is None:
            raise UsageError(f"layer {name} has no CRS; tiles need one")
        geoms = np.asarray(frame.geometry.array, dtype=object)
        to_mercator = transformer_between(frame.crs.srs, WEB_MERCATOR)
        if mercator is None:
            mercator = projected(geoms, to_mercator, pause)
        elif len(mercator) != len(geoms):
            raise ValueError(f"{len(mercator)} projected geometries for {len(geoms)} features")
        if tree is None or frame.crs.to_epsg() == 3857:
            tree = shapely.STRtree(mercator)
            in_tree_crs: pyproj.Transformer | None = None
        else:
            in_tree_crs = transformer_between(WEB_MERCATOR, frame.crs.srs)
        types = {t for t in shapely.get_type_id(geoms[~shapely.is_empty(geoms)]).tolist()}
        geometry_type = _POLYGON if types & {3, 6} else _LINE if types & {1, 5} else _POINT
        minzoom, maxzoom = zoom_range(kind)
        lonlat = _lonlat_bounds(mercator)
        return cls(
            name,
            kind,
            geometry_type,
            mercator,
            tree,
            tuple(_columns(frame, kind)),
            lonlat,
            minzoom,
            maxzoom,
            in_tree_crs,
        )

    @classmethod
    def from_compact(
        cls,
        name: str,
        kind: str,
        attributes: pd.DataFrame,
        geometries: Indexable,
        *,
        crs: pyproj.CRS | None,
        tree: BoxQuery,
        batch: int = 200_000,
    ) -> TileSource:
        """Prepare a compact layer: geometries decoded and projected per tile, not kept.

        ``geometries[positions]`` decodes the twin-CRS geometries at positions,
        ``tree.query(box)`` gives the positions whose boxes meet a twin-CRS
        box. The bounds and geometry type are read once, ``batch`` features at
        a time, so the preparation holds one batch in memory.
        """
        if crs is None:
            raise UsageError(f"layer {name} has no CRS; tiles need one")
        to_mercator = transformer_between(crs.srs, WEB_MERCATOR)
        mercator = MercatorView(geometries, to_mercator)
        boxes, types = [], set()
        for start in range(0, len(geometries), batch):
            chunk = mercator[np.arange(start, min(start + batch, len(geometries)))]
            present = chunk[~shapely.is_empty(chunk)]
            types.update(shapely.get_type_id(present).tolist())
            if len(present):
                boxes.append(shapely.total_bounds(present))
        geometry_type = _POLYGON if types & {3, 6} else _LINE if types & {1, 5} else _POINT
        minzoom, maxzoom = zoom_range(kind)
        lonlat = _lonlat_box(np.vstack(boxes)) if boxes else (0.0, 0.0, 0.0, 0.0)
        in_tree_crs = transformer_between(WEB_MERCATOR, crs.srs)
        columns = tuple(_columns(attributes, kind))
        return cls(
            name,
            kind,
            geometry_type,
            mercator,
            tree,
            columns,
            lonlat,
            minzoom,
            maxzoom,
            in_tree_crs,
        )

    def tile_of(self, z: int, lon: float, lat: float) -> tuple[int, int, int]:
        """The XYZ tile holding ``lon, lat`` at zoom ``z``."""
        n = 1 << z
        x = int((lon + 180.0) / 360.0 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return z, min(max(x, 0), n - 1), min(max(y, 0), n - 1)

    def candidates(self, box: tuple[float, float, float, float]) -> np.ndarray:
        """Positions of the features whose envelopes meet ``box`` (EPSG:3857)."""
        tree_crs = self.tree_crs
        if tree_crs is None:
            query = shapely.box(*box)
        else:
            edge = np.linspace(0.0, 1.0, 9)
            xs = np.r_[box[0] + (box[2] - box[0]) * edge, np.full(9, box[2])]
            ys = np.r_[np.full(9, box[1]), box[1] + (box[3] - box[1]) * edge]
            xs = np.r_[xs, box[2] - (box[2] - box[0]) * edge, np.full(9, box[0])]
            ys = np.r_[ys, np.full(9, box[3]), box[3] - (box[3] - box[1]) * edge]
            tx, ty = tree_crs.transform(xs, ys)
            query = shapely.box(min(tx), min(ty), max(tx), max(ty))
        return np.sort(np.asarray(self.tree.query(query), dtype=np.intp))

    def features(self, z: int, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
        """The tile's features before quantising: (positions, clipped EPSG:3857 geometries)."""
        minx, miny, maxx, maxy = tile_bounds(z, x, y)
        if z < self.minzoom or len(self.mercator) == 0:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=object)
        pad = (maxx - minx) * BUFFER / EXTENT
        box = (minx - pad, miny - pad, maxx + pad, maxy + pad)
        rows = self.candidates(box)
        geoms = self.mercator[rows]
        if self.geometry_type == _POINT:
            inside = shapely.intersects_xy(shapely.box(*box), *shapely.get_coordinates(geoms).T)
            if len(inside) == len(geoms):  # single points: filter without clipping
                return rows[inside], geoms[inside]
            clipped = shapely.clip_by_rect(geoms, *box)
        else:  # simplified first: clipping a simplified shape adds no sliver of its own
            tolerance = SIMPLIFY_PX * (maxx - minx) / EXTENT
            spare = shapely.get_num_coordinates(geoms) > (
                5 if self.geometry_type == _POLYGON else 2
            )
            geoms = geoms.copy()
            geoms[spare] = shapely.simplify(geoms[spare], tolerance)
            clipped = shapely.clip_by_rect(geoms, *box)
        keep = ~shapely.is_empty(clipped)
        return rows[keep], clipped[keep]

    def tile(self, z: int, x: int, y: int) -> bytes:
        """The MVT tile ``z/x/y`` of this layer (empty bytes when it holds no feature)."""
        rows, geoms = self.features(z, x, y)
        if len(rows) == 0:
            return b""
        minx, _, maxx, maxy = tile_bounds(z, x, y)
        scale = EXTENT / (maxx - minx)
        return encode_layer(
            self.name,
            geoms,
            self.columns,
            rows,
            kind=self.geometry_type,
            origin=(minx, maxy),
            scale=scale,
        )

    def fields(self) -> dict[str, str]:
        """The attributes in this layer's tiles and their types (TileJSON ``vector_layers``)."""
        return {c.key: "String" if c.key in ("uid",) else "String|Number" for c in self.columns}


class Indexable(Protocol):
    """Geometries by position: ``geometries[positions]`` gives an object array."""

    def __len__(self) -> int: ...

    def __getitem__(self, key: Any) -> Any: ...


class BoxQuery(Protocol):
    """A spatial index: ``query(geometry)`` gives the positions whose boxes meet its box."""

    def query(self, geometry: Any) -> Any: ...


class MercatorView:
    """Twin-CRS geometries, projected to EPSG:3857 when indexed (a compact layer's tiles)."""

    def __init__(self, geometries: Indexable, to_mercator: pyproj.Transformer) -> None:
        self.geometries = geometries
        self.to_mercator = to_mercator

    def __len__(self) -> int:
        return len(self.geometries)

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        found = np.asarray(self.geometries[rows], dtype=object)
        return projected(found, self.to_mercator)


def _lonlat_bounds(mercator: np.ndarray) -> tuple[float, float, float, float]:
    """Longitude/latitude bounds of EPSG:3857 geometries (the inverse spherical Mercator)."""
    present = mercator[~shapely.is_empty(mercator)]
    if len(present) == 0:
        return (0.0, 0.0, 0.0, 0.0)
    return _lonlat_box(shapely.total_bounds(present)[None, :])


def _lonlat_box(boxes: np.ndarray) -> tuple[float, float, float, float]:
    """Longitude/latitude bounds of EPSG:3857 boxes, one ``(minx, miny, maxx, maxy)`` a row."""
    minx, miny = boxes[:, 0].min(), boxes[:, 1].min()
    maxx, maxy = boxes[:, 2].max(), boxes[:, 3].max()

    def lat(y: float) -> float:
        return float(math.degrees(math.atan(math.sinh(y / ORIGIN * math.pi))))

    return (float(minx / ORIGIN * 180), lat(miny), float(maxx / ORIGIN * 180), lat(maxy))


def tile_fields(frame: pd.DataFrame, kind: str) -> list[str]:
    """The attributes a layer's tiles carry: ``uid``, ``height`` (buildings), then
    whichever of :data:`TILE_FIELDS` the layer has.

    Examples
    --------
    >>> tile_fields(gpd.GeoDataFrame({"name": [], "floors": []}, geometry=[]), "building")
    ['uid', 'height', 'name']
    """
    geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    extra = [n for n in TILE_FIELDS if n in frame.columns and n != geometry]
    return ["uid", *(["height"] if kind == "building" else []), *extra]


def _columns(frame: pd.DataFrame, kind: str) -> list[_Column]:
    columns = []
    for name in tile_fields(frame, kind):
        if name == "uid":
            values = pd.Series(frame.index.astype(str), copy=False)
        elif name == "height":
            values = _heights(frame)
        else:
            values = frame[name]
            if pd.api.types.is_float_dtype(values):
                values = values.round(3)
            values = values.reset_index(drop=True)
        columns.append(_Column.from_values(name, values))
    return columns


def _heights(frame: pd.DataFrame) -> pd.Series:
    """A height for every building, metres: ``height_m``, else floors x 3 m, else 3 m."""
    height = np.full(len(frame), np.nan)
    if "height_m" in frame.columns:
        height = _floats(frame["height_m"])
    if "floors" in frame.columns:
        height = np.where(np.isnan(height), _floats(frame["floors"]) * STOREY_M, height)
    return pd.Series(np.where(np.isnan(height), STOREY_M, height)).round(1)


def _floats(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
