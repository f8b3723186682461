"""Issue 12 over a real server: no 500 for odd input, audit by construction, no leaks."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import twin
from tests.api.conftest import KEY_NAMES, KEYS, LiveServer, sha256, start_server, stop_server
from twin.sample import generate_city
from twin.sample.addresses import standard_addresses
from twin.sensing.events import raise_events
from twin.sensing.loop import OperationsLoop
from twin.sensing.rules import EPISODE_COLUMNS

# Paths that only describe the service (metadata), never read a layer's features.
METADATA = {
    "/",
    "/conformance",
    "/collections",
    "/collections/{collectionId}",
    "/health",
    "/api",
    # Tileset lists and TileJSON: names, zooms and extents of the layers the caller may
    # read (Visible.listing / Visible.layer: a restricted one is a 404 without the key).
    "/tiles",
    "/tiles/{layer}.json",
    "/collections/{collectionId}/tiles",
    "/collections/{collectionId}/tiles/WebMercatorQuad",
    # The WebMercatorQuad definition: constants, no layer at all.
    "/tileMatrixSets",
    "/tileMatrixSets/{tileMatrixSetId}",
    # The SensorThings service root: two links, no sensor.
    "/sta/v1.1",
    # Converts the client's own FeatureCollection to a GeoPackage; it reads no layer of the
    # twin (only the twin's CRS), so it is not a data route.
    "/export/geopackage",
    # Signs a short-lived token for the caller's own role (for EventSource); reads no layer.
    "/events/stream-token",
}


def _restricted_places(path: Path) -> dict[str, Any]:
    city = twin.Twin.open(path)
    pipe = city.layer("water_pipes")
    camera = city.layer("cameras")
    lonlat = camera.geometry.to_crs(4326)
    return {
        "pipe": str(pipe.index[0]),
        "camera": str(camera.index[0]),
        "camera_lon": float(lonlat.iloc[0].x),
        "camera_lat": float(lonlat.iloc[0].y),
        "facility": str(city.layer("facilities").index[0]),
        "road": str(city.layer("roads").index[0]),
        "restricted": sorted(
            i.name for i in city.layer_infos() if i.classification == "restricted"
        ),
        "public": sorted(i.name for i in city.layer_infos() if i.classification == "public"),
        "count": len(city.layers),
    }


@pytest.fixture(scope="module")
def places(live_server: LiveServer) -> dict[str, Any]:
    return _restricted_places(live_server.twin)


RESTRICTED_ADDRESSES = "addresses_restricted"


def _writer_keys(folder: Path) -> Path:
    """The shared keys, with the restricted role a writer (the audit cases post as it)."""
    path = folder / "writer-keys.yaml"
    lines = ["roles:", "  ops-centre: restricted", "writers: [restricted]", "keys:"]
    for role, key in KEYS.items():
        lines += [
            f"  - name: {KEY_NAMES[role]}",
            f"    role: {'ops-centre' if role == 'ops' else role}",
            f"    sha256: {sha256(key)}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _camera_state(path: Path) -> dict[str, Any]:
    """Readings of two cameras and an event on the first (as a rule firing raises it)."""
    loop = OperationsLoop.open(path)
    sensors = loop.registry.frame
    cameras = sensors.index[sensors["layer"] == "cameras"]
    readings = pd.DataFrame(
        {
            "sensor": [cameras[0], cameras[1]],
            "time": ["2026-03-01T08:00:00Z", "2026-03-01T10:00:00Z"],
            "value": ["1", "1"],
        }
    )
    report, _ = loop.ingest(readings, source="test")
    assert report.stored == 2
    episode = ["guards", str(cameras[0]), "offline", "一般", pd.Timestamp(readings["time"][1])]
    ids = raise_events(
        loop.store,
        pd.DataFrame([[*episode, pd.NaT, float("nan")]], columns=EPISODE_COLUMNS),
        locate=loop.locator.sensor,
    )
    streams = loop.store.datastreams([str(cameras[0])])
    assert ids and len(streams)
    return {
        "sensor": str(cameras[0]),
        "event": int(ids[0]),
        "datastream": int(streams.index[0]),
    }


@pytest.fixture(scope="module")
def audit_server(
    sample_twin_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The sample twin plus a restricted address layer and camera readings; writers' keys."""
    folder = tmp_path_factory.mktemp("audit-server")
    path = Path(shutil.copy(sample_twin_file, folder / "chengdu.twin.gpkg"))
    std = standard_addresses(generate_city(3000, seed=42), seed=42)
    twin.Twin.open(path).import_frame(
        std, layer=RESTRICTED_ADDRESSES, kind="address", id="addr_id", classification="restricted"
    )
    server = start_server(path, folder, "--keys-file", str(_writer_keys(folder)))
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def audit_places(audit_server: LiveServer) -> dict[str, Any]:
    found = _restricted_places(audit_server.twin)
    found.update(_camera_state(audit_server.twin))
    city = twin.Twin.open(audit_server.twin)
    addresses = city.layer(RESTRICTED_ADDRESSES)
    row = addresses[addresses["level"] == "building"].iloc[0]
    point = addresses.geometry.to_crs(4326).loc[row.name]
    found.update(address=str(row["address"]), address_lon=point.x, address_lat=point.y)
    return found


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """(x, y) of the XYZ tile at zoom z holding lon/lat."""
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def _cases(p: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any], str]]:
    """(method, OpenAPI path, URL, params or body, a restricted layer it must audit)."""
    near = {"lon": p["camera_lon"], "lat": p["camera_lat"]}
    x, y = _tile_of(p["camera_lon"], p["camera_lat"], 16)
    sensor, event, ds = p.get("sensor", ""), p.get("event", 0), p.get("datastream", 0)
    sta = "/sta/v1.1"
    reading = {"sensor": sensor, "time": "2026-03-01T10:30:00Z", "value": 1}
    report = {
        "ticket": "guards-1",
        "type": "water_leak",
        "time": "2026-03-01T10:40:00Z",
        **near,
    }
    return [
        ("GET", "/collections/{collectionId}/items", "/collections/cameras/items", {}, "cameras"),
        (
            "GET",
            "/collections/{collectionId}/items/{featureId}",
            f"/collections/water_pipes/items/{p['pipe']}",
            {},
            "water_pipes",
        ),
        ("GET", "/identify", "/identify", {**near, "tolerance_m": 5}, "cameras"),
        ("GET", "/around", "/around", {**near, "radius_m": 50}, "cameras"),
        ("GET", "/profile/{layer}/{uid}", f"/profile/cameras/{p['camera']}", {}, "cameras"),
        ("GET", "/search", "/search", {"q": p["camera"].split(".", 1)[1]}, "cameras"),
        ("GET", "/statistics", "/statistics", {}, "water_pipes"),
        ("POST", "/impact/pipe-break", "/impact/pipe-break", {"pipe": p["pipe"]}, "water_pipes"),
        ("POST", "/impact/cascade", "/impact/cascade", {"pipe": p["pipe"]}, "water_pipes"),
        (
            "POST",
            "/impact/route",
            "/impact/route",
            {
                "origin": {"layer": "cameras", "uid": p["camera"]},
                "destination": {"layer": "facilities", "uid": p["facility"]},
            },
            "cameras",
        ),
        (
            "POST",
            "/impact/service-area",
            "/impact/service-area",
            {"facilities": "cameras"},
            "cameras",
        ),
        (
            "POST",
            "/impact/road-closure",
            "/impact/road-closure",
            {"facilities": "cameras", "roads_closed": [p["road"]]},
            "cameras",
        ),
        # vector tiles
        ("GET", "/tiles/{layer}/{z}/{x}/{y}.pbf", f"/tiles/cameras/16/{x}/{y}.pbf", {}, "cameras"),
        (
            "GET",
            "/collections/{collectionId}/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}",
            f"/collections/cameras/tiles/WebMercatorQuad/16/{y}/{x}",
            {},
            "cameras",
        ),
        # sensing
        ("GET", "/datastreams", "/datastreams", {"layer": "cameras"}, "cameras"),
        ("GET", "/latest", "/latest", {"layer": "cameras"}, "cameras"),
        ("GET", "/observations", "/observations", {"sensor": sensor}, "cameras"),
        ("POST", "/observations", "/observations", {"observations": [reading]}, "cameras"),
        ("GET", "/events", "/events", {"layer": "cameras"}, "cameras"),
        ("GET", "/events/{event_id}", f"/events/{event}", {}, "cameras"),
        (
            "POST",
            "/events/{event_id}/{action}",
            f"/events/{event}/ack",
            {"note": "seen"},
            "cameras",
        ),
        ("POST", "/reports", "/reports", report, "water_pipes"),
        ("GET", "/vitals", "/vitals", {"by": "grid"}, "cameras"),
        # the one-map page's live layers
        ("GET", "/map/events", "/map/events", {}, "cameras"),
        ("GET", "/map/events/{event_id}", f"/map/events/{event}", {}, "cameras"),
        ("GET", "/map/sensors", "/map/sensors", {}, "cameras"),
        ("GET", "/vitals/series", "/vitals/series", {}, "cameras"),
        # SensorThings: one route for every resource path
        *[
            ("GET", f"{sta}/{{resource}}", f"{sta}/{resource}", {}, "cameras")
            for resource in (
                "Things",
                f"Things('{sensor}')",
                f"Things('{sensor}')/Datastreams",
                f"Things('{sensor}')/Locations",
                "Locations",
                "FeaturesOfInterest",
                "Sensors",
                "ObservedProperties",
                "Datastreams",
                f"Datastreams({ds})",
                f"Datastreams({ds})/Thing",
                f"Datastreams({ds})/Observations",
                "Observations",
            )
        ],
        # addresses
        (
            "GET",
            "/geocode",
            "/geocode",
            {"q": p.get("address", ""), "layer": RESTRICTED_ADDRESSES},
            RESTRICTED_ADDRESSES,
        ),
        (
            "GET",
            "/reverse",
            "/reverse",
            {
                "lon": p.get("address_lon", 0.0),
                "lat": p.get("address_lat", 0.0),
                "layer": RESTRICTED_ADDRESSES,
            },
            RESTRICTED_ADDRESSES,
        ),
    ]


# Writes that create something answer 201.
CREATED = {"/reports"}
CASES = len(
    _cases(
        {
            "pipe": "",
            "camera": "c.0",
            "camera_lon": 0.0,
            "camera_lat": 0.0,
            "facility": "",
            "road": "",
        }
    )
)


def _call(server: LiveServer, method: str, url: str, data: dict[str, Any]) -> httpx.Response:
    headers = server.headers("restricted")
    if method == "GET":
        return httpx.get(server.url + url, params=data, headers=headers, timeout=120)
    return httpx.post(server.url + url, json=data, headers=headers, timeout=120)


def test_the_audit_cases_cover_every_data_route(
    live_server: LiveServer, places: dict[str, Any]
) -> None:
    paths = set(live_server.get("/api").json()["paths"])
    covered = {case[1] for case in _cases(places)}
    assert paths - METADATA <= covered, sorted(paths - METADATA - covered)


@pytest.mark.parametrize("number", range(CASES))
def test_every_route_reading_a_restricted_layer_writes_an_audit_line(
    audit_server: LiveServer, audit_places: dict[str, Any], number: int
) -> None:
    method, path, url, data, layer = _cases(audit_places)[number]
    before = len(audit_server.audit_lines())
    answer = _call(audit_server, method, url, data)
    assert answer.status_code == (201 if path in CREATED else 200), answer.text
    lines = [json.loads(line) for line in audit_server.audit_lines()[before:]]
    mine = [line for line in lines if line["path"] == url]
    assert mine, f"{method} {url} read {layer} without an audit line"
    assert layer in mine[0]["layers"] and mine[0]["who"] == "pipe-office"


def test_health_counts_only_the_layers_the_caller_may_see(
    live_server: LiveServer, places: dict[str, Any]
) -> None:
    assert live_server.get("/health").json()["layers"] == len(places["public"])
    assert live_server.get("/health", "restricted").json()["layers"] == places["count"]


@pytest.mark.parametrize(
    "keys",
    [("restricted", "restricted"), ("restricted", "internal"), ("internal", "restricted", "ops")],
)
def test_several_api_key_headers_are_refused(
    live_server: LiveServer, keys: tuple[str, ...]
) -> None:
    headers = [("X-API-Key", live_server.keys[role]) for role in keys]
    answer = httpx.get(live_server.url + "/collections", headers=headers, timeout=30)
    assert answer.status_code == 401
    assert "X-API-Key headers" in answer.json()["description"]


def test_key_header_and_another_bearer_key_are_refused(live_server: LiveServer) -> None:
    headers = {
        "X-API-Key": live_server.keys["internal"],
        "Authorization": f"Bearer {live_server.keys['restricted']}",
    }
    answer = httpx.get(live_server.url + "/collections", headers=headers, timeout=30)
    assert answer.status_code == 401


@pytest.fixture(scope="module")
def proxied_server(
    sample_twin_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("proxied")
    copy = Path(shutil.copy(sample_twin_file, folder / "chengdu.twin.gpkg"))
    server = start_server(copy, folder, "--public-url", "https://twin.example.gov.cn/api/")
    yield server
    stop_server(server)


@pytest.mark.parametrize("host", ["evil.example.com", "127.0.0.1:1", "a\u00e9b.test"])
def test_links_use_the_public_url_not_the_host_header(
    proxied_server: LiveServer, host: str
) -> None:
    answer = httpx.get(
        proxied_server.url + "/collections/parcels/items",
        params={"limit": 1},
        headers={"Host": host.encode("idna").decode() if "\u00e9" in host else host},
        timeout=30,
    )
    assert answer.status_code == 200
    hrefs = [link["href"] for link in answer.json()["links"]]
    assert hrefs and all(h.startswith("https://twin.example.gov.cn/api/") for h in hrefs)
    assert not any(host in h for h in hrefs)


# -- the classes of input that used to answer 500 -----------------------------------
ZERO_AREA = ["104,30,104,30", "104.05,30.6,104.05,30.7", "104,30.6,104.1,30.6", "0,0,0,0"]
OUT_OF_RANGE = [
    "9999-12-31T00:00:00Z",
    "0001-01-01",
    "1677-09-21T00:12:43Z",
    "2262-04-12",
    "3000-01-01T00:00:00+08:00",
    "1000-06-15",
]
UNKNOWN_TYPES = ["Circle", "Box", "Feature", "FeatureCollection", "Topology", "point", "", "🙂"]


@pytest.mark.parametrize("bbox", ZERO_AREA)
def test_zero_area_bbox_is_a_400(live_server: LiveServer, bbox: str) -> None:
    answer = live_server.get("/collections/parcels/items", bbox=bbox)
    assert answer.status_code == 400 and "no area" in answer.json()["description"]


@pytest.mark.parametrize("instant", OUT_OF_RANGE)
def test_datetime_outside_the_supported_range_is_a_400(
    live_server: LiveServer, instant: str
) -> None:
    answer = live_server.get("/collections/parcels/items", datetime=instant)
    assert answer.status_code == 400 and "outside" in answer.json()["description"]


@pytest.mark.parametrize("kind", UNKNOWN_TYPES)
def test_unknown_geojson_type_for_an_area_is_a_400(live_server: LiveServer, kind: str) -> None:
    body = {"area": {"type": kind, "coordinates": [[104.0, 30.6], [104.1, 30.7]]}}
    answer = httpx.post(live_server.url + "/impact/road-closure", json=body, timeout=60)
    assert answer.status_code == 400
    assert "GeoJSON geometry" in answer.json()["description"]


@pytest.mark.parametrize(
    ("place", "status"),
    [
        ({"lon": 104.0489, "lat": 30.6685}, 200),  # in the sample district
        ({"lon": 116.39, "lat": 39.91}, 400),  # Beijing: 1,500 km from every road
        ({"lon": 0.0, "lat": 0.0}, 400),
        ({"lon": 104.2, "lat": 30.6685}, 400),  # about 14 km east
    ],
)
def test_route_from_a_place_far_from_every_road_is_a_400(
    live_server: LiveServer, places: dict[str, Any], place: dict[str, float], status: int
) -> None:
    body = {"origin": place, "destination": {"layer": "facilities", "uid": places["facility"]}}
    answer = httpx.post(live_server.url + "/impact/route", json=body, timeout=120)
    assert answer.status_code == status, answer.text
    if status == 400:
        assert "from the nearest road" in answer.json()["description"]
        body["max_access_m"] = 100_000
        if place["lon"] == 104.2:
            assert httpx.post(live_server.url + "/impact/route", json=body, timeout=120).is_success


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/{layer}.json",
        "/collections/{layer}/tiles",
        "/collections/{layer}/tiles/WebMercatorQuad",
    ],
)
def test_restricted_tileset_metadata_does_not_exist_without_the_key(
    live_server: LiveServer, places: dict[str, Any], path: str
) -> None:
    for layer in places["restricted"]:
        assert live_server.get(path.format(layer=layer)).status_code == 404
        assert live_server.get(path.format(layer=layer), "restricted").status_code == 200
    listed = {item["layer"] for item in live_server.get("/tiles").json()["tilesets"]}
    assert listed and not listed & set(places["restricted"])
