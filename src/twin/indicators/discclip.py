"""Area of a convex polygon (a sensing disc) inside a polygon ring, in numpy.

:func:`disc_ring_areas` gives ``area(disc ∩ zone)`` for many (disc, zone)
pairs at once, where the zone is one ring (no holes) of a few edges and the
disc a convex polygon (a unit ring scaled and moved). By Green's theorem the
area is half the sum of ``x dy - y dx`` along the boundary of the
intersection, which is made of the disc's boundary where it runs inside the
zone and the zone's boundary where it runs inside the disc. Both are cut at
the points where the two boundaries cross: along the disc, the arc from a
crossing where the disc enters the zone to the next crossing is inside; along
the zone, likewise. The sums along whole edges between two crossings come
from prefix sums, so each arc costs the same whatever its length.

Coordinates are taken relative to the disc's centre (exact for the zone's
vertices near it), as GEOS's overlay would compute them to rounding: the
area equals ``shapely.area(shapely.intersection(disc, zone))`` to about 1e-12
relative. Pairs where a crossing falls within ``1e-9`` of an edge's end, two
edges are nearly parallel, or the boundaries do not cross at all are left
unsettled for GEOS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["disc_ring_areas"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]
_MARGIN = 1e-9  # of an edge's parameter: closer crossings to an edge's end are left to GEOS
_MAX_NEAR = 6  # zone edges within reach of one disc, at most (more: left to GEOS)


def disc_ring_areas(
    start: Floats, vector: Floats, count: Ints, centre: Floats, radius: Floats, unit: Floats
) -> tuple[Floats, npt.NDArray[np.bool_]]:
    """Area of each disc inside its zone ring, and whether it was settled here.

    Parameters
    ----------
    start, vector : ndarray of shape (n, k, 2)
        Each pair's zone edges in ring order (start point and vector), the
        first ``count`` of them real.
    count : ndarray of int, shape (n,)
        Edges of each zone's ring.
    centre : ndarray of shape (n, 2)
    radius : ndarray of shape (n,)
        Each disc is ``centre + radius * unit``.
    unit : ndarray of shape (m + 1, 2)
        The unit disc's closed ring (convex, either way round).

    Returns
    -------
    area : ndarray of float
        The area inside (0 where unsettled).
    settled : ndarray of bool

    Examples
    --------
    >>> import shapely
    >>> zone = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]])
    >>> unit = shapely.get_coordinates(shapely.buffer(shapely.Point(0, 0), 1.0, quad_segs=4))
    >>> area, settled = disc_ring_areas(
    ...     zone[None, :-1], np.diff(zone, axis=0)[None], np.array([4]),
    ...     np.array([[9.3, 9.1]]), np.array([2.0]), unit)
    >>> disc = shapely.buffer(shapely.Point(9.3, 9.1), 2.0, quad_segs=4)
    >>> clipped = shapely.intersection(disc, shapely.Polygon(zone)).area
    >>> bool(settled[0]), bool(abs(area[0] - clipped) < 1e-12 * clipped)
    (True, True)
    """
    n = len(centre)
    area, settled = np.zeros(n, dtype=np.float64), np.zeros(n, dtype=bool)
    if n == 0:
        return area, settled
    a = start - centre[:, None, :]
    twice = unit[:-1, 0] * unit[1:, 1] - unit[1:, 0] * unit[:-1, 1]
    unit = unit[::-1] if twice.sum() < 0 else unit  # GEOS's buffers turn clockwise
    near = _near_edges(a, vector, count, radius)
    n_near = near.sum(axis=1)
    flip = _clockwise(a, vector, count)
    for width in range(1, _MAX_NEAR + 1):  # rows of as many near edges together: tight arrays
        rows = np.flatnonzero(n_near == width)
        if len(rows) == 0:
            continue
        c = centre[rows]
        # the vertices and crossings GEOS sees, rounded to absolute coordinates (exact
        # once relative again: the centre is near)
        ring = (c[:, None, :] + radius[rows, None, None] * unit[None, :, :]) - c[:, None, :]
        cross = _crossings(ring, a[rows], vector[rows], near[rows], flip[rows], c)
        got = _arc_sums(ring, a[rows], count[rows], cross)
        fine = np.isfinite(got)
        area[rows[fine]] = got[fine]
        settled[rows[fine]] = True
    return area, settled


def _clockwise(a: Floats, e: Floats, count: Ints) -> npt.NDArray[np.bool_]:
    """Whether each zone's ring turns clockwise."""
    real = np.arange(a.shape[1])[None, :] < count[:, None]
    twice = np.where(real, a[..., 0] * e[..., 1] - a[..., 1] * e[..., 0], 0.0).sum(axis=1)
    return np.asarray(twice < 0)


def _near_edges(a: Floats, e: Floats, count: Ints, radius: Floats) -> npt.NDArray[np.bool_]:
    """Real zone edges passing within the disc's radius (with a margin) of its centre."""
    length2 = e[..., 0] ** 2 + e[..., 1] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.clip(-(a[..., 0] * e[..., 0] + a[..., 1] * e[..., 1]) / length2, 0.0, 1.0)
    gap = np.hypot(a[..., 0] + s * e[..., 0], a[..., 1] + s * e[..., 1])
    real = np.arange(a.shape[1])[None, :] < count[:, None]
    return real & ~(gap > radius[:, None] * (1 + 1e-6))


@dataclass(frozen=True)
class _Crossings:
    """Where each disc's boundary crosses its zone's edges (flat, by row): the disc's
    edge ``j`` at ``t``, the zone's edge ``k`` at ``u``; ``into_zone``: the disc's
    boundary enters the zone there; ``flip``: the zone turns clockwise; ``ok`` per row."""

    row: Ints
    j: Ints
    k: Ints
    t: Floats
    u: Floats
    into_zone: npt.NDArray[np.bool_]
    point: Floats
    flip: npt.NDArray[np.bool_]
    ok: npt.NDArray[np.bool_]


def _crossings(
    ring: Floats,
    a: Floats,
    e: Floats,
    near: npt.NDArray[np.bool_],
    flip: npt.NDArray[np.bool_],
    centre: Floats,
) -> _Crossings:
    """Crossings of each disc's edges with its zone's near edges, found where the disc's
    vertices change side of an edge's line; ``ok`` false for a row with a crossing or a
    vertex too close to an edge's end or line, or an odd number of crossings, or none."""
    n = len(ring)
    width = int(near.sum(axis=1).max())
    pick = np.argsort(~near, axis=1, kind="stable")[:, :width]  # near edges first
    real = np.take_along_axis(near, pick, axis=1)
    a = np.take_along_axis(a, pick[..., None], axis=1)
    e = np.take_along_axis(e, pick[..., None], axis=1)
    # side of each disc vertex from each edge's line (n, m + 1, w), and where along it
    ex, ey = e[:, None, :, 0], e[:, None, :, 1]
    wx, wy = ring[:, :, None, 0] - a[:, None, :, 0], ring[:, :, None, 1] - a[:, None, :, 1]
    side = ex * wy - ey * wx
    length2 = ex**2 + ey**2
    radius = np.hypot(ring[:, 0, 0], ring[:, 0, 1])[:, None, None]
    real3 = real[:, None, :]
    on_line = real3 & (np.abs(side) <= _MARGIN * np.sqrt(length2) * radius)
    r0, j0, s0_ = np.nonzero(on_line)  # a vertex on an edge's line: within the edge?
    l0 = length2[r0, 0, s0_]
    along = (ex[r0, 0, s0_] * wx[r0, j0, s0_] + ey[r0, 0, s0_] * wy[r0, j0, s0_]) / np.where(
        l0 > 0, l0, 1.0
    )
    doubt = np.zeros(n, dtype=bool)
    doubt[r0[(along >= -_MARGIN) & (along <= 1 + _MARGIN)]] = True
    change = real3 & ((side[:, :-1] > 0) != (side[:, 1:] > 0))
    row, j, slot = np.nonzero(change)
    s0, s1 = side[row, j, slot], side[row, j + 1, slot]
    t = s0 / (s0 - s1)
    p, q = ring[row, j], ring[row, j + 1]
    point = ((p + t[:, None] * (q - p)) + centre[row]) - centre[row]
    aa, ee = a[row, slot], e[row, slot]
    l2 = ee[:, 0] ** 2 + ee[:, 1] ** 2
    u = ((point[:, 0] - aa[:, 0]) * ee[:, 0] + (point[:, 1] - aa[:, 1]) * ee[:, 1]) / l2
    reach = (u >= -_MARGIN) & (u <= 1 + _MARGIN)
    clean = (u > _MARGIN) & (u < 1 - _MARGIN) & (t > _MARGIN) & (t < 1 - _MARGIN)
    bad = doubt.copy()
    bad[row[reach & ~clean]] = True
    hit = reach & clean
    n_hits = np.bincount(row[hit], minlength=n)
    ok = ~bad & (n_hits >= 2) & (n_hits % 2 == 0)
    keep = hit & ok[row]
    row, j, t, u, point = row[keep], j[keep], t[keep], u[keep], point[keep]
    k = pick[row, slot[keep]]
    # the disc's edge goes from the line's right (side < 0) to its left: into a
    # counter-clockwise zone, out of a clockwise one
    into = (s0[keep] <= 0) != flip[row]
    return _Crossings(row, j, k, t, u, into, point, flip, ok)


def _arc_sums(ring: Floats, a: Floats, count: Ints, c: _Crossings) -> Floats:
    """Area of each row's intersection from the inside arcs of both boundaries (NaN where
    the crossings do not settle it)."""
    n, m = len(ring), ring.shape[1] - 1
    if len(c.row) == 0:
        return np.full(n, np.nan)
    # along the disc: from a crossing entering the zone to the next crossing
    total, alternate = _side_sums(
        c.row, c.j + c.t, c.into_zone, c.point, ring[:, :-1], np.full(n, m)
    )
    # along the zone's ring as given: from a crossing entering the disc to the next one
    # (a clockwise ring is walked backwards: the reverse of the other arcs)
    into_disc = c.into_zone == c.flip[c.row]
    zone, zone_alternate = _side_sums(c.row, c.k + c.u, into_disc, c.point, a, count)
    total += np.where(c.flip, -zone, zone)
    good = np.zeros(n, dtype=bool)
    good[c.row] = True
    return np.where(good & alternate & zone_alternate & c.ok, total / 2, np.nan)


def _side_sums(
    row: Ints, pos: Floats, enters: npt.NDArray[np.bool_], point: Floats, verts: Floats, count: Ints
) -> tuple[Floats, npt.NDArray[np.bool_]]:
    """Per row, twice the area swept by the arcs of one boundary (vertices ``verts``, ring
    of ``count`` edges) from each entering crossing to the next crossing along it, and
    whether entering and leaving crossings alternate along it."""
    n = len(verts)
    order = np.lexsort((pos, row))
    r, p, en, x = row[order], pos[order], enters[order], point[order]
    same = r[1:] == r[:-1]
    alternate = np.ones(n, dtype=bool)
    alternate[r[1:][same & (en[1:] == en[:-1])]] = False
    starts = np.flatnonzero(np.r_[True, ~same])
    head = np.repeat(starts, np.diff(np.r_[starts, len(r)]))
    nxt = np.r_[np.arange(1, len(r)), 0]
    last = np.r_[~same, True]
    nxt[last] = head[last]
    src = np.flatnonzero(en)
    dst = nxt[src]
    rr = r[src]
    j1 = np.floor(p[src]).astype(np.intp)
    j2 = np.floor(p[dst]).astype(np.intp) + np.where(p[dst] <= p[src], count[rr], 0)
    v = _twice_round(verts, count)
    terms = v[:, :-1, 0] * v[:, 1:, 1] - v[:, 1:, 0] * v[:, :-1, 1]
    prefix = np.concatenate([np.zeros((n, 1)), np.cumsum(terms, axis=1)], axis=1)
    x1, x2 = x[src], x[dst]
    v1, v2 = v[rr, j1 + 1], v[rr, j2]
    walked = (
        (x1[:, 0] * v1[:, 1] - x1[:, 1] * v1[:, 0])
        + (prefix[rr, j2] - prefix[rr, j1 + 1])
        + (v2[:, 0] * x2[:, 1] - v2[:, 1] * x2[:, 0])
    )
    direct = x1[:, 0] * x2[:, 1] - x1[:, 1] * x2[:, 0]
    value = np.where(j2 == j1, direct, walked)
    return np.bincount(rr, weights=value, minlength=n).astype(np.float64), alternate


def _twice_round(verts: Floats, count: Ints) -> Floats:
    """Each ring's vertices walked twice round and back to the first (n, 2 k + 1, 2)."""
    width = verts.shape[1]
    if np.all(count == width):
        return np.concatenate([verts, verts, verts[:, :1]], axis=1)
    idx = np.arange(2 * width + 1)[None, :] % np.maximum(count, 1)[:, None]
    return np.take_along_axis(verts, idx[..., None], axis=1)
