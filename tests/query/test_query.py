"""One-map queries (twin.query) on the sample district, each checked against shapely on the layers.

The expected answers are computed here from the layers as :meth:`twin.Twin.layer`
reads them (not from the index), with plain shapely predicates and distances,
pyproj for the coordinates and the eviltransform package for GCJ-02.
"""

from __future__ import annotations

import eviltransform
import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

import twin
from twin.errors import FeatureNotFoundError, LayerNotFoundError, UsageError
from twin.query.around import around
from twin.query.common import derived
from twin.query.identify import identify
from twin.query.index import CityIndex
from twin.query.search import search
from twin.query.statistics import statistics
from twin.zones import indicators_by_zone

POLYGON_LAYERS = ["parcels", "buildings", "districts", "grids"]


def to_lonlat(city: twin.Twin, x: float, y: float) -> tuple[float, float]:
    forward = pyproj.Transformer.from_crs(city.crs, "OGC:CRS84", always_xy=True)
    lon, lat = forward.transform(x, y)
    return float(lon), float(lat)


def sample_points(
    frame: gpd.GeoDataFrame, n: int, seed: int = 7
) -> list[tuple[str, shapely.Point]]:
    rows = np.random.default_rng(seed).choice(len(frame), n, replace=False)
    return [(frame.index[r], frame.geometry.iloc[r].representative_point()) for r in rows]


def containing(frame: gpd.GeoDataFrame, point: shapely.Point) -> set[str]:
    return set(frame.index[shapely.intersects(frame.geometry.to_numpy(), point)])


# --------------------------------------------------------------------------- identify


def test_identify_inside_buildings_finds_building_parcel_grid_district(
    city: twin.Twin, index: CityIndex, layers: dict[str, gpd.GeoDataFrame], public: list[str]
) -> None:
    for uid, point in sample_points(layers["buildings"], 25):
        lon, lat = to_lonlat(city, point.x, point.y)
        found = identify(index, lon, lat, layers=public, geometry=False)
        assert uid in found.uids("buildings")
        for name in POLYGON_LAYERS:
            assert set(found.uids(name)) == containing(layers[name], point), name
        assert abs(found.point.x - point.x) < 1e-6 and abs(found.point.y - point.y) < 1e-6
        assert found.searched == public


def test_identify_points_and_lines_within_tolerance(
    city: twin.Twin, index: CityIndex, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    pipes = layers["water_pipes"]
    checked = 0
    for uid, _ in sample_points(pipes, 10, seed=3):
        line = pipes.geometry.loc[uid]
        on = line.interpolate(0.5, normalized=True)
        spot = shapely.Point(on.x + 4.0, on.y + 3.0)  # 5 m off the middle, in either direction
        lon, lat = to_lonlat(city, spot.x, spot.y)
        found = identify(index, lon, lat, tolerance_m=12.0, geometry=False)
        for name in ("water_pipes", "gas_pipes", "valves", "sensors", "cameras", "roads"):
            distances = shapely.distance(layers[name].geometry.to_numpy(), spot)
            expected = dict(
                zip(
                    layers[name].index[distances <= 12.0], distances[distances <= 12.0], strict=True
                )
            )
            hits = next((h for h in found.layers if h.layer == name), None)
            got = (
                {}
                if hits is None
                else {f["id"]: f["properties"]["distance_m"] for f in hits.features}
            )
            assert set(got) == set(expected), name
            for key, value in got.items():
                assert value == pytest.approx(expected[key], abs=1e-3)
            if hits is not None:
                ordered = [f["properties"]["distance_m"] for f in hits.features]
                assert ordered == sorted(ordered)
        assert uid in found.uids("water_pipes")
        checked += 1
    assert checked == 10


def test_identify_never_returns_layers_the_caller_may_not_read(
    city: twin.Twin, index: CityIndex, layers: dict[str, gpd.GeoDataFrame], public: list[str]
) -> None:
    line = layers["water_pipes"].geometry.iloc[0]
    on = line.interpolate(0.5, normalized=True)
    lon, lat = to_lonlat(city, on.x, on.y)
    everything = identify(index, lon, lat, tolerance_m=5.0)
    assert everything.uids("water_pipes")
    anonymous = identify(index, lon, lat, layers=public, tolerance_m=5.0)
    assert {h.layer for h in anonymous.layers} <= set(public)
    assert "water_pipes" not in anonymous.searched and not anonymous.uids("water_pipes")


def test_identify_gcj02_and_bd09_land_on_the_converted_point(
    city: twin.Twin, index: CityIndex, layers: dict[str, gpd.GeoDataFrame], public: list[str]
) -> None:
    for _, point in sample_points(layers["buildings"], 5, seed=11):
        lon, lat = to_lonlat(city, point.x, point.y)
        plain = identify(index, lon, lat, layers=public)
        glat, glon = eviltransform.wgs2gcj(lat, lon)
        web = identify(index, glon, glat, coords="gcj02", layers=public)
        assert web.point.x == pytest.approx(point.x, abs=0.01)
        assert web.point.y == pytest.approx(point.y, abs=0.01)
        assert [(h.layer, [f["id"] for f in h.features]) for h in web.layers] == [
            (h.layer, [f["id"] for f in h.features]) for h in plain.layers
        ]
        # Geometries come back in GCJ-02 too: the CRS84 vertices with the GCJ-02 offset
        # (eviltransform's constants differ from ours by millimetres).
        ring = _first_ring(web.layers[1].features[0]["geometry"]["coordinates"])
        plain_ring = _first_ring(plain.layers[1].features[0]["geometry"]["coordinates"])
        for (wlon, wlat), (plon, plat) in zip(ring, plain_ring, strict=True):
            offset_lat, offset_lon = eviltransform.wgs2gcj(plat, plon)
            assert (wlon, wlat) == pytest.approx((offset_lon, offset_lat), abs=2e-7)
        blat, blon = eviltransform.gcj2bd(glat, glon)
        baidu = identify(index, blon, blat, coords="bd09", layers=public, geometry=False)
        assert baidu.point.x == pytest.approx(point.x, abs=0.01)
        assert baidu.uids("buildings") == plain.uids("buildings")


def _first_ring(coordinates: list) -> list:
    while isinstance(coordinates[0][0], list):
        coordinates = coordinates[0]
    return coordinates


def test_identify_in_epsg4490_and_geometry_in_crs84(
    city: twin.Twin, index: CityIndex, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    uid, point = sample_points(layers["buildings"], 1, seed=5)[0]
    lon, lat = pyproj.Transformer.from_crs(city.crs, "EPSG:4490", always_xy=True).transform(
        point.x, point.y
    )
    found = identify(index, lon, lat, crs="EPSG:4490", layers=["buildings"])
    assert found.uids("buildings") == [uid]
    geometry = shapely.geometry.shape(found.layers[0].features[0]["geometry"])
    expected = gpd.GeoSeries([layers["buildings"].geometry.loc[uid]], crs=city.crs).to_crs(
        "OGC:CRS84"
    )
    assert geometry.equals_exact(expected.iloc[0], tolerance=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lon": 200.0, "lat": 30.0}, "longitude"),
        ({"lon": 104.0, "lat": float("nan")}, "latitude"),
        ({"lon": 104.0, "lat": 30.0, "crs": "EPSG:4544"}, "CRS84, EPSG:4326 or EPSG:4490"),
        ({"lon": 104.0, "lat": 30.0, "coords": "wgs72"}, "gcj02 or bd09"),
        ({"lon": 104.0, "lat": 30.0, "tolerance_m": -1.0}, "tolerance_m"),
    ],
)
def test_identify_bad_input(index: CityIndex, kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        identify(index, **kwargs)


# --------------------------------------------------------------------------- around


def test_around_point_distances_match_shapely(
    city: twin.Twin, index: CityIndex, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    _, point = sample_points(layers["buildings"], 1, seed=21)[0]
    lon, lat = to_lonlat(city, point.x, point.y)
    found = around(index, lon, lat, radius_m=120.0, limit=1000, geometry=False)
    for name, frame in layers.items():
        distances = shapely.distance(frame.geometry.to_numpy(), point)
        near = distances <= 120.0
        hits = found.hits(name)
        if not near.any():
            assert hits is None
            continue
        assert hits is not None and hits.count == int(near.sum())
        got = {f["id"]: f["properties"]["distance_m"] for f in hits.features}
        expected = dict(zip(frame.index[near], distances[near], strict=True))
        assert set(got) == set(expected)
        assert all(got[k] == pytest.approx(expected[k], abs=1e-3) for k in got)


def test_around_feature_excludes_itself_and_truncates(
    index: CityIndex, layers: dict[str, gpd.GeoDataFrame], public: list[str]
) -> None:
    buildings = layers["buildings"]
    uid = buildings.index[100]
    footprint = buildings.geometry.loc[uid]
    found = around(index, feature=("buildings", uid), radius_m=150.0, limit=5, layers=public)
    distances = shapely.distance(buildings.geometry.to_numpy(), footprint)
    near = (distances <= 150.0) & (buildings.index != uid)
    hits = found.hits("buildings")
    assert hits is not None and hits.count == int(near.sum()) and hits.count > 5
    assert hits.truncated and len(hits.features) == 5
    nearest = sorted(zip(distances[near], buildings.index[near], strict=True))[:5]
    assert [f["id"] for f in hits.features] == [u for _, u in nearest]
    assert uid not in [f["id"] for f in hits.features]
    assert found.searched == public


def test_around_refuses_hidden_centre_and_bad_radius(index: CityIndex, public: list[str]) -> None:
    with pytest.raises(LayerNotFoundError, match="no layer 'valves'"):
        around(index, feature=("valves", "valves.JSF000001"), layers=public)
    with pytest.raises(FeatureNotFoundError):
        around(index, feature=("buildings", "buildings.NOPE"))
    with pytest.raises(UsageError, match="radius_m"):
        around(index, 104.05, 30.67, radius_m=0)
    with pytest.raises(UsageError, match="not both"):
        around(index, 104.05, 30.67, feature=("buildings", "x"))


# --------------------------------------------------------------------------- search


def test_search_exact_contains_and_fuzzy(
    index: CityIndex, layers: dict[str, gpd.GeoDataFrame], public: list[str]
) -> None:
    parcels, buildings = layers["parcels"], layers["buildings"]
    name = parcels["name"].dropna().iloc[40]
    found = search(index, name, layers=public, limit=500, geometry=False)
    exact = {u for u in parcels.index[parcels["name"] == name]}
    contains = {
        u
        for frame in (parcels, buildings)
        for u in frame.index[frame["name"].fillna("").str.contains(name, regex=False)]
    } - exact
    assert {h.uid for h in found.hits if h.how == "exact"} >= exact
    assert {h.uid for h in found.hits if h.how == "contains" and h.field == "name"} == contains
    assert [h.score for h in found.hits] == sorted((h.score for h in found.hits), reverse=True)
    typo = name[:-1] + ("园" if name[-1] != "园" else "苑")
    fuzzy = search(index, typo, layers=["parcels"], fuzzy=True, min_score=60, geometry=False)
    assert not any(h.uid in exact for h in search(index, typo, layers=["parcels"]).hits)
    assert any(h.uid in exact and h.how == "fuzzy" for h in fuzzy.hits)


def test_fuzzy_ties_go_to_the_name_that_sounds_alike(
    index: CityIndex, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    names = set(layers["parcels"]["name"].dropna())
    assert {"天阳花园", "天坝花园"} <= names  # the sample's two names one character apart
    # 杨 and 阳 are both yang, 霸 and 坝 both ba
    for typed, heard in (("天杨花园", "天阳花园"), ("天霸花园", "天坝花园")):
        hits = search(index, typed, layers=["parcels"], fuzzy=True, geometry=False).hits
        both = {h.value: h.score for h in hits if h.value in ("天阳花园", "天坝花园")}
        assert len(both) == 2 and len(set(both.values())) == 1  # a tie by characters
        assert hits[0].value == heard and hits[0].how == "fuzzy"
    # an exact name keeps its place ahead of every fuzzy hit
    exact = search(index, "天坝花园", layers=["parcels"], fuzzy=True, geometry=False).hits
    assert (exact[0].value, exact[0].how) == ("天坝花园", "exact")


def test_search_by_attribute_and_code(
    index: CityIndex, layers: dict[str, gpd.GeoDataFrame], public: list[str]
) -> None:
    parcels = layers["parcels"]
    found = search(index, where={"land_use": "R2"}, layers=public, limit=500, geometry=False)
    assert found.count == int((parcels["land_use"] == "R2").sum())
    assert {h.uid for h in found.hits} == set(parcels.index[parcels["land_use"] == "R2"])
    floors = search(index, where={"floors": "14"}, layers=public, limit=500, geometry=False)
    assert found.count > 0 and floors.count == int((layers["buildings"]["floors"] == 14).sum())
    code = parcels["parcel_code"].iloc[3].lower()
    hit = search(index, code, layers=public).hits[0]
    assert (hit.uid, hit.field, hit.how) == (parcels.index[3], "parcel_code", "exact")
    hidden = search(index, "JS000001", layers=public)
    assert hidden.count == 0 and "water_pipes" not in hidden.searched
    with pytest.raises(UsageError, match="numeric"):
        search(index, where={"floors": "many"})
    with pytest.raises(UsageError, match="give text"):
        search(index)


# --------------------------------------------------------------------------- statistics


def test_statistics_by_district_only_from_visible_layers(
    city: twin.Twin, index: CityIndex, public: list[str]
) -> None:
    anonymous = statistics(index, by="district", layers=public)
    assert not [c for c in anonymous.table.columns if "pipes" in c or "camera" in c]
    full = indicators_by_zone(city, "districts")
    shared = [c for c in anonymous.table.columns if c != "geometry"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(anonymous.table[shared]), pd.DataFrame(full[shared]), check_dtype=False
    )
    everything = statistics(index, by="grid")
    assert "water_pipes_km" in everything.table.columns
    assert statistics(index, by="grid") is everything  # computed once per snapshot
    with pytest.raises(UsageError, match="by="):
        statistics(index, by="roads")


def test_derived_cache_is_per_snapshot(city: twin.Twin, index: CityIndex) -> None:
    other = CityIndex.load(city.path)
    assert derived(index, ("probe",), lambda: 1) == 1
    assert derived(index, ("probe",), lambda: 2) == 1
    assert derived(other, ("probe",), lambda: 3) == 3
