"""Heights from the sample DSM − DEM against the heights the generator raised the DSM by."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import twin
from tests.conftest import SAMPLES, run_cli
from twin.heights import measured_heights
from twin.raster import open_raster
from twin.sample import generate_city
from twin.sample.terrain import ROOF_NOISE_M, terrain_for


@pytest.fixture(scope="module")
def truth() -> pd.DataFrame:
    _, _, table = terrain_for(generate_city(3000, seed=42))
    return table.set_index("buildings." + table["建筑编码"])


def test_measured_heights_match_the_generator(sample3d_read: twin.Twin, truth) -> None:
    buildings = sample3d_read.layer("buildings")
    assert (buildings["height_source"] == "dsm").all()
    error = buildings["height_m"] - truth["true_height_m"].reindex(buildings.index)
    # p90 of roofs with N(0, 0.25 m) noise sits 1.28 sigma above the roof: +0.32 m.
    assert error.abs().max() < 0.7
    assert error.mean() == pytest.approx(1.2816 * ROOF_NOISE_M, abs=0.05)
    assert (buildings["height_samples"] >= 3).all()


def test_ground_is_the_lowest_dem_cell(sample3d_read: twin.Twin) -> None:
    import rasterio
    from rasterio.mask import mask

    buildings = sample3d_read.layer("buildings")
    with rasterio.open(SAMPLES / "dem.tif") as src:
        for uid in buildings.index[::300]:
            data, _ = mask(src, [buildings.geometry[uid]], crop=True, filled=False)
            assert buildings.loc[uid, "ground_m"] == pytest.approx(float(data.min()), abs=0.006)


def test_flags_find_the_unrecorded_storeys(sample3d_read: twin.Twin, truth) -> None:
    buildings = sample3d_read.layer("buildings")
    measured = measured_heights(
        buildings, open_raster(SAMPLES / "dsm.tif"), open_raster(SAMPLES / "dem.tif")
    )
    flagged = measured.index[measured["floors_flag"] == "taller"]
    extra = truth["extra_storeys"].reindex(measured.index) > 0
    assert len(flagged) >= 20
    assert extra[flagged].mean() > 0.85  # nearly every flag is a building that grew
    assert (measured["floors_flag"] == "lower").sum() == 0
    # The flag is exactly "taller than floors x 5 m + 3 m".
    floors = pd.to_numeric(buildings["floors"], errors="coerce")
    expected = measured["height_m"] > floors * 5.0 + 3.0
    assert set(flagged) == set(measured.index[expected.fillna(False).astype(bool)])


def test_heights_update_keeps_uids_and_history(sample3d: twin.Twin) -> None:
    imports = sample3d.imports("buildings")
    assert imports["source"].iloc[-1].startswith("twin heights: p90 of dsm - dem")
    changes = sample3d.changes(int(imports.index[-1]))
    assert set(changes["change"]) == {"changed"} and len(changes) == 3000
    history = sample3d.history("buildings").set_index("uid")
    assert len(history) == 3000 and "ground_m" not in history.columns
    import geopandas as gpd

    declared = gpd.read_file(SAMPLES / "buildings.geojson").set_index("建筑编码")["建筑高度"]
    declared.index = "buildings." + declared.index
    pd.testing.assert_series_equal(
        history["height_m"].sort_index(), declared.sort_index(), check_names=False
    )


@pytest.mark.slow
def test_cli_heights_json(sample3d: twin.Twin, truth) -> None:
    result = run_cli(
        "heights",
        str(sample3d.path),
        "--dsm",
        "dsm",
        "--dem",
        "dem",
        "--percentile",
        "50",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["buildings"] == 3000 and report["measured"] == 3000
    assert report["taller"] == len(report["flagged"]) - report["lower"] - report["not_measurable"]
    median = sample3d.layer("buildings")["height_m"]
    # The median of the noisy roof cells is unbiased, unlike the p90 (+0.32 m).
    error = median - truth["true_height_m"].reindex(median.index)
    assert abs(error.mean()) < 0.05 and np.isfinite(median).all()
    missing = run_cli("heights", str(sample3d.path), "--dsm", "nope")
    assert missing.returncode == 2 and "no raster layer 'nope'" in missing.stderr


def test_dem_on_another_grid_is_resampled() -> None:
    import geopandas as gpd
    import shapely
    from affine import Affine

    from twin.raster import Raster

    # A 10 m DEM sloping 1 m per 10 m eastwards, a 1 m DSM with a 20 m block on it.
    dem = Raster(
        np.tile(500 + np.arange(10, dtype=float), (10, 1)), Affine(10, 0, 0, 0, -10, 100), None
    )
    xs = np.arange(100) + 0.5
    ground = np.tile(500 + (xs - 5) / 10, (100, 1))
    dsm_values = ground.copy()
    dsm_values[40:60, 40:60] += 20.0
    dsm = Raster(dsm_values, Affine(1, 0, 0, 0, -1, 100), None)
    block = gpd.GeoDataFrame({"floors": [6]}, geometry=[shapely.box(40, 40, 60, 60)], index=["b.B"])
    row = measured_heights(block, dsm, dem).loc["b.B"]
    assert row["samples"] == 400
    assert row["height_m"] == pytest.approx(20.0, abs=1e-6)
    assert row["ground_m"] == pytest.approx(503.55, abs=1e-6)  # bilinear at x = 40.5
    assert row["floors_flag"] == ""


def test_tiled_reading_gives_the_same_answer(sample3d_read: twin.Twin) -> None:
    from twin.heights import measured_heights_tiled

    buildings = sample3d_read.layer("buildings")
    whole = measured_heights(
        buildings, open_raster(SAMPLES / "dsm.tif"), open_raster(SAMPLES / "dem.tif")
    )
    tiled = measured_heights_tiled(
        buildings, SAMPLES / "dsm.tif", SAMPLES / "dem.tif", tile_m=300.0
    )
    pd.testing.assert_frame_equal(whole, tiled)
