"""The sensing routes of a real `twin serve`: roles, reads, writes, SSE, reports, and a real
SensorThings client (frost-sta-client) reading datastreams and observations."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import requests
from frost_sta_client.service.auth_handler import AuthHandler

import twin
from tests.api.conftest import KEYS, LiveServer, start_server, stop_server
from tests.conftest import TWIN_CLI
from tests.sensing.conftest import OpsDay, sensing_keys_file
from twin.sensing import LiveStore, live_path
from twin.webcoords import wgs84_to_gcj02


@pytest.fixture(scope="module")
def server(ops_day: OpsDay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("sensing-server")
    path = Path(shutil.copy(ops_day.twin, folder / "chengdu.twin.gpkg"))
    with sqlite3.connect(live_path(path)) as copy:  # the day's live store, consistently
        ops_day.loop.store.con.backup(copy)
    running = start_server(path, folder, "--keys-file", str(sensing_keys_file(folder)))
    yield running
    stop_server(running)


def _post(server: LiveServer, path: str, role: str | None, body: Any) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=server.headers(role), timeout=60)


def test_reads_follow_the_roles(server: LiveServer, ops_day: OpsDay) -> None:
    assert server.get("/latest").json()["count"] == 0  # sensors are internal
    assert server.get("/events").json()["count"] == 0
    latest = server.get("/latest", role="internal").json()
    assert latest["count"] == 300
    expected = ops_day.loop.store.latest().set_index("sensor_uid")["value"]
    got = {r["sensor_uid"]: r["value"] for r in latest["latest"]}
    assert got == pytest.approx(expected.to_dict())
    events = server.get("/events", role="internal").json()
    assert events["count"] == len(ops_day.loop.store._query("SELECT id FROM events"))
    grid = events["events"][0]["grid"]
    in_grid = server.get("/events", role="internal", grid=grid).json()["events"]
    assert in_grid and all(e["grid"] == grid for e in in_grid)
    sensor = ops_day.incidents["gas_leak"]["sensor"]
    window = server.get(
        "/observations",
        role="internal",
        sensor=sensor,
        start="2026-05-18T05:00:00Z",
        end="2026-05-18T06:00:00Z",
    ).json()
    assert [o["value"] for o in window["observations"]][4:12] == [35.0] * 8
    assert server.get("/observations", sensor=sensor).status_code == 404
    event_id = events["events"][0]["id"]
    assert server.get(f"/events/{event_id}").status_code == 404
    one = server.get(f"/events/{event_id}", role="internal").json()
    assert one["history"][0]["action"] == "open"


def test_writes_need_a_writer_role_and_feed_the_sse_stream(server: LiveServer) -> None:
    body = {
        "observations": [
            {"sensor": "GL000070", "time": "2026-05-18T15:01:30Z", "value": 44},
            {"sensor": "GL000070", "time": "2026-05-18T15:01:00Z", "value": "x"},
        ]
    }
    for role in (None, "internal", "restricted"):
        refused = _post(server, "/observations", role, body)
        assert refused.status_code == 403 and refused.json()["code"] == "Forbidden"
    seen: list[dict[str, Any]] = []
    ready = threading.Event()

    def listen() -> None:
        with httpx.stream(
            "GET", server.url + "/events/stream", headers=server.headers("internal"), timeout=30
        ) as answer:
            for line in answer.iter_lines():
                ready.set()
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert ready.wait(20)
    stored = _post(server, "/observations", "ops", body)
    assert stored.status_code == 200, stored.text
    answer = stored.json()
    assert (answer["stored"], answer["rejected"]) == (1, {"non-numeric": 1})
    listener.join(20)
    assert seen and seen[0]["sensor_uid"] == "sensors.GL000070"
    assert seen[0]["event_type"] == "gas_leak" and seen[0]["status"] == "new"
    event_id = seen[0]["id"]
    refused = _post(server, f"/events/{event_id}/ack", "internal", {})
    assert refused.status_code == 403
    done = _post(server, f"/events/{event_id}/dispatch", "ops", {"assignee": "燃气抢修队"}).json()
    assert done["status"] == "dispatched" and done["history"][-1]["who"] == "ops-desk-1"
    wrong = _post(server, f"/events/{event_id}/close", "ops", {})
    assert wrong.status_code == 400 and "close applies to resolved" in wrong.json()["description"]


def test_a_citizen_report_at_a_gcj02_point_becomes_a_located_event(
    server: LiveServer, ops_day: OpsDay
) -> None:
    city = twin.Twin.open(ops_day.twin)
    building = city.layer("buildings").iloc[[10]].to_crs("EPSG:4326")
    point = building.geometry.iloc[0].representative_point()
    lon, lat = (float(v) for v in wgs84_to_gcj02(point.x, point.y))
    answer = _post(
        server,
        "/reports",
        "ops",
        {
            "ticket": "12345-0001",
            "type": "water_leak",
            "time": "2026-05-18T16:00:00Z",
            "lon": lon,
            "lat": lat,
            "coords": "gcj02",
            "text": "路面冒水",
        },
    )
    assert answer.status_code == 201, answer.text
    event = answer.json()
    assert event["location"]["building"] == str(building.index[0])
    grid = city.relations("feature_grid", uid=str(building.index[0]))["to_uid"].iloc[0]
    assert event["location"]["grid"] == grid
    assert event["impact"]["analysis"] == "pipe_break"
    assert event["impact"]["pipe"] == event["location"]["nearest"]["pipe_water"]["uid"]


def _uids_of(body: Any, layers: set[str]) -> set[str]:
    """Every string in a JSON body that is a uid of one of ``layers``."""
    if isinstance(body, dict):
        return set().union(*(_uids_of(v, layers) for v in body.values()))
    if isinstance(body, list):
        return set().union(*(_uids_of(v, layers) for v in body))
    if isinstance(body, str) and body.split(".", 1)[0] in layers and "." in body:
        return {body}
    return set()


def test_an_event_names_no_restricted_feature_to_a_caller_who_may_not_read_it(
    server: LiveServer, ops_day: OpsDay
) -> None:
    city = twin.Twin.open(ops_day.twin)
    restricted = {i.name for i in city.layer_infos() if i.classification == "restricted"}
    point = city.layer("buildings").iloc[[20]].to_crs("EPSG:4326").geometry.iloc[0]
    spot = point.representative_point()
    body = {"ticket": "12345-0002", "type": "water_leak", "time": "2026-05-18T17:00:00Z"}
    answer = _post(server, "/reports", "ops", {**body, "lon": spot.x, "lat": spot.y})
    assert answer.status_code == 201, answer.text
    event_id = answer.json()["id"]
    seen = httpx.get(
        f"{server.url}/events/{event_id}", headers=server.headers("restricted"), timeout=60
    ).json()
    assert seen["impact"]["pipe"].startswith("water_pipes.")  # the restricted caller sees it
    assert _uids_of(seen, restricted)
    hidden = httpx.get(
        f"{server.url}/events/{event_id}", headers=server.headers("internal"), timeout=60
    ).json()
    assert hidden["impact"]["pipe"] is None and not _uids_of(hidden, restricted)
    listed = httpx.get(f"{server.url}/events", headers=server.headers("internal"), timeout=60)
    assert listed.status_code == 200 and not _uids_of(listed.json(), restricted)


class _KeyAuth(AuthHandler):  # type: ignore[misc]
    """frost-sta-client's auth handler hook: the API key as a header."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def add_auth_header(self) -> Any:
        key = self.key

        def sign(request: requests.PreparedRequest) -> requests.PreparedRequest:
            request.headers["X-API-Key"] = key
            return request

        return sign


def test_frost_sta_client_reads_datastreams_and_observations(
    server: LiveServer, ops_day: OpsDay
) -> None:
    import frost_sta_client as fsc

    service = fsc.SensorThingsService(
        server.url + "/sta/v1.1", auth_handler=_KeyAuth(KEYS["internal"])
    )
    streams = list(service.datastreams().query().top(120).list())  # three pages via nextLink
    store = LiveStore.beside(ops_day.twin)
    expected = store.datastreams()
    assert sorted(s.id for s in streams) == sorted(expected.index.tolist())
    sensor = ops_day.incidents["flooding"]["sensor"]
    ds = int(expected.index[expected["sensor_uid"] == sensor][0])
    stream = service.datastreams().find(ds)
    assert stream.unit_of_measurement.symbol == "m"
    observations = list(
        stream.get_observations()
        .query()
        .filter("phenomenonTime ge 2026-05-18T10:00:00Z and phenomenonTime lt 2026-05-18T12:00:00Z")
        .orderby("phenomenonTime", "ASC")
        .top(10)
        .list()
    )
    window = store.window(
        sensor, start=pd.Timestamp("2026-05-18T10:00Z"), end=pd.Timestamp("2026-05-18T11:55Z")
    )
    assert [o.result for o in observations] == window["value"].tolist() == [0.4] * 24
    anonymous = fsc.SensorThingsService(server.url + "/sta/v1.1")
    assert list(anonymous.datastreams().query().list()) == []


def test_restricted_sensors_stay_invisible_without_the_role(server: LiveServer) -> None:
    body = {"observations": [{"sensor": "CAM000001", "time": "2026-05-18T15:00:00Z", "value": 1}]}
    assert _post(server, "/observations", "ops", body).json()["stored"] == 1
    camera = "cameras.CAM000001"
    internal = {r["sensor_uid"] for r in server.get("/latest", role="internal").json()["latest"]}
    restricted = {
        r["sensor_uid"] for r in server.get("/latest", role="restricted").json()["latest"]
    }
    assert camera not in internal and camera in restricted
    assert server.get("/observations", role="internal", sensor=camera).status_code == 404
    assert server.get("/observations", role="restricted", sensor=camera).json()["count"] == 1
    assert server.get("/datastreams", role="internal", layer="cameras").status_code == 404
    things = server.get("/sta/v1.1/Things", role="restricted", **{"$top": 1000}).json()["value"]
    assert camera in {t["@iot.id"] for t in things}
    things = server.get("/sta/v1.1/Things", role="internal", **{"$top": 1000}).json()["value"]
    assert camera not in {t["@iot.id"] for t in things}


def _cli_vitals(path: Path, *args: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [TWIN_CLI, "vitals", str(path), "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float) and math.isnan(value):
                row[key] = None
    return rows


@pytest.mark.slow
def test_vitals_over_http_are_the_cli_numbers_for_what_the_caller_may_read(
    server: LiveServer,
) -> None:
    expected = _cli_vitals(server.twin, "--by", "grid")
    got = server.get("/vitals", role="restricted", by="grid").json()
    assert got["by"] == "grid" and got["count"] == len(expected)
    assert got["vitals"] == [pytest.approx(row) for row in expected]
    districts = server.get("/vitals", role="restricted", by="district").json()["vitals"]
    for column in ("sensors", "readings_last_hour", "open_events"):  # the same, grouped otherwise
        assert sum(r[column] for r in districts) == sum(r[column] for r in expected)
    cameras = len(twin.Twin.open(server.twin).layer("cameras"))
    full = server.get("/vitals", role="restricted", by="grid").json()["vitals"]
    internal = server.get("/vitals", role="internal", by="grid").json()["vitals"]
    assert sum(r["sensors"] for r in internal) == sum(r["sensors"] for r in full) - cameras > 0
    anonymous = server.get("/vitals").json()
    assert sum(r["sensors"] for r in anonymous["vitals"]) == 0, anonymous
    series = _cli_vitals(server.twin, "--series")
    got = server.get("/vitals/series", role="restricted").json()["series"]
    assert len(got) == len(series) > 20
    for mine, theirs in zip(got, series, strict=True):
        assert pd.Timestamp(mine.pop("time")) == pd.Timestamp(theirs.pop("time"))
        assert mine == theirs
    hourly = server.get("/vitals/series", role="internal").json()["series"]
    two = server.get("/vitals/series", role="internal", freq="2h").json()["series"]
    total = sum(r["readings"] for r in hourly)
    assert sum(r["readings"] for r in two) == total > 0
    assert total <= sum(r["readings"] for r in got)
    bad = server.get("/vitals/series", role="internal", freq="fortnight")
    assert bad.status_code == 400 and "15min" in bad.json()["description"]
    assert server.get("/vitals", role="internal", by="street").status_code in (400, 422)


def test_frost_sta_client_reads_every_entity_set_navigates_and_filters(
    server: LiveServer, ops_day: OpsDay
) -> None:
    import frost_sta_client as fsc

    service = fsc.SensorThingsService(
        server.url + "/sta/v1.1", auth_handler=_KeyAuth(KEYS["internal"])
    )
    registry = ops_day.loop.registry.frame
    internal = registry[registry["classification"] != "restricted"]  # cameras are restricted
    store = LiveStore.beside(server.twin)
    streams = store.datastreams(list(internal.index))
    things = list(service.things().query().expand("Locations").top(1000).list())
    assert sorted(t.id for t in things) == sorted(internal.index)
    lonlat = internal.geometry.to_crs(4326)
    first = things[0]
    [place] = first.locations.entities
    assert place.id == first.id
    assert place.location["coordinates"] == pytest.approx(
        [lonlat[first.id].x, lonlat[first.id].y], abs=1e-9
    )
    assert [loc.id for loc in first.get_locations().query().list()] == [first.id]
    kinds = {s.id for s in service.sensors().query().list()}
    assert kinds == set(internal["sensor_type"])
    props = {p.name for p in service.observed_properties().query().list()}
    assert props == set(streams["property"])
    features = list(service.features_of_interest().query().top(1000).list())
    assert len(features) == len(internal)
    assert len(list(service.locations().query().top(1000).list())) == len(internal)
    # navigation: Datastream -> Sensor / ObservedProperty / Thing, expanded
    sensor = ops_day.incidents["gas_leak"]["sensor"]
    ds = int(streams.index[streams["sensor_uid"] == sensor][0])
    stream = (
        service.datastreams()
        .query()
        .filter(f"Thing/id eq '{sensor}'")
        .expand("Thing,Sensor,ObservedProperty")
        .list()
        .entities
    )
    assert [s.id for s in stream] == [ds]
    assert stream[0].sensor.id == "gas_leak" and stream[0].observed_property.name == "gas"
    assert stream[0].thing.id == sensor
    # $filter on result and phenomenonTime, against the library's window
    window = store.window(
        sensor, start=pd.Timestamp("2026-05-18T04:00Z"), end=pd.Timestamp("2026-05-18T08:00Z")
    )
    high = window[window["value"] > 20]
    text = (
        "result gt 20 and phenomenonTime ge 2026-05-18T04:00:00Z "
        "and phenomenonTime le 2026-05-18T08:00:00Z"
    )
    found = list(
        service.datastreams()
        .find(ds)
        .get_observations()
        .query()
        .filter(text)
        .orderby("phenomenonTime", "ASC")
        .top(1000)
        .list()
    )
    assert len(high) > 0
    assert [o.result for o in found] == high["value"].tolist()
    # the same readings from the top-level Observations by Thing id, with their feature
    everywhere = list(
        service.observations()
        .query()
        .filter(f"Datastream/Thing/id eq '{sensor}' and ({text})")
        .expand("FeatureOfInterest")
        .top(1000)
        .list()
    )
    assert sorted(o.result for o in everywhere) == sorted(high["value"])
    assert {o.feature_of_interest.id for o in everywhere} == {sensor}
    # counts, paging and the restricted camera
    answer = server.get("/sta/v1.1/Observations", role="internal", **{"$count": "true", "$top": 1})
    visible_ids = json.dumps(streams.index.tolist())
    expected = store.scalar(
        "SELECT count(*) FROM observations WHERE datastream IN (SELECT value FROM json_each(?))",
        (visible_ids,),
    )
    assert answer.json()["@iot.count"] == expected > 0 and "@iot.nextLink" in answer.json()
    camera = str(registry.index[registry["layer"] == "cameras"][0])
    assert server.get(f"/sta/v1.1/Locations('{camera}')", role="internal").status_code == 404
    assert server.get(f"/sta/v1.1/Locations('{camera}')", role="restricted").status_code == 200


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"$filter": "substringof('x', name)"}, "eq|ne|gt|ge|lt|le"),
        ({"$filter": "colour eq 'red'"}, "cannot filter on colour"),
        ({"$orderby": "name sideways"}, "[asc|desc]"),
        ({"$expand": "Datastreams($top=1)"}, "one level"),
        ({"$select": "id,colour"}, "colour is not supported"),
    ],
)
def test_sensorthings_options_outside_the_subset_are_a_400_naming_it(
    server: LiveServer, query: dict[str, str], words: str
) -> None:
    answer = server.get("/sta/v1.1/Things", role="internal", **query)
    assert answer.status_code == 400 and words in answer.json()["description"]
