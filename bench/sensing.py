"""Sensing benchmarks: bulk ingest beside a bare SQLite append, latest values, 24-hour windows.

The city of N buildings has N/10 sensors, each with 100 readings (10 million
readings for 100,000 sensors at the 1M city), five minutes apart, in a Parquet
file prepared once in ``bench/.cache``. Ours runs the one validated ingest
path (:func:`twin.sensing.ingest`: sensor lookup, number and time checks,
duplicates, datastreams, the latest table, dead letters) in 500,000-row
transactions; the peer appends the same rows to the same observation table
with bare ``sqlite3`` ``executemany`` (no validation, no latest table), the
same chunks read from the same file. Both time only the store work
(``ingest_s``); then ours reads the latest value of every sensor and a
24-hour window of one sensor.
"""

from __future__ import annotations

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
    started = time.perf_counter()
    latest = store.latest()
    latest_ms = (time.perf_counter() - started) * 1000
    uid = f"sensors.S{n_sensors // 2:06d}"
    end = START + pd.Timedelta(minutes=5 * (READINGS_PER_SENSOR - 1))
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
        "latest_ms": round(latest_ms, 1),
        "window_rows": len(window),
        "window_ms": round(float(np.median(times)), 2),
    }


def ingest_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    from twin.sensing.store import SCHEMA

    path = readings_file(inputs)
    con = sqlite3.connect(scratch / "peer.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.executescript(SCHEMA)
    ids: dict[str, int] = {}
    spent = 0.0
    stored = 0
    for chunk in _chunks(path):
        started = time.perf_counter()
        sensors = chunk["sensor"].tolist()
        for s in sensors:
            if s not in ids:
                ids[s] = len(ids) + 1
        ms = chunk["time"].astype("datetime64[ms, UTC]").astype("int64").tolist()
        rows = zip([ids[s] for s in sensors], ms, ms, chunk["value"].tolist(), strict=True)
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO observations (datastream, phenomenon_ms, result_ms, value) "
            "VALUES (?, ?, ?, ?)",
            rows,
        )
        con.execute("COMMIT")
        stored += len(chunk)
        spent += time.perf_counter() - started
    return {"stored": stored, "ingest_s": spent, "readings_per_s": round(stored / spent)}
