"""A snapshot of the live store's latest values beside it: ``<live store>.latest.arrow``.

Reading the latest value of 100,000 datastreams row by row from SQLite takes
a few hundred milliseconds in a fresh process; reading one memory-mapped
Arrow file takes a few. The snapshot is only a cache: it records the store's
identity and the highest ingest batch number it holds, and a reader adds the
rows changed since (the datastreams the store's change log ``latest_log``
names for batches after it) and the datastreams created since
(``id > max id``) from SQLite. The writer of the
readings refreshes it now and then (:meth:`twin.store.live.LiveStore.snapshot`);
a stale, missing or foreign snapshot costs time, never a wrong answer. It is
written to a temporary file and renamed over the old one, so a reader sees a
whole snapshot or the previous one.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "x.latest.arrow"
>>> streams = pd.DataFrame({"sensor_uid": ["sensors.A"], "property": ["gas"], "unit": ["%"]},
...                        index=pd.Index([1], name="id"))
>>> write_snapshot(path, "store-1", 7, np.array([NONE, 1000]), np.array([np.nan, 2.5]), streams)
>>> snap = read_snapshot(path, "store-1")
>>> snap.batch, snap.times.tolist(), snap.streams["sensor_uid"].tolist()
(7, [-9223372036854775808, 1000], ['sensors.A'])
>>> read_snapshot(path, "another store") is None
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["NONE", "Snapshot", "read_snapshot", "write_snapshot"]

#: The time of a datastream id without a latest value.
NONE = np.iinfo("int64").min


@dataclass
class Snapshot:
    """Latest values by datastream id (``times[id]``, ``values[id]``) up to ingest batch
    ``batch``, and the datastreams (``id`` index: ``sensor_uid, property, unit``)."""

    batch: int
    times: np.ndarray
    values: np.ndarray
    streams: pd.DataFrame


def write_snapshot(
    path: Path,
    store_id: str,
    batch: int,
    times: np.ndarray,
    values: np.ndarray,
    streams: pd.DataFrame,
) -> None:
    """Write the snapshot atomically (a temporary file renamed over ``path``)."""
    import pyarrow as pa

    n = max(len(times), int(streams.index.max()) + 1 if len(streams) else 0)
    ids = streams.index.to_numpy(dtype="int64")
    full_t = np.full(n, NONE, dtype="int64")
    full_v = np.full(n, np.nan)
    full_t[: len(times)], full_v[: len(values)] = times, values

    def text(column: str) -> Any:
        values = streams[column].to_numpy(dtype=object)
        try:  # strings and None (the usual): converted by Arrow in one go
            return pa.array(values, pa.large_string())
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            return pa.array([None if v is None else str(v) for v in values], pa.large_string())

    table = pa.table(
        {
            "id": pa.array(ids),
            "sensor_uid": text("sensor_uid"),
            "property": text("property"),
            "unit": text("unit"),
            "time_ms": pa.array(full_t[ids] if ids.size else np.zeros(0, dtype="int64")),
            "value": pa.array(full_v[ids] if ids.size else np.zeros(0)),
        },
        metadata={"store": store_id, "batch": str(int(batch))},
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp, path)


def read_snapshot(path: Path, store_id: str) -> Snapshot | None:
    """The snapshot at ``path`` when it is one of this store's (else None)."""
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
    except (OSError, pa.ArrowInvalid):
        return None
    meta = table.schema.metadata or {}
    if meta.get(b"store", b"").decode() != store_id:
        return None
    ids = table.column("id").to_numpy()
    n = int(ids.max()) + 1 if ids.size else 0
    times = np.full(n, NONE, dtype="int64")
    values = np.full(n, np.nan)
    times[ids] = table.column("time_ms").to_numpy()
    values[ids] = table.column("value").to_numpy()
    streams = pd.DataFrame(
        {c: table.column(c).to_pandas() for c in ("sensor_uid", "property", "unit")}
    ).set_axis(pd.Index(ids, name="id"))
    return Snapshot(int(meta[b"batch"]), times, values, streams)
