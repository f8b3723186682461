"""Indicators checked against hand-computed fixtures and independent computations.

Independent computations: ``geopandas.overlay(..., how="intersection")`` for
clipped areas and lengths, and a per-zone ``shapely.union_all`` of sensing
discs for coverage ratios, on the sample district imported into a twin.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import twin
from tests.conftest import GK105
from twin.errors import CRSError, UsageError
from twin.indicators import (
    DEFAULT_RADIUS_M,
    building_heights,
    building_indicators,
    coverage_gaps,
    floor_counts,
    network_lengths,
    sensing_radii,
    sensor_indicators,
)

X, Y = 500_000.0, 3_390_000.0  # local origin in EPSG:4544
QUAD_SEGS = 16  # as the indicators buffer sensing discs


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X + x0, Y + y0, X + x1, Y + y1)


def pt(x: float, y: float) -> shapely.Point:
    return shapely.Point(X + x, Y + y)


def frame(geometry: list, index: list | None = None, **columns: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=geometry, index=index, crs=GK105)


def disc_area(radius: float) -> float:
    return float(shapely.area(shapely.buffer(shapely.Point(0, 0), radius, quad_segs=QUAD_SEGS)))


@pytest.fixture(scope="module")
def sample(sample_twin: twin.Twin) -> dict[str, gpd.GeoDataFrame]:
    """The session's sample twin's layers (twin field names), read once for this module."""
    return {name: sample_twin.layer(name) for name in sample_twin.layers}


# -- floors and heights -------------------------------------------------------


def test_floor_counts_sources_and_rounding() -> None:
    b = pd.DataFrame(
        {
            "floors": [5, None, None, None, 0, -2, None],
            "height_m": [99.0, 10.5, 10.4, 1.2, 9.0, None, None],
        },
        index=list("abcdefg"),
    )
    out = floor_counts(b)
    # 10.5 / 3 = 3.5 rounds half up to 4; 1.2 / 3 rounds to 0, raised to 1;
    # 0 and negative floors are missing, so e falls back on its height.
    expected = [5.0, 4.0, 3.0, 1.0, 3.0, np.nan, np.nan]
    np.testing.assert_array_equal(out["floors"].to_numpy(), expected)
    assert out["floors_source"].tolist() == [
        "floors",
        "height",
        "height",
        "height",
        "height",
        "unknown",
        "unknown",
    ]
    assert list(out.index) == list("abcdefg")
    assert floor_counts(b, floor_height_m=3.5)["floors"]["b"] == 3.0  # 10.5 / 3.5


def test_building_heights_and_bad_floor_height() -> None:
    b = pd.DataFrame({"floors": [4, 6, None], "height_m": [30.0, 0.0, None]})
    out = building_heights(b, floor_height_m=3.2)
    np.testing.assert_allclose(out["height_m"].to_numpy(), [30.0, 19.2, np.nan])
    assert out["height_source"].tolist() == ["height", "floors", "unknown"]
    with pytest.raises(UsageError, match="floor_height_m"):
        floor_counts(b, floor_height_m=0)
    only_floors = pd.DataFrame({"floors": [2]})
    assert floor_counts(only_floors)["floors_source"].tolist() == ["floors"]
    assert building_heights(only_floors)["height_m"].tolist() == [6.0]


# -- building indicators: hand-computed fixture ---------------------------------


@pytest.fixture
def parcels() -> gpd.GeoDataFrame:
    # 100 m x 100 m squares: 10,000 m2 each; P3 has no buildings.
    return frame(
        [box(0, 0, 100, 100), box(100, 0, 200, 100), box(0, 100, 100, 200)],
        index=["P1", "P2", "P3"],
    )


@pytest.fixture
def buildings() -> gpd.GeoDataFrame:
    straddler = box(70, 10, 120, 30)  # 1,000 m2: 600 in P1, 400 in P2
    courtyard = shapely.Polygon(  # 40 x 40 with a 20 x 20 hole: 1,200 m2 in P1
        box(10, 40, 50, 80).exterior.coords, [box(20, 50, 40, 70).exterior.coords]
    )
    multi = shapely.MultiPolygon([box(110, 50, 120, 60), box(130, 50, 140, 70)])  # 300 m2 in P2
    floors_only = box(150, 10, 160, 20)  # 100 m2 in P2
    return frame(
        [straddler, courtyard, multi, floors_only],
        index=[10, 11, 12, 13],
        floors=[5, 3, None, 2],
        height_m=[16.0, 10.5, 12.0, None],
        population=[100, 30, 20, None],
    )


def test_building_indicators_hand_computed(
    parcels: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame
) -> None:
    out = building_indicators(parcels, buildings)
    assert list(out.index) == ["P1", "P2", "P3"]
    assert out["building_count"].tolist() == [2, 2, 0]  # straddler counted in P1 (60 %)
    # footprints: P1 600 + 1200, P2 400 + 300 + 100
    np.testing.assert_allclose(out["footprint_m2"], [1800.0, 800.0, 0.0])
    # GFA: P1 600 x 5 + 1200 x 3; P2 400 x 5 + 300 x 4 (12 m / 3 m) + 100 x 2
    np.testing.assert_allclose(out["gfa_m2"], [6600.0, 3400.0, 0.0])
    np.testing.assert_allclose(out["far"], [0.66, 0.34, 0.0])
    np.testing.assert_allclose(out["coverage"], [0.18, 0.08, 0.0])
    # heights of the counted buildings: P1 16 and 10.5; P2 12 and 2 x 3 m
    np.testing.assert_allclose(out["height_mean_m"], [13.25, 9.0, np.nan])
    np.testing.assert_allclose(out["height_max_m"], [16.0, 12.0, np.nan])
    assert out["floors_from_height"].tolist() == [0, 1, 0]
    assert out["height_from_floors"].tolist() == [0, 1, 0]
    assert out["floors_unknown"].tolist() == [0, 0, 0]
    # population split 60/40 for the straddler; a missing value counts as 0
    np.testing.assert_allclose(out["population"], [60 + 30, 40 + 20, 0.0])


def test_building_indicators_floor_height_and_unknown_floors(
    parcels: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame
) -> None:
    out = building_indicators(parcels, buildings, floor_height_m=4.0)
    # multi: 12 m / 4 m = 3 floors; floors_only: 2 x 4 m = 8 m high
    assert out.loc["P2", "gfa_m2"] == pytest.approx(400 * 5 + 300 * 3 + 100 * 2)
    assert out.loc["P2", "height_mean_m"] == pytest.approx((12.0 + 8.0) / 2)
    unknown = buildings.assign(floors=[5, None, None, 2], height_m=[16.0, None, 12.0, None])
    out = building_indicators(parcels, unknown)
    assert out.loc["P1", "floors_unknown"] == 1
    assert out.loc["P1", "gfa_m2"] == pytest.approx(600 * 5)  # courtyard adds nothing
    assert out.loc["P1", "footprint_m2"] == pytest.approx(1800)
    assert out.loc["P1", "height_mean_m"] == 16.0


def test_building_indicators_without_population_or_buildings(
    parcels: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame
) -> None:
    out = building_indicators(parcels, buildings.drop(columns="population"))
    assert "population" not in out.columns
    none = building_indicators(parcels, buildings.iloc[:0])
    assert none["building_count"].tolist() == [0, 0, 0]
    assert none["far"].tolist() == [0.0, 0.0, 0.0]
    assert none["height_mean_m"].isna().all()


def test_ties_touching_and_zone_holes() -> None:
    ring = shapely.Polygon(
        box(0, 0, 100, 100).exterior.coords, [box(20, 20, 80, 80).exterior.coords]
    )
    zones = frame([box(100, 0, 200, 100), box(0, 0, 100, 100), ring, box(20, 20, 80, 80)])
    b = frame(
        [
            box(90, 0, 110, 10),  # 50/50 between zones 1 and 0: counted in zone 0 (first)
            box(200, 0, 210, 10),  # touches zone 0 only: counted nowhere
            box(40, 40, 50, 50),  # in the ring's hole: zone 1 and zone 3, not the ring
        ],
        floors=[1, 1, 1],
    )
    out = building_indicators(zones, b)
    assert out["building_count"].tolist() == [1, 1, 0, 0]  # the hole building: zone 1 first
    np.testing.assert_allclose(out["footprint_m2"], [100.0, 200.0, 100.0, 100.0])
    np.testing.assert_allclose(out["coverage"], [0.01, 0.02, 100 / 6400, 100 / 3600])


def test_crs_checks(parcels: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> None:
    with pytest.raises(CRSError, match="geographic"):
        building_indicators(parcels.to_crs(4490), buildings.to_crs(4490))
    with pytest.raises(CRSError, match=r"to_crs\(zones.crs\)"):
        building_indicators(parcels, buildings.to_crs(4545))
    with pytest.raises(CRSError, match="no CRS"):
        building_indicators(parcels, buildings.set_crs(None, allow_override=True))
    sensors = frame([pt(1, 1)], sensor_type=["smoke"]).to_crs(4326)
    with pytest.raises(CRSError):
        sensor_indicators(parcels, sensors)
    with pytest.raises(CRSError):
        coverage_gaps(parcels, sensors, "smoke")
    with pytest.raises(CRSError):
        network_lengths(parcels.set_crs(None, allow_override=True), frame([]))


# -- building indicators against geopandas.overlay on the sample district -------


def overlay_reference(
    zones: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Footprint, GFA and largest-share count per zone from geopandas.overlay."""
    b = buildings.assign(
        bid=np.arange(len(buildings)),
        fl=floor_counts(buildings)["floors"].to_numpy(),
    )[["bid", "fl", "geometry"]]
    z = zones.assign(zid=np.arange(len(zones)))[["zid", "geometry"]]
    pieces = gpd.overlay(b, z, how="intersection", keep_geom_type=True)
    pieces["a"] = pieces.area
    footprint = pieces.groupby("zid")["a"].sum()
    gfa = (pieces["a"] * pieces["fl"]).groupby(pieces["zid"]).sum()
    pieces = pieces[pieces["a"] > 0].sort_values(["bid", "a", "zid"], ascending=[1, 0, 1])
    count = pieces.drop_duplicates("bid")["zid"].value_counts()
    full = pd.RangeIndex(len(zones))
    return (
        footprint.reindex(full, fill_value=0.0),
        gfa.reindex(full, fill_value=0.0),
        count.reindex(full, fill_value=0),
    )


def cutting_squares(frame: gpd.GeoDataFrame, size_m: float, angle: float) -> gpd.GeoDataFrame:
    """Squares of ``size_m`` rotated by ``angle`` degrees, tiling the frame's extent."""
    x0, y0, x1, y1 = frame.total_bounds
    half = max(x1 - x0, y1 - y0) * 0.75
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    steps = np.arange(-half, half, size_m)
    squares = [
        shapely.box(cx + x, cy + y, cx + x + size_m, cy + y + size_m) for x in steps for y in steps
    ]
    tiles = gpd.GeoSeries(squares, crs=frame.crs).rotate(angle, origin=(cx, cy))
    keep = tiles.intersects(shapely.box(x0, y0, x1, y1))
    return gpd.GeoDataFrame(geometry=tiles[keep].to_numpy(), crs=frame.crs)


@pytest.mark.parametrize("zones_layer", ["grids", "parcels", "districts", "squares"])
def test_building_indicators_match_overlay(
    sample: dict[str, gpd.GeoDataFrame], zones_layer: str
) -> None:
    buildings = sample["buildings"]
    if zones_layer == "squares":  # zones cutting through many buildings, at an angle
        zones = cutting_squares(buildings, 97.0, 17.0)
    else:
        zones = sample[zones_layer]
    assert (buildings.geom_type == "MultiPolygon").any()
    out = building_indicators(zones, buildings)
    footprint, gfa, count = overlay_reference(zones, buildings)
    np.testing.assert_allclose(out["footprint_m2"], footprint, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(out["gfa_m2"], gfa, rtol=1e-9, atol=1e-6)
    np.testing.assert_array_equal(out["building_count"], count)
    np.testing.assert_allclose(out["far"], gfa.to_numpy() / zones.area.to_numpy(), rtol=1e-9)
    assert out["floors_from_height"].sum() > 0  # the sample has buildings with only a height
    if zones_layer == "squares":
        assert (out["building_count"] == 0).any()  # empty squares
        # at least a tenth of the buildings are cut: more zone parts than buildings
        parts = gpd.overlay(buildings[["geometry"]], zones, keep_geom_type=True)
        assert len(parts) > 1.1 * len(buildings)


# -- sensors ------------------------------------------------------------------------


@pytest.fixture
def two_zones() -> gpd.GeoDataFrame:
    return frame([box(0, 0, 100, 100), box(100, 0, 200, 100)], index=["A", "B"])


def test_sensor_on_boundary_counts_for_first_zone(two_zones: gpd.GeoDataFrame) -> None:
    sensors = frame(
        [pt(100, 50), pt(150, 50), pt(100, 100)],
        sensor_type=["smoke", "smoke", "gas_leak"],
    )
    out = sensor_indicators(two_zones, sensors)
    assert out["sensor_count"].tolist() == [2, 1]
    assert out["smoke_count"].tolist() == [1, 1]
    assert out["gas_leak_count"].tolist() == [1, 0]
    np.testing.assert_allclose(out["sensor_per_km2"], [200.0, 100.0])  # 0.01 km2 zones
    reverse = sensor_indicators(two_zones.iloc[::-1], sensors)
    assert reverse.loc["B", "sensor_count"] == 3  # B now comes first: it takes all three
    assert reverse.loc["A", "sensor_count"] == 0


def test_sensor_coverage_hand_computed(two_zones: gpd.GeoDataFrame) -> None:
    sensors = frame(
        [pt(50, 50), pt(50, 50), pt(100, 100), pt(170, 30), pt(10, 10)],
        sensor_type=["camera", "camera", "smoke", "smoke", "noise"],
        radius_m=[20.0, 20.0, None, 5.0, None],
    )
    out = sensor_indicators(two_zones, sensors)
    # two identical camera discs of 20 m in A, none in B
    np.testing.assert_allclose(out["camera_coverage"], [disc_area(20) / 1e4, 0.0])
    # smoke: the default 10 m disc on the shared corner puts a quarter in each zone
    quarter = disc_area(DEFAULT_RADIUS_M["smoke"]) / 4
    np.testing.assert_allclose(
        out["smoke_coverage"], [quarter / 1e4, (quarter + disc_area(5)) / 1e4], rtol=1e-9
    )
    assert disc_area(20) == pytest.approx(math.pi * 400, rel=2e-3)
    assert out["noise_count"].tolist() == [1, 0]
    assert out["noise_coverage"].isna().all()  # no radius for "noise"
    with_table = sensor_indicators(two_zones, sensors, radius_m={"noise": 10.0})
    assert with_table.loc["A", "noise_coverage"] == pytest.approx(disc_area(10) / 1e4)


def test_sensor_indicators_options(two_zones: gpd.GeoDataFrame) -> None:
    sensors = frame([pt(50, 50), pt(150, 50)], kind=["a", "b"])
    out = sensor_indicators(two_zones, sensors, by=None, radius_m=1000.0)
    assert list(out.columns) == ["sensor_count", "sensor_per_km2", "sensor_coverage"]
    assert out["sensor_coverage"].tolist() == [1.0, 1.0]
    by_kind = sensor_indicators(two_zones, sensors, by="kind", radius_m=1.0)
    assert by_kind["a_count"].tolist() == [1, 0]
    with pytest.raises(UsageError, match="no column"):
        sensor_indicators(two_zones, sensors)
    with pytest.raises(UsageError, match="positive"):
        sensing_radii(sensors, radius_m=-5.0, by="kind")
    empty = sensor_indicators(two_zones, sensors.iloc[:0], by=None)
    assert empty["sensor_count"].tolist() == [0, 0]


def test_sensing_radii_precedence() -> None:
    s = pd.DataFrame(
        {"sensor_type": ["smoke", "smoke", "camera", "x"], "radius_m": [7.5, None, 0.0, None]}
    )
    assert sensing_radii(s).tolist()[:3] == [7.5, 10.0, 50.0]
    assert np.isnan(sensing_radii(s).iloc[3])
    assert sensing_radii(s, radius_m=3.0).tolist() == [7.5, 3.0, 3.0, 3.0]
    assert sensing_radii(s, radius_m={"camera": 80.0}).tolist()[:3] == [7.5, 10.0, 80.0]


def test_coverage_gaps_hand_computed(two_zones: gpd.GeoDataFrame) -> None:
    sensors = frame([pt(0, 0), pt(150, 50)], sensor_type=["camera", "camera"], radius_m=[50, 20])
    gaps = coverage_gaps(two_zones, sensors, "camera")
    assert list(gaps.index) == ["A", "B"]
    assert gaps["zone"].tolist() == ["A", "B"]
    assert gaps.crs == two_zones.crs
    expected = [1e4 - disc_area(50) / 4, 1e4 - disc_area(20)]
    np.testing.assert_allclose(gaps["gap_m2"], expected, rtol=1e-9)
    np.testing.assert_allclose(gaps["gap_share"], np.array(expected) / 1e4, rtol=1e-9)
    # 80 m from the centre of B reaches its corners (70.7 m away): no gap left
    covered = coverage_gaps(two_zones.loc[["B"]], sensors.assign(radius_m=[50, 80]), "camera")
    assert covered["gap_m2"].tolist() == [0.0]
    assert covered.geometry.iloc[0].is_empty
    disc = shapely.buffer(pt(0, 0), 50, quad_segs=QUAD_SEGS)
    assert shapely.intersection(gaps.geometry.iloc[0], disc).area == pytest.approx(0, abs=1e-6)
    none = coverage_gaps(two_zones, sensors, "smoke")  # no smoke sensors: all gap
    np.testing.assert_allclose(none["gap_share"], [1.0, 1.0])
    with pytest.raises(UsageError, match="radius"):
        coverage_gaps(two_zones, sensors.assign(sensor_type="noise", radius_m=None), "noise")


def brute_force_coverage(zones: gpd.GeoDataFrame, sensors: gpd.GeoDataFrame, kind: str) -> list:
    """Coverage ratio per zone: union of every disc of the type, zone by zone."""
    of_kind = sensors[sensors["sensor_type"] == kind]
    radii = sensing_radii(of_kind)
    discs = [
        shapely.buffer(p, r, quad_segs=QUAD_SEGS)
        for p, r in zip(of_kind.geometry, radii, strict=True)
    ]
    reach = shapely.union_all(discs)
    return [shapely.intersection(zone, reach).area / zone.area for zone in zones.geometry]


@pytest.mark.parametrize("zones_layer", ["grids", "districts", "squares"])
def test_sensor_coverage_matches_brute_force(
    sample: dict[str, gpd.GeoDataFrame], zones_layer: str
) -> None:
    sensors = pd.concat([sample["sensors"], sample["cameras"]], ignore_index=True)
    if zones_layer == "squares":
        zones = cutting_squares(sensors, 250.0, 31.0)
    else:
        zones = sample[zones_layer]
    out = sensor_indicators(zones, sensors)
    kinds = sorted(sensors["sensor_type"].unique())
    assert len(kinds) >= 4
    for kind in kinds:
        expected = brute_force_coverage(zones, sensors, kind)
        np.testing.assert_allclose(out[f"{kind}_coverage"], expected, rtol=1e-7, atol=1e-12)
        gaps = coverage_gaps(zones, sensors, kind)
        np.testing.assert_allclose(
            gaps["gap_m2"] + out[f"{kind}_coverage"] * zones.area, zones.area, rtol=1e-7
        )
    # counts: every sensor in exactly one zone (first intersecting) -> independent sjoin
    joined = gpd.sjoin(sensors, zones.reset_index(drop=True), predicate="intersects")
    first = joined.groupby(level=0)["index_right"].min().value_counts()
    np.testing.assert_array_equal(
        out["sensor_count"], first.reindex(range(len(zones)), fill_value=0)
    )


# -- network lengths ---------------------------------------------------------------


def test_network_lengths_hand_computed(two_zones: gpd.GeoDataFrame) -> None:
    lines = frame(
        [
            shapely.LineString([(X + 50, Y + 50), (X + 150, Y + 50)]),  # 50 m each side
            shapely.LineString([(X + 100, Y + 0), (X + 100, Y + 100)]),  # on the shared edge
            shapely.LineString([(X + 300, Y), (X + 400, Y)]),  # outside
            shapely.MultiLineString(
                [[(X + 10, Y + 10), (X + 10, Y + 30)], [(X + 20, Y + 10), (X + 20, Y + 15)]]
            ),
        ],
        network=["water", "gas", "water", None],
    )
    out = network_lengths(two_zones, lines, by="network")
    assert list(out.columns) == ["length_km", "gas_km", "unknown_km", "water_km"]
    np.testing.assert_allclose(out["water_km"], [0.05, 0.05])
    np.testing.assert_allclose(out["gas_km"], [0.1, 0.1])  # a shared edge counts in both
    np.testing.assert_allclose(out["unknown_km"], [0.025, 0.0])
    np.testing.assert_allclose(out["length_km"], [0.175, 0.15])
    with pytest.raises(UsageError, match="no column"):
        network_lengths(two_zones, lines, by="road_class")


@pytest.mark.parametrize(("layer", "by"), [("roads", "road_class"), ("water_pipes", "network")])
def test_network_lengths_match_overlay(
    sample: dict[str, gpd.GeoDataFrame], layer: str, by: str
) -> None:
    zones, lines = sample["grids"], sample[layer]
    out = network_lengths(zones, lines, by=by)
    pieces = gpd.overlay(
        lines[[by, "geometry"]],
        zones.assign(zid=np.arange(len(zones)))[["zid", "geometry"]],
        how="intersection",
        keep_geom_type=True,
    )
    km = pieces.length / 1000
    full = pd.RangeIndex(len(zones))
    total = km.groupby(pieces["zid"]).sum().reindex(full, fill_value=0.0)
    np.testing.assert_allclose(out["length_km"], total, rtol=1e-9, atol=1e-9)
    for value, part in km.groupby(pieces[by]):
        expected = part.groupby(pieces.loc[part.index, "zid"]).sum().reindex(full, fill_value=0)
        np.testing.assert_allclose(out[f"{value}_km"], expected, rtol=1e-9, atol=1e-9)
    assert out.index.equals(zones.index)


def test_missing_and_empty_geometries_and_dtypes() -> None:
    zones = frame([box(0, 0, 10, 10), None, shapely.Polygon()], index=["a", "b", "c"])
    buildings = frame([box(1, 1, 2, 2), None, shapely.Polygon()], floors=[1, 2, 3])
    out = building_indicators(zones, buildings)
    assert out["building_count"].tolist() == [1, 0, 0]
    assert out["footprint_m2"].tolist() == [1.0, 0.0, 0.0]
    assert out.loc["a", "far"] == 0.01
    assert out.loc[["b", "c"], "far"].isna().all()  # no area: no ratio
    assert building_indicators(zones.iloc[:0], buildings).empty
    sensors = frame([pt(1, 1), None, shapely.Point()], sensor_type=["smoke"] * 3)
    counts = sensor_indicators(zones, sensors)
    assert counts["smoke_count"].tolist() == [1, 0, 0]
    lines = frame([shapely.LineString([(X, Y), (X + 20, Y)]), None], network=["gas", None])
    lengths = network_lengths(zones, lines.iloc[:0], by="network")
    assert lengths["length_km"].dtype == np.float64
    assert network_lengths(zones, lines, by="network")["gas_km"].tolist() == [0.01, 0.0, 0.0]


@pytest.mark.parametrize("small_group", [1, 4, 10**9])
def test_coverage_union_paths_match_brute_force(
    monkeypatch: pytest.MonkeyPatch, small_group: int
) -> None:
    """Overlapping discs merged per group (vectorised) or with union_all, same answer."""
    import twin.indicators.sensors as sensors_module

    monkeypatch.setattr(sensors_module, "_SMALL_GROUP", small_group)
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 1000, size=(400, 2))
    sensors = frame(
        [pt(x, y) for x, y in xy], sensor_type=["x"] * 400, radius_m=rng.uniform(5, 60, 400)
    )
    zones = cutting_squares(sensors, 130.0, 12.0)
    out = sensor_indicators(zones, sensors)
    np.testing.assert_allclose(
        out["x_coverage"], brute_force_coverage(zones, sensors, "x"), rtol=1e-7, atol=1e-12
    )
