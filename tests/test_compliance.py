"""Plan compliance checked against an independent overlay computation and hand-made cases."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

import twin
from tests.conftest import GK105, run_cli
from twin.compliance import plan_compliance


@pytest.fixture(scope="module")
def sample(sample_twin: twin.Twin) -> twin.Twin:
    """The session's built sample twin (read only)."""
    return sample_twin


def _floors(buildings: gpd.GeoDataFrame) -> pd.Series:
    # Storeys from height, rounded half up (13.5 m -> 5 floors), at least one.
    derived = np.maximum(np.floor(buildings["height_m"].astype(float) / 3.0 + 0.5), 1)
    return buildings["floors"].astype(float).fillna(derived)


def test_far_and_height_match_an_overlay(sample: twin.Twin) -> None:
    parcels, buildings = sample.layer("parcels"), sample.layer("buildings")
    table = plan_compliance(parcels, buildings)
    pieces = gpd.overlay(
        buildings.assign(f=_floors(buildings)).rename_axis("b").reset_index(),
        parcels[["far_limit", "height_limit_m", "geometry"]].rename_axis("p").reset_index(),
        how="intersection",
    )
    gfa = (pieces.area * pieces["f"]).groupby(pieces["p"]).sum()
    far = (gfa / parcels.area.loc[gfa.index]).reindex(parcels.index, fill_value=0.0)
    over = far[far > parcels["far_limit"] + 1e-9]
    got = table[table["check"] == "far"].set_index("uid")
    assert sorted(got.index) == sorted(over.index) and len(over) > 0
    np.testing.assert_allclose(got.loc[over.index, "measured"], over, atol=1e-4)
    # Height: the parcel holding the largest piece of each building, its limit.
    home = pieces.loc[pieces.area.groupby(pieces["b"]).idxmax()].set_index("b")
    height = buildings["height_m"].fillna(buildings["floors"].astype(float) * 3.0)
    height = height.loc[home.index]
    tall = height[height > home["height_limit_m"] + 1e-9]
    got_tall = table[table["check"] == "height"].set_index("uid")
    assert sorted(got_tall.index) == sorted(tall.index) and len(tall) > 0
    assert (got_tall.loc[tall.index, "parcel_uid"] == home.loc[tall.index, "p"]).all()
    alone = set(buildings.index) - set(pieces["b"])
    assert set(table.loc[table["check"] == "no_parcel", "uid"]) == alone and alone


def test_hand_checked_limits() -> None:
    parcels = gpd.GeoDataFrame(
        {
            "far_limit": [0.5, 0.0, np.nan],
            "coverage_limit": [0.2, np.nan, 0.5],
            "height_limit_m": [np.nan, 10.0, 9.0],
        },
        geometry=[
            shapely.box(0, 0, 100, 100),
            shapely.box(100, 0, 200, 100),
            shapely.box(200, 0, 300, 100),
        ],
        index=["P1", "P2", "P3"],
        crs=GK105,
    )
    buildings = gpd.GeoDataFrame(
        {"floors": [2, 1, 3], "height_m": [6.0, np.nan, 9.0]},
        geometry=[
            shapely.box(0, 0, 50, 50),
            shapely.box(110, 10, 120, 20),
            shapely.box(210, 10, 220, 20),
        ],
        index=["B1", "B2", "B3"],
        crs=GK105,
    )
    table = plan_compliance(parcels, buildings).set_index(["check", "uid"])
    # P1: coverage 2500/10000 = 0.25 > 0.2; FAR 0.5 = limit complies.
    assert table.loc[("coverage", "P1"), "excess"] == pytest.approx(0.05)
    assert ("far", "P1") not in table.index
    # P2: a FAR limit of 0 (green land) is a limit: 100 m2 x 1 floor / 10000 m2.
    assert table.loc[("far", "P2"), "measured"] == pytest.approx(0.01)
    # B3 is exactly at its 9 m limit; P3 has no FAR limit to break.
    assert set(table.index) == {("coverage", "P1"), ("far", "P2")}


def test_check_cli_out_and_json(sample: twin.Twin, tmp_path: Path) -> None:
    out = tmp_path / "compliance.gpkg"
    result = run_cli("check", str(sample.path), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    layer = pyogrio.read_dataframe(out, layer="compliance")
    assert len(layer) == len(payload["violations"]) == sum(payload["counts"].values())
    assert layer.crs.to_epsg() == 4544
    assert set(payload["counts"]) == {"far", "height", "no_parcel"}
