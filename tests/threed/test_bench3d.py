"""The 3D benchmark scenarios run and agree with their peers on small inputs."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest

from bench import threed
from tests.conftest import SAMPLES


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bench3d")
    buildings = folder / "buildings.gpkg"
    gpd.read_file(SAMPLES / "buildings.geojson").to_crs("EPSG:4544").to_file(buildings)
    return {
        "buildings": buildings,
        "dem": SAMPLES / "dem.tif",
        "dsm": SAMPLES / "dsm.tif",
        "ndsm": threed.write_ndsm_vrt(
            folder / "ndsm.vrt", SAMPLES / "dsm.tif", SAMPLES / "dem.tif"
        ),
        "flood_dem": threed.write_flood_dem(folder / "flood.tif", side=600),
    }


@pytest.mark.slow
def test_heights_scenarios_agree(inputs: dict[str, Path], tmp_path: Path) -> None:
    ours = threed.heights_ours(inputs, tmp_path)
    peer = threed.heights_rasterstats(inputs, tmp_path)
    exact = threed.heights_exactextract(inputs, tmp_path)
    assert ours["buildings"] == peer["buildings"] == exact["buildings"] == 3000
    assert (ours["measured"], ours["mean_height_m"]) == (peer["measured"], peer["mean_height_m"])
    assert abs(exact["mean_height_m"] - ours["mean_height_m"]) < 1.0  # coverage-weighted


def test_flood_and_export_scenarios(inputs: dict[str, Path], tmp_path: Path) -> None:
    ours, peer = threed.flood_ours(inputs, tmp_path), threed.flood_peer(inputs, tmp_path)
    assert ours["cells"] == peer["cells"] > 0
    exported = threed.lod1_cityjson_ours(inputs, tmp_path)
    assert exported["objects"] == 3000


def test_city_terrain_written_window_by_window_equals_one_window(tmp_path: Path) -> None:
    """The bench's tiled DEM/DSM do not depend on the window size, and the DSM stands each
    building's height above the DEM inside its footprint."""
    import numpy as np
    import rasterio
    import shapely

    frame = gpd.read_file(SAMPLES / "buildings.geojson").to_crs("EPSG:4544")
    centre = frame.union_all().centroid
    frame = frame[frame.intersects(centre.buffer(150))]
    source = tmp_path / "some.gpkg"
    frame.to_file(source)
    threed.write_city_terrain(tmp_path / "small", source, window=128)
    threed.write_city_terrain(tmp_path / "whole", source, window=100_000)
    grids = {}
    for name in ("small", "whole"):
        for kind in ("dem", "dsm"):
            with rasterio.open(tmp_path / name / f"{kind}.tif") as src:
                assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
                assert src.block_shapes == [(512, 512)]
                grids[name, kind] = src.read(1)
                transform = src.transform
    np.testing.assert_array_equal(grids["small", "dem"], grids["whole", "dem"])
    np.testing.assert_array_equal(grids["small", "dsm"], grids["whole", "dsm"])
    # One building, by hand: the cell at its centre is raised by its height.
    first = frame.iloc[0]
    height = first["建筑高度"] if np.isfinite(first["建筑高度"]) else first["层数"] * 3.2
    inside = shapely.Point(first.geometry.representative_point())
    col, row = (int(v) for v in ~transform @ (inside.x, inside.y))
    raised = grids["whole", "dsm"][row, col] - grids["whole", "dem"][row, col]
    assert raised == pytest.approx(height, abs=1e-3)
