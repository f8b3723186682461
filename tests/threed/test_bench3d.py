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
