"""The live store: observations, latest values, dead letters, events, beside the twin file.

One SQLite database in WAL mode, ``<twin file>.live.sqlite``. Why beside the
twin and not inside it: an import writes a new GeoPackage and renames it over
the old one; a rename replaces that one file and leaves every other file
alone, so the live store is never replaced, never locked by an import, and a
reader of the twin never waits for a writer of readings (WAL: readers and the
one writer do not block each other). Everything in it is keyed by twin uids,
which survive re-imports.

Times are stored as integer milliseconds since the Unix epoch (UTC):
compact, ordered, and a 24-hour window is one range scan of the primary key
``(datastream, phenomenon_ms)``.

Tables
------
datastreams(id, sensor_uid, property, unit)
observations(datastream, phenomenon_ms, result_ms, value, quality)
latest(datastream, phenomenon_ms, value)  -- updated on every ingest
dead_letters(id, received_ms, source, reason, sensor, time, property, value)
events, event_history  -- see :mod:`twin.sensing.events`

Examples
--------
>>> import tempfile, pathlib
>>> live = LiveStore(pathlib.Path(tempfile.mkdtemp()) / "x.live.sqlite")
>>> live.datastream_ids([("sensors.WP1", "pressure", "MPa")])
[1]
>>> live.latest().empty
True
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SCHEMA", "LiveStore", "from_ms", "live_path", "records", "rows_of", "to_ms"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS datastreams (
    id INTEGER PRIMARY KEY,
    sensor_uid TEXT NOT NULL,
    property TEXT NOT NULL,
    unit TEXT,
    UNIQUE (sensor_uid, property)
);
CREATE TABLE IF NOT EXISTS observations (
    datastream INTEGER NOT NULL,
    phenomenon_ms INTEGER NOT NULL,
    result_ms INTEGER NOT NULL,
    value REAL NOT NULL,
    quality TEXT,
    PRIMARY KEY (datastream, phenomenon_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latest (
    datastream INTEGER PRIMARY KEY,
    phenomenon_ms INTEGER NOT NULL,
    value REAL NOT NULL,
    batch INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS latest_batch ON latest (batch);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    sensor TEXT,
    time TEXT,
    property TEXT,
    value TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    rule TEXT NOT NULL,
    sensor_uid TEXT NOT NULL,
    event_type TEXT NOT NULL,
    grade TEXT NOT NULL,
    status TEXT NOT NULL,
    is_open INTEGER NOT NULL DEFAULT 1,
    opened_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    value REAL,
    repeats INTEGER NOT NULL DEFAULT 1,
    escalated INTEGER NOT NULL DEFAULT 0,
    cleared_ms INTEGER,
    assignee TEXT,
    message TEXT,
    x REAL, y REAL,
    district TEXT, grid TEXT, unit TEXT,
    location TEXT,
    impact TEXT,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS events_one_open ON events (rule, sensor_uid) WHERE is_open = 1;
CREATE INDEX IF NOT EXISTS events_seq ON events (seq);
CREATE TABLE IF NOT EXISTS event_history (
    event_id INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    who TEXT NOT NULL,
    note TEXT
);
CREATE INDEX IF NOT EXISTS event_history_event ON event_history (event_id);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


_NONE = np.iinfo("int64").min  # no latest value (yet) for that datastream id


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts (column name -> value).

    Examples
    --------
    >>> records(pd.DataFrame({"a": [1]}))
    [{'a': 1}]
    """
    rows: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
    return rows


def rows_of(frame: pd.DataFrame) -> list[Any]:
    """The rows of ``frame`` as namespaces (``row.column``), for printing.

    Examples
    --------
    >>> rows_of(pd.DataFrame({"a": [1]}))[0].a
    1
    """
    return [SimpleNamespace(**row) for row in records(frame)]


def live_path(twin_path: str | os.PathLike[str]) -> Path:
    """The live store of a twin file: ``<twin file>.live.sqlite`` beside it.

    Examples
    --------
    >>> live_path("out/chengdu.twin.gpkg").name
    'chengdu.twin.gpkg.live.sqlite'
    """
    path = Path(twin_path)
    return path.with_name(path.name + ".live.sqlite")


def to_ms(times: Any) -> Any:
    """UTC times (a Timestamp, a datetime Series or index) as integer milliseconds.

    Examples
    --------
    >>> to_ms(pd.Timestamp("2026-05-18T08:00:00Z"))
    1779091200000
    """
    if isinstance(times, pd.Timestamp):
        return int(times.value // 1_000_000)
    return pd.to_datetime(times, utc=True).astype("datetime64[ms, UTC]").astype("int64")


def from_ms(ms: Any) -> Any:
    """Integer milliseconds as UTC Timestamps (scalar or array-like).

    Examples
    --------
    >>> from_ms(1779091200000)
    Timestamp('2026-05-18 08:00:00+0000', tz='UTC')
    """
    if np.isscalar(ms):
        return pd.Timestamp(int(ms), unit="ms", tz="UTC")  # type: ignore[arg-type]
    return pd.to_datetime(np.asarray(ms, dtype="int64"), unit="ms", utc=True)


class LiveStore:
    """The SQLite live store of one twin (created on first use).

    Parameters
    ----------
    path : path-like
        The database file (see :func:`live_path`).
    synchronous : str, default "NORMAL"
        SQLite's ``synchronous`` in WAL mode: NORMAL survives a killed process
        (what an acknowledged reading needs); FULL also survives a power cut.

    Notes
    -----
    One connection per store object, guarded by a lock; several processes may
    open the same file (SQLite serialises writers, ``busy_timeout`` waits).
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.con.execute("PRAGMA busy_timeout = 30000")
        self.con.execute("PRAGMA journal_mode = WAL")
        self.con.execute(f"PRAGMA synchronous = {synchronous}")
        self.con.executescript(SCHEMA)
        self._streams: dict[tuple[str, str], int] = {}

    @classmethod
    def beside(cls, twin_path: str | os.PathLike[str], **kwargs: Any) -> LiveStore:
        """The live store beside ``twin_path``."""
        return cls(live_path(twin_path), **kwargs)

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.con.close()

    def __enter__(self) -> LiveStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- datastreams ------------------------------------------------------
    def datastream_ids(self, keys: Iterable[tuple[str, str, str | None]]) -> list[int]:
        """Ids of the datastreams ``(sensor_uid, property, unit)``, created when new."""
        wanted = list(keys)
        with self.lock:
            missing = [k for k in wanted if (k[0], k[1]) not in self._streams]
            if missing:
                self.con.executemany(
                    "INSERT OR IGNORE INTO datastreams (sensor_uid, property, unit) "
                    "VALUES (?, ?, ?)",
                    missing,
                )
                self._load_streams()
            return [self._streams[(k[0], k[1])] for k in wanted]

    def _load_streams(self) -> None:
        rows = self.con.execute("SELECT id, sensor_uid, property FROM datastreams").fetchall()
        self._streams = {(s, p): int(i) for i, s, p in rows}

    def datastreams(self, sensors: Sequence[str] | None = None) -> pd.DataFrame:
        """Every datastream: ``id`` (index), ``sensor_uid``, ``property``, ``unit``."""
        frame = self._query("SELECT id, sensor_uid, property, unit FROM datastreams ORDER BY id")
        frame = frame.set_index("id")
        if sensors is not None:
            frame = frame[frame["sensor_uid"].isin(list(sensors))]
        return frame

    # -- reads ------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self.lock:
            cursor = self.con.execute(sql, tuple(params))
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return pd.DataFrame.from_records(rows, columns=names)

    def latest(self, sensors: Sequence[str] | None = None) -> pd.DataFrame:
        """The latest value of every datastream (from the ``latest`` table, one row each).

        Returns
        -------
        pandas.DataFrame
            ``datastream, sensor_uid, property, unit, time (UTC), value``.
        """
        with self.lock:
            ms, value = self._latest_arrays()
            streams = self._stream_table()
        present = np.flatnonzero(ms[: len(ms)] != _NONE)
        present = present[present > 0]
        pos = streams.index.get_indexer(pd.Index(present))
        frame = streams.iloc[pos].reset_index(names="datastream")
        frame.insert(4, "time", from_ms(ms[present]))
        frame["value"] = value[present]
        if sensors is not None:
            frame = frame[frame["sensor_uid"].isin(list(sensors))].reset_index(drop=True)
        return frame

    def _latest_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Latest time and value by datastream id, kept in memory and refreshed with the
        rows changed since the last read (every ingest marks its rows with a batch number)."""
        cached = getattr(self, "_latest_cache", None)
        seen = cached[0] if cached is not None else -1
        rows = self.con.execute(
            "SELECT datastream, phenomenon_ms, value, batch FROM latest WHERE batch > ?", (seen,)
        ).fetchall()
        if cached is not None and not rows:
            return cached[1], cached[2]
        if rows:
            ds = np.fromiter((r[0] for r in rows), dtype="int64", count=len(rows))
            ms = np.fromiter((r[1] for r in rows), dtype="int64", count=len(rows))
            val = np.fromiter((r[2] for r in rows), dtype=float, count=len(rows))
            top = max(int(r[3]) for r in rows)
        else:
            ds = ms = np.zeros(0, dtype="int64")
            val, top = np.zeros(0), seen
        size = max(int(ds.max()) + 1 if ds.size else 0, len(cached[1]) if cached else 0)
        times = np.full(size, _NONE, dtype="int64")
        values = np.full(size, np.nan)
        if cached is not None:
            times[: len(cached[1])] = cached[1]
            values[: len(cached[2])] = cached[2]
        times[ds] = ms
        values[ds] = val
        self._latest_cache = (max(top, seen), times, values)
        return times, values

    def _stream_table(self) -> pd.DataFrame:
        """The datastreams (id index), cached until a new one is created."""
        count = self.con.execute("SELECT count(*) FROM datastreams").fetchone()[0]
        cached = getattr(self, "_stream_cache", None)
        if cached is None or cached[0] != count:
            rows = self.con.execute(
                "SELECT id, sensor_uid, property, unit FROM datastreams"
            ).fetchall()
            table = pd.DataFrame.from_records(
                rows, columns=["id", "sensor_uid", "property", "unit"]
            ).set_index("id")
            self._stream_cache = (count, table)
            return table
        frame: pd.DataFrame = cached[1]
        return frame

    def window(
        self,
        sensor_uid: str,
        prop: str | None = None,
        *,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Observations of one sensor (one property or all) in ``[start, end]``, in time order.

        Returns
        -------
        pandas.DataFrame
            ``property, time, result_time, value, quality``, indexed 0…n-1.
        """
        lo = to_ms(start) if start is not None else -(2**62)
        hi = to_ms(end) if end is not None else 2**62
        sql = (
            "SELECT d.property, o.phenomenon_ms, o.result_ms, o.value, o.quality "
            "FROM datastreams d JOIN observations o ON o.datastream = d.id "
            "WHERE d.sensor_uid = ? AND o.phenomenon_ms BETWEEN ? AND ?"
        )
        params: tuple[Any, ...] = (sensor_uid, lo, hi)
        if prop is not None:
            sql += " AND d.property = ?"
            params += (prop,)
        with self.lock:
            rows = self.con.execute(
                sql + " ORDER BY o.phenomenon_ms, d.property", params
            ).fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [()] * 5
        return pd.DataFrame(
            {
                "property": np.asarray(columns[0], dtype=object),
                "time": from_ms(np.asarray(columns[1], dtype="int64")),
                "result_time": from_ms(np.asarray(columns[2], dtype="int64")),
                "value": np.asarray(columns[3], dtype=float),
                "quality": np.asarray(columns[4], dtype=object),
            }
        )

    def observations_of(
        self, datastream: int, *, skip: int = 0, top: int = 100, newest_first: bool = True
    ) -> pd.DataFrame:
        """One page of a datastream's observations (for the SensorThings read paths)."""
        order = "DESC" if newest_first else "ASC"
        return self._query(
            "SELECT phenomenon_ms, result_ms, value, quality FROM observations "
            f"WHERE datastream = ? ORDER BY phenomenon_ms {order} LIMIT ? OFFSET ?",
            (int(datastream), int(top), int(skip)),
        )

    def count_observations(self, datastream: int | None = None) -> int:
        """How many observations are stored (for one datastream, or all)."""
        with self.lock:
            if datastream is None:
                row = self.con.execute("SELECT count(*) FROM observations").fetchone()
            else:
                row = self.con.execute(
                    "SELECT count(*) FROM observations WHERE datastream = ?", (int(datastream),)
                ).fetchone()
        return int(row[0])

    def dead_letters(self, reason: str | None = None) -> pd.DataFrame:
        """The rejected readings with their reason, oldest first."""
        sql = "SELECT * FROM dead_letters"
        params: tuple[Any, ...] = ()
        if reason is not None:
            sql += " WHERE reason = ?"
            params = (reason,)
        frame = self._query(sql + " ORDER BY id", params)
        frame.insert(1, "received", from_ms(frame.pop("received_ms").to_numpy()))
        return frame

    def clock_ms(self) -> int | None:
        """The newest phenomenon time stored (the data's own clock), or None."""
        with self.lock:
            row = self.con.execute("SELECT max(phenomenon_ms) FROM latest").fetchone()
        return None if row[0] is None else int(row[0])

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row of a query (None when no row)."""
        with self.lock:
            row = self.con.execute(sql, tuple(params)).fetchone()
        return None if row is None else row[0]

    def next_seq(self) -> int:
        """A store-wide increasing number (events carry it for change streams)."""
        with self.lock:
            row = self.con.execute(
                "INSERT INTO counters (name, value) VALUES ('seq', 1) "
                "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value"
            ).fetchone()
        return int(row[0])
