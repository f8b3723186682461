"""SensorThings ``$filter`` queries beside the same questions asked of SQLite directly.

Set-up (not timed): a live store of N/10 sensors x 100 readings (the readings
file of :mod:`bench.sensing`), written with bare ``executemany``. Timed, ours:
each query through :class:`twin.sensing.sensorthings.SensorThings` built per
request (as the API does): the OData filter parsed, turned into SQL or a
pandas mask, the page rendered as SensorThings JSON with ``@iot.count``. The
peer: the same conditions hand-written in SQL with ``sqlite3`` (and a pandas
mask for the Things), rows fetched, no JSON. Facts: the counts, which must agree.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.sensing import READINGS_PER_SENSOR, START, readings_file

Inputs = dict[str, Path]
REPEAT = 20
SINCE = START + pd.Timedelta(minutes=5 * (READINGS_PER_SENSOR // 2))
SINCE_TEXT = SINCE.isoformat().replace("+00:00", "Z")


def _n_sensors(inputs: Inputs) -> int:
    return max(10, int(inputs["buildings"].parent.name.split("-")[1]) // 10)


def _store(inputs: Inputs, scratch: Path) -> Path:
    """The live store (made once per scratch folder): datastreams and observations."""
    import pyarrow.parquet as pq

    from twin.sensing.store import SCHEMA

    path = scratch / "sta.live.sqlite"
    n = _n_sensors(inputs)
    con = sqlite3.connect(path)
    con.executescript(SCHEMA)
    con.executemany(
        "INSERT INTO datastreams (id, sensor_uid, property, unit) VALUES (?, ?, 'pressure', 'MPa')",
        ((i, f"sensors.S{i:06d}") for i in range(1, n + 1)),
    )
    for batch in pq.ParquetFile(readings_file(inputs)).iter_batches(batch_size=500_000):
        frame = batch.to_pandas()
        ds = frame["sensor"].str[1:].astype("int64").to_numpy()
        ms = frame["time"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
        rows = zip(ds.tolist(), ms.tolist(), ms.tolist(), frame["value"].tolist(), strict=True)
        con.executemany(
            "INSERT INTO observations (datastream, phenomenon_ms, result_ms, value) "
            "VALUES (?, ?, ?, ?)",
            rows,
        )
    con.commit()
    con.close()
    return path


def _registry(n: int) -> Any:
    import geopandas as gpd
    import shapely

    from twin.sensing.sensors import SensorRegistry

    uids = [f"sensors.S{i:06d}" for i in range(1, n + 1)]
    kinds = np.where(np.arange(n) % 4 == 0, "water_level", "water_pressure")
    frame = gpd.GeoDataFrame(
        {"layer": "sensors", "classification": "internal", "sensor_type": kinds},
        geometry=shapely.points(np.zeros((n, 2))),
        index=pd.Index(uids, name="uid"),
        crs="EPSG:4544",
    )
    frame["name"] = [u.split(".")[1] for u in uids]
    return SensorRegistry(frame)


def _queries(n: int) -> dict[str, str]:
    middle = f"sensors.S{n // 2:06d}"
    return {
        "stream": f"Datastreams({n // 3})/Observations?result gt 0.35 and phenomenonTime ge "
        f"{SINCE_TEXT}",
        "thing": f"Observations?Datastream/Thing/id eq '{middle}' and "
        "(result lt 0.34 or result gt 0.36)",
        "things": "Things?properties/sensor_type eq 'water_level' and name ge 'S000500'",
    }


def _timed(fn: Any) -> tuple[float, Any]:
    spent, answer = [], None
    for _ in range(REPEAT):
        started = time.perf_counter()
        answer = fn()
        spent.append((time.perf_counter() - started) * 1000)
    return float(np.median(spent)), answer


def sta_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    from twin.sensing.sensorthings import Query, SensorThings
    from twin.sensing.store import LiveStore

    n = _n_sensors(inputs)
    store = LiveStore(_store(inputs, scratch))
    registry = _registry(n)
    facts: dict[str, Any] = {}
    total_ms = 0.0
    for name, text in _queries(n).items():
        path, expression = text.split("?", 1)

        def ask(path: str = path, expression: str = expression) -> Any:
            view = SensorThings(store, registry, ["sensors"], "http://bench/sta/v1.1")
            return view.get(path, Query(filter=expression, top=1000, count=True))

        ms, body = _timed(ask)
        facts[name] = body["@iot.count"]
        facts[f"{name}_ms"] = round(ms, 2)
        total_ms += ms
    facts["query_ms"] = round(total_ms, 2)
    return facts


def sta_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    n = _n_sensors(inputs)
    con = sqlite3.connect(_store(inputs, scratch))
    registry = _registry(n).frame
    since = int(SINCE.value // 1_000_000)
    middle = f"sensors.S{n // 2:06d}"
    asks = {
        "stream": lambda: con.execute(
            "SELECT phenomenon_ms, result_ms, value FROM observations WHERE datastream = ? "
            "AND value > 0.35 AND phenomenon_ms >= ? ORDER BY phenomenon_ms DESC",
            (n // 3, since),
        ).fetchall(),
        "thing": lambda: con.execute(
            "SELECT o.phenomenon_ms, o.value FROM observations o JOIN datastreams d "
            "ON d.id = o.datastream WHERE d.sensor_uid = ? AND (o.value < 0.34 OR o.value > 0.36)",
            (middle,),
        ).fetchall(),
        "things": lambda: registry[
            (registry["sensor_type"] == "water_level") & (registry["name"] >= "S000500")
        ],
    }
    facts: dict[str, Any] = {}
    total_ms = 0.0
    for name, ask in asks.items():
        ms, rows = _timed(ask)
        facts[name] = len(rows)
        facts[f"{name}_ms"] = round(ms, 2)
        total_ms += ms
    facts["query_ms"] = round(total_ms, 2)
    return facts
