"""Sensing benchmarks: bulk ingest beside a bare SQLite append, latest values, 24-hour windows.

The city of N buildings has N/10 sensors, each with 100 readings (10 million
readings for 100,000 sensors at the 1M city), five minutes apart, in a Parquet
file prepared once in ``bench/.cache``. Ours runs the one validated ingest
path (:func:`twin.sensing.ingest`: sensor lookup, number and time checks,
duplicates, datastreams, the latest table, dead letters) in 500,000-row
transactions; the peer appends the same rows to the same observation table
with bare ``sqlite3`` ``executemany`` (no validation, no latest table), the
same chunks read from the same file, sensor names mapped to ids vectorised
(each distinct name once), binding what ours binds (datastream, time, value;
the result time is one literal per chunk, as ours writes it).
Both time only the store work (``ingest_s``); then ours reads the latest
value of every sensor and a 24-hour window of one sensor.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

Inputs = dict[str, Path]
READINGS_PER_SENSOR = 100
CHUNK = 500_000
START = pd.Timestamp("2026-05-18T00:00:00Z")


def _size(inputs: Inputs) -> int:
    """Buildings in the bench city (from its cache folder name ``city-<n>-<seed>``)."""
    return int(inputs["buildings"].parent.name.split("-")[1])


def readings_file(inputs: Inputs) -> Path:
    """The Parquet file of readings for this city size (made once)."""
    n_sensors = max(10, _size(inputs) // 10)
    path = inputs["buildings"].parent / f"readings-{n_sensors}x{READINGS_PER_SENSOR}.parquet"
    if path.exists():
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    ids = np.char.add("S", np.char.zfill(np.arange(1, n_sensors + 1).astype(str), 6))
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, _schema(pa)) as writer:
        for step in range(READINGS_PER_SENSOR):
            stamp = START + pd.Timedelta(minutes=5 * step)
            table = pa.table(
                {
                    "sensor": pa.array(ids),
                    "time": pa.array(
                        np.full(n_sensors, stamp.value // 1000), pa.timestamp("us", "UTC")
                    ),
                    "value": pa.array(rng.normal(0.35, 0.01, n_sensors)),
                }
            )
            writer.write_table(table)
    tmp.rename(path)
    return path


def _schema(pa: Any) -> Any:
    return pa.schema(
        [("sensor", pa.string()), ("time", pa.timestamp("us", "UTC")), ("value", pa.float64())]
    )


def _chunks(path: Path) -> Any:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK):
        yield batch.to_pandas()


def _registry(n_sensors: int) -> Any:
    import geopandas as gpd
    import shapely

    from twin.sensing.sensors import SensorRegistry

    uids = [f"sensors.S{i:06d}" for i in range(1, n_sensors + 1)]
    frame = gpd.GeoDataFrame(
        {
            "layer": "sensors",
            "classification": "internal",
            "sensor_type": "water_pressure",
            "name": None,
            "unit": "MPa",
            "threshold_low": 0.16,
            "threshold_high": 0.65,
            "property": "pressure",
        },
        geometry=shapely.points(np.zeros((n_sensors, 2))),
        index=pd.Index(uids, name="uid"),
        crs="EPSG:4544",
    )
    return SensorRegistry(frame)


def ingest_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    from twin.sensing.ingest import ingest
    from twin.sensing.store import LiveStore

    path = readings_file(inputs)
    n_sensors = max(10, _size(inputs) // 10)
    registry = _registry(n_sensors)
    store = LiveStore(scratch / "live.sqlite")
    spent = 0.0
    stored = 0
    now = START + pd.Timedelta(days=30)
    for chunk in _chunks(path):
        started = time.perf_counter()
        stored += ingest(store, registry, chunk, source="bench", now=now).stored
        spent += time.perf_counter() - started
    store.close()  # the writer leaves its latest-values snapshot
    cold_ms = _cold_latest_ms(store.path, n_sensors)
    store = LiveStore(store.path)
    latest = store.latest()
    warm = []
    for step in range(5):  # warm, as a serving process sees it: 1,000 new readings, then read
        last = START + pd.Timedelta(minutes=5 * (READINGS_PER_SENSOR + step))
        fresh = pd.DataFrame(
            {"sensor": [f"S{i:06d}" for i in range(1, 1001)], "time": last, "value": 0.3}
        )
        ingest(store, registry, fresh, source="bench", now=now)
        started = time.perf_counter()
        latest = store.latest()
        warm.append((time.perf_counter() - started) * 1000)
    latest_ms = float(np.median(warm))
    uid = f"sensors.S{n_sensors // 2:06d}"
    end = START + pd.Timedelta(minutes=5 * (READINGS_PER_SENSOR + 4))
    times = []
    for _ in range(20):
        started = time.perf_counter()
        window = store.window(uid, "pressure", start=end - pd.Timedelta(hours=24), end=end)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "stored": stored,
        "ingest_s": spent,
        "readings_per_s": round(stored / spent),
        "latest_rows": len(latest),
        "latest_cold_ms": round(cold_ms, 1),
        "latest_ms": round(latest_ms, 1),
        "window_rows": len(window),
        "window_ms": round(float(np.median(times)), 2),
    }


COLD_PROBE = """
import sys, time
from twin.store.live import LiveStore
started = time.perf_counter()
frame = LiveStore(sys.argv[1], snapshot_every_s=None).latest()
print((time.perf_counter() - started) * 1000, len(frame))
"""


def _cold_latest_ms(path: Path, n_sensors: int) -> float:
    """The latest value of every datastream read by a fresh process that opens the store
    (median of 3 processes; imports not timed)."""
    import subprocess
    import sys

    times = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", COLD_PROBE, str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert int(out[1]) == n_sensors, out
        times.append(float(out[0]))
    return float(np.median(times))


def _pragmas(con: sqlite3.Connection) -> None:
    """What the live store sets too (WAL, synchronous NORMAL, a 256 MiB page cache)."""
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("PRAGMA cache_size = -262144")
    con.execute("PRAGMA temp_store = MEMORY")


def ingest_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    from twin.sensing.store import SCHEMA

    path = readings_file(inputs)
    con = sqlite3.connect(scratch / "peer.sqlite", isolation_level=None)
    _pragmas(con)
    con.executescript(SCHEMA)
    names = pd.Index([], dtype=object)  # datastream id - 1 of each sensor name seen
    spent = 0.0
    stored = 0
    for chunk in _chunks(path):
        started = time.perf_counter()
        codes, distinct = pd.factorize(chunk["sensor"])  # each name mapped once, vectorised
        known = names.get_indexer(distinct)
        names = names.append(pd.Index(distinct[known < 0], dtype=object))
        ds = names.get_indexer(distinct)[codes].astype("int64") + 1
        ms = chunk["time"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
        value = chunk["value"].to_numpy(dtype=float)
        order = np.lexsort((ms, ds))  # key order, as ours writes: B-tree writes stay local
        rows = zip(ds[order].tolist(), ms[order].tolist(), value[order].tolist(), strict=True)
        received = int(time.time() * 1000)  # the result time: one per chunk, as ours
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO observations (datastream, phenomenon_ms, result_ms, value) "
            f"VALUES (?, ?, {received:d}, ?)",
            rows,
        )
        con.execute("COMMIT")
        stored += len(chunk)
        spent += time.perf_counter() - started
    return {"stored": stored, "ingest_s": spent, "readings_per_s": round(stored / spent)}


# -- MQTT through Mosquitto ---------------------------------------------------------------
MQTT_SENSORS = 10_000
MQTT_RATE = 5_000
MQTT_SECONDS = float(os.environ.get("TWIN_BENCH_MQTT_S", "60"))
ALARMS = 200  # gas readings above the threshold, spread over the run (publish -> SSE latency)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout_s: float = 60.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def _mqtt_twin(path: Path) -> None:
    import geopandas as gpd
    import shapely

    import twin

    rng = np.random.default_rng(3)
    xy = np.column_stack(
        [
            rng.uniform(500_000, 510_000, MQTT_SENSORS),
            rng.uniform(3_390_000, 3_400_000, MQTT_SENSORS),
        ]
    )
    frame = gpd.GeoDataFrame(
        {
            "id": [f"G{i:05d}" for i in range(MQTT_SENSORS)],
            "sensor_type": "gas_leak",
            "threshold_high": 20.0,
            "unit": "%LEL",
        },
        geometry=shapely.points(xy),
        crs="EPSG:4544",
    )
    city = twin.Twin.create(path, crs="EPSG:4544")
    city.import_frame(frame, layer="sensors", kind="sensor", id="id")


def mqtt_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """5,000 readings/s for 60 s from 10,000 sensors through Mosquitto into the live store;
    200 of them alarms, timed from publish to the event on the SSE stream."""
    import hashlib
    import json
    import os
    import shutil
    import subprocess
    import sys
    import threading

    import httpx
    import paho.mqtt.client as mqtt

    from twin.sensing.mqtt import mosquitto_config
    from twin.sensing.store import LiveStore

    twin_path = scratch / "mqtt.gpkg"
    _mqtt_twin(twin_path)
    port, api_port = _free_port(), _free_port()
    (scratch / "m.conf").write_text(mosquitto_config(port), encoding="utf-8")
    broker = subprocess.Popen(
        [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(scratch / "m.conf")],
        stderr=subprocess.DEVNULL,
    )
    cli = str(Path(sys.executable).with_name("twin"))
    keys = scratch / "keys.yaml"
    keys.write_text("keys: []\n", encoding="utf-8")
    digest = hashlib.sha256(b"bench-key").hexdigest()
    env = {**os.environ, "TWIN_API_KEYS": f"bench:internal:{digest}", "TWIN_API_POLL_S": "0.05"}
    server = subprocess.Popen(
        [cli, "-q", "serve", str(twin_path), "--port", str(api_port)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    _wait_port(port)
    _wait_port(api_port, 120)
    ingester = subprocess.Popen(
        [
            cli,
            "observe",
            "mqtt",
            str(twin_path),
            "--broker",
            f"127.0.0.1:{port}",
            "--flush",
            "0.05",
            "--max-batch",
            "5000",
        ],
        stderr=subprocess.DEVNULL,
    )
    seen: dict[str, float] = {}
    stop = threading.Event()

    def listen() -> None:
        with httpx.stream(
            "GET",
            f"http://127.0.0.1:{api_port}/events/stream",
            headers={"X-API-Key": "bench-key"},
            timeout=None,
        ) as answer:
            for line in answer.iter_lines():
                if line.startswith("data: "):
                    item = json.loads(line[6:])
                    seen.setdefault(item["sensor_uid"], time.monotonic())
                if stop.is_set():
                    return

    listener = threading.Thread(target=listen, daemon=True)
    store = LiveStore.beside(twin_path)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        probe = json.dumps({"time": "2026-05-17T23:00:00Z", "value": 1.0})
        deadline = time.monotonic() + 120
        while store.count_observations() == 0:  # until the ingester has subscribed
            if time.monotonic() > deadline:
                raise RuntimeError("the ingester did not store the probe reading")
            client.publish("city/G00000/gas", probe, qos=1)
            time.sleep(1.0)
        listener.start()
        time.sleep(1.0)
        total = int(MQTT_RATE * MQTT_SECONDS)
        base_count = store.count_observations()
        alarm_at = set(np.linspace(total * 0.05, total * 0.95, ALARMS).astype(int).tolist())
        published: dict[str, float] = {}
        base = pd.Timestamp("2026-05-18T00:00:00Z")
        started = time.monotonic()
        topics = [f"city/G{k:05d}/gas" for k in range(MQTT_SENSORS)]
        for i in range(total):
            if i % 50 == 0:  # pace in steps of 10 ms
                lag = started + i / MQTT_RATE - time.monotonic()
                if lag > 0:
                    time.sleep(lag)
            if i % MQTT_SENSORS == 0:
                stamp = (base + pd.Timedelta(seconds=i // MQTT_SENSORS)).isoformat()
                normal = f'{{"time": "{stamp}", "value": 1.0}}'
            alarm = i in alarm_at
            payload = f'{{"time": "{stamp}", "value": 45.0}}' if alarm else normal
            client.publish(topics[i % MQTT_SENSORS], payload, qos=1)
            if alarm:
                published.setdefault(f"sensors.G{i % MQTT_SENSORS:05d}", time.monotonic())
        publish_s = time.monotonic() - started
        deadline = time.monotonic() + 120
        while store.count_observations() - base_count < total and time.monotonic() < deadline:
            time.sleep(0.2)
        stored_s = time.monotonic() - started
        stored = store.count_observations() - base_count
        time.sleep(2.0)
        stop.set()
    finally:
        client.loop_stop()
        client.disconnect()
        for process in (ingester, server, broker):
            process.terminate()
            process.wait(30)
    latencies = sorted(seen[s] - t for s, t in published.items() if s in seen)
    p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else None
    return {
        "published": total,
        "stored": stored,
        "publish_rate": round(total / publish_s),
        "stored_rate": round(stored / stored_s),
        "alarms": len(published),
        "alarms_on_sse": len(latencies),
        "sse_p99_s": None if p99 is None else round(p99, 3),
    }
