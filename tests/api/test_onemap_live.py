"""The one-map page's live data on a real ``twin serve``: stream tokens, events and their impact
as map features, sensor states, vital signs; then the page itself in Chromium, fed by the SSE
stream while observations are posted through the API."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import twin
from tests.api.conftest import KEYS, LiveServer, start_server, stop_server
from tests.sensing.conftest import sensing_keys_file
from twin.sensing import LiveStore, live_path
from twin.sensing.locate import Locator
from twin.sensing.vitals import vitals

T0 = pd.Timestamp("2026-05-18T08:00:00Z")


@dataclass
class Picked:
    """Three sensors and the readings that put them in alarm, normal and offline."""

    alarm: str
    normal: str
    offline: str
    readings: list[dict[str, Any]]


def pick_sensors(path: Path) -> Picked:
    sensors = twin.Twin.open(path).layer("sensors")
    gas = sensors[sensors["sensor_type"] == "gas_leak"]
    water = sensors[sensors["sensor_type"] == "water_pressure"]
    a, b, c = gas.index[3], water.index[5], water.index[9]
    high = float(gas.loc[a, "threshold_high"])
    mid = (float(water.loc[b, "threshold_low"]) + float(water.loc[b, "threshold_high"])) / 2
    old = T0 - pd.Timedelta(hours=2)
    readings = [
        {"sensor": a, "time": T0.isoformat(), "value": high * 2},
        {"sensor": b, "time": T0.isoformat(), "value": mid},
        {"sensor": c, "time": old.isoformat(), "value": mid},
    ]
    return Picked(a, b, c, readings)


@pytest.fixture(scope="module")
def live(sample_twin_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("onemap-live")
    path = Path(shutil.copy(sample_twin_file, folder / "chengdu.twin.gpkg"))
    server = start_server(path, folder, "--keys-file", str(sensing_keys_file(folder)))
    yield server
    stop_server(server)


def post(server: LiveServer, path: str, role: str | None, body: Any) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=server.headers(role), timeout=120)


def test_stream_token_opens_the_stream_and_nothing_else(live: LiveServer) -> None:
    issued = post(live, "/events/stream-token", "internal", None)
    assert issued.status_code == 200, issued.text
    body = issued.json()
    token = body["token"]
    assert body["role"] == "internal" and body["expires_in_s"] == 300
    assert KEYS["internal"] not in token and KEYS["internal"] not in body["stream"]
    lines: list[str] = []
    with httpx.stream("GET", f"{live.url}/events/stream", params={"token": token}, timeout=20) as s:
        assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
        for line in s.iter_lines():
            lines.append(line)
            break
    assert lines == [": twin events stream"]
    # elsewhere a token is no key: /latest answers as to an anonymous caller (sensors hidden)
    assert live.get("/latest", token=token).json()["count"] == 0
    assert live.get("/latest", role="internal").status_code == 200
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for bad in (forged, KEYS["internal"], "x.y"):
        refused = httpx.get(f"{live.url}/events/stream", params={"token": bad}, timeout=20)
        assert refused.status_code == 401 and refused.json()["code"] == "Unauthorized", bad
    both = httpx.get(
        f"{live.url}/events/stream", params={"token": token}, headers=live.headers("internal")
    )
    assert both.status_code == 401 and "not both" in both.json()["description"]
    anonymous = post(live, "/events/stream-token", None, None).json()
    assert anonymous["role"] == "public"


def test_events_states_and_vitals_for_the_map(live: LiveServer) -> None:
    picked = pick_sensors(live.twin)
    stored = post(live, "/observations", "ops", {"observations": picked.readings})
    assert stored.status_code == 200 and stored.json()["stored"] == 3, stored.text
    # sensor states: hand-checked from the readings just posted (clock = T0, online 30 min)
    states = live.get("/map/sensors", role="internal").json()
    by_uid = {s["uid"]: s for s in states["sensors"]}
    assert by_uid[picked.alarm]["state"] == "alarm"
    assert by_uid[picked.normal]["state"] == "normal"
    assert by_uid[picked.offline]["state"] == "offline"
    n_sensors = len(twin.Twin.open(live.twin).layer("sensors"))
    assert states["counts"] == {"normal": 1, "alarm": 1, "offline": 1, "no_data": n_sensors - 3}
    assert states["clock"] == "2026-05-18T08:00:00Z"
    assert live.get("/map/sensors").json()["sensors"] == []  # sensors are internal
    # the gas alarm opened one event, located on the map, with its impact as features
    events = live.get("/map/events", role="restricted").json()
    (feature,) = [f for f in events["features"] if f["properties"]["sensor_uid"] == picked.alarm]
    assert feature["properties"]["status"] == "new" and feature["properties"]["event_type"] == (
        "gas_leak"
    )
    event_id = feature["id"]
    event = live.get(f"/events/{event_id}", role="restricted").json()
    city = twin.Twin.open(live.twin)
    sensor_point = city.layer("sensors").to_crs("OGC:CRS84").geometry.loc[picked.alarm]
    lon, lat = feature["geometry"]["coordinates"]
    assert (lon, lat) == pytest.approx((sensor_point.x, sensor_point.y), abs=1e-7)
    drawn = live.get(f"/map/events/{event_id}", role="restricted").json()
    results = pd.Series(
        [f["properties"]["result"] for f in drawn["properties"]["impact"]["features"]]
    )
    impact = event["impact"]
    assert impact["valves_to_close"] and impact["buildings"]
    assert (results == "valve_to_close").sum() == len(impact["valves_to_close"])
    assert (results == "building").sum() == len(impact["buildings"])
    ids = {f["id"] for f in drawn["properties"]["impact"]["features"]}
    assert set(impact["valves_to_close"]) | set(impact["buildings"]) <= ids
    # an internal key sees the buildings, not the restricted valves
    inside = live.get(f"/map/events/{event_id}", role="internal").json()
    kinds = {f["properties"]["result"] for f in inside["properties"]["impact"]["features"]}
    assert "building" in kinds and "valve_to_close" not in kinds
    assert live.get(f"/map/events/{event_id}").status_code == 404  # the sensor is internal
    # vital signs: the library's vitals, per district
    with LiveStore(live_path(live.twin)) as store:
        expected = vitals(store, Locator.from_twin(city), by="district")
    stats = live.get("/statistics", role="restricted", by="district", live="true").json()
    got = {f["id"]: f["properties"] for f in stats["features"]}
    for district, row in expected.iterrows():
        assert got[district]["sensors_online"] == row["sensors_online"], district
        assert got[district]["open_events"] == row["open_events"], district
        assert got[district]["overdue_events"] == row["overdue_events"], district
    assert sum(p["open_events"] for p in got.values()) >= 1
    assert sum(p["sensors_online"] for p in got.values()) == 2
    public = live.get("/statistics", by="district", live="true").json()["features"]
    assert sum(f["properties"]["sensors_online"] for f in public) == 0  # no sensor is public
    assert live.get("/statistics", by="parcels", live="true").status_code == 400


def test_the_stream_reports_an_event_to_a_token_holder(live: LiveServer) -> None:
    token = post(live, "/events/stream-token", "internal", None).json()["token"]
    seen: list[str] = []
    ready = threading.Event()

    def listen() -> None:
        with httpx.stream(
            "GET", f"{live.url}/events/stream", params={"token": token}, timeout=30
        ) as answer:
            for line in answer.iter_lines():
                ready.set()
                if line.startswith("data: "):
                    seen.append(line)
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert ready.wait(20)
    report = {
        "ticket": "12345-0001",
        "type": "water_leak",
        "time": (T0 + pd.Timedelta(minutes=5)).isoformat(),
        "place": "buildings.JZ0000101",
        "text": "路面冒水",
    }
    assert post(live, "/reports", "ops", report).status_code == 201
    listener.join(30)
    assert seen and '"water_leak"' in seen[0]


# --------------------------------------------------------------------------- the page, live


@pytest.mark.slow
def test_page_fed_by_the_stream_markers_states_impact_and_vitals(live: LiveServer) -> None:
    from playwright.sync_api import sync_playwright

    from tests.api.test_onemap_page import ARTEFACTS, CHROMIUM, FLAGS, Session

    city = twin.Twin.open(live.twin)
    sensors = city.layer("sensors")
    gas = sensors[sensors["sensor_type"] == "gas_leak"]
    fresh = gas.index[20]  # no reading yet: no data until the page sees its alarm
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 850}, locale="zh-CN")
        session = Session(context.new_page(), live)
        try:
            session.open()
            session.enter_key(live.keys["ops"])
            page = session.page
            page.wait_for_selector("#events-status:text-is('事件流已接入')", timeout=30_000)
            before = live.get("/map/events", role="ops").json()["features"]
            page.wait_for_function(
                f"document.querySelectorAll('#events-list li').length === {len(before)}"
            )
            page.wait_for_function("citytwin.sensorCounts !== undefined")
            state_of = (
                "uid => citytwin.map.getFeatureState("
                "{source: 'twin', sourceLayer: 'sensors', id: uid}).state"
            )
            assert page.evaluate(state_of, fresh) == "no_data"
            counts = page.evaluate("citytwin.sensorCounts")
            assert counts == live.get("/map/sensors", role="ops").json()["counts"]
            assert "报警 (1)" in page.inner_text("#legend-sensors [data-state='alarm']")
            # a reading over the threshold, posted through the API while the page is open
            high = float(gas.loc[fresh, "threshold_high"]) * 3
            reading = {
                "sensor": fresh,
                "time": (T0 + pd.Timedelta(minutes=10)).isoformat(),
                "value": high,
            }
            assert (
                post(live, "/observations", "ops", {"observations": [reading]}).status_code == 200
            )
            after = live.get("/map/events", role="ops").json()["features"]
            (new,) = [f for f in after if f["properties"]["sensor_uid"] == fresh]
            event_id = new["id"]
            page.wait_for_selector(f"#events-list li[data-id='{event_id}']", timeout=30_000)
            page.wait_for_selector(f".event-marker[data-id='{event_id}']")
            assert page.inner_text(f"#events-list li[data-id='{event_id}']").startswith(
                "[新事件] 燃气泄漏"
            )
            page.wait_for_function(f"({state_of})('{fresh}') === 'alarm'", timeout=30_000)
            # the vital-signs strip: the library's vitals for the event's district
            with LiveStore(live_path(live.twin)) as store:
                expected = vitals(store, Locator.from_twin(city), by="district")
            district = new["properties"]["district"]
            vital = page.locator(f"#vitals .vital[data-zone='{district}']")
            page.wait_for_function(
                "([z, n]) => document.querySelector(`#vitals .vital[data-zone='${z}']`)"
                ".dataset.open === String(n)",
                arg=[district, int(expected.loc[district, "open_events"])],
                timeout=30_000,
            )
            assert vital.get_attribute("data-online") == str(
                expected.loc[district, "sensors_online"]
            )
            stats = live.get("/statistics", role="ops", by="district").json()["features"]
            (row,) = [f["properties"] for f in stats if f["id"] == district]
            assert vital.get_attribute("data-buildings") == str(row["building_count"])
            # click the marker: the impact attached to the event is drawn
            lon, lat = new["geometry"]["coordinates"]
            session.jump(lon, lat, 16)
            page.click(f".event-marker[data-id='{event_id}']")
            page.wait_for_selector(
                "#impact-summary tr[data-result='valve_to_close']", timeout=30_000
            )
            impact = live.get(f"/events/{event_id}", role="ops").json()["impact"]
            drawn = page.evaluate("citytwin.impactCounts")
            assert drawn["valve_to_close"] == len(impact["valves_to_close"]) > 0
            assert drawn["building"] == len(impact["buildings"]) > 0
            # dispatched through the API: the entry changes without a reload
            done = post(live, f"/events/{event_id}/dispatch", "ops", {"assignee": "燃气抢修队"})
            assert done.status_code == 200, done.text
            page.wait_for_selector(
                f"#events-list li[data-id='{event_id}'][data-status='dispatched']", timeout=30_000
            )
            assert page.inner_text(f"#events-list li[data-id='{event_id}']").startswith("[已派单]")
            session.idle()
            session.shot("07-live-event-and-sensor-states")
            session.assert_clean()
        finally:
            context.close()
            browser.close()
