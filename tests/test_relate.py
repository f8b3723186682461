"""Relations checked against independent geopandas computations and hand-made cases."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import twin
from tests.conftest import GK105
from twin.relate import largest_share, nearest_positions, nearest_within


@pytest.fixture(scope="module")
def sample(sample_twin: twin.Twin) -> twin.Twin:
    """The session's built sample twin (read only)."""
    return sample_twin


def _by_overlay(features: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, measure: str) -> pd.DataFrame:
    left = features[["geometry"]].rename_axis("f").reset_index()
    right = zones[["geometry"]].rename_axis("z").reset_index()
    pieces = gpd.overlay(left, right, how="intersection", keep_geom_type=True)
    pieces["m"] = getattr(pieces.geometry, measure)
    pieces = pieces[pieces["m"] > 0]
    best = pieces.sort_values("m").groupby("f").tail(1).set_index("f")
    total = getattr(features.geometry, measure)
    return pd.DataFrame({"zone": best["z"], "share": best["m"] / total.loc[best.index]})


def test_buildings_to_parcels_match_overlay(sample: twin.Twin) -> None:
    buildings, parcels = sample.layer("buildings"), sample.layer("parcels")
    ours = largest_share(buildings, parcels)
    ref = _by_overlay(buildings, parcels, "area")
    assert ours["zone"].notna().sum() == len(ref)
    assert (ours.loc[ref.index, "zone"] == ref["zone"]).all()
    np.testing.assert_allclose(ours.loc[ref.index, "share"], ref["share"], rtol=1e-9)
    straddling = ours[ours["n_zones"] > 1]
    assert len(straddling) > 0 and (straddling["share"] < 1).all()
    on_none = ours[ours["zone"].isna()]
    assert len(on_none) > 0 and (on_none["share"] == 0).all()
    assert not on_none.index.isin(ref.index).any()  # the overlay finds no area for them either
    assert (on_none["n_zones"] == 0).all()


def test_roads_to_districts_by_length(sample: twin.Twin) -> None:
    roads, districts = sample.layer("roads"), sample.layer("districts")
    ours = largest_share(roads, districts)
    ref = _by_overlay(roads, districts, "length")
    assert (ours.loc[ref.index, "zone"] == ref["zone"]).all()
    np.testing.assert_allclose(ours.loc[ref.index, "share"], ref["share"], rtol=1e-9)


def test_points_to_grid_cells(sample: twin.Twin) -> None:
    sensors, grids = sample.layer("sensors"), sample.layer("grids")
    ours = largest_share(sensors, grids)
    ref = gpd.sjoin(sensors, grids, predicate="within")["uid_right"]
    assert (ours.loc[ref.index, "zone"] == ref).all()
    assert (ours.loc[ref.index, "share"] == 1.0).all()


def test_sensor_to_nearest_building_matches_sjoin_nearest(sample: twin.Twin) -> None:
    sensors, buildings = sample.layer("sensors"), sample.layer("buildings")
    ours = nearest_within(sensors, buildings, max_distance_m=30)
    ref = gpd.sjoin_nearest(sensors, buildings, max_distance=30, distance_col="d")
    ref = ref[~ref.index.duplicated()]
    assert ours["target"].notna().sum() == len(ref)
    np.testing.assert_allclose(ours.loc[ref.index, "distance_m"], ref["d"], atol=1e-9)
    unique = ref.index[~ref.index.isin(ref.index[ref.index.duplicated()])]
    assert (ours.loc[unique, "target"] == ref.loc[unique, "uid_right"]).all()
    inside = ours["how"] == "inside"
    assert inside.any() and (ours.loc[inside, "distance_m"] == 0).all()


def _frame(geoms: list, index: list[str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=geoms, index=pd.Index(index, name="uid"), crs=GK105)


def test_hand_checked_shares() -> None:
    parcels = _frame([shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)], ["p1", "p2"])
    holed = shapely.Polygon(
        shapely.box(1, 1, 9, 9).exterior.coords, [shapely.box(3, 3, 7, 7).exterior.coords]
    )
    buildings = _frame(
        [
            shapely.box(4, 2, 14, 4),  # 60 % in p1, 40 % in p2
            shapely.MultiPolygon([shapely.box(1, 1, 2, 2), shapely.box(11, 1, 14, 2)]),  # 1 vs 3
            holed,  # inside p1, courtyard excluded from its area
            shapely.box(9, 12, 11, 13),  # outside every parcel
            shapely.box(10, 0, 12, 1),  # on the shared edge, inside p2 only
        ],
        ["straddle", "multi", "courtyard", "outside", "edge"],
    )
    result = largest_share(buildings, parcels)
    assert result["zone"].tolist()[:3] == ["p1", "p2", "p1"] and pd.isna(result["zone"].iloc[3])
    assert result["share"].tolist() == pytest.approx([0.6, 0.75, 1.0, 0.0, 1.0])
    assert result["n_zones"].tolist() == [2, 2, 1, 0, 1]


def test_crs_discipline(tmp_path: Path) -> None:
    a = _frame([shapely.box(0, 0, 1, 1)], ["a"])
    with pytest.raises(twin.CRSError, match="different CRSs"):
        largest_share(a, a.to_crs(4490))
    with pytest.raises(twin.CRSError, match="geographic"):
        nearest_within(a.to_crs(4490), a.to_crs(4490), max_distance_m=5)


@pytest.mark.parametrize("n_points", [50, 2000])  # fewer and more queries than targets
def test_nearest_positions_match_query_nearest(n_points: int) -> None:
    rng = np.random.default_rng(7)
    starts = rng.uniform(0, 1000, (400, 2))
    lines = shapely.linestrings(np.stack([starts, starts + rng.uniform(-60, 60, (400, 2))], axis=1))
    points = shapely.points(rng.uniform(-50, 1050, (n_points, 2)))
    # A point exactly between two lines: a tie, which goes to the first line.
    lines[:2] = [
        shapely.LineString([(2000, 0), (2000, 10)]),
        shapely.LineString([(2010, 0), (2010, 10)]),
    ]
    points[0] = shapely.Point(2005, 5)
    target, distance = nearest_positions(points, lines, max_distance_m=25)
    (pi, ti), dist = shapely.STRtree(lines).query_nearest(
        points, max_distance=25, return_distance=True, all_matches=True
    )
    best = pd.DataFrame({"p": pi, "t": ti, "d": dist}).groupby("p")
    reached = np.flatnonzero(target >= 0)
    assert reached.tolist() == sorted(best.groups)
    np.testing.assert_allclose(distance[reached], best["d"].min().loc[reached], rtol=0, atol=0)
    assert (target[reached] == best["t"].min().loc[reached]).all()  # ties: the first target
    assert target[0] == 0 and distance[0] == 5.0
    assert np.isnan(distance[target < 0]).all()
    unbounded, far = nearest_positions(points, lines, max_distance_m=np.inf)
    assert (unbounded >= 0).all() and (far[reached] == distance[reached]).all()
