"""Area of a disc inside a zone ring from boundary crossings (twin.indicators.discclip),
against GEOS's intersection of the same polygons."""

from __future__ import annotations

import numpy as np
import shapely

from twin.indicators.coverage import covered_areas, overlap_groups
from twin.indicators.discclip import disc_ring_areas

UNIT = shapely.get_coordinates(shapely.buffer(shapely.Point(0, 0), 1.0, quad_segs=16))
ORIGIN = np.array([383_000.123, 3_376_000.456])  # projected-CRS sized coordinates


def star_zones(rng: np.random.Generator, n: int, apart: float = 0.0) -> np.ndarray:
    """Valid non-convex rings around ORIGIN (or ``apart`` from one another on a grid),
    half of them clockwise."""
    zones = []
    while len(zones) < n:
        k = int(rng.integers(5, 15))
        angle = np.sort(rng.uniform(0, 2 * np.pi, k))
        reach = rng.uniform(40, 120, k)
        here = ORIGIN + apart * np.array([len(zones) % 10, len(zones) // 10])
        ring = np.c_[np.cos(angle) * reach, np.sin(angle) * reach] + here
        zone = shapely.Polygon(ring if len(zones) % 2 else ring[::-1])
        if shapely.is_valid(zone):
            zones.append(zone)
    return np.array(zones)


def areas(zones: np.ndarray, centre: np.ndarray, radius: np.ndarray) -> tuple:
    count = shapely.get_num_coordinates(zones) - 1
    start, vector = np.zeros((len(zones), count.max(), 2)), np.zeros((len(zones), count.max(), 2))
    for i, zone in enumerate(zones):
        ring = shapely.get_coordinates(zone)
        start[i, : count[i]], vector[i, : count[i]] = ring[:-1], np.diff(ring, axis=0)
    return disc_ring_areas(start, vector, count, centre, radius, UNIT)


def test_random_rings_equal_geos() -> None:
    rng = np.random.default_rng(3)
    zones = star_zones(rng, 3000)
    assert not shapely.is_ccw(shapely.get_exterior_ring(zones[0]))
    assert shapely.is_ccw(shapely.get_exterior_ring(zones[1]))
    centre = ORIGIN + rng.uniform(-120, 120, (len(zones), 2))
    radius = rng.uniform(5, 80, len(zones))
    got, settled = areas(zones, centre, radius)
    discs = shapely.polygons(centre[:, None, :] + radius[:, None, None] * UNIT[None])
    expected = shapely.area(shapely.intersection(discs, zones))
    # crossing the ring: settled here; inside, outside or around it: left to GEOS
    crossing = shapely.intersects(shapely.boundary(discs), shapely.boundary(zones))
    assert settled.sum() > 0.8 * crossing.sum() > 1000
    assert not (settled & ~crossing).any()
    np.testing.assert_allclose(got[settled], expected[settled], rtol=2e-12, atol=1e-12)
    assert got[~settled].tolist() == [0.0] * int((~settled).sum())


def test_touching_and_degenerate_cases_left_to_geos() -> None:
    square = shapely.Polygon([(0, 0), (100, 0), (100, 100), (0, 100)])
    zones = np.array([square] * 4)
    centre = np.array([[50.0, 50.0], [100.0, 50.0], [50.0, 100.0 + 10.0], [50.0, 50.0]])
    # inside (no crossing), a disc vertex on the edge, touching from outside, around it
    radius = np.array([10.0, 10.0, 10.0, 200.0])
    got, settled = areas(zones, centre, radius)
    assert settled.tolist() == [False] * 4
    assert got.tolist() == [0.0] * 4
    # the same half disc, moved off the vertex by a little: settled, equal to GEOS
    moved = np.array([[100.0 - 1e-3, 50.0]])
    got, settled = areas(zones[:1], moved, np.array([10.0]))
    disc = shapely.buffer(shapely.Point(*moved[0]), 10.0, quad_segs=16)
    assert settled.tolist() == [True]
    assert abs(got[0] - shapely.intersection(disc, square).area) <= 1e-12 * disc.area


def test_lone_discs_at_corners_equal_geos_clips() -> None:
    """covered_areas with lone discs on the corners of non-convex zones (two edges within
    reach: the crossing path), equal to the sum of GEOS's clips of each disc by each zone."""
    rng = np.random.default_rng(8)
    zones = star_zones(rng, 60, apart=300.0)
    corners = shapely.get_coordinates(zones)
    pick = rng.choice(len(corners), 120, replace=False)
    xy = corners[pick] + rng.uniform(-3, 3, (120, 2))
    radii = rng.uniform(6, 12, 120)
    _, group = overlap_groups(xy, radii)
    alone = np.bincount(group)[group] == 1
    xy, radii = xy[alone], radii[alone]
    assert len(xy) > 40
    got = covered_areas(zones.copy(), shapely.points(xy), radii, quad_segs=16, small_group=64)
    discs = shapely.polygons(xy[:, None, :] + radii[:, None, None] * UNIT)
    disc_i, zone_i = shapely.STRtree(zones).query(discs, predicate="intersects")
    clipped = shapely.area(shapely.intersection(discs[disc_i], zones[zone_i]))
    expected = np.bincount(zone_i, weights=clipped, minlength=len(zones))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)
    assert (got > 0).sum() > 30
    # the discs really reach two or more edges of their zones (not the one-edge cut)
    edges_hit = shapely.intersects(
        shapely.boundary(discs[disc_i]), shapely.get_parts(shapely.boundary(zones))[zone_i]
    )
    assert edges_hit.sum() > 20
