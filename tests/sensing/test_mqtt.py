"""MQTT through a real Mosquitto on a loopback port: the ingester (`twin observe mqtt`) and the
replay (`twin observe replay`); a kill -9 mid-stream loses no acknowledged reading and
stores none twice."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import twin
from tests.conftest import SAMPLES, TWIN_CLI
from twin.sensing import LiveStore
from twin.sensing.broker import start_mosquitto
from twin.sensing.events import list_events
from twin.sensing.mqtt import replay


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    with start_mosquitto(tmp_path_factory.mktemp("mosquitto")) as running:
        yield running.host, running.port


def _ingester(
    twin: Path, port: int, log: Path, *extra: str, client_id: str = "ingester-under-test"
) -> subprocess.Popen[bytes]:
    command = [
        TWIN_CLI,
        "observe",
        "mqtt",
        str(twin),
        "--broker",
        f"127.0.0.1:{port}",
        "--client-id",
        client_id,
        "--max-batch",
        "500",
        "--flush",
        "0.05",
        *extra,
    ]
    return subprocess.Popen(command, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def _wait(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_kill_9_mid_stream_loses_no_acknowledged_reading_and_stores_none_twice(
    fresh: Path, day: tuple[pd.DataFrame, dict[str, Any]], broker: tuple[str, int], tmp_path: Path
) -> None:
    host, port = broker
    frame = day[0]
    hours = (frame["time"] >= "2026-05-18T00:30:00Z") & (frame["time"] < "2026-05-18T02:00:00Z")
    frame = frame[hours].reset_index(drop=True)  # 18 steps x 300 sensors, the drop at 01:00
    store = LiveStore.beside(fresh)
    log = tmp_path / "ingester.log"
    first = _ingester(fresh, port, log)
    probe = pd.DataFrame(
        {
            "sensor": ["WP000001"],
            "time": ["2026-05-17T15:00:00Z"],
            "property": ["pressure"],
            "value": [0.3],
        }
    )
    _wait(
        lambda: replay(probe, host, port, speed=0) and store.count_observations() == 1,
        60,
        "the ingester to subscribe",
    )
    sent: list[int] = []
    publisher = threading.Thread(target=lambda: sent.append(replay(frame, host, port, speed=0)))
    publisher.start()
    _wait(lambda: store.count_observations() > 2000, 120, "the first readings")
    os.kill(first.pid, signal.SIGKILL)  # mid-stream, no goodbye
    first.wait()
    at_kill = store.count_observations()
    publisher.join(300)
    assert sent == [len(frame)]  # the broker acknowledged every reading to the publisher
    assert at_kill < len(frame) + 1
    second = _ingester(fresh, port, log)
    try:
        _wait(lambda: store.count_observations() == len(frame) + 1, 240, "every reading")
        time.sleep(1.0)  # anything resent late would show up as a second row now
    finally:
        second.terminate()
        second.wait(30)
    assert store.count_observations() == len(frame) + 1
    stored = store._query(
        "SELECT d.sensor_uid, o.phenomenon_ms, o.value FROM observations o "
        "JOIN datastreams d ON d.id = o.datastream"
    )
    ms = pd.to_datetime(frame["time"], utc=True).astype("datetime64[ms, UTC]").astype("int64")
    sent_keys = set(zip("sensors." + frame["sensor"], ms, strict=True))
    assert sent_keys <= set(zip(stored["sensor_uid"], stored["phenomenon_ms"], strict=True))
    dead = store.dead_letters()
    assert set(dead["reason"]) <= {"duplicate"}  # resent after the kill, kept apart
    # the stream ran through the rules: the planted pressure drop became events
    events = list_events(store)
    assert "pressure_drop" in set(events["event_type"])


def test_replay_publishes_in_time_order_at_speed(
    day: tuple[pd.DataFrame, dict[str, Any]], broker: tuple[str, int], tmp_path: Path
) -> None:
    import paho.mqtt.client as mqtt

    host, port = broker
    frame = day[0]
    sample = frame[
        (frame["sensor"].isin(["WP000001", "GL000001"])) & (frame["time"] < "2026-05-17T16:10:00Z")
    ]  # the day's first 2 steps
    path = tmp_path / "two.csv"
    sample.iloc[::-1].to_csv(path, index=False)  # reversed in the file: replay sorts by time
    got: list[tuple[float, str, bytes]] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="listener")
    subscribed = threading.Event()
    client.on_message = lambda c, u, m: got.append((time.monotonic(), m.topic, m.payload))
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect(host, port)
    client.loop_start()
    client.subscribe("city/+/+", qos=1)
    assert subscribed.wait(10)
    started = time.monotonic()
    result = subprocess.run(
        [TWIN_CLI, "observe", "replay", str(path), "--broker", f"{host}:{port}", "--speed", "300"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "published 4 reading(s)" in result.stdout
    _wait(lambda: len(got) == 4, 10, "four messages")
    client.loop_stop()
    client.disconnect()
    topics = [t for _, t, _ in got]
    assert sorted(topics[:2]) == ["city/GL000001/gas", "city/WP000001/pressure"]
    assert b"16:00:00" in got[0][2] and b"16:05:00" in got[3][2]
    # five minutes of data at 300x: the second batch one second after the first
    assert got[2][0] - started >= 0.9
    bad = subprocess.run(
        [TWIN_CLI, "observe", "replay", str(path), "--broker", "nohost"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr


def _reimported_sensors(twin_path: Path, folder: Path) -> None:
    """Re-import the sample sensor layer without WP000002 and with a new sensor NEW000001."""
    source = pd.read_csv(SAMPLES / "sensors.csv", encoding="utf-8-sig", dtype=str)
    added = source[source["设备编号"] == "WP000003"].assign(设备编号="NEW000001", 名称="新压力点")
    changed = pd.concat([source[source["设备编号"] != "WP000002"], added], ignore_index=True)
    path = folder / "sensors.csv"
    changed.to_csv(path, index=False, encoding="utf-8")
    spec = yaml.safe_load((SAMPLES / "mapping.yaml").read_text(encoding="utf-8"))
    options = {k: v for k, v in spec["layers"]["sensors"].items() if k not in ("source", "kind")}
    twin.Twin.open(twin_path).import_layer(path, layer="sensors", kind="sensor", **options)


@pytest.mark.slow
def test_the_ingester_follows_a_reimport_of_the_sensor_layer(
    fresh: Path, broker: tuple[str, int], tmp_path: Path
) -> None:
    host, port = broker
    store = LiveStore.beside(fresh)
    # routine checks far apart: the new sensor's first reading is what makes it look
    ingester = _ingester(
        fresh, port, tmp_path / "ingester.log", "--watch-every", "600", client_id="reload-test"
    )

    def reading(sensor: str, minute: int) -> pd.DataFrame:
        stamp = f"2026-05-18T08:{minute:02d}:00Z"
        return pd.DataFrame(
            {"sensor": [sensor], "time": [stamp], "property": ["pressure"], "value": [0.3]}
        )

    try:
        _wait(
            lambda: (
                replay(reading("WP000002", 0), host, port, speed=0)
                and store.count_observations() >= 1
            ),
            60,
            "the ingester to subscribe",
        )
        before = store.count_observations()
        _reimported_sensors(fresh, tmp_path)
        time.sleep(1.2)  # past the miss gap
        sent = pd.concat([reading("NEW000001", 1), reading("WP000002", 2)])
        assert replay(sent, host, port, speed=0) == 2
        _wait(lambda: store.count_observations() == before + 1, 60, "the new sensor's reading")
        _wait(lambda: len(store.dead_letters("unknown sensor")) == 1, 30, "the dead letter")
    finally:
        ingester.terminate()
        ingester.wait(30)
    assert store.window("sensors.NEW000001")["value"].tolist() == [0.3]
    dead = store.dead_letters("unknown sensor")
    assert dead["sensor"].tolist() == ["WP000002"] and dead["time"].iloc[0].startswith(
        "2026-05-18T08:02"
    )
    assert len(store.window("sensors.WP000002")) == 1  # the reading from before the re-import
