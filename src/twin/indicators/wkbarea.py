"""Areas of polygons read straight from their WKB bytes, without GEOS geometries.

:func:`wkb_areas` walks the WKB of many polygons and multipolygons at once in
numpy (the headers, ring counts and point counts, one part and one ring at a
time across every geometry) and computes each ring's area with GEOS's own
shoelace formula, in GEOS's order: ``|shell| - |hole| - …`` per polygon,
polygons summed in order. The result equals ``shapely.area(shapely.from_wkb(wkb))``
bit for bit, in less than half the CPU for a million footprints (0.46 s against
1.1 s decoding them with ``twin.relate.geoms_from_wkb``, loaded machine, December
2026), because no geometry object is made. 2D, Z, M and ZM (ISO or EWKB flags,
with or without an SRID), either byte order, rings in either orientation.
Anything else (other types, rings of fewer than 4 points, many parts or rings,
truncated bytes) is left to shapely, as before.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import shapely

__all__ = ["wkb_areas"]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

_POLYGON, _MULTIPOLYGON = 3, 6
_MAX_PARTS = 64  # geometries with more parts or rings are left to shapely
_MAX_RINGS = 64


def wkb_areas(wkb: Any) -> Floats:
    """Area of each WKB polygon or multipolygon (NaN for a missing one), as shapely gives it.

    Parameters
    ----------
    wkb : ndarray of bytes (or None), or pyarrow binary array
        The geometries' WKB (plain ISO or EWKB, as GDAL and shapely write it).

    Returns
    -------
    ndarray of float64
        ``shapely.area(shapely.from_wkb(wkb))``, equal to the last bit.

    Examples
    --------
    >>> hole = [(1, 1), (1, 2), (2, 2), (2, 1)]
    >>> holed = shapely.Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [hole])
    >>> two = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(5, 5, 7, 6)])
    >>> wkb_areas(np.array([shapely.to_wkb(holed), shapely.to_wkb(two), None], dtype=object))
    array([15.,  3., nan])
    """
    buf, starts, ends, valid = _buffers(wkb)
    areas = np.full(len(starts), np.nan)
    walked = _walk(buf, starts[valid], ends[valid])
    done = np.flatnonzero(valid)[walked.ok]
    areas[done] = _assemble(buf, walked)[walked.ok]
    rest = np.flatnonzero(valid)[~walked.ok]
    if len(rest):
        blobs = np.empty(len(rest), dtype=object)
        blobs[:] = [bytes(buf[starts[i] : ends[i]]) for i in rest]
        areas[rest] = shapely.area(shapely.from_wkb(blobs))
    return areas


def _buffers(wkb: Any) -> tuple[npt.NDArray[np.uint8], Ints, Ints, Bools]:
    """All the bytes in one buffer; each geometry's start and end in it, and whether present."""
    if isinstance(wkb, pa.ChunkedArray):
        wkb = wkb.combine_chunks()
    if isinstance(wkb, pa.Array):
        if not (pa.types.is_binary(wkb.type) or pa.types.is_large_binary(wkb.type)):
            wkb = wkb.cast(pa.large_binary())
        width = np.int64 if pa.types.is_large_binary(wkb.type) else np.int32
        _, offsets, data = wkb.buffers()
        n, first = len(wkb), wkb.offset
        bounds = np.frombuffer(offsets, dtype=width)[first : first + n + 1].astype(np.int64)
        valid = np.asarray(wkb.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8)
        return raw, bounds[:-1], bounds[1:], valid
    items = np.asarray(wkb, dtype=object)
    valid = np.array([w is not None for w in items], dtype=bool)
    sizes = np.array([len(w) if w is not None else 0 for w in items], dtype=np.int64)
    ends = np.cumsum(sizes)
    raw = np.frombuffer(b"".join(w for w in items if w is not None), dtype=np.uint8)
    return raw, ends - sizes, ends, valid


def _u32(buf: npt.NDArray[np.uint8], pos: Ints, little: Bools, end: Ints) -> tuple[Ints, Bools]:
    """The unsigned 32-bit integers at ``pos`` and whether they lie before ``end``."""
    ok = (pos >= 0) & (pos + 4 <= end)
    at = np.where(ok, pos, 0)
    value = np.zeros(len(pos), dtype=np.uint32)
    shift = at % 4
    for s in range(4):
        if len(buf) - s < 4:
            break
        chosen = np.flatnonzero(shift == s)
        view = np.frombuffer(buf.data, dtype="<u4", offset=s, count=(len(buf) - s) // 4)
        value[chosen] = view[(at[chosen] - s) // 4]
    big = np.flatnonzero(~little)
    value[big] = value[big].byteswap()
    return value.astype(np.int64), ok


@dataclass(frozen=True)
class _Header:
    little: Bools
    base: Ints  # 3 polygon, 6 multipolygon, …
    dims: Ints  # coordinates a point: 2, 3 or 4
    body: Ints  # where the count after the header starts
    ok: Bools


def _header(buf: npt.NDArray[np.uint8], pos: Ints, end: Ints) -> _Header:
    """Byte order, type and dimensions of the geometries whose WKB starts at ``pos``."""
    order = buf[np.clip(pos, 0, max(len(buf) - 1, 0))] if len(buf) else np.zeros(len(pos), np.uint8)
    little = order == 1
    code, ok = _u32(buf, pos + 1, little, end)
    ok &= order <= 1
    flags = code & 0xE0000000
    iso = code & 0x0FFFFFFF
    kind = iso // 1000  # ISO: 1000 Z, 2000 M, 3000 ZM
    has_z = ((flags & 0x80000000) != 0) | (kind == 1) | (kind == 3)
    has_m = ((flags & 0x40000000) != 0) | (kind == 2) | (kind == 3)
    ok &= kind <= 3
    srid = (flags & 0x20000000) != 0
    dims = 2 + has_z.astype(np.int64) + has_m.astype(np.int64)
    return _Header(little, iso % 1000, dims, pos + 5 + 4 * srid, ok)


@dataclass(frozen=True)
class _Walked:
    """The rings found, each with its geometry, polygon and place among the polygon's rings."""

    ok: Bools  # per geometry: walked to its end with nothing unexpected
    ring_geom: Ints
    ring_poly: Ints
    ring_index: Ints  # 0 the shell, 1… the holes
    ring_start: Ints  # byte position of the first x
    ring_points: Ints
    ring_dims: Ints
    ring_little: Bools
    poly_geom: Ints
    poly_part: Ints


class _Rings:
    """Ring and polygon records collected while walking."""

    def __init__(self) -> None:
        self.rings: list[tuple[Ints, ...]] = []
        self.polys: list[tuple[Ints, Ints]] = []
        self.n_polys = 0

    def polygons(self, geom: Ints, part: int) -> Ints:
        ids = np.arange(self.n_polys, self.n_polys + len(geom), dtype=np.int64)
        self.n_polys += len(geom)
        self.polys.append((geom, np.full(len(geom), part, dtype=np.int64)))
        return ids


def _walk(buf: npt.NDArray[np.uint8], starts: Ints, ends: Ints) -> _Walked:
    """Every ring of every polygon and multipolygon; ``ok`` False for anything else."""
    head = _header(buf, starts, ends)
    ok = head.ok & np.isin(head.base, (_POLYGON, _MULTIPOLYGON))
    found = _Rings()
    geoms = np.arange(len(starts), dtype=np.int64)
    single = np.flatnonzero(ok & (head.base == _POLYGON))
    s = head
    stop, fine = _polygon_rings(
        buf, found, geoms[single], 0, s.body[single], s.dims[single], s.little[single], ends[single]
    )
    ok[single] &= fine & (stop == ends[single])
    multi = np.flatnonzero(ok & (head.base == _MULTIPOLYGON))
    parts, fine = _u32(buf, head.body[multi], head.little[multi], ends[multi])
    fine &= parts <= _MAX_PARTS
    ok[multi] &= fine
    cursor = head.body[multi] + 4
    for k in range(int(parts[fine].max()) if fine.any() else 0):
        now = np.flatnonzero(ok[multi] & (parts > k))
        g = multi[now]
        part = _header(buf, cursor[now], ends[g])
        good = part.ok & (part.base == _POLYGON) & (part.dims == head.dims[g])
        stop, fine_rings = _polygon_rings(
            buf, found, g, k, part.body, part.dims, part.little, ends[g]
        )
        ok[g] &= good & fine_rings
        cursor[now] = stop
    ok[multi] &= cursor == ends[multi]
    return _collect(found, ok)


def _polygon_rings(
    buf: npt.NDArray[np.uint8],
    found: _Rings,
    geom: Ints,
    part: int,
    body: Ints,
    dims: Ints,
    little: Bools,
    end: Ints,
) -> tuple[Ints, Bools]:
    """Record the rings of polygons whose bodies start at ``body``; where each ends, and
    whether it was well formed (4 points or more a ring, at most _MAX_RINGS rings)."""
    poly = found.polygons(geom, part)
    count, ok = _u32(buf, body, little, end)
    ok &= count <= _MAX_RINGS
    cursor = body + 4
    for r in range(int(count[ok].max()) if ok.any() else 0):
        now = np.flatnonzero(ok & (count > r))
        points, fine = _u32(buf, cursor[now], little[now], end[now])
        fine &= points >= 4
        size = points * dims[now] * 8
        fine &= cursor[now] + 4 + size <= end[now]
        ok[now] &= fine
        found.rings.append(
            (
                geom[now],
                poly[now],
                np.full(len(now), r),
                cursor[now] + 4,
                points,
                dims[now],
                little[now].astype(np.int64),
            )
        )
        cursor[now] += 4 + np.where(fine, size, 0)
    return cursor, ok


def _collect(found: _Rings, ok: Bools) -> _Walked:
    def joined(parts: list[Ints]) -> Ints:
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    geom, poly, index, start, points, dims, little = (
        joined([r[k] for r in found.rings]) for k in range(7)
    )
    return _Walked(
        ok=ok,
        ring_geom=geom,
        ring_poly=poly,
        ring_index=index,
        ring_start=start,
        ring_points=points,
        ring_dims=dims,
        ring_little=little.astype(bool),
        poly_geom=joined([p[0] for p in found.polys]),
        poly_part=joined([p[1] for p in found.polys]),
    )


def _assemble(buf: npt.NDArray[np.uint8], w: _Walked) -> Floats:
    """Each walked geometry's area, summed in GEOS's order (NaN where not ``ok``)."""
    keep = w.ok[w.ring_geom]
    ring_area = np.zeros(len(w.ring_geom))
    ring_area[keep] = np.abs(
        _signed_ring_areas(
            buf, w.ring_start[keep], w.ring_points[keep], w.ring_dims[keep], w.ring_little[keep]
        )
    )
    poly_area = np.zeros(len(w.poly_geom))
    shells = keep & (w.ring_index == 0)
    poly_area[w.ring_poly[shells]] = ring_area[shells]
    for r in range(1, int(w.ring_index.max(initial=0)) + 1):
        holes = keep & (w.ring_index == r)
        poly_area[w.ring_poly[holes]] -= ring_area[holes]
    area = np.zeros(len(w.ok))
    for k in range(int(w.poly_part.max(initial=-1)) + 1):
        parts = np.flatnonzero(w.poly_part == k)
        area[w.poly_geom[parts]] += poly_area[parts]
    return np.where(w.ok, area, np.nan)


def _signed_ring_areas(
    buf: npt.NDArray[np.uint8], start: Ints, points: Ints, dims: Ints, little: Bools
) -> Floats:
    """GEOS's ``Area::ofRingSigned``: ``sum((x[i] - x[0]) * (y[i-1] - y[i+1])) / 2`` over
    ``i = 1 … n-2``, added in that order, for each ring."""
    out = np.zeros(len(start))
    if len(start) == 0:
        return out
    # The doubles of one ring share one alignment (points are 16, 24 or 32 bytes): rings
    # of one byte order, alignment, size and dimension are read at once, as a 3D array,
    # through a float64 view of the buffer at that byte offset.
    key = ((points * 5 + dims) * 8 + start % 8) * 2 + little.astype(np.int64)
    order = np.argsort(key, kind="stable")
    key = key[order]
    bounds = np.flatnonzero(np.r_[True, key[1:] != key[:-1], True])
    views: dict[tuple[bool, int], Floats] = {}
    for a, b in itertools.pairwise(bounds):
        rings = order[a:b]
        first = rings[0]
        shift, le = int(start[first] % 8), bool(little[first])
        if (le, shift) not in views:
            views[le, shift] = np.frombuffer(
                buf.data, dtype="<f8" if le else ">f8", offset=shift, count=(len(buf) - shift) // 8
            )
        n, d = int(points[first]), int(dims[first])
        at = (start[rings] - shift) // 8
        xy = views[le, shift][at[:, None] + np.arange(n * d)].reshape(len(rings), n, d)
        out[rings] = _shoelace(xy[:, :, 0], xy[:, :, 1])
    return out


def _shoelace(x: Floats, y: Floats) -> Floats:
    """Signed areas of rings of one size (a row a ring), summed point by point like GEOS."""
    x0 = x[:, 0]
    total = np.zeros(len(x))
    for i in range(1, x.shape[1] - 1):
        total += (x[:, i] - x0) * (y[:, i - 1] - y[:, i + 1])
    return total / 2.0
