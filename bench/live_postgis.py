"""The live store on PostGIS: bulk ingest against a bare COPY of the same rows.

Each side starts its own throwaway cluster (:class:`twin.store.pgtest.TempCluster`,
set-up, not timed) and times only the ingest of the same Parquet readings as
``observe-ingest`` (N/10 sensors x 100 readings, in chunks of 500,000). Ours
opens the live store of a ``postgresql://…?schema=bench`` twin through
:meth:`twin.store.live.LiveStore.beside` and runs the validated ingest (sensor
check, duplicates in the batch and against the store, COPY into a temporary
table, ``INSERT … ON CONFLICT DO NOTHING``, latest values, dead letters);
then the latest values and one 24-hour window are read. The peer appends the
same rows with one bare binary ``COPY`` per chunk (packed by numpy) into the same
table layout, with no validation and no dedup: the raw floor.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.sensing import READINGS_PER_SENSOR, START, readings_file

Inputs = dict[str, Path]
CHUNK = 500_000
# A row of PostgreSQL's binary COPY format: field count, then (length, value) per field.
ROW = np.dtype(
    [
        ("n", ">i2"),
        ("l1", ">i4"),
        ("d", ">i8"),
        ("l2", ">i4"),
        ("m", ">i8"),
        ("l3", ">i4"),
        ("r", ">i8"),
        ("l4", ">i4"),
        ("v", ">f8"),
    ]
)


def _chunks(path: Path) -> Any:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK):
        yield batch.to_pandas()


def _n_sensors(inputs: Inputs) -> int:
    return max(10, int(inputs["buildings"].parent.name.split("-")[1]) // 10)


def _pressure_sensors(n_sensors: int) -> Any:
    """The registry of ``S000001``… water-pressure sensors the readings file names."""
    import geopandas as gpd
    import shapely

    from twin.sensing.sensors import SensorRegistry

    uids = pd.Index([f"sensors.S{i:06d}" for i in range(1, n_sensors + 1)], name="uid")
    columns = {"layer": "sensors", "classification": "internal", "name": None}
    columns |= {"sensor_type": "water_pressure", "unit": "MPa", "property": "pressure"}
    columns |= {"threshold_low": 0.16, "threshold_high": 0.65}
    points = shapely.points(np.zeros((n_sensors, 2)))
    return SensorRegistry(gpd.GeoDataFrame(columns, geometry=points, index=uids, crs="EPSG:4544"))


def ingest_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    from twin.sensing.ingest import ingest
    from twin.store.live import LiveStore
    from twin.store.pgtest import TempCluster

    path = readings_file(inputs)
    n_sensors = _n_sensors(inputs)
    registry = _pressure_sensors(n_sensors)
    now = START + pd.Timedelta(days=30)
    with TempCluster() as cluster:
        store = LiveStore.beside(cluster.url(schema="bench"))
        spent, stored = 0.0, 0
        for chunk in _chunks(path):
            started = time.perf_counter()
            stored += ingest(store, registry, chunk, source="bench", now=now).stored
            spent += time.perf_counter() - started
        resent = ingest(store, registry, next(iter(_chunks(path))), source="bench", now=now)
        started = time.perf_counter()
        latest = store.latest()
        latest_ms = (time.perf_counter() - started) * 1000
        uid = f"sensors.S{n_sensors // 2:06d}"
        end = START + pd.Timedelta(minutes=5 * READINGS_PER_SENSOR)
        times = []
        for _ in range(20):
            started = time.perf_counter()
            window = store.window(uid, "pressure", start=end - pd.Timedelta(hours=24), end=end)
            times.append((time.perf_counter() - started) * 1000)
        count = store.count_observations()
        store.close()
    return {
        "stored": stored,
        "rows": count,
        "ingest_s": spent,
        "readings_per_s": round(stored / spent),
        "resent_stored": resent.stored,
        "latest_rows": len(latest),
        "latest_ms": round(latest_ms, 1),
        "window_rows": len(window),
        "window_ms": round(float(np.median(times)), 2),
    }


def ingest_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    import psycopg

    from twin.store.pgtest import TempCluster

    path = readings_file(inputs)
    with TempCluster() as cluster, psycopg.connect(cluster.url(), autocommit=True) as con:
        con.execute(
            "CREATE TABLE observations (datastream BIGINT NOT NULL, phenomenon_ms BIGINT "
            "NOT NULL, result_ms BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL, quality TEXT, "
            "PRIMARY KEY (datastream, phenomenon_ms))"
        )
        ids: dict[str, int] = {}
        spent, stored = 0.0, 0
        for chunk in _chunks(path):
            started = time.perf_counter()
            sensors = chunk["sensor"].tolist()
            for s in sensors:
                if s not in ids:
                    ids[s] = len(ids) + 1
            ms = chunk["time"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
            rows = np.empty(len(chunk), dtype=ROW)
            rows["n"], rows["l1"], rows["l2"], rows["l3"], rows["l4"] = 4, 8, 8, 8, 8
            rows["d"] = [ids[s] for s in sensors]
            rows["m"], rows["r"], rows["v"] = ms, ms, chunk["value"].to_numpy(dtype=float)
            data = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + rows.tobytes() + b"\xff\xff"
            with (
                con.transaction(),
                con.cursor().copy(
                    "COPY observations (datastream, phenomenon_ms, result_ms, value) "
                    "FROM STDIN (FORMAT binary)"
                ) as copy,
            ):
                copy.write(data)
            stored += len(chunk)
            spent += time.perf_counter() - started
        count = con.execute("SELECT count(*) FROM observations").fetchone()[0]  # type: ignore[index]
    return {
        "stored": stored,
        "rows": int(count),
        "ingest_s": spent,
        "readings_per_s": round(stored / spent),
    }
