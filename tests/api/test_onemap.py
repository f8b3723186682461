"""One-map routes over HTTP against a real ``twin serve`` on loopback.

Expected answers: shapely predicates and distances on the layers read from the
served twin file, pyproj for coordinates, eviltransform for GCJ-02; and the
library (twin.query) on the same file, which the routes must answer exactly.
"""

from __future__ import annotations

import json
from typing import Any

import eviltransform
import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

import twin
from tests.api.conftest import LiveServer
from twin.query.index import CityIndex
from twin.query.profile import profile
from twin.query.search import search
from twin.query.statistics import statistics

RESTRICTED = {"water_pipes", "gas_pipes", "valves", "sources", "cameras"}


@pytest.fixture(scope="module")
def city(live_server: LiveServer) -> twin.Twin:
    return twin.Twin.open(live_server.twin)


@pytest.fixture(scope="module")
def layers(city: twin.Twin) -> dict[str, gpd.GeoDataFrame]:
    return {name: city.layer(name) for name in city.layers}


def lonlat(city: twin.Twin, point: shapely.Point) -> tuple[float, float]:
    lon, lat = pyproj.Transformer.from_crs(city.crs, "OGC:CRS84", always_xy=True).transform(
        point.x, point.y
    )
    return float(lon), float(lat)


def uids(body: dict, layer: str) -> set[str]:
    return {f["id"] for g in body["layers"] if g["layer"] == layer for f in g["features"]}


def as_json(result: Any) -> Any:
    """A library result as the JSON the routes send."""
    return json.loads(json.dumps(result.to_dict()))


def containing(frame: gpd.GeoDataFrame, point: shapely.Point) -> set[str]:
    return set(frame.index[shapely.intersects(frame.geometry.to_numpy(), point)])


def point_near_pipe(layers: dict[str, gpd.GeoDataFrame]) -> tuple[str, shapely.Point]:
    pipes = layers["water_pipes"]
    uid = pipes.index[40]
    middle = pipes.geometry.loc[uid].interpolate(0.5, normalized=True)
    return uid, shapely.Point(middle.x + 3.0, middle.y + 4.0)


@pytest.fixture(scope="module")
def public(city: twin.Twin) -> list[str]:
    names = [i.name for i in city.layer_infos() if i.classification == "public"]
    assert {"parcels", "buildings", "roads", "districts", "grids"} <= set(names)
    assert not RESTRICTED & set(names)
    return names


def test_identify_inside_buildings(
    live_server: LiveServer,
    city: twin.Twin,
    layers: dict[str, gpd.GeoDataFrame],
    public: list[str],
) -> None:
    buildings = layers["buildings"]
    for row in np.random.default_rng(4).choice(len(buildings), 10, replace=False):
        uid, point = buildings.index[row], buildings.geometry.iloc[row].representative_point()
        lon, lat = lonlat(city, point)
        answer = live_server.get("/identify", lon=lon, lat=lat)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["searched"] == public
        assert uid in uids(body, "buildings")
        for name in ("parcels", "buildings", "grids", "districts"):
            assert uids(body, name) == containing(layers[name], point), name
        footprint = next(
            shapely.geometry.shape(f["geometry"])
            for g in body["layers"]
            for f in g["features"]
            if f["id"] == uid
        )
        expected = gpd.GeoSeries([buildings.geometry.loc[uid]], crs=city.crs).to_crs("OGC:CRS84")
        assert footprint.equals_exact(expected.iloc[0], tolerance=1e-9)


def test_identify_restricted_layers_need_a_key_and_are_audited(
    live_server: LiveServer, city: twin.Twin, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    pipe, spot = point_near_pipe(layers)
    lon, lat = lonlat(city, spot)
    anonymous = live_server.get("/identify", lon=lon, lat=lat, tolerance_m=8).json()
    assert not RESTRICTED & set(anonymous["searched"])
    assert not RESTRICTED & {g["layer"] for g in anonymous["layers"]}
    internal = live_server.get("/identify", "internal", lon=lon, lat=lat, tolerance_m=8).json()
    assert "sensors" in internal["searched"] and not RESTRICTED & set(internal["searched"])
    before = len(live_server.audit_lines())
    allowed = live_server.get("/identify", "restricted", lon=lon, lat=lat, tolerance_m=8)
    body = allowed.json()
    assert pipe in uids(body, "water_pipes")
    distances = shapely.distance(layers["water_pipes"].geometry.to_numpy(), spot)
    got = {f["id"]: f["properties"]["distance_m"] for g in body["layers"] for f in g["features"]}
    assert got[pipe] == pytest.approx(
        distances[layers["water_pipes"].index.get_loc(pipe)], abs=1e-3
    )
    assert uids(body, "water_pipes") == set(layers["water_pipes"].index[distances <= 8])
    lines = live_server.audit_lines()[before:]
    records = [json.loads(line) for line in lines if "/identify" in line]
    assert records and records[-1]["who"] == "pipe-office"
    assert "water_pipes" in records[-1]["layers"]


def test_identify_in_gcj02_lands_where_the_converted_point_does(
    live_server: LiveServer, city: twin.Twin, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    point = layers["buildings"].geometry.iloc[777].representative_point()
    lon, lat = lonlat(city, point)
    glat, glon = eviltransform.wgs2gcj(lat, lon)
    plain = live_server.get("/identify", lon=lon, lat=lat, geometry="false").json()
    web = live_server.get("/identify", lon=glon, lat=glat, coords="gcj02", geometry="false")
    body = web.json()
    assert body["point"]["coords"] == "gcj02"
    assert body["point"]["x"] == pytest.approx(point.x, abs=0.01)
    assert body["point"]["y"] == pytest.approx(point.y, abs=0.01)
    assert body["layers"] == plain["layers"]


def test_around_over_http_matches_shapely(
    live_server: LiveServer, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    buildings = layers["buildings"]
    uid = buildings.index[1500]
    answer = live_server.get(
        "/around", layer="buildings", uid=uid, radius_m=80, limit=1000, geometry="false"
    )
    body = answer.json()
    assert body["feature"] == {"layer": "buildings", "uid": uid}
    for name in ("buildings", "roads", "parcels"):
        frame = layers[name]
        distances = shapely.distance(frame.geometry.to_numpy(), buildings.geometry.loc[uid])
        near = (distances <= 80) & (frame.index != uid)
        group = next(g for g in body["layers"] if g["layer"] == name)
        assert group["count"] == int(near.sum())
        got = {f["id"]: f["properties"]["distance_m"] for f in group["features"]}
        assert got == pytest.approx(
            dict(zip(frame.index[near], distances[near], strict=True)), abs=1e-3
        )
    hidden = live_server.get("/around", layer="valves", uid="valves.JSF000001")
    assert hidden.status_code == 404 and "valves" in hidden.json()["description"]


def test_profile_search_statistics_equal_the_library(
    live_server: LiveServer, layers: dict[str, gpd.GeoDataFrame], public: list[str]
) -> None:
    index = CityIndex.load(live_server.twin)
    parcels = layers["parcels"]
    parcel = parcels.index[parcels["name"].notna()][60]
    card = live_server.get(f"/profile/parcels/{parcel}").json()
    assert card == as_json(profile(index, "parcels", parcel, layers=public))
    on_parcel = [f for g in card["related"] if g["role"] == "buildings" for f in g["features"]]
    assert card["indicators"]["building_count"] == len(on_parcel)
    uid = layers["buildings"].index[100]
    building = live_server.get(f"/profile/buildings/{uid}", "restricted").json()
    names = [i.name for i in index]
    assert building == as_json(profile(index, "buildings", uid, layers=names))
    assert {c["network"] for c in building["service_connections"]} == {"water", "gas"}
    name = parcels["name"].loc[parcel]
    found = live_server.get("/search", q=name, fuzzy="true").json()
    assert found == as_json(search(index, name, fuzzy=True, layers=public))
    assert parcel in {h["uid"] for h in found["hits"] if h["how"] == "exact"}
    filtered = live_server.get("/search", where=["land_use:R2"], limit=500, geometry="false")
    assert filtered.json()["count"] == int((parcels["land_use"] == "R2").sum())
    stats = live_server.get("/statistics", by="district").json()
    table = statistics(index, by="district", layers=public).table
    assert stats["by"] == "districts" and stats["numberReturned"] == len(table)
    for feature in stats["features"]:
        assert feature["properties"]["building_count"] == table.loc[feature["id"], "building_count"]
        assert feature["properties"]["far"] == pytest.approx(table.loc[feature["id"], "far"])
    assert not [k for k in stats["features"][0]["properties"] if "pipes" in k]


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        ("/identify", {"lon": 200, "lat": 30}, 400, "lon"),
        ("/identify", {"lon": 104, "lat": 30, "coords": "wgs72"}, 400, "coords"),
        ("/identify", {"lon": 104, "lat": 30, "crs": "EPSG:4544"}, 400, "EPSG:4490"),
        ("/identify", {"lon": "east", "lat": 30}, 400, "lon"),
        ("/around", {"radius_m": 50}, 400, "give a point"),
        ("/around", {"lon": 104, "lat": 30, "radius_m": 9000}, 400, "radius_m"),
        ("/profile/water_pipes/water_pipes.JS000001", {}, 404, "water_pipes"),
        ("/profile/buildings/buildings.NOPE", {}, 404, "NOPE"),
        ("/search", {"where": "land_use"}, 400, "field:value"),
        ("/search", {}, 400, "give text"),
        ("/statistics", {"by": "roads"}, 400, "grid"),
    ],
)
def test_bad_requests_get_one_line_json_errors(
    live_server: LiveServer,
    path: str,
    params: dict,
    status: int,
    words: str,
) -> None:
    answer = live_server.get(path, **params)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["status"] == status and words in body["description"]
    assert "Traceback" not in answer.text and "\n" not in body["description"]
