"""twin indicators: every layer's indicators by zone, from the twin."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

import twin
from tests.conftest import run_cli
from twin.relate import largest_share
from twin.zones import indicators_by_zone


@pytest.fixture(scope="module")
def sample(sample_twin: twin.Twin) -> twin.Twin:
    """The session's built sample twin (read only)."""
    return sample_twin


def test_grid_table_adds_up(sample: twin.Twin) -> None:
    table = indicators_by_zone(sample, "grid")
    grids, buildings = sample.layer("grids"), sample.layer("buildings")
    assert table.index.equals(grids.index)
    # Counted once each, in the cell holding most of the footprint.
    homes = largest_share(buildings, grids)["zone"]
    assert table["building_count"].sum() == homes.notna().sum()
    assert (
        table["building_count"] == homes.value_counts().reindex(grids.index, fill_value=0)
    ).all()
    # Clipped pipe lengths add up to the length of the pipes inside the district area.
    pipes = sample.layer("water_pipes")
    inside = gpd.clip(pipes, grids.union_all()).length.sum() / 1000
    assert table["water_pipes_km"].sum() == pytest.approx(inside, rel=1e-9)
    assert table["water_pipes_water_km"].sum() == pytest.approx(inside, rel=1e-9)
    assert {"sensors_smoke_count", "cameras_camera_count", "roads_km"} <= set(table.columns)
    assert table["sensors_sensor_count"].sum() == len(sample.layer("sensors").clip(grids))


def test_far_by_parcel_equals_gfa_over_area(sample: twin.Twin) -> None:
    table = indicators_by_zone(sample, "parcel")
    np.testing.assert_allclose(table["far"], table["gfa_m2"] / table["area_m2"], rtol=1e-12)


def test_indicators_cli(sample: twin.Twin, tmp_path: Path) -> None:
    out = tmp_path / "by_district.parquet"
    result = run_cli(
        "indicators", str(sample.path), "--by", "district", "--out", str(out), "--json"
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    written = gpd.read_parquet(out)
    assert payload["zones"] == len(written) == sample.info("districts").feature_count
    assert written.crs.to_epsg() == 4544
    assert sum(r["building_count"] for r in payload["rows"]) == written["building_count"].sum()
    bad = run_cli("indicators", str(sample.path), "--by", "valves")
    assert bad.returncode == 2 and "--by" in bad.stderr
