"""Line lengths clipped to zones in numpy (``twin.indicators.lineclip``) against GEOS.

Every pair ``clip_lengths`` settles must equal ``shapely.length(shapely.intersection(
line, zone))`` to 1e-9 relative (exactly 0 where GEOS gives 0); the pairs it leaves
(NaN) are clipped by GEOS in ``clipped_pieces``, so ``network_lengths`` equals the
plain overlay per zone.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

import twin
from twin.indicators import network_lengths
from twin.indicators.lineclip import clip_lengths

L = shapely.LineString
CELL = shapely.box(0, 0, 100, 100)


def geos_lengths(lines: np.ndarray, zones: np.ndarray) -> np.ndarray:
    return np.asarray(shapely.length(shapely.intersection(lines, zones)), dtype=np.float64)


def check(lines: list[shapely.Geometry], zone: shapely.Geometry) -> np.ndarray:
    """clip_lengths of every line against one zone, checked against GEOS where settled."""
    zones = np.array([zone], dtype=object)
    shapely.prepare(zones)
    got = clip_lengths(np.array(lines, dtype=object), zones, np.zeros(len(lines), dtype=np.intp))
    want = geos_lengths(np.array(lines, dtype=object), np.array([zone] * len(lines)))
    settled = ~np.isnan(got)
    np.testing.assert_allclose(got[settled], want[settled], rtol=1e-9, atol=0)
    assert np.array_equal(got[settled] == 0, want[settled] == 0)
    return got


def test_hand_checked_lengths() -> None:
    """A 100 m cell: crossing (50 inside), along an edge (100, the boundary counts),
    ending on an edge from outside (0), from inside (30), through two corners (diagonal,
    100*sqrt 2), a three-segment line in and out (20 + 10 + 20), outside (0)."""
    lines = [
        L([(50, 50), (150, 50)]),
        L([(0, 0), (0, 100)]),
        L([(100, 50), (130, 50)]),
        L([(70, 50), (100, 50)]),
        L([(0, 0), (100, 100)]),
        L([(-20, 10), (20, 10), (20, 110), (30, 110), (30, 90)]),
        L([(200, 200), (300, 300)]),
    ]
    got = check(lines, CELL)
    np.testing.assert_allclose(got, [50, 100, 0, 30, 100 * np.sqrt(2), 20 + 90 + 10, 0], rtol=1e-12)


def test_holes_parts_and_concave_zones() -> None:
    """A cell with a 20 m hole, two cells as one multipolygon, an L-shaped zone."""
    holed = shapely.Polygon(CELL.exterior.coords, [[(40, 40), (60, 40), (60, 60), (40, 60)]])
    across = L([(-10, 50), (110, 50)])
    assert check([across], holed)[0] == pytest.approx(80.0, rel=1e-12)
    two = shapely.MultiPolygon([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)])
    assert check([L([(-5, 5), (35, 5)])], two)[0] == pytest.approx(20.0, rel=1e-12)
    ell = shapely.Polygon([(0, 0), (100, 0), (100, 20), (20, 20), (20, 100), (0, 100)])
    got = check([L([(10, -10), (10, 110)]), L([(50, 10), (50, 50)]), L([(-5, 50), (50, 50)])], ell)
    np.testing.assert_allclose(got, [100, 10, 20], rtol=1e-12)


def test_lines_left_to_geos() -> None:
    """A multi-part line, a line backtracking over itself (GEOS counts the stretch once),
    a line through a zone vertex in its middle, a bow-tie zone, a NaN coordinate: NaN
    (the vertex case: NaN or GEOS's length), never a guess."""
    zones = np.array([CELL, CELL, CELL, shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])])
    with np.errstate(invalid="ignore"):  # shapely warns of the NaN made on purpose
        unknown = L([(50, 50), (150, np.nan)])
    lines = np.array(
        [
            shapely.MultiLineString([[(50, 50), (150, 50)]]),
            L([(50, 50), (150, 50), (80, 50)]),
            L([(-50, 150), (150, -50)]),
            L([(-1, 5), (11, 5)]),
            unknown,
        ],
        dtype=object,
    )
    got = clip_lengths(lines, np.r_[zones, [CELL]], np.arange(5))
    assert np.isnan(got[[0, 1, 3, 4]]).all()
    assert np.isnan(got[2]) or got[2] == pytest.approx(geos_lengths(lines[2:3], zones[2:3])[0])


def test_random_lines_against_random_cells() -> None:
    """Quads with slanted edges far from the origin (as projected grids are), lines of
    1 to 5 segments around them, some ending exactly on an edge or running along one."""
    rng = np.random.default_rng(11)
    x0, y0 = 384_000.0, 3_376_000.0
    corners = np.array([[0, 0], [700, 3], [702, 640], [-4, 650]]) + np.array([x0, y0])
    zone = shapely.Polygon(corners)
    lines = []
    for i in range(3000):
        k = 1 + i % 5
        pts = rng.uniform(-200, 900, (k + 1, 2)) + np.array([x0, y0])
        if i % 7 == 0:  # start exactly on an edge
            j = i % 4
            pts[0] = corners[j] + 0.25 * (corners[(j + 1) % 4] - corners[j])
        if i % 11 == 0:  # along an edge, between its own ends
            j = i % 4
            pts = np.array(
                [corners[j] + f * (corners[(j + 1) % 4] - corners[j]) for f in (0.2, 0.7)]
            )
        lines.append(L(pts))
    got = check(lines, zone)
    assert np.isnan(got).mean() < 0.2  # most are settled in numpy


@pytest.mark.parametrize("layer", ["roads", "water_pipes"])
def test_network_lengths_equal_the_overlay_on_the_sample(
    sample_twin: twin.Twin, layer: str
) -> None:
    if layer not in {i.name for i in sample_twin.layer_infos()}:
        pytest.skip(f"the sample has no {layer}")
    zones = sample_twin.layer("grids", columns=[])
    lines = sample_twin.layer(layer, columns=[])
    got = network_lengths(zones, lines)["length_km"]
    pieces = gpd.overlay(
        lines.reset_index(drop=True).assign(line=np.arange(len(lines))),
        zones.reset_index().rename(columns={zones.index.name or "index": "zone"}),
        how="intersection",
        keep_geom_type=True,
    )
    plain = pieces.geometry.length.groupby(pieces["zone"]).sum().reindex(zones.index, fill_value=0)
    assert float(plain.sum()) > 0
    np.testing.assert_allclose(got.to_numpy(), plain.to_numpy() / 1000, rtol=1e-9, atol=1e-12)


def test_every_candidate_pair_of_the_sample(sample_twin: twin.Twin) -> None:
    """Every (road, cell) pair whose boxes meet, inside, across or apart: settled pairs
    equal GEOS's clip; about half are settled in numpy."""
    zones = np.asarray(sample_twin.layer("grids", columns=[]).geometry.array)
    lines = np.asarray(sample_twin.layer("roads", columns=[]).geometry.array)
    line_i, zone_i = shapely.STRtree(zones).query(lines)
    shapely.prepare(zones)
    got = clip_lengths(lines[line_i], zones, zone_i.astype(np.intp))
    want = geos_lengths(lines[line_i], zones[zone_i])
    settled = ~np.isnan(got)
    assert settled.mean() > 0.4  # the sample's roads run within 1e-7 m of cell edges: GEOS
    np.testing.assert_allclose(got[settled], want[settled], rtol=1e-9, atol=0)
    assert np.array_equal(got[settled] == 0, want[settled] == 0)
