"""Lengths of lines inside zones where they meet the zones' boundaries, mostly without overlay.

:func:`clip_lengths` gives ``shapely.length(shapely.intersection(line, zone))``
for (line, zone) pairs, settling in numpy what it can be sure of and leaving
the rest (NaN) to GEOS. Each segment of the line is looked at against the
zone's edges whose boxes meet its own:

- a segment crossing edges properly (no end of either near the other) is cut
  at the crossings (parameter along the segment from two cross products), the
  stretches inside told from those outside by whether its start lies in the
  zone; a crossing at a grazing angle, or a piece shorter than a millionth of
  the coordinates' scale, is left to GEOS, so every settled length is GEOS's
  to 1e-9 relative (1e-10 measured);
- a segment touching edges only at its ends (a road ending on a cell's edge)
  lies wholly inside or outside, as its midpoint does, when GEOS's own point
  tests put both ends on that side; otherwise a stub may be cut off: GEOS;
- a line with a segment along an edge counts whole where the (prepared) zone
  covers it, the boundary being part of the zone: a road between two cells
  counts in both, as with the overlay;
- anything else (a multi-part line, one of many segments or whose segments
  lie along each other, an invalid zone or one of many edges, an edge's
  corner on a segment): NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from twin.indicators._overlay import Geoms, zone_edges

__all__ = ["clip_lengths"]

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.intp]

_MAX_EDGES = 32  # zones with more edges are left to GEOS
_MAX_SEGMENTS = 8  # lines with more segments are left to GEOS
_NEAR = 1e-14  # relative to the coordinates' magnitude: nearer than this is touching
_SHORT = 1e-6  # relative too: a shorter piece is left to GEOS
_EPS = 1e-15  # bound of a cross product's rounding, relative
_PRECISE = 1e-11  # a crossing placed less surely than this share of the shortest piece:
# left to GEOS (a grazing crossing, whose place along the segment is ill-defined)
_CHUNK = 50_000  # segments cut at once (bounds the temporary arrays)


def clip_lengths(lines: Geoms, zones: Geoms, zone_i: npt.NDArray[np.intp]) -> Floats:
    """Length of each line's part inside its zone, NaN where GEOS must clip it.

    Parameters
    ----------
    lines : ndarray of shapely geometries
        One line a pair.
    zones : ndarray of shapely polygons
        Every zone; ``zone_i`` gives the position of each pair's zone in it.
    zone_i : ndarray of int

    Returns
    -------
    ndarray of float
        ``shapely.length(shapely.intersection(lines, zones[zone_i]))`` to 1e-9
        relative, or NaN for the pairs left to the caller.

    Examples
    --------
    >>> zones = np.array([shapely.box(0, 0, 10, 10)])
    >>> lines = np.array([shapely.LineString([(5, 5), (15, 5)]),
    ...                   shapely.LineString([(0, 0), (0, 10)]),
    ...                   shapely.LineString([(10, 5), (20, 5)]),
    ...                   shapely.MultiLineString([[(5, 5), (15, 5)]])])
    >>> clip_lengths(lines, zones, np.zeros(4, dtype=np.intp)).tolist()
    [5.0, 10.0, 0.0, nan]
    """
    out = np.full(len(lines), np.nan)
    edges = _Edges(zones)
    rows = np.flatnonzero(edges.simple[zone_i] & _usable(lines))
    if len(rows) == 0:
        return out
    coords, of = shapely.get_coordinates(lines[rows], return_index=True)
    same = of[:-1] == of[1:]
    p, q, owner = coords[:-1][same], coords[1:][same], of[:-1][same]
    zone = zone_i[rows][owner]
    lengths = np.zeros(len(p))
    unsure = np.zeros(len(rows), dtype=bool)
    along = np.zeros(len(rows), dtype=bool)
    for a in range(0, len(p), _CHUNK):
        part = slice(a, a + _CHUNK)
        cut = _cut(p[part], q[part], zone[part], edges, zones[zone[part]])
        lengths[part] = cut.length
        along[owner[part][cut.along]] = True
        unsure[owner[part][cut.unsure]] = True
    unsure[of[~np.isfinite(coords).all(axis=1)]] = True  # NaN or infinite coordinates
    settled = ~unsure & ~along
    out[rows[settled]] = np.bincount(owner, weights=lengths, minlength=len(rows))[settled]
    # Along an edge: the whole line if the zone covers it (boundary included), else GEOS.
    ran = rows[along & ~unsure]
    covered = shapely.covers(zones[zone_i[ran]], lines[ran])
    out[ran[covered]] = shapely.length(lines[ran[covered]])
    return out


class _Edges:
    """The zones' edges (start, vector, box) padded to one width; ``simple``: valid
    polygonal zones of at most _MAX_EDGES edges."""

    def __init__(self, zones: Geoms) -> None:
        self.start, self.vector, simple = zone_edges(zones, _MAX_EDGES)
        self.simple = simple & shapely.is_valid(zones)
        end = self.start + self.vector
        real = (self.vector != 0).any(axis=2)[..., None]
        self.lo = np.where(real, np.minimum(self.start, end), np.inf)
        self.hi = np.where(real, np.maximum(self.start, end), -np.inf)


def _usable(lines: Geoms) -> Bools:
    """Lines of a few segments, no two of which lie along each other."""
    line = shapely.get_type_id(lines) == shapely.GeometryType.LINESTRING
    count = shapely.get_num_coordinates(lines)
    ok = line & (count >= 2) & (count <= _MAX_SEGMENTS + 1)
    several = np.flatnonzero(ok & (count > 2))
    ok[several] = ~_overlapping(lines[several], count[several] - 1)
    return ok


def _overlapping(lines: Geoms, n_segments: npt.NDArray[np.int64]) -> Bools:
    """Lines two of whose segments (nearly) lie along each other over some length: GEOS's
    overlay would count that stretch once, so they are left to it."""
    found = np.zeros(len(lines), dtype=bool)
    if len(lines) == 0:
        return found
    coords, of = shapely.get_coordinates(lines, return_index=True)
    same = of[:-1] == of[1:]
    p, q, owner = coords[:-1][same], coords[1:][same], of[:-1][same]
    slot = np.arange(len(owner)) - np.r_[0, np.cumsum(n_segments)[:-1]][owner]
    k = int(n_segments.max())
    P, Q = np.full((len(lines), k, 2), np.nan), np.full((len(lines), k, 2), np.nan)
    P[owner, slot], Q[owner, slot] = p, q
    S = Q - P
    norm2 = (S * S).sum(axis=2)
    scale = np.nanmax(np.abs(coords)) * _NEAR
    for i in range(k - 1):
        si, pi = S[:, i, None, :], P[:, i, None, :]
        dp, dq = P[:, i + 1 :] - pi, Q[:, i + 1 :] - pi
        length = np.sqrt(norm2[:, i, None])
        along = (
            np.abs(_cross(si[..., 0], si[..., 1], dp[..., 0], dp[..., 1])) <= scale * length
        ) & (np.abs(_cross(si[..., 0], si[..., 1], dq[..., 0], dq[..., 1])) <= scale * length)
        with np.errstate(divide="ignore", invalid="ignore"):
            tp = (dp * si).sum(axis=2) / norm2[:, i, None]
            tq = (dq * si).sum(axis=2) / norm2[:, i, None]
        shared = np.minimum(np.maximum(tp, tq), 1.0) - np.maximum(np.minimum(tp, tq), 0.0)
        found |= (along & ~(shared <= 0)).any(axis=1)  # a zero-length segment (NaN) too
    return found


class _Cut:
    """Per segment: the length inside, and whether it runs along an edge or is unsure."""

    def __init__(self, length: Floats, along: Bools, unsure: Bools) -> None:
        self.length, self.along, self.unsure = length, along, unsure


def _cross(ax: Any, ay: Any, bx: Any, by: Any) -> Any:
    return ax * by - ay * bx


def _cut(p: Floats, q: Floats, zone: Ints, edges: _Edges, zones: Geoms) -> _Cut:
    """Segments ``p -> q`` against the edges of their zones.

    Only the edges whose box meets the segment's are looked at. A segment meeting no
    edge near its ends or along it is cut at its proper crossings; one touching edges
    only at its ends lies wholly inside or outside (its midpoint tells); one whose ends
    both lie on one edge's line runs along the boundary; the rest are unsure.
    """
    n = len(p)
    s = q - p
    seg_len = np.sqrt(s[:, 0] * s[:, 0] + s[:, 1] * s[:, 1])  # as GEOS measures a segment
    scale = np.maximum(np.abs(p).max(axis=1), np.abs(q).max(axis=1))
    near = _NEAR * scale
    lo, hi = np.minimum(p, q) - near[:, None], np.maximum(p, q) + near[:, None]
    meets = (edges.lo[zone] <= hi[:, None, :]).all(axis=2)
    meets &= (edges.hi[zone] >= lo[:, None, :]).all(axis=2)
    r, k = np.nonzero(meets)
    a, e = edges.start[zone[r], k], edges.vector[zone[r], k]
    ap, aq = p[r] - a, q[r] - a
    dp, dq = (
        _cross(e[:, 0], e[:, 1], ap[:, 0], ap[:, 1]),
        _cross(e[:, 0], e[:, 1], aq[:, 0], aq[:, 1]),
    )
    sr = s[r]
    da = _cross(sr[:, 0], sr[:, 1], -ap[:, 0], -ap[:, 1])
    db = _cross(sr[:, 0], sr[:, 1], e[:, 0] - ap[:, 0], e[:, 1] - ap[:, 1])
    tol_e, tol_s = near[r] * np.hypot(e[:, 0], e[:, 1]), near[r] * seg_len[r]
    p_on, q_on = np.abs(dp) <= tol_e, np.abs(dq) <= tol_e
    a_on, b_on = np.abs(da) <= tol_s, np.abs(db) <= tol_s
    # An edge end on the segment is fine only at one of the segment's ends.
    a_at_end = _close(a, p[r], near[r]) | _close(a, q[r], near[r])
    b_at_end = _close(a + e, p[r], near[r]) | _close(a + e, q[r], near[r])
    odd = (a_on & ~a_at_end) | (b_on & ~b_at_end)
    touching = p_on | q_on | a_on | b_on
    along = p_on & q_on
    proper = ~touching & ((dp > 0) != (dq > 0)) & ((da > 0) != (db > 0))
    mid_near = np.abs(dp + dq) <= 2 * tol_e
    count = np.bincount(r[proper], minlength=n)
    touches = np.bincount(r[touching], minlength=n) > 0
    along_seg = np.bincount(r[along], minlength=n) > 0
    unsure = np.bincount(r[odd | ((touching & ~along) & mid_near)], minlength=n) > 0
    unsure |= touches & (count > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = dp[proper] / (dp[proper] - dq[proper])
        # A crossing at a grazing angle is placed with a large error along the segment
        # (the cross products' rounding over their difference): leave it to GEOS.
        reach = np.hypot(ap[:, 0], ap[:, 1]) + np.hypot(aq[:, 0], aq[:, 1])
        error = _EPS * np.hypot(e[:, 0], e[:, 1]) * reach / np.abs(dp - dq) * seg_len[r]
    worst = np.zeros(n)
    np.maximum.at(worst, r[proper], error[proper])
    share, short = _crossed(r[proper], t, count, p, zones, n)
    unsure |= short * seg_len < _SHORT * scale
    unsure |= ~(worst <= _PRECISE * short * seg_len)
    length = share * seg_len
    ends = np.flatnonzero(touches & ~along_seg & ~unsure)
    length[ends], settled = _touching_at_ends(p[ends], q[ends], seg_len[ends], zones[ends])
    unsure[ends[~settled]] = True
    return _Cut(length, along_seg, unsure & ~along_seg)


def _touching_at_ends(p: Floats, q: Floats, seg_len: Floats, zones: Geoms) -> tuple[Floats, Bools]:
    """Segments meeting edges only at their ends lie inside or outside, as their midpoint
    does, if GEOS's own point tests put both ends on that side (closed zone for inside,
    open for outside); otherwise a stub of them may be cut off: unsettled."""
    mid = (p + q) / 2
    inside = shapely.contains_xy(zones, mid[:, 0], mid[:, 1])
    ends_in = shapely.intersects_xy(zones, p[:, 0], p[:, 1]) & shapely.intersects_xy(
        zones, q[:, 0], q[:, 1]
    )
    ends_out = ~shapely.contains_xy(zones, p[:, 0], p[:, 1]) & ~shapely.contains_xy(
        zones, q[:, 0], q[:, 1]
    )
    settled = np.where(inside, ends_in, ends_out)
    return np.where(inside, seg_len, 0.0), settled


def _close(a: Floats, b: Floats, near: Floats) -> Bools:
    return np.asarray((np.abs(a - b) <= near[:, None]).all(axis=1), dtype=bool)


def _crossed(
    seg: Ints, t: Floats, count: Ints, p: Floats, zones: Geoms, n: int
) -> tuple[Floats, Floats]:
    """Inside share (0 to 1) of each segment from its sorted crossing parameters, and
    the shortest stretch between two of its crossings or ends (as a share; inf if none).
    A segment without crossings gets 1 (its ``p`` inside) or 0."""
    order = np.lexsort((t, seg))
    seg, t = seg[order], t[order]
    first = np.r_[0, np.cumsum(count)[:-1]]
    rank = np.arange(len(seg)) - first[seg]
    inside = shapely.contains_xy(zones, p[:, 0], p[:, 1])
    # Before crossing j the segment is inside if it started inside and j is even.
    before = inside[seg] != (rank % 2 == 1)
    share = np.bincount(seg, weights=np.where(before, t, -t), minlength=n).astype(np.float64)
    share += inside != (count % 2 == 1)  # inside after the last crossing: up to the end
    gaps = np.diff(np.r_[0.0, t])
    gaps[rank == 0] = t[rank == 0]
    last = np.flatnonzero(rank == count[seg] - 1)
    short = np.full(n, np.inf)
    np.minimum.at(short, seg, gaps)
    np.minimum.at(short, seg[last], 1.0 - t[last])
    return share, short
