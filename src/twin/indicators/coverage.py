"""Covered area per zone without the union of every disc.

:func:`covered_areas` gives, for each zone, the area of its part within
reach of at least one sensing disc: the same number as
``area(zone ∩ union(discs))`` (the discs of :func:`twin.indicators.sensors.covered_parts`,
one polygon of ``4 * quad_segs`` sides per point), computed zone by zone so
that most zones need no overlay at all:

- a zone lying inside one disc (the corners of its bounding box within the
  disc's inscribed circle) is covered whole;
- a disc overlapping no other disc and lying inside one zone (its centre in
  the zone, farther than its radius from the zone's boundary) adds its own
  area, known without building it;
- a disc overlapping no other disc but crossing zone boundaries adds the
  area of its clipped parts: clipped in numpy (the disc's polygon by the
  edge's line) where one zone edge cuts it straight across, else from the
  crossings of the disc's and the zone's boundaries
  (:func:`twin.indicators.discclip.disc_ring_areas`), by GEOS where a
  crossing is too close to a vertex to call;
- the discs of one group of overlapping discs meeting one zone (a *run*)
  are merged for that zone only: inside the zone, unioned in one vectorised
  call; across its boundary, subtracted from the zone one at a time (nearest
  the zone's centre first, done as soon as nothing is left); runs of more
  than ``small_group`` discs unioned with ``union_all`` and then clipped.

The answer equals the overlay's to floating-point rounding (1e-12 relative
at 1M buildings' sensors, December 2026), at about half its cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from twin.indicators._overlay import Geoms, zone_edges
from twin.indicators.discclip import disc_ring_areas

__all__ = ["CoverZones", "covered_areas", "disc_polygons", "overlap_groups"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]


def disc_polygons(xy: Floats, radii: Floats, quad_segs: int) -> Geoms:
    """Discs with the vertices of ``shapely.buffer(point, r, quad_segs=quad_segs)``.

    Built from one unit circle scaled and moved in numpy, several times faster
    than buffering each point.

    Examples
    --------
    >>> d = disc_polygons(np.array([[0.0, 0.0]]), np.array([2.0]), 16)
    >>> a = shapely.area(shapely.buffer(shapely.Point(0, 0), 2.0, quad_segs=16))
    >>> bool(abs(shapely.area(d[0]) - a) < 1e-9)
    True
    """
    unit = _unit_circle(quad_segs)
    rings = xy[:, None, :] + radii[:, None, None] * unit[None, :, :]
    return np.asarray(shapely.polygons(rings), dtype=np.object_)


def _unit_circle(quad_segs: int) -> Floats:
    ring = shapely.buffer(shapely.Point(0, 0), 1.0, quad_segs=quad_segs)
    return np.asarray(shapely.get_coordinates(ring), dtype=np.float64)


def overlap_groups(xy: Floats, radii: Floats) -> tuple[int, Ints]:
    """Groups of discs connected by overlap (centres no farther apart than the radii's sum).

    Returns the number of groups and each disc's group. Two discs in different
    groups never overlap.

    Examples
    --------
    >>> xy = np.array([[0.0, 0.0], [3.0, 0.0], [10.0, 0.0]])
    >>> n, group = overlap_groups(xy, np.array([2.0, 2.0, 2.0]))
    >>> n, group.tolist()
    (2, [0, 0, 1])
    """
    n = len(xy)
    a, b = _candidate_pairs(xy, radii)
    near = np.hypot(*(xy[a] - xy[b]).T) <= radii[a] + radii[b]
    graph = sparse.coo_matrix(
        (np.ones(int(near.sum()), dtype=np.int8), (a[near], b[near])), shape=(n, n)
    )
    n_groups, group = connected_components(graph, directed=False)
    return int(n_groups), group.astype(np.intp)


def _candidate_pairs(xy: Floats, radii: Floats) -> tuple[Ints, Ints]:
    """Pairs ``a < b`` of discs that may overlap (every overlapping pair among them).

    Radii within a factor of 2 (one sensor type): a k-d tree's pairs closer than twice
    the largest radius (several times faster than boxes in an R-tree); otherwise the
    pairs of overlapping bounding boxes.
    """
    if len(xy) == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    if radii.max() <= 2 * radii.min():
        reach = 2 * float(radii.max()) * (1 + 1e-9)  # a margin over the tree's rounding
        pairs = cKDTree(xy).query_pairs(reach, output_type="ndarray").astype(np.intp)
        return pairs[:, 0], pairs[:, 1]
    boxes = shapely.box(*(xy - radii[:, None]).T, *(xy + radii[:, None]).T)
    a, b = shapely.STRtree(boxes).query(boxes)
    return a[a < b].astype(np.intp), b[a < b].astype(np.intp)


_MAX_EDGES = 32  # zones with more edges: discs across their boundary are clipped by GEOS


@dataclass(frozen=True)
class CoverZones:
    """Zones with what :func:`covered_areas` reads of them on every call, made once
    for several calls (one per sensor type): their R-tree, areas, bounds, prepared
    boundaries and padded edges (see :func:`twin.indicators._overlay.zone_edges`).

    Examples
    --------
    >>> z = CoverZones.of(np.array([shapely.box(0, 0, 10, 10)]))
    >>> z.area.tolist(), z.start.shape, z.simple.tolist()
    ([100.0], (1, 4, 2), [True])
    """

    geoms: Geoms
    tree: shapely.STRtree
    area: Floats
    bounds: Floats
    boundary: Geoms
    start: Floats
    vector: Floats
    simple: npt.NDArray[np.bool_]
    ring_edges: Ints

    @classmethod
    def of(cls, zones: Geoms) -> CoverZones:
        """The facts of these zones (prepared in place)."""
        shapely.prepare(zones)
        boundary = shapely.boundary(zones)
        shapely.prepare(boundary)
        start, vector, simple = zone_edges(zones, _MAX_EDGES)
        one_ring = (shapely.get_type_id(zones) == shapely.GeometryType.POLYGON) & (
            shapely.get_num_interior_rings(zones) == 0
        )
        ring_edges = np.where(one_ring & simple, shapely.get_num_coordinates(zones) - 1, 0)
        return cls(
            geoms=zones,
            tree=shapely.STRtree(zones),
            area=np.asarray(shapely.area(zones), dtype=np.float64),
            bounds=np.asarray(shapely.bounds(zones), dtype=np.float64),
            boundary=boundary,
            start=start,
            vector=vector,
            simple=simple,
            ring_edges=ring_edges.astype(np.intp),
        )


def covered_areas(
    zones: Geoms | CoverZones,
    points: Geoms,
    radii: Floats,
    *,
    quad_segs: int,
    small_group: int,
) -> Floats:
    """Area of each zone within reach of at least one point (see the module's text).

    Parameters
    ----------
    zones : ndarray of shapely polygons, or their :class:`CoverZones`
    points : ndarray of shapely points (others and empty ones are left out)
    radii : ndarray of float
        Reach of each point, in CRS units (NaN or <= 0: left out).
    quad_segs : int
        Segments per quarter circle of each disc.
    small_group : int
        Overlapping pieces in one zone unioned in one vectorised call up to
        this many; larger sets with ``union_all``.

    Examples
    --------
    >>> z = np.array([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)])
    >>> p = shapely.points([(0, 0), (10, 10), (25, 5)])
    >>> covered_areas(z, p, np.array([1.0, 1.0, 8.0]), quad_segs=16, small_group=64).round(3)
    array([  1.568, 100.   ])
    """
    facts = zones if isinstance(zones, CoverZones) else CoverZones.of(zones)
    zones = facts.geoms
    n_zones = len(zones)
    usable = (shapely.get_type_id(points) == shapely.GeometryType.POINT) & ~shapely.is_empty(points)
    usable &= np.isfinite(radii) & (radii > 0)
    points, radii = points[usable], radii[usable]
    result = np.zeros(n_zones, dtype=np.float64)
    if len(points) == 0 or n_zones == 0:
        return result
    xy = np.asarray(shapely.get_coordinates(points), dtype=np.float64)
    disc_i, zone_i = facts.tree.query(points, predicate="dwithin", distance=radii)
    disc_i, zone_i = disc_i.astype(np.intp), zone_i.astype(np.intp)
    zone_area = facts.area
    whole = _zones_inside_discs(facts, xy, radii, disc_i, zone_i, quad_segs)
    result[whole] = zone_area[whole]
    keep = ~whole[zone_i]
    disc_i, zone_i = disc_i[keep], zone_i[keep]
    if len(disc_i) == 0:
        return result
    _, group = overlap_groups(xy, radii)
    inside = _discs_inside_zones(facts, points, radii, disc_i, zone_i)
    # One piece per (zone, disc) pair; the pieces of one overlap group in one zone (a run)
    # may overlap one another, pieces of different runs never do.
    key = zone_i.astype(np.int64) * (int(group.max()) + 1) + group[disc_i]
    order = np.argsort(key, kind="stable")
    pairs = _Pairs(facts, xy, radii, disc_i[order], zone_i[order], inside[order], quad_segs)
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    size = np.diff(np.r_[starts, len(key)])
    alone = np.repeat(size == 1, size)
    simple = alone & pairs.inside
    unit_area = float(shapely.area(shapely.polygons(_unit_circle(quad_segs))))
    radius = radii[pairs.disc]
    result += _per_zone(pairs.zone[simple], unit_area * radius[simple] ** 2, n_zones)
    clip = np.flatnonzero(alone & ~pairs.inside)
    cut, settled = _chord_cut_areas(pairs, clip)
    rest = clip[~settled]
    cut[~settled], done = _ring_cut_areas(pairs, rest)
    cut[np.flatnonzero(~settled)[~done]] = shapely.area(pairs.pieces(rest[~done]))
    result += _per_zone(pairs.zone[clip], cut, n_zones)
    crossing = np.bincount(np.repeat(np.arange(len(starts)), size), weights=~pairs.inside)
    for kind in ("inside", "crossing", "large"):
        if kind == "large":
            chosen = size > small_group
        else:
            chosen = (size >= 2) & (size <= small_group) & ((crossing > 0) == (kind == "crossing"))
        if chosen.any():
            first, count = starts[chosen], size[chosen]
            result += _per_zone(pairs.zone[first], _RUN_AREAS[kind](pairs, first, count), n_zones)
    return result


def _per_zone(zone: Ints, values: Any, n_zones: int) -> Floats:
    """Sum of ``values`` per zone position."""
    weights = np.asarray(values, dtype=np.float64)
    return np.bincount(zone, weights=weights, minlength=n_zones).astype(np.float64)


@dataclass(frozen=True)
class _Pairs:
    """(zone, disc) pairs, sorted so that the pairs of each run are contiguous."""

    facts: CoverZones
    xy: Floats
    radii: Floats
    disc: Ints
    zone: Ints
    inside: npt.NDArray[np.bool_]
    quad_segs: int

    @property
    def zones(self) -> Geoms:
        """The zones' geometries."""
        return self.facts.geoms

    def discs(self, rows: Ints) -> Geoms:
        """The disc polygons of these pairs."""
        return disc_polygons(self.xy[self.disc[rows]], self.radii[self.disc[rows]], self.quad_segs)

    def pieces(self, rows: Ints) -> Geoms:
        """Each pair's disc clipped to its zone (the disc itself where it lies inside)."""
        discs = self.discs(rows)
        cross = ~self.inside[rows]
        discs[cross] = shapely.intersection(discs[cross], self.zones[self.zone[rows][cross]])
        return discs


_MARGIN = 1e-9  # relative: closer calls than this are left to GEOS


def _chord_cut_areas(pairs: _Pairs, rows: Ints) -> tuple[Floats, npt.NDArray[np.bool_]]:
    """Area of the disc inside the zone, for pairs where one zone edge cuts the disc
    straight across (its ends out of reach, every other edge too): the disc's polygon
    clipped by that edge's line in numpy. Others are marked unsettled (area 0)."""
    area = np.zeros(len(rows), dtype=np.float64)
    settled = np.zeros(len(rows), dtype=bool)
    start, vector, simple = pairs.facts.start, pairs.facts.vector, pairs.facts.simple
    rows_ok = np.flatnonzero(simple[pairs.zone[rows]])
    if len(rows_ok) == 0:
        return area, settled
    zone, disc = pairs.zone[rows[rows_ok]], pairs.disc[rows[rows_ok]]
    centre, radius = pairs.xy[disc], pairs.radii[disc]
    v = start[zone] - centre[:, None, :]  # edges relative to the disc's centre
    e = vector[zone]
    length = np.hypot(e[..., 0], e[..., 1])
    real = length > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.clip(-(v[..., 0] * e[..., 0] + v[..., 1] * e[..., 1]) / length**2, 0.0, 1.0)
    gap = np.where(real, np.hypot(v[..., 0] + s * e[..., 0], v[..., 1] + s * e[..., 1]), np.inf)
    r = radius[:, None]
    inner = r * np.cos(np.pi / (4 * pairs.quad_segs)) * (1 - _MARGIN)
    cutting = gap < inner
    unsure = (gap >= inner) & (gap <= r * (1 + _MARGIN))
    ends_out = (np.hypot(v[..., 0], v[..., 1]) > r * (1 + _MARGIN)) & (
        np.hypot(v[..., 0] + e[..., 0], v[..., 1] + e[..., 1]) > r * (1 + _MARGIN)
    )
    one = (cutting.sum(axis=1) == 1) & ~unsure.any(axis=1) & (cutting & ends_out).any(axis=1)
    one = np.flatnonzero(one)
    pick = np.argmax(cutting[one], axis=1)
    ev, vv, ln = e[one, pick], v[one, pick], length[one, pick]
    normal = np.stack([-ev[:, 1], ev[:, 0]], axis=1) / ln[:, None]  # left of the edge
    d = -(normal * vv).sum(axis=1)  # signed distance of the centre from the edge's line
    r = radius[one]
    probe = centre[one] + normal * ((r - d) / 2)[:, None]  # left of the line, in the disc
    left_in = shapely.contains_xy(pairs.zones[zone[one]], probe[:, 0], probe[:, 1])
    clear = (r + d) > _MARGIN * r
    one, normal, d, r, left_in = one[clear], normal[clear], d[clear], r[clear], left_in[clear]
    ring = r[:, None, None] * _unit_circle(pairs.quad_segs)[None, :, :]  # closed rings
    side = np.where(left_in, 1.0, -1.0)[:, None] * (
        (ring * normal[:, None, :]).sum(axis=2) + d[:, None]
    )
    area[rows_ok[one]] = _half_plane_area(ring, side)
    settled[rows_ok[one]] = True
    return area, settled


def _ring_cut_areas(pairs: _Pairs, rows: Ints) -> tuple[Floats, npt.NDArray[np.bool_]]:
    """Area of the disc inside the zone where the zone is one ring of a few edges,
    from the crossings of their boundaries (:func:`disc_ring_areas`); others unsettled."""
    f = pairs.facts
    zone, disc = pairs.zone[rows], pairs.disc[rows]
    ring = f.ring_edges[zone] > 0
    area, settled = np.zeros(len(rows)), np.zeros(len(rows), dtype=bool)
    z, d = zone[ring], disc[ring]
    got, done = disc_ring_areas(
        f.start[z],
        f.vector[z],
        f.ring_edges[z],
        pairs.xy[d],
        pairs.radii[d],
        _unit_circle(pairs.quad_segs),
    )
    area[ring], settled[ring] = got, done
    return area, settled


def _half_plane_area(ring: Floats, side: Floats) -> Floats:
    """Area of each closed convex ring's part where ``side >= 0`` (a line cuts it once)."""
    p, q = ring[:, :-1], ring[:, 1:]
    sp, sq = side[:, :-1], side[:, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = sp / (sp - sq)
    hit = p + t[..., None] * (q - p)
    keep_p, keep_q = sp >= 0, sq >= 0
    a = np.where(keep_p[..., None], p, hit)
    b = np.where(keep_q[..., None], q, hit)
    both_out = ~keep_p & ~keep_q
    term = np.where(both_out, 0.0, a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0])
    exits = keep_p & ~keep_q
    enters = ~keep_p & keep_q
    x = (hit * exits[..., None]).sum(axis=1)
    y = (hit * enters[..., None]).sum(axis=1)
    chord = x[:, 0] * y[:, 1] - x[:, 1] * y[:, 0]
    return np.abs(term.sum(axis=1) + chord) / 2


def _members(first: Ints, count: Ints) -> tuple[Ints, Ints]:
    """The rows of each run, and the run (0, 1, …) of each row."""
    ends = np.cumsum(count)
    ramp = np.arange(int(ends[-1])) - np.repeat(ends - count, count)
    return np.repeat(first, count) + ramp, np.repeat(np.arange(len(first)), count)


def _inside_unions(pairs: _Pairs, first: Ints, count: Ints) -> Any:
    """Runs of discs all inside their zone: their union, in one vectorised call."""
    rows, run = _members(first, count)
    multi = shapely.multipolygons(pairs.discs(rows), indices=run)
    # "structure" unions the overlapping members of each multipolygon.
    return shapely.area(shapely.make_valid(multi, method="structure"))


def _crossing_unions(pairs: _Pairs, first: Ints, count: Ints) -> Any:
    """Runs with discs crossing their zone's boundary: the zone minus its discs, one at a time.

    The discs nearest the zone's centre come first, so that a zone covered by a
    few discs is left with an empty gap (and done) after a few steps.
    """
    rows, run = _members(first, count)
    zones = pairs.zones[pairs.zone[first]]
    centre = shapely.get_coordinates(shapely.centroid(zones))
    reach = np.hypot(*(pairs.xy[pairs.disc[rows]] - centre[run]).T) - pairs.radii[pairs.disc[rows]]
    rows = rows[np.lexsort((reach, run))]
    offset = np.r_[0, np.cumsum(count)[:-1]]
    gaps = zones.copy()
    alive = np.ones(len(first), dtype=bool)
    for step in range(int(count.max())):
        now = np.flatnonzero(alive & (count > step))
        if len(now) == 0:
            break
        gaps[now] = shapely.difference(gaps[now], pairs.discs(rows[offset[now] + step]))
        alive[now] = ~shapely.is_empty(gaps[now])
    return shapely.area(zones) - shapely.area(gaps)


def _large_unions(pairs: _Pairs, first: Ints, count: Ints) -> Any:
    """Runs of many discs: each run's discs unioned (``union_all``), then clipped to its zone."""
    blobs = np.array(
        [
            shapely.union_all(pairs.discs(np.arange(a, a + k)))
            for a, k in zip(first, count, strict=True)
        ],
        dtype=object,
    )
    return shapely.area(shapely.intersection(blobs, pairs.zones[pairs.zone[first]]))


_RUN_AREAS = {"inside": _inside_unions, "crossing": _crossing_unions, "large": _large_unions}


def _zones_inside_discs(
    zones: CoverZones, xy: Floats, radii: Floats, disc_i: Ints, zone_i: Ints, quad_segs: int
) -> npt.NDArray[np.bool_]:
    """Zones whose bounding box lies inside the inscribed circle of a disc meeting them."""
    bounds = zones.bounds[zone_i]
    centre = xy[disc_i]
    dx = np.maximum(np.abs(bounds[:, 0] - centre[:, 0]), np.abs(bounds[:, 2] - centre[:, 0]))
    dy = np.maximum(np.abs(bounds[:, 1] - centre[:, 1]), np.abs(bounds[:, 3] - centre[:, 1]))
    inscribed = radii[disc_i] * np.cos(np.pi / (4 * quad_segs)) * (1 - 1e-9)
    with np.errstate(invalid="ignore"):
        hit = np.hypot(dx, dy) <= inscribed
    whole = np.zeros(len(zones.geoms), dtype=bool)
    whole[zone_i[hit]] = True
    return whole


def _discs_inside_zones(
    zones: CoverZones, points: Geoms, radii: Floats, disc_i: Ints, zone_i: Ints
) -> npt.NDArray[np.bool_]:
    """Whether each pair's disc lies inside its zone: centre in it, boundary out of reach."""
    inside = shapely.contains_properly(zones.geoms[zone_i], points[disc_i])
    edges = zones.boundary
    check = np.flatnonzero(inside)
    near = shapely.dwithin(edges[zone_i[check]], points[disc_i[check]], radii[disc_i[check]])
    inside[check] = ~near
    return inside
