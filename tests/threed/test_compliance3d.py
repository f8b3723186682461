"""Height limits in 3D: parcel limits with measured heights, and a limit-surface raster."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

import twin
from tests.conftest import run_cli
from twin.city3d import height_compliance_3d
from twin.compliance import COLUMNS
from twin.raster import Raster, read_raster, store_raster


def test_limit_surface_by_hand() -> None:
    # A surface sloping up eastwards: 520 m at x=0 rising 1 m per 10 m.
    xs = (np.arange(20) + 0.5) * 10
    surface = Raster(np.tile(520 + xs / 10, (10, 1)), Affine(10, 0, 0, 0, -10, 100), None)
    buildings = gpd.GeoDataFrame(
        {"height_m": [30.0, 30.0, 10.0], "ground_m": [500.0, 500.0, 500.0]},
        geometry=[
            shapely.box(0, 0, 20, 20),
            shapely.box(150, 0, 170, 20),
            shapely.box(40, 40, 60, 60),
        ],
        index=["b.west", "b.east", "b.low"],
    )
    table = height_compliance_3d(None, buildings, limit_surface=surface)
    assert list(table.columns) == COLUMNS
    # b.west: roof 530 over the lowest surface cell it touches (520.5): 9.5 m too high.
    assert table["uid"].tolist() == ["b.west"]
    row = table.iloc[0]
    assert (row["check"], row["measured"], row["limit"], row["excess"]) == (
        "limit_surface",
        530.0,
        520.5,
        9.5,
    )


@pytest.mark.slow
def test_check_3d_on_the_sample(sample3d: twin.Twin) -> None:
    buildings = sample3d.layer("buildings")
    parcels = sample3d.layer("parcels")
    # A clearance surface 60 m above the DEM: buildings over 60 m tall break it.
    dem = read_raster(sample3d, "dem")
    store_raster(
        sample3d,
        Raster(dem.values + 60.0, dem.transform, dem.crs),
        layer="clearance",
        kind="raster",
        source="test: DEM + 60 m",
    )
    table = height_compliance_3d(
        parcels, buildings, limit_surface=read_raster(sample3d, "clearance")
    )
    over = table[table["check"] == "limit_surface"]
    roof = buildings["ground_m"] + buildings["height_m"]
    # Independent: roof above (lowest DEM cell + 60) for buildings on flat-ish ground.
    tall = set(buildings.index[buildings["height_m"] > 60.0 + 2.0])
    assert tall <= set(over["uid"])
    assert (
        over.set_index("uid")["measured"] - roof.reindex(over["uid"]).to_numpy()
    ).abs().max() < 0.01
    from twin.compliance import plan_compliance

    plan = plan_compliance(parcels, buildings)
    assert sorted(table[table["check"] == "height"]["uid"]) == sorted(
        plan[plan["check"] == "height"]["uid"]
    )
    result = run_cli("check-3d", str(sample3d.path), "--limit-surface", "clearance", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["counts"]["limit_surface"] == len(over)
    assert report["counts"]["height"] == int((table["check"] == "height").sum()) > 0
    # The parcel check uses the measured heights: a building over its parcel's limit.
    first = next(v for v in report["violations"] if v["check"] == "height")
    assert first["measured"] == buildings.loc[first["uid"], "height_m"]
    assert first["excess"] > 0
    missing = run_cli("check-3d", str(sample3d.path), "--limit-surface", "nope")
    assert missing.returncode == 2
