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
latest(datastream, phenomenon_ms, value, batch)  -- updated on every ingest
latest_log(batch, streams)  -- the datastreams each ingest changed (NULL: many)
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

import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import StorageError
from twin.store.live_base import LiveStoreProtocol
from twin.store.live_queries import LiveQueries, SqliteAccess
from twin.store.live_snapshot import read_snapshot, write_snapshot

__all__ = [
    "NO_TIME",
    "SCHEMA",
    "LiveBatch",
    "LiveStore",
    "from_ms",
    "live_path",
    "records",
    "rows_of",
    "to_ms",
]

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
CREATE TABLE IF NOT EXISTS latest_log (batch INTEGER PRIMARY KEY, streams BLOB);
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


log = logging.getLogger(__name__)

_NONE = np.iinfo("int64").min  # no latest value (yet) for that datastream id
#: The time a datastream without any reading has (in :meth:`LiveBatch.update_latest`).
NO_TIME = _NONE
#: An ingest changing more datastreams than this logs "many" (readers then read all).
LOG_STREAMS = 4096
#: Ingests kept in the change log (a reader further behind reads all latest values).
LOG_BATCHES = 2000


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
    if str(twin_path).startswith(("postgresql://", "postgres://")):
        raise StorageError(
            f"{twin_path} is a PostGIS twin: its live store is in its database, not in a file"
        )
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


class LiveStore(SqliteAccess, LiveQueries):
    """The SQLite live store of one twin (created on first use).

    Parameters
    ----------
    path : path-like
        The database file (see :func:`live_path`).
    synchronous : str, default "NORMAL"
        SQLite's ``synchronous`` in WAL mode: NORMAL survives a killed process
        (what an acknowledged reading needs); FULL also survives a power cut.
    snapshot_every_s : float or None, default 5
        After a commit, refresh the latest-values snapshot beside the store
        (:mod:`twin.store.live_snapshot`) when the last one is older than this
        (and on :meth:`close`); None: never.

    Notes
    -----
    One connection per store object, guarded by a lock; several processes may
    open the same file (SQLite serialises writers, ``busy_timeout`` waits).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "NORMAL",
        snapshot_every_s: float | None = 5.0,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.con.execute("PRAGMA busy_timeout = 30000")
        self.con.execute("PRAGMA journal_mode = WAL")
        self.con.execute(f"PRAGMA synchronous = {synchronous}")
        self.con.execute("PRAGMA cache_size = -262144")  # up to 256 MiB, taken as needed
        self.con.execute("PRAGMA temp_store = MEMORY")
        self.con.executescript(SCHEMA)
        if self.scalar("SELECT 1 FROM sqlite_master WHERE name = 'latest_batch'"):
            self._drop_batch_index()
        self._streams: dict[tuple[str, str], int] = {}
        found = self.scalar("SELECT value FROM counters WHERE name = 'store_id'")
        if found is None:  # a new store: an identity for its snapshots
            self.con.execute(
                "INSERT OR IGNORE INTO counters (name, value) VALUES ('store_id', ?)",
                (secrets.randbits(62),),
            )
            found = self.scalar("SELECT value FROM counters WHERE name = 'store_id'")
        self.store_id = str(found)
        self.snapshot_every_s = snapshot_every_s
        self._snapshot_at: float | None = None  # monotonic time of the last snapshot written
        self._wrote = False

    def _drop_batch_index(self) -> None:
        """A store made before the change log: drop the index on ``latest.batch`` (every
        ingest paid for it) and have readers of older batches read all latest values."""
        with self.lock:
            self.con.execute("BEGIN IMMEDIATE")
            self.con.execute("DROP INDEX IF EXISTS latest_batch")
            self.con.execute(
                "INSERT OR REPLACE INTO counters (name, value) SELECT 'latest_pruned', "
                "coalesce((SELECT value FROM counters WHERE name = 'latest'), 0)"
            )
            self.con.execute("COMMIT")

    @classmethod
    def beside(cls, twin_path: str | os.PathLike[str], **kwargs: Any) -> LiveStoreProtocol:
        """The live store of a twin: beside its file, or in its database for a
        ``postgresql://…?schema=NAME`` twin (:class:`~twin.store.pglive.PgLiveStore`).

        Raises
        ------
        StorageError
            The store cannot be opened (a read-only folder, an unreachable database).
        """
        from twin.store.postgis import is_url

        if is_url(twin_path):
            from twin.store.pglive import PgLiveStore

            return PgLiveStore(str(twin_path), **kwargs)
        try:
            return cls(live_path(twin_path), **kwargs)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(
                f"cannot open the live store {live_path(twin_path)}: {exc}; "
                "check the folder exists and is writable"
            ) from None

    def close(self) -> None:
        """Close the connection (refreshing the latest-values snapshot after writes)."""
        with self.lock:
            if self._snapshot_at is not None and self._wrote:
                self.snapshot()
            self.con.close()

    @property
    def snapshot_path(self) -> Path:
        """The latest-values snapshot beside the store: ``<store>.latest.arrow``."""
        return self.path.with_name(self.path.name + ".latest.arrow")

    def snapshot(self) -> None:
        """Write the latest values and datastreams to :attr:`snapshot_path` (atomically)."""
        with self.lock:
            times, values = self._latest_arrays()
            streams = self._stream_table()
            seen = self._latest_cache[0]
            try:
                write_snapshot(self.snapshot_path, self.store_id, seen, times, values, streams)
            except Exception as exc:  # a cache: failing to write it only costs speed
                log.warning("cannot write %s: %s", self.snapshot_path, exc)
            self._snapshot_at = time.monotonic()
            self._wrote = False

    def _current_latest(self) -> np.ndarray | None:
        """Inside a write transaction: the cached latest times when no other writer has
        committed since they were read (then they are the stored ones), else None."""
        cached = getattr(self, "_latest_cache", None)
        if cached is None:
            return None
        batch = self.con.execute("SELECT value FROM counters WHERE name = 'latest'").fetchone()
        times: np.ndarray = cached[1]
        return times if batch is not None and int(batch[0]) == cached[0] else None

    def _committed(self, tx: LiveBatch) -> None:
        """After a commit: the writer's own latest values go into its cache, and the
        snapshot is refreshed when due."""
        self._wrote = True
        cached = getattr(self, "_latest_cache", None)
        if tx.latest is not None and cached is not None and cached[0] == tx.latest[0] - 1:
            batch, ds, ms, val = tx.latest  # no other writer since: apply in memory
            times, values = cached[1], cached[2]
            if ds.size and int(ds.max()) >= len(times):
                grown = int(ds.max()) + 1
                times = np.concatenate([times, np.full(grown - len(times), _NONE)])
                values = np.concatenate([values, np.full(grown - len(values), np.nan)])
            newer = ms >= times[ds]
            times[ds[newer]], values[ds[newer]] = ms[newer], val[newer]
            self._latest_cache = (batch, times, values)
        every = self.snapshot_every_s
        if every is not None and (
            self._snapshot_at is None or time.monotonic() - self._snapshot_at >= every
        ):
            self.snapshot()

    def __enter__(self) -> LiveStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def batch(self) -> Iterator[LiveBatch]:
        """One write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``; rolled back on error).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> live = LiveStore(pathlib.Path(tempfile.mkdtemp()) / "x.live.sqlite")
        >>> (ds,) = live.datastream_ids([("sensors.WP1", "pressure", "MPa")])
        >>> with live.batch() as tx:
        ...     tx.insert_observations([ds], [1000], [0.31], result_ms=2000).tolist()
        [False]
        >>> live.count_observations()
        1
        """
        with self.lock:
            self.con.execute("BEGIN IMMEDIATE")
            tx = LiveBatch(self.con, self._current_latest())
            try:
                yield tx
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self._committed(tx)

    # -- datastreams ------------------------------------------------------
    def datastream_ids(self, keys: Iterable[tuple[str, str, str | None]]) -> list[int]:
        """Ids of the datastreams ``(sensor_uid, property, unit)``, created when new."""
        wanted = list(keys)
        with self.lock:
            missing = [k for k in wanted if (k[0], k[1]) not in self._streams]
            if missing:
                self._load_streams()  # another process may have made them
                missing = [k for k in missing if (k[0], k[1]) not in self._streams]
            if missing:
                own = not self.con.in_transaction  # one commit for all, not one per row
                if own:
                    self.con.execute("BEGIN IMMEDIATE")
                try:
                    self.con.executemany(
                        "INSERT OR IGNORE INTO datastreams (sensor_uid, property, unit) "
                        "VALUES (?, ?, ?)",
                        missing,
                    )
                    if own:
                        self.con.execute("COMMIT")
                except BaseException:
                    if own:
                        self.con.execute("ROLLBACK")
                    raise
                self._load_streams()
            return [self._streams[(k[0], k[1])] for k in wanted]

    def _load_streams(self) -> None:
        """Add the datastreams created since the last load (ids only grow)."""
        top = max(self._streams.values(), default=0)
        rows = self.con.execute(
            "SELECT id, sensor_uid, property FROM datastreams WHERE id > ?", (top,)
        ).fetchall()
        self._streams.update({(s, p): int(i) for i, s, p in rows})

    def datastreams(self, sensors: Sequence[str] | None = None) -> pd.DataFrame:
        """Every datastream: ``id`` (index), ``sensor_uid``, ``property``, ``unit``."""
        frame = self._query("SELECT id, sensor_uid, property, unit FROM datastreams ORDER BY id")
        frame = frame.set_index("id")
        if sensors is not None:
            frame = frame[frame["sensor_uid"].isin(list(sensors))]
        return frame

    # -- reads ------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return self._frame(sql, params)

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
        rows changed since the last read (every ingest logs the datastreams it changed)."""
        cached = getattr(self, "_latest_cache", None)
        if cached is None:
            snap = read_snapshot(self.snapshot_path, self.store_id)
            if snap is not None:
                cached = self._latest_cache = (snap.batch, snap.times, snap.values)
                top = int(snap.streams.index.max()) if len(snap.streams) else 0
                self._stream_cache = (top, snap.streams)
        seen = cached[0] if cached is not None else -1
        rows, top = self._latest_since(seen, everything=cached is None)
        if cached is not None and not rows:
            self._latest_cache = (max(top, seen), cached[1], cached[2])
            return cached[1], cached[2]
        table = np.asarray(rows, dtype=float).reshape(-1, 3)  # ids and ms are exact in float
        ds, ms, val = table[:, 0].astype("int64"), table[:, 1].astype("int64"), table[:, 2]
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

    def _latest_since(self, seen: int, everything: bool = False) -> tuple[list[Any], int]:
        """The latest rows changed by the ingests after batch ``seen`` (from the change
        log; all rows when many changed, the log was pruned, or ``everything``) and the
        newest batch number they include."""
        con = self.con
        own = not con.in_transaction
        if own:
            con.execute("BEGIN")  # one view of the counters, the log and the rows
        try:
            counters = dict(
                con.execute(
                    "SELECT name, value FROM counters WHERE name IN ('latest', 'latest_pruned')"
                ).fetchall()
            )
            top = int(counters.get("latest", 0))
            log = con.execute(
                "SELECT streams FROM latest_log WHERE batch > ? AND batch <= ?", (seen, top)
            ).fetchall()
            sql = "SELECT datastream, phenomenon_ms, value FROM latest"
            if everything or seen < int(counters.get("latest_pruned", 0)):
                return con.execute(sql).fetchall(), top
            if not log:
                return [], top
            if any(blob is None for (blob,) in log):
                return con.execute(sql).fetchall(), top
            ids = np.unique(np.concatenate([np.frombuffer(b, dtype="<i8") for (b,) in log]))
            sql += " WHERE datastream IN (SELECT value FROM json_each(?))"
            return con.execute(sql, (json.dumps(ids.tolist()),)).fetchall(), top
        finally:
            if own:
                con.execute("COMMIT")

    def _stream_table(self) -> pd.DataFrame:
        """The datastreams (id index), cached; the ones created since are added."""
        cached = getattr(self, "_stream_cache", None)
        top = cached[0] if cached is not None else 0
        rows = self.con.execute(
            "SELECT id, sensor_uid, property, unit FROM datastreams WHERE id > ? ORDER BY id",
            (top,),
        ).fetchall()
        if cached is not None and not rows:
            frame: pd.DataFrame = cached[1]
            return frame
        table = pd.DataFrame.from_records(
            rows, columns=["id", "sensor_uid", "property", "unit"]
        ).set_index("id")
        if cached is not None:
            table = pd.concat([cached[1], table])
        self._stream_cache = (int(table.index.max()) if len(table) else 0, table)
        return table

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


def _key_order(ds: np.ndarray, ms: np.ndarray) -> np.ndarray:
    """The order of rows by key (datastream, time); no sort when they are in it already."""
    if ds.size < 2:
        return np.arange(ds.size)
    step_ds, step_ms = np.diff(ds), np.diff(ms)
    if bool(((step_ds > 0) | ((step_ds == 0) & (step_ms >= 0))).all()):
        return np.arange(ds.size)
    order: np.ndarray = np.lexsort((ms, ds))
    return order


class LiveBatch:
    """The writes of one live-store transaction (made by :meth:`LiveStore.batch`)."""

    def __init__(self, con: sqlite3.Connection, latest: np.ndarray | None = None) -> None:
        self.con = con
        self._known = latest  # the stored latest times by datastream id, when known
        #: (batch number, datastreams, times, values) written to ``latest``
        self.latest: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None

    def insert_observations(
        self,
        datastream: Any,
        phenomenon_ms: Any,
        value: Any,
        *,
        result_ms: int,
        quality: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """Insert observations; the rows stored already (same datastream and time) are left
        as they are. Returns a mask of those (True: stored already, not inserted).

        Rows go in key order (datastream, time), which keeps the B-tree writes local.
        """
        ds = np.asarray(datastream, dtype="int64")
        ms = np.asarray(phenomenon_ms, dtype="int64")
        val = np.asarray(value, dtype=float)
        if quality is not None and all(q is None for q in quality):
            quality = None
        order = _key_order(ds, ms)
        sql = self._insert_sql(int(result_ms), quality is not None)
        sorted_q = None if quality is None else [quality[i] for i in order.tolist()]
        con = self.con
        con.execute("SAVEPOINT observations")
        before = con.total_changes
        con.executemany(sql, self._rows(ds[order], ms[order], val[order], sorted_q))
        already = np.zeros(len(ds), dtype=bool)
        if con.total_changes - before != len(ds):
            # Some were stored already (a resend): find them, insert only the others.
            con.execute("ROLLBACK TO observations")
            query = "SELECT 1 FROM observations WHERE datastream = ? AND phenomenon_ms = ?"
            for i, (d, m) in enumerate(zip(ds.tolist(), ms.tolist(), strict=True)):
                already[i] = con.execute(query, (d, m)).fetchone() is not None
            keep = order[~already[order]]
            kept_q = None if quality is None else [quality[i] for i in keep.tolist()]
            con.executemany(sql, self._rows(ds[keep], ms[keep], val[keep], kept_q))
        con.execute("RELEASE observations")
        return already

    @staticmethod
    def _insert_sql(result_ms: int, with_quality: bool) -> str:
        """The insert of one batch: its one result time and, when no row has a quality,
        NULL are written into the statement (fewer parameters to bind per row)."""
        quality = "?" if with_quality else "NULL"
        return f"INSERT OR IGNORE INTO observations VALUES (?, ?, {result_ms:d}, ?, {quality})"

    @staticmethod
    def _rows(ds: np.ndarray, ms: np.ndarray, val: np.ndarray, quality: Any) -> Iterator[Any]:
        if quality is None:
            return zip(ds.tolist(), ms.tolist(), val.tolist(), strict=True)
        return zip(ds.tolist(), ms.tolist(), val.tolist(), quality, strict=True)

    def update_latest(
        self, datastream: Any, phenomenon_ms: Any, value: Any, *, prior: bool = False
    ) -> np.ndarray | None:
        """Keep the ``latest`` table up to date with new observations (the newest of each
        datastream wins). With ``prior``, return each row's datastream's newest time before
        this update (``NO_TIME`` where it had none)."""
        ds = np.asarray(datastream, dtype="int64")
        if not ds.size:
            return np.zeros(0, dtype="int64") if prior else None
        ms = np.asarray(phenomenon_ms, dtype="int64")
        val = np.asarray(value, dtype=float)
        before = self._latest_of(ds) if prior else None
        order = _key_order(ds, ms)
        last = order[np.r_[ds[order][1:] != ds[order][:-1], True]]  # newest row of each
        batch = self.con.execute(
            "INSERT INTO counters (name, value) VALUES ('latest', 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value"
        ).fetchone()[0]
        self.con.executemany(
            f"INSERT INTO latest VALUES (?, ?, ?, {int(batch):d}) ON CONFLICT(datastream) DO "
            "UPDATE SET phenomenon_ms = excluded.phenomenon_ms, value = excluded.value, "
            "batch = excluded.batch WHERE excluded.phenomenon_ms >= latest.phenomenon_ms",
            zip(ds[last].tolist(), ms[last].tolist(), val[last].tolist(), strict=True),
        )
        self._log(int(batch), ds[last])
        self.latest = (int(batch), ds[last], ms[last], val[last])
        return before

    def _log(self, batch: int, ds: np.ndarray) -> None:
        """Note the datastreams this batch changed, for readers that keep the latest values
        (NULL when many did: those read them all); old entries are pruned now and then."""
        streams = ds.astype("<i8").tobytes() if ds.size <= LOG_STREAMS else None
        self.con.execute("INSERT INTO latest_log VALUES (?, ?)", (batch, streams))
        if batch % 100 == 0 and batch > LOG_BATCHES:
            self.con.execute("DELETE FROM latest_log WHERE batch <= ?", (batch - LOG_BATCHES,))
            self.con.execute(
                "INSERT OR REPLACE INTO counters VALUES ('latest_pruned', ?)",
                (batch - LOG_BATCHES,),
            )

    def _latest_of(self, ds: np.ndarray) -> np.ndarray:
        if self._known is not None:
            known = self._known
            inside = ds < len(known)
            mine = np.full(ds.size, NO_TIME, dtype="int64")
            mine[inside] = known[ds[inside]]
            return mine
        unique, back = np.unique(ds, return_inverse=True)
        rows = self.con.execute(
            "SELECT datastream, phenomenon_ms FROM latest "
            "WHERE datastream IN (SELECT value FROM json_each(?))",
            (json.dumps(unique.tolist()),),
        ).fetchall()
        found = np.full(unique.size, NO_TIME, dtype="int64")
        if rows:
            have = np.asarray(rows, dtype="int64")
            found[np.searchsorted(unique, have[:, 0])] = have[:, 1]
        out: np.ndarray = found[back]
        return out

    def dead_letters(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Keep rejected readings: ``(received_ms, source, reason, sensor, time, property,
        value)`` each."""
        self.con.executemany(
            "INSERT INTO dead_letters (received_ms, source, reason, sensor, time, property, "
            "value) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
