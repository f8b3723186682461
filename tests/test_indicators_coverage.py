"""Covered area per zone (twin.indicators.coverage), path by path, against hand-computed areas.

Each fixture puts discs where the answer is known by hand (a whole disc, half
or a quarter of one, a zone inside a disc) and sends them down one path of
:func:`covered_areas`: a disc alone inside a zone, alone across a boundary,
overlapping discs inside a zone, overlapping discs across a boundary (the zone
minus its discs one at a time), many overlapping discs (``union_all``), and a
zone lying inside one disc.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from twin.indicators.coverage import CoverZones, covered_areas, disc_polygons, overlap_groups

QUAD_SEGS = 16
ZONES = np.array([shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)])


def disc_area(radius: float) -> float:
    return float(shapely.area(shapely.buffer(shapely.Point(0, 0), radius, quad_segs=QUAD_SEGS)))


def areas(xy: list[tuple[float, float]], radii: list[float], small_group: int = 64) -> list[float]:
    out = covered_areas(
        ZONES.copy(),
        shapely.points(xy),
        np.asarray(radii, dtype=float),
        quad_segs=QUAD_SEGS,
        small_group=small_group,
    )
    return out.tolist()


@pytest.mark.parametrize("small_group", [1, 64])
def test_each_path_hand_computed(small_group: int) -> None:
    # alone inside A: a whole disc
    assert areas([(50, 50)], [10], small_group) == pytest.approx([disc_area(10), 0.0], rel=1e-12)
    # alone on the corner shared by A and B: a quarter in each
    quarter = disc_area(10) / 4
    assert areas([(100, 100)], [10], small_group) == pytest.approx([quarter] * 2, rel=1e-12)
    # two identical discs inside B (one run): their union is one disc
    got = areas([(150, 50), (150, 50)], [10, 10], small_group)
    assert got == pytest.approx([0.0, disc_area(10)], rel=1e-12)
    # two identical discs on the shared edge (crossing runs): half a disc in each zone
    half = disc_area(5) / 2
    assert areas([(100, 50), (100, 50)], [5, 5], small_group) == pytest.approx([half] * 2)
    # two discs overlapping by a lens inside A: two discs minus the lens, by hand
    lens = float(
        shapely.area(
            shapely.intersection(
                shapely.buffer(shapely.Point(40, 50), 10, quad_segs=QUAD_SEGS),
                shapely.buffer(shapely.Point(50, 50), 10, quad_segs=QUAD_SEGS),
            )
        )
    )
    got = areas([(40, 50), (50, 50)], [10, 10], small_group)
    assert got == pytest.approx([2 * disc_area(10) - lens, 0.0], rel=1e-9)


def test_lone_disc_cut_by_one_edge() -> None:
    """Cut straight across by the edge A | B: clipped in numpy, equal to GEOS's clip."""
    half = disc_area(10) / 2
    assert areas([(100, 50)], [10]) == pytest.approx([half, half], rel=1e-12)
    disc = shapely.buffer(shapely.Point(95, 50), 10, quad_segs=QUAD_SEGS)
    expected = [shapely.intersection(disc, zone).area for zone in ZONES]
    assert areas([(95, 50)], [10]) == pytest.approx(expected, rel=1e-12)
    assert expected[0] > 3 * expected[1] > 0  # most of it in A
    # a zone given clockwise, and a disc reaching two edges (GEOS clips that one)
    turned = np.array([shapely.Polygon(list(ZONES[0].exterior.coords)[::-1]), ZONES[1]])
    got = covered_areas(
        turned,
        shapely.points([(95, 50), (5, 95)]),
        np.array([10.0, 10.0]),
        quad_segs=QUAD_SEGS,
        small_group=64,
    )
    corner = shapely.buffer(shapely.Point(5, 95), 10, quad_segs=QUAD_SEGS)
    assert got.tolist() == pytest.approx(
        [expected[0] + shapely.intersection(corner, ZONES[0]).area, expected[1]], rel=1e-12
    )


def test_zone_inside_one_disc_and_points_left_out() -> None:
    # 71 m from B's centre reaches past its corners (70.7 m): B whole; A gets a sliver
    got = areas([(150, 50)], [75])
    assert got[1] == 1e4
    sliver = shapely.intersection(
        ZONES[0], shapely.buffer(shapely.Point(150, 50), 75, quad_segs=QUAD_SEGS)
    ).area
    assert got[0] == pytest.approx(sliver, rel=1e-12)
    # no radius, a zero radius, an empty point: nothing covered
    empty = covered_areas(
        ZONES.copy(),
        np.array([shapely.Point(50, 50), shapely.Point(60, 60), shapely.Point()]),
        np.array([np.nan, 0.0, 5.0]),
        quad_segs=QUAD_SEGS,
        small_group=64,
    )
    assert empty.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("small_group", [1, 3, 64])
def test_dense_discs_match_the_union_of_every_disc(small_group: int) -> None:
    """Random discs over many small zones: each zone's area inside the union of all discs."""
    rng = np.random.default_rng(11)
    xy = rng.uniform(0, 400, size=(300, 2))
    radii = rng.uniform(3, 40, size=300)
    zones = np.array(
        [shapely.box(x, y, x + 50, y + 50) for x in range(0, 400, 50) for y in range(0, 400, 50)]
    )
    got = covered_areas(
        zones.copy(), shapely.points(xy), radii, quad_segs=QUAD_SEGS, small_group=small_group
    )
    union = shapely.union_all(disc_polygons(xy, radii, QUAD_SEGS))
    expected = shapely.area(shapely.intersection(zones, union))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
    assert 0 < got.sum() < zones.size * 2500  # neither nothing nor everything covered
    # the zones' facts made once serve several calls, with the same answer to the last bit
    facts = CoverZones.of(zones.copy())
    for subset in (slice(0, 150), slice(None)):
        again = covered_areas(
            facts,
            shapely.points(xy[subset]),
            radii[subset],
            quad_segs=QUAD_SEGS,
            small_group=small_group,
        )
        fresh = covered_areas(
            zones.copy(),
            shapely.points(xy[subset]),
            radii[subset],
            quad_segs=QUAD_SEGS,
            small_group=small_group,
        )
        assert again.tolist() == fresh.tolist()
    assert again.tolist() == got.tolist()


def test_overlap_groups_by_hand() -> None:
    xy = np.array([[0.0, 0.0], [4.0, 0.0], [8.0, 0.0], [20.0, 0.0], [24.5, 0.0]])
    n, group = overlap_groups(xy, np.array([2.0, 2.0, 2.0, 2.0, 2.0]))
    # 0-1-2 touch in a chain (4 m apart, radii sum 4 m); 3 and 4 are 4.5 m apart
    assert n == 3
    assert group[0] == group[1] == group[2]
    assert len({group[0], group[3], group[4]}) == 3


@pytest.mark.parametrize(("low", "high"), [(4.0, 6.0), (0.5, 8.0)])
def test_overlap_groups_equal_every_pair_checked(low: float, high: float) -> None:
    """The k-d tree's pairs (radii within a factor 2) and the boxes' pairs (wider radii)
    give the groups of every pair of discs checked by distance, brute force."""
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 300, size=(400, 2))
    radii = rng.uniform(low, high, size=400)
    xy[1] = xy[0] + [radii[0] + radii[1], 0.0]  # exactly touching: overlapping
    n, group = overlap_groups(xy, radii)
    a, b = np.triu_indices(len(xy), k=1)
    near = np.hypot(*(xy[a] - xy[b]).T) <= radii[a] + radii[b]
    parent = list(range(len(xy)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in zip(a[near], b[near], strict=True):
        parent[root(int(i))] = root(int(j))
    roots = [root(i) for i in range(len(xy))]
    assert n == len(set(roots))
    assert 1 < n < len(xy) - 50  # some groups merged, many apart
    assert group[0] == group[1]
    # same partition: two discs share a group exactly when they share a root
    same = group[:, None] == group[None, :]
    assert np.array_equal(same, np.equal.outer(roots, roots))
