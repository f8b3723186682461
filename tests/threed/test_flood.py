"""Flood extent against scipy.ndimage.label, depth at buildings and roads, lost access."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio.features
import rasterio.mask
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
    assert (impact.roads.loc[closed, "max_depth_m"] > 0.15).all()
    assert impact.summary.roads_impassable == len(closed) > 0


@pytest.mark.slow
def test_cli_flood_report_with_lost_access(sample3d: twin.Twin, tmp_path) -> None:
    result = run_cli(
        "analyze",
        "flood",
        str(sample3d.path),
        "--dem",
        "dem",
        "--level",
        "503.2",
        "--water",
        "parcels:land_use=E1",
        "--save-depth",
        "flood_503",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["level_m"] == 503.2 and report["buildings_flooded"] > 0
    assert report["roads_impassable"] == len(report["impassable_roads"]) > 0
    assert report["buildings_lost_access"] is not None
    assert report["buildings_lost_access"] + report["buildings_delayed"] > 0
    # The same closure through the road-closure analysis gives the same answer.
    closure = run_cli(
        "analyze",
        "road-closure",
        str(sample3d.path),
        "--where",
        "poi_type=医院,消防站",
        *[arg for road in report["impassable_roads"] for arg in ("--close", road)],
        "--json",
    )
    assert closure.returncode == 0, closure.stderr
    summary = json.loads(closure.stdout)
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
    out = tmp_path / "flood.gpkg"
    written = run_cli(
        "analyze",
        "flood",
        str(sample3d.path),
        "--dem",
        "dem",
        "--level",
        "503.2",
        "--out",
        str(out),
    )
    assert written.returncode == 0 and out.exists()
    bad = run_cli("analyze", "flood", str(sample3d.path), "--level", "503")
    assert bad.returncode == 2 and "--dem" in bad.stderr
