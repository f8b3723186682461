"""Road impact routes over HTTP against a real ``twin serve``: the same answers as the CLI
(``twin analyze road-closure / cascade / service-area / route --json``) and the library."""

from __future__ import annotations

import json
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import pyproj
import pytest
import shapely

import twin
from tests.api.conftest import LiveServer
from tests.conftest import run_cli
from twin.network import road_access, road_closure, road_network, select_facilities

WHERE = "poi_type=消防站"


def post(server: LiveServer, path: str, body: dict[str, Any], role: str | None) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=server.headers(role), timeout=120)


def reproject(geometry: shapely.Geometry, source: Any, target: Any) -> shapely.Geometry:
    forward = pyproj.Transformer.from_crs(source, target, always_xy=True)

    def move(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(forward.transform(xy[:, 0], xy[:, 1]))

    return shapely.transform(geometry, move)


def cli_json(*args: str) -> Any:
    return json.loads(run_cli("analyze", *args, "--json", check=True).stdout)


@pytest.fixture(scope="module")
def city(live_server: LiveServer) -> twin.Twin:
    return twin.Twin.open(live_server.twin)


def approx_equal(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert set(got) >= set(expected)
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-12), key
        else:
            assert got[key] == value, key


def test_road_closure_equals_the_cli(live_server: LiveServer, city: twin.Twin) -> None:
    roads = list(city.layer("roads").index[[11, 12, 40]])
    body = {"roads_closed": roads, "where": WHERE, "max_time_s": 120}
    answer = post(live_server, "/impact/road-closure", body, None)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    args = [str(live_server.twin), "--where", WHERE, "--max-time", "120"]
    for road in roads:
        args += ["--close", road]
    expected = cli_json("road-closure", *args)
    approx_equal(got["summary"], expected)
    kinds: dict[str, int] = {}
    for feature in got["features"]:
        kinds[feature["properties"]["result"]] = kinds.get(feature["properties"]["result"], 0) + 1
    assert kinds.get("building_lost", 0) == expected["buildings_lost"]
    assert kinds.get("building_delayed", 0) == expected["buildings_delayed"]
    assert kinds["closed_road"] == expected["closed_edges"]
    closed = {f["properties"]["road"] for f in got["features"] if f["id"].startswith("roads.")}
    assert closed == set(roads)


def test_road_closure_by_area_equals_the_library(live_server: LiveServer, city: twin.Twin) -> None:
    roads = city.layer("roads")
    middle = roads.geometry.iloc[30].interpolate(0.5, normalized=True)
    zone = middle.buffer(60.0)
    zone84 = reproject(zone, city.crs, "OGC:CRS84")
    body = {"area": shapely.geometry.mapping(zone84), "where": WHERE, "geometry": False}
    got = post(live_server, "/impact/road-closure", body, None).json()
    net = road_network(city, "roads")
    access = road_access(
        net, city.layer("buildings"), select_facilities(city.layer("facilities"), WHERE)
    )
    expected = road_closure(access, area=reproject(zone84, "OGC:CRS84", city.crs))
    approx_equal(got["summary"], json.loads(json.dumps(expected.summary.to_dict())))
    crossing = set(roads.index[shapely.intersects(roads.geometry.to_numpy(), zone)])
    closed = {
        f["properties"]["road"]
        for f in got["features"]
        if f["properties"]["result"] == "closed_road"
    }
    assert closed == crossing and len(crossing) >= 1


def test_cascade_equals_the_cli(live_server: LiveServer, city: twin.Twin) -> None:
    pipe = city.layer("water_pipes").index[60]
    body = {"pipe": pipe, "pipes": "water_pipes", "where": WHERE, "max_time_s": 120}
    answer = post(live_server, "/impact/cascade", body, "restricted")
    assert answer.status_code == 200, answer.text
    got = answer.json()
    expected = cli_json(
        "cascade",
        str(live_server.twin),
        "--pipes",
        "water_pipes",
        "--pipe",
        pipe,
        "--where",
        WHERE,
        "--max-time",
        "120",
    )
    closure = got["summary"].pop("road_closure")
    expected_closure = expected.pop("road_closure")
    approx_equal(got["summary"], expected)
    if expected_closure is None:
        assert closure is None
    else:
        approx_equal(closure, expected_closure)
    results = {f["properties"]["result"] for f in got["features"]}
    assert "isolated_pipe" in results
    assert post(live_server, "/impact/cascade", body, None).status_code == 404


def test_service_area_equals_the_cli(live_server: LiveServer) -> None:
    body = {"where": WHERE, "max_time_s": 90, "buildings_limit": 5}
    got = post(live_server, "/impact/service-area", body, None).json()
    expected = cli_json("service-area", str(live_server.twin), "--where", WHERE, "--max-time", "90")
    summary = expected.get("summary", expected)
    approx_equal(got["summary"], {k: summary[k] for k in got["summary"]})
    facilities = [f for f in got["features"] if f["properties"]["result"] == "facility"]
    slowest = [f for f in got["features"] if f["properties"]["result"] == "building"]
    assert len(facilities) == got["summary"]["facilities"] and len(slowest) == 5
    times = [f["properties"]["time_s"] for f in slowest]
    assert times == sorted(times, reverse=True)
    assert got["numberMatched"] == got["summary"]["buildings"]
    assert {f["id"]: f["properties"]["buildings"] for f in facilities} == got["summary"][
        "per_facility"
    ]


def test_route_equals_the_cli(live_server: LiveServer, city: twin.Twin) -> None:
    origin = city.layer("buildings").index[5]
    target = city.layer("facilities").index[0]
    body = {
        "origin": {"layer": "buildings", "uid": origin},
        "destination": {"layer": "facilities", "uid": target},
    }
    got = post(live_server, "/impact/route", body, None).json()
    expected = cli_json("route", str(live_server.twin), "--from", origin, "--to", target)
    route = expected.get("route", expected)
    assert route["found"] and got["summary"]["found"]
    for key in ("roads", "weight"):
        assert got["summary"][key] == route[key], key
    for key in ("distance_m", "time_s", "origin_access_m", "destination_access_m"):
        assert got["summary"][key] == pytest.approx(route[key], rel=1e-12), key
    (line,) = got["features"]
    drawn = reproject(shapely.geometry.shape(line["geometry"]), "OGC:CRS84", city.crs)
    assert drawn.equals_exact(shapely.from_wkt(route["geometry_wkt"]), tolerance=1e-6)
    # A feature stands for its representative point: the same route from that point.
    start = city.layer("buildings").geometry.loc[origin].representative_point()
    lon, lat = reproject(start, city.crs, "OGC:CRS84").coords[0]
    place = {"origin": {"lon": lon, "lat": lat}, "destination": body["destination"]}
    by_point = post(live_server, "/impact/route", place, None).json()["summary"]
    assert by_point["roads"] == got["summary"]["roads"]
    assert by_point["distance_m"] == pytest.approx(got["summary"]["distance_m"], abs=1e-6)


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/impact/road-closure", {}, 400, "closes no road"),
        ("/impact/road-closure", {"roads_closed": ["roads.NOPE"]}, 400, "NOPE"),
        ("/impact/road-closure", {"roads_closed": ["x"], "where": "kind"}, 400, "field=value"),
        ("/impact/road-closure", {"area": {"type": "Polygon"}}, 400, "GeoJSON"),
        ("/impact/road-closure", {"roads_closed": ["x"], "facilities": "valves"}, 404, "valves"),
        (
            "/impact/route",
            {"origin": {"lon": 104}, "destination": {"lon": 104, "lat": 30}},
            400,
            "place",
        ),
        (
            "/impact/route",
            {"origin": {"layer": "valves", "uid": "v"}, "destination": {"lon": 104, "lat": 30}},
            404,
            "valves",
        ),
        ("/impact/service-area", {"max_time_s": -1}, 400, "max_time_s"),
    ],
)
def test_road_bad_requests(
    live_server: LiveServer, path: str, body: dict[str, Any], status: int, words: str
) -> None:
    answer = post(live_server, path, body, None)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["description"]


def test_area_footprints_are_buildings(live_server: LiveServer, city: twin.Twin) -> None:
    roads = list(city.layer("roads").index[[11, 12, 40]])
    got = post(live_server, "/impact/road-closure", {"roads_closed": roads}, None).json()
    buildings = city.layer("buildings").to_crs("OGC:CRS84")
    hit = [f for f in got["features"] if f["properties"]["layer"] == "buildings"]
    for feature in hit[:5]:
        shape = shapely.geometry.shape(feature["geometry"])
        assert shape.equals_exact(buildings.geometry.loc[feature["id"]], tolerance=1e-9)
    assert isinstance(buildings, gpd.GeoDataFrame)
