"""Flood extent against scipy.ndimage.label, depth at buildings and roads, lost access."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import rasterio.features
import rasterio.mask
import shapely
from affine import Affine
from scipy import ndimage

import twin
from tests.conftest import run_cli
from twin.flood import connected_to, flood_impact, inundation
from twin.raster import Raster, raster_imports, read_raster


def _peer_extent(dem: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    labels, _ = ndimage.label(np.isfinite(dem) & (dem < level))  # 4-connectivity
    chosen = np.unique(labels[seeds & (labels > 0)])
    return np.isin(labels, chosen[chosen > 0])


@pytest.mark.parametrize("level", [501.0, 502.0, 503.2, 506.0])
def test_extent_equals_scipy_label_on_the_sample(sample3d_read: twin.Twin, level: float) -> None:
    dem = read_raster(sample3d_read, "dem")
    parcels = sample3d_read.layer("parcels")
    river = parcels[parcels["land_use"] == "E1"]
    depth = inundation(dem, level_m=level, water=river)
    seeds = rasterio.features.rasterize(
        river.geometry, out_shape=dem.shape, transform=dem.transform, all_touched=True
    ).astype(bool)
    expected = _peer_extent(dem.values, level, seeds)
    np.testing.assert_array_equal(np.isfinite(depth.values), expected)
    np.testing.assert_allclose(depth.values[expected], level - dem.values[expected])
    below = (dem.values < level).sum()
    if level >= 502.0:  # the hollow far from the river stays dry
        assert expected.sum() < below


def test_hollow_behind_a_dyke_stays_dry() -> None:
    ground = np.full((5, 9), 10.0)
    ground[:, 0] = 0.0  # the river
    ground[:, 4] = 20.0  # a dyke
    ground[2, 6:8] = 1.0  # a hollow behind it
    dem = Raster(ground, Affine(1, 0, 0, 0, -1, 5), None)
    wet = np.isfinite(inundation(dem, level_m=15.0, seeds=[(0.5, 2.5)]).values)
    assert wet[:, :4].all() and not wet[:, 4:].any()
    assert wet.sum() == 20
    # a diagonal touch does not connect (4-neighbourhood, like ndimage.label's default)
    mask = np.array([[1, 0], [0, 1]], dtype=bool)
    assert connected_to(mask, np.array([[1, 0], [0, 0]], dtype=bool)).sum() == 1


def test_random_grids_match_scipy_label() -> None:
    rng = np.random.default_rng(16)
    for _ in range(20):
        mask = rng.random((60, 45)) < rng.uniform(0.3, 0.7)
        seeds = rng.random(mask.shape) < 0.01
        labels, _ = ndimage.label(mask)
        expected = np.isin(labels, labels[seeds & mask])
        np.testing.assert_array_equal(connected_to(mask, seeds), expected)


def test_impact_on_buildings_and_roads(sample3d_read: twin.Twin) -> None:
    dem = read_raster(sample3d_read, "dem")
    depth = inundation(dem, level_m=503.2)
    buildings = sample3d_read.layer("buildings")
    roads = sample3d_read.layer("roads")
    impact = flood_impact(depth, buildings, roads, level_m=503.2)
    assert impact.summary.buildings_flooded == len(impact.buildings) > 0
    lower = flood_impact(inundation(dem, level_m=502.0), buildings, roads, level_m=502.0)
    assert lower.summary.flooded_area_m2 < impact.summary.flooded_area_m2
    assert set(lower.buildings.index) < set(impact.buildings.index)
    # Independent: the wet cells each footprint touches, by rasterio masking.
    from rasterio.io import MemoryFile

    wet = np.nan_to_num(depth.values, nan=0.0).astype("float64")
    with (
        MemoryFile() as memory,
        memory.open(
            driver="GTiff",
            width=wet.shape[1],
            height=wet.shape[0],
            count=1,
            dtype="float64",
            transform=depth.transform,
            crs="EPSG:4544",
        ) as src,
    ):
        src.write(wet, 1)
        for uid in list(impact.buildings.index[:5]) + list(buildings.index[::400]):
            cells, _ = rasterio.mask.mask(
                src, [buildings.geometry[uid]], crop=True, all_touched=True, filled=False
            )
            deepest = float(cells.max())
            got = impact.buildings["max_depth_m"].get(uid, 0.0)
            assert got == pytest.approx(deepest, abs=1e-9)
    closed = impact.roads.index[impact.roads["impassable"]]
    assert impact.summary.roads_impassable == len(closed) > 0
    # Without a network a road feature crossing a cell deeper than 0.15 m closes whole.
    deep = _deep_cells(depth, 0.15)
    crossing = np.unique(deep.query(np.asarray(roads.geometry.array), predicate="intersects")[0])
    assert sorted(closed) == sorted(roads.index[crossing])


def _deep_cells(depth: Raster, limit: float) -> shapely.STRtree:
    """An index of the cells deeper than ``limit``, one box each (independent of
    rasterio's polygonising)."""
    rows, cols = np.nonzero(np.nan_to_num(depth.values, nan=0.0) > limit)
    t = depth.transform
    return shapely.STRtree(
        shapely.box(
            t.c + cols * t.a, t.f + (rows + 1) * t.e, t.c + (cols + 1) * t.a, t.f + rows * t.e
        )
    )


X0, Y0 = 505_000.0, 3_392_000.0


def _street() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, Raster]:
    """A 400 m road (one feature) with side streets at 100, 200 and 300 m, a hospital at its
    east end, building A at its west end and B at 150 m; a hollow under its first 100 m."""
    lines = {
        "main": [(0, 0), (100, 0), (200, 0), (300, 0), (400, 0)],
        "s1": [(100, 0), (100, 100)],
        "s2": [(200, 0), (200, 100)],
        "s3": [(300, 0), (300, 100)],
    }
    roads = gpd.GeoDataFrame(
        {"road_class": ["secondary"] * 4},
        geometry=[shapely.LineString([(X0 + x, Y0 + y) for x, y in v]) for v in lines.values()],
        index=list(lines),
        crs="EPSG:4544",
    )
    boxes = {"A": (5, 10), "B": (145, 10)}
    buildings = gpd.GeoDataFrame(
        {"floors": [2, 2]},
        geometry=[shapely.box(X0 + x, Y0 + y, X0 + x + 10, Y0 + y + 10) for x, y in boxes.values()],
        index=list(boxes),
        crs="EPSG:4544",
    )
    hospital = gpd.GeoDataFrame(
        {"poi_type": ["医院"]}, geometry=[shapely.Point(X0 + 395, Y0 + 10)], index=["H"]
    ).set_crs("EPSG:4544")
    ground = np.full((40, 100), 10.0)  # 5 m cells from (-50, 150) to (450, -50)
    ground[28:32, 14:26] = 9.0  # the hollow: x 20..80 m, y -10..10 m
    dem = Raster(ground, Affine(5, 0, X0 - 50, 0, -5, Y0 + 150), pyproj.CRS("EPSG:4544"))
    return roads, buildings, hospital, dem


def test_flood_closes_the_flooded_segments_not_whole_roads() -> None:
    from twin.network import road_access
    from twin.network.closures import road_closure
    from twin.network.roads import road_network_from_frame

    roads, buildings, hospital, dem = _street()
    net = road_network_from_frame(roads)
    access = road_access(net, buildings, hospital)
    depth = inundation(dem, level_m=9.5, seeds=[(X0 + 50, Y0)])
    impact = flood_impact(depth, buildings, roads, access=access)
    # Hand-checked: only the main road's first 100 m segment crosses the hollow.
    assert impact.edges["road"].tolist() == ["main"]
    assert impact.edges["length_m"].tolist() == pytest.approx([100.0])
    assert impact.roads.loc["main", ["edges", "closed_edges"]].tolist() == [4, 1]
    assert impact.roads["impassable"].tolist() == [True, False, False, False]
    assert (impact.summary.roads_impassable, impact.summary.edges_impassable) == (1, 1)
    # A (on the flooded segment) is cut off; B keeps its route along the dry part.
    lost = impact.closure.buildings["lost"]
    assert lost.to_dict() == {"A": True, "B": False}
    assert impact.closure.buildings.loc["B", "detour_s"] == pytest.approx(0.0)
    assert impact.summary.buildings_lost_access == 1
    # Closing the whole road feature (the old behaviour) would have cut off B too.
    whole = road_closure(access, roads=["main"])
    assert whole.summary.buildings_lost == 2


def test_flood_segments_equal_shapely_on_the_edges(sample3d_read: twin.Twin) -> None:
    depth = inundation(read_raster(sample3d_read, "dem"), level_m=503.2)
    buildings, roads = sample3d_read.layer("buildings"), sample3d_read.layer("roads")
    net = sample3d_read.road_network()
    impact = flood_impact(depth, buildings, roads, net=net)
    # Independent: shapely on the network's edges against one box per deep cell.
    edges_hit, _ = _deep_cells(depth, 0.15).query(net.edge_geometry, predicate="intersects")
    expected = np.unique(edges_hit)
    assert impact.edges.index.tolist() == expected.tolist() and len(expected) > 0
    assert impact.summary.edges_impassable == len(expected)
    np.testing.assert_allclose(
        impact.summary.impassable_length_m, net.edge_length_m[expected].sum()
    )
    closed_roads = sorted(set(net.edge_uid[expected]))
    assert sorted(impact.roads.index[impact.roads["impassable"]]) == closed_roads


@pytest.mark.slow
def test_cli_flood_report_with_lost_access(sample3d: twin.Twin, tmp_path) -> None:
    flood_args = (
        "analyze",
        "flood",
        str(sample3d.path),
        "--dem",
        "dem",
        "--level",
        "503.2",
        "--water",
        "parcels:land_use=E1",
        "--json",
    )
    result = run_cli(*flood_args[:-1], "--save-depth", "flood_503", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["level_m"] == 503.2 and report["buildings_flooded"] > 0
    assert report["roads_impassable"] == len(report["impassable_roads"]) > 0
    assert report["buildings_lost_access"] is not None
    assert report["buildings_lost_access"] + report["buildings_delayed"] > 0
    assert report["edges_impassable"] == len(report["impassable_edges"]) > 0
    # The same closure through the road-closure analysis (every edge crossing the
    # impassable area the flood writes with --out) gives the same answer.
    out = tmp_path / "flood.gpkg"
    written = run_cli(*flood_args[:-1], "--out", str(out))
    assert written.returncode == 0 and out.exists(), written.stderr
    area = tmp_path / "impassable.gpkg"
    gpd.read_file(out, layer="impassable_area").to_file(area)
    closure = run_cli(
        "analyze",
        "road-closure",
        str(sample3d.path),
        "--where",
        "poi_type=医院,消防站",
        "--area",
        str(area),
        "--json",
    )
    assert closure.returncode == 0, closure.stderr
    summary = json.loads(closure.stdout)
    assert summary["closed_edges"] == report["edges_impassable"]
    assert summary["buildings_lost"] == report["buildings_lost_access"]
    assert summary["buildings_delayed"] == report["buildings_delayed"]
    # The stored depth grid is a raster layer; --depth-raster reads it back.
    assert any(e["layer"] == "dem" for e in raster_imports(sample3d))
    again = run_cli(
        "analyze",
        "flood",
        str(sample3d.path),
        "--depth-raster",
        "flood_503",
        "--json",
        "--where",
        "",
    )
    assert again.returncode == 0, again.stderr
    replay = json.loads(again.stdout)
    assert replay["buildings_flooded"] == report["buildings_flooded"]
    assert replay["roads_impassable"] == report["roads_impassable"]
    bad = run_cli("analyze", "flood", str(sample3d.path), "--level", "503")
    assert bad.returncode == 2 and "--dem" in bad.stderr
