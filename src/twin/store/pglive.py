"""The live store of a PostGIS twin: readings and events in the twin's database.

A twin named ``postgresql://…?schema=NAME`` keeps its live tables (the same
as the SQLite live store's: datastreams, observations, latest, dead letters,
events, event history, counters, leases) in the schema ``NAME_live`` of the
same database, created on first use under an advisory lock. Why a schema of
their own: ``twin init`` replaces the twin's schema, and readings (keyed by
uids that survive re-imports) must outlive it, as the SQLite store outlives a
re-written GeoPackage.

Every process that opens the store shares it: a reading or an event
transition written by one API worker is seen by every other. Writes are
transactions; an ingest batch goes in with COPY into a temporary table, then
one ``INSERT … ON CONFLICT DO NOTHING``: a batch sent again, by any process,
stores nothing twice. Event and lease statements are the shared ones of
:class:`~twin.store.live_queries.LiveQueries`.

Examples
--------
>>> PgLiveStore.schema_of("postgresql://db/cim?schema=chengdu")
'chengdu_live'
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import StorageError
from twin.store.live_base import NO_TIME
from twin.store.live_queries import LiveQueries
from twin.store.pgio import ident
from twin.store.postgis import parse_url

__all__ = ["PG_LIVE_TABLES", "PgLiveBatch", "PgLiveStore"]

#: The live tables and the indexes of the hot queries (latest, windows, events, vitals).
PG_LIVE_TABLES = """
CREATE TABLE IF NOT EXISTS datastreams (
    id BIGSERIAL PRIMARY KEY,
    sensor_uid TEXT NOT NULL,
    property TEXT NOT NULL,
    unit TEXT,
    UNIQUE (sensor_uid, property)
);
CREATE TABLE IF NOT EXISTS observations (
    datastream BIGINT NOT NULL,
    phenomenon_ms BIGINT NOT NULL,
    result_ms BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    quality TEXT,
    PRIMARY KEY (datastream, phenomenon_ms)
);
CREATE INDEX IF NOT EXISTS observations_time ON observations (phenomenon_ms);
CREATE TABLE IF NOT EXISTS latest (
    datastream BIGINT PRIMARY KEY,
    phenomenon_ms BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    batch BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS latest_batch ON latest (batch);
CREATE TABLE IF NOT EXISTS dead_letters (
    id BIGSERIAL PRIMARY KEY,
    received_ms BIGINT NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    sensor TEXT,
    time TEXT,
    property TEXT,
    value TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL PRIMARY KEY,
    rule TEXT NOT NULL,
    sensor_uid TEXT NOT NULL,
    event_type TEXT NOT NULL,
    grade TEXT NOT NULL,
    status TEXT NOT NULL,
    is_open INTEGER NOT NULL DEFAULT 1,
    opened_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    last_ms BIGINT NOT NULL,
    value DOUBLE PRECISION,
    repeats INTEGER NOT NULL DEFAULT 1,
    escalated INTEGER NOT NULL DEFAULT 0,
    cleared_ms BIGINT,
    assignee TEXT,
    message TEXT,
    x DOUBLE PRECISION, y DOUBLE PRECISION,
    district TEXT, grid TEXT, unit TEXT,
    location TEXT,
    impact TEXT,
    seq BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS events_one_open ON events (rule, sensor_uid) WHERE is_open = 1;
CREATE INDEX IF NOT EXISTS events_seq ON events (seq);
CREATE INDEX IF NOT EXISTS events_rule_sensor ON events (rule, sensor_uid);
CREATE TABLE IF NOT EXISTS event_history (
    id BIGSERIAL PRIMARY KEY,
    event_id BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    who TEXT NOT NULL,
    note TEXT
);
CREATE INDEX IF NOT EXISTS event_history_event ON event_history (event_id);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL);
"""
_FAR = 2**62
_COPY_IN = b"COPY %s FROM STDIN (FORMAT binary)"
# One observation in PostgreSQL's binary COPY format: 5 fields, each length-prefixed.
_ROW = np.dtype(
    [
        ("n", ">i2"),
        ("ld", ">i4"),
        ("d", ">i8"),
        ("lm", ">i4"),
        ("m", ">i8"),
        ("lr", ">i4"),
        ("r", ">i8"),
        ("lv", ">i4"),
        ("v", ">f8"),
        ("lq", ">i4"),
    ]
)
_LATEST_ROW = np.dtype(
    [
        ("n", ">i2"),
        ("ld", ">i4"),
        ("d", ">i8"),
        ("lm", ">i4"),
        ("m", ">i8"),
        ("lv", ">i4"),
        ("v", ">f8"),
    ]
)
_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_TRAILER = b"\xff\xff"


def _copy_data(
    ds: np.ndarray, ms: np.ndarray, result_ms: int, val: np.ndarray, quality: Any
) -> bytes:
    """Observation rows as binary COPY data (numbers packed by numpy, no text formatting)."""
    if quality is not None and any(q is not None for q in quality):
        return _copy_rows_with_quality(ds, ms, result_ms, val, quality)
    order = np.lexsort((ms, ds))  # key order: the primary key's B-tree writes stay local
    ds, ms, val = ds[order], ms[order], val[order]
    rows = np.empty(ds.size, dtype=_ROW)
    rows["n"] = 5
    rows["ld"] = rows["lm"] = rows["lr"] = rows["lv"] = 8
    rows["d"], rows["m"], rows["r"], rows["v"] = ds, ms, result_ms, val
    rows["lq"] = -1  # NULL quality
    return _HEADER + rows.tobytes() + _TRAILER


def _copy_rows_with_quality(
    ds: np.ndarray, ms: np.ndarray, result_ms: int, val: np.ndarray, quality: Any
) -> bytes:
    """As :func:`_copy_data`, with the quality texts (row by row: rare)."""
    out = [_HEADER]
    head = np.dtype([("n", ">i2"), *_ROW.descr[1:-1]])
    for d, m, v, q in zip(ds.tolist(), ms.tolist(), val.tolist(), quality, strict=True):
        row = np.array([(5, 8, d, 8, m, 8, result_ms, 8, v)], dtype=head).tobytes()
        text = None if q is None else str(q).encode()
        tail = b"\xff\xff\xff\xff" if text is None else len(text).to_bytes(4, "big") + text
        out.append(row + tail)
    out.append(_TRAILER)
    return b"".join(out)


def _q(sql: str) -> bytes:
    """A statement with ``?`` marks in psycopg's ``%s`` style."""
    return sql.replace("?", "%s").encode()


class _PgTx:
    def __init__(self, con: Any) -> None:
        self.con = con

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self.con.execute(_q(sql), tuple(params))
        return list(cursor.fetchall()) if cursor.description else []

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.con.execute(_q(sql), tuple(params)).rowcount)

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(r) for r in rows]
        if rows:
            self.con.cursor().executemany(_q(sql), rows)


class PgLiveStore(LiveQueries):
    """The live store of a PostGIS twin (one connection, guarded by :attr:`lock`).

    Parameters
    ----------
    url : str
        The twin's URL, ``postgresql://user@host:port/db?schema=NAME``; the
        live tables are in the schema ``NAME_live``.
    **_ : Any
        The SQLite store's options (``synchronous``, ``snapshot_every_s``) mean
        nothing here and are ignored, so callers open either store alike.

    Examples
    --------
    Opened through :meth:`twin.store.live.LiveStore.beside` for a twin's URL (a server
    must run, hence no doctest; ``tests/sensing/test_live_postgis.py`` runs one):

    >>> live = LiveStore.beside("postgresql://ops@db/cim?schema=chengdu")  # doctest: +SKIP
    >>> live.schema, live.max_seq()  # doctest: +SKIP
    ('chengdu_live', 0)
    """

    _history_key = "id"
    _latest_cache: tuple[int, pd.DataFrame]
    _stream_cache: tuple[int, pd.DataFrame]

    def __init__(self, url: str, **_: Any) -> None:
        self.url = url
        self.conninfo = parse_url(url)[0]
        self.schema = self.schema_of(url)
        self.lock = threading.RLock()
        self._streams: dict[tuple[str, str], int] = {}
        self.con = self._connect()
        self._create()

    @staticmethod
    def schema_of(url: str) -> str:
        """The schema of a twin's live tables: ``<twin schema>_live``."""
        return parse_url(url)[1] + "_live"

    def _connect(self) -> Any:
        import psycopg

        options = f"-c search_path={ident(self.schema)},public -c TimeZone=UTC"
        try:
            return psycopg.connect(
                self.conninfo, autocommit=True, options=options, connect_timeout=10
            )
        except psycopg.OperationalError as exc:
            reason = " ".join(str(exc).split())
            raise StorageError(
                f"cannot reach the live store of {self.schema[:-5]} ({reason}): "
                "check the URL and that PostgreSQL runs"
            ) from None

    def _create(self) -> None:
        """The schema and its tables, once, whoever else opens it at the same time."""
        with self.con.transaction():
            self.con.execute(
                b"SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"citytwin-live:{self.schema}",),
            )
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(self.schema)}".encode())
            self.con.execute(PG_LIVE_TABLES.encode())
            # An identity for this store (datastream ids are cached per store by ingest).
            self.con.execute(
                b"INSERT INTO counters (name, value) VALUES ('store_id', %s) "
                b"ON CONFLICT (name) DO NOTHING",
                (secrets.randbits(62),),
            )
            (found,) = self.con.execute(
                b"SELECT value FROM counters WHERE name = 'store_id'"
            ).fetchone()
        self.store_id = f"pg:{found}"
        self._leases_ready = True

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.con.close()

    def __enter__(self) -> PgLiveStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PgLiveStore(schema={self.schema!r})"

    # -- primitives of LiveQueries ------------------------------------------------------
    def _live(self) -> Any:
        """The connection, opened again when the server dropped it (a restart)."""
        if self.con.closed or self.con.broken:
            self.con = self._connect()
        return self.con

    def _read(self, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        """One read, tried again once on a new connection when the old one was lost."""
        import psycopg

        with self.lock:
            for attempt in (1, 2):
                try:
                    cursor = self._live().execute(_q(sql), tuple(params))
                    return [d.name for d in cursor.description], list(cursor.fetchall())
                except psycopg.OperationalError as exc:
                    if attempt == 2 or not self.con.broken:
                        raise StorageError(f"lost the live store {self.schema}: {exc}") from None
        raise AssertionError("unreachable")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._read(sql, params)[1]

    def _frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        names, rows = self._read(sql, params)
        return pd.DataFrame.from_records(rows, columns=names)

    @contextmanager
    def _tx(self) -> Iterator[_PgTx]:
        with self.lock, self._writing() as con:
            yield _PgTx(con)

    @contextmanager
    def _writing(self) -> Iterator[Any]:
        """A transaction on a live connection; a lost connection is a :class:`StorageError`
        (nothing of the transaction is stored; the next call connects again)."""
        import psycopg

        with self.lock:
            con = self._live()
            try:
                with con.transaction():
                    yield con
            except psycopg.OperationalError as exc:
                raise StorageError(
                    f"lost the live store {self.schema} mid-write (nothing of it was stored; "
                    f"send it again): {exc}"
                ) from None

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    # -- writes -------------------------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[PgLiveBatch]:
        """One write transaction (committed at the end, rolled back on error)."""
        with self._writing() as con:
            yield PgLiveBatch(con)

    def datastream_ids(self, keys: Iterable[tuple[str, str, str | None]]) -> list[int]:
        """Ids of the datastreams ``(sensor_uid, property, unit)``, created when new."""
        wanted = list(keys)
        with self.lock:
            missing = [k for k in wanted if (k[0], k[1]) not in self._streams]
            if missing:
                with self._writing() as con:
                    columns = [list(c) for c in zip(*missing, strict=True)]
                    con.execute(
                        b"INSERT INTO datastreams (sensor_uid, property, unit) SELECT * FROM "
                        b"unnest(%s::text[], %s::text[], %s::text[]) "
                        b"ON CONFLICT (sensor_uid, property) DO NOTHING",
                        columns,
                    )
                top = max(self._streams.values(), default=0)
                rows = self._rows(
                    "SELECT id, sensor_uid, property FROM datastreams WHERE id > ?", (top,)
                )
                self._streams.update({(s, p): int(i) for i, s, p in rows})
                if any((k[0], k[1]) not in self._streams for k in missing):  # ids not in order
                    rows = self._rows("SELECT id, sensor_uid, property FROM datastreams")
                    self._streams = {(s, p): int(i) for i, s, p in rows}
            return [self._streams[(k[0], k[1])] for k in wanted]

    # -- reads --------------------------------------------------------------------------
    def datastreams(self, sensors: Sequence[str] | None = None) -> pd.DataFrame:
        """Every datastream: ``id`` (index), ``sensor_uid``, ``property``, ``unit``."""
        frame = self._frame("SELECT id, sensor_uid, property, unit FROM datastreams ORDER BY id")
        frame = frame.set_index("id")
        if sensors is not None:
            frame = frame[frame["sensor_uid"].isin(list(sensors))]
        return frame

    def latest(self, sensors: Sequence[str] | None = None) -> pd.DataFrame:
        """The latest value of every datastream: ``datastream, sensor_uid, property, unit,
        time (UTC), value``, by datastream id.

        Kept in memory between calls: every ingest stamps the rows it changes with a
        batch number (handed out in commit order), so a call reads only the rows
        changed since the last one, by whichever process.
        """
        with self.lock:
            table = self._latest_table()
            streams = self._stream_table()
            if not table.index.isin(streams.index).all():  # ids committed out of order
                del self._stream_cache
                streams = self._stream_table()
        frame = streams.reindex(table.index).reset_index(names="datastream")
        frame["time"] = pd.to_datetime(table["phenomenon_ms"].to_numpy(), unit="ms", utc=True)
        frame["value"] = table["value"].to_numpy(dtype=float)
        if sensors is not None:
            frame = frame[frame["sensor_uid"].isin(list(sensors))].reset_index(drop=True)
        return frame

    def _latest_table(self) -> pd.DataFrame:
        """``phenomenon_ms, value`` by datastream id (sorted), refreshed with the rows of
        the batches committed since the last read."""
        seen, table = getattr(self, "_latest_cache", (-1, None))  # type: tuple[int, Any]
        rows = self._rows(
            "SELECT datastream, phenomenon_ms, value, batch FROM latest WHERE batch > ?", (seen,)
        )
        if table is not None and not rows:
            return table
        new = pd.DataFrame.from_records(
            rows, columns=["datastream", "phenomenon_ms", "value", "batch"]
        ).astype({"datastream": "int64", "phenomenon_ms": "int64", "value": float})
        top = max(seen, int(new["batch"].max()) if len(new) else seen)
        new = new.drop(columns="batch").set_index("datastream")
        if table is not None:
            new = pd.concat([table[~table.index.isin(new.index)], new])
        table = new.sort_index()
        self._latest_cache = (top, table)
        return table

    def _stream_table(self) -> pd.DataFrame:
        """The datastreams (id index), cached; the ones created since are added."""
        top, table = getattr(self, "_stream_cache", (0, None))  # type: tuple[int, Any]
        rows = self._rows(
            "SELECT id, sensor_uid, property, unit FROM datastreams WHERE id > ? ORDER BY id",
            (top,),
        )
        if table is not None and not rows:
            return table
        new = pd.DataFrame.from_records(rows, columns=["id", "sensor_uid", "property", "unit"])
        new = new.astype({"id": "int64"}).set_index("id")
        table = new if table is None else pd.concat([table, new]).sort_index()
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
        """Observations of one sensor in ``[start, end]``, in time order:
        ``property, time, result_time, value, quality``."""
        lo = int(start.value // 1_000_000) if start is not None else -_FAR
        hi = int(end.value // 1_000_000) if end is not None else _FAR
        sql = (
            "SELECT d.property, o.phenomenon_ms, o.result_ms, o.value, o.quality "
            "FROM datastreams d JOIN observations o ON o.datastream = d.id "
            "WHERE d.sensor_uid = ? AND o.phenomenon_ms BETWEEN ? AND ?"
        )
        params: list[Any] = [sensor_uid, lo, hi]
        if prop is not None:
            sql += " AND d.property = ?"
            params.append(prop)
        rows = self._rows(sql + " ORDER BY o.phenomenon_ms, d.property", params)
        columns = list(zip(*rows, strict=True)) if rows else [()] * 5
        return pd.DataFrame(
            {
                "property": np.asarray(columns[0], dtype=object),
                "time": pd.to_datetime(np.asarray(columns[1], dtype="int64"), unit="ms", utc=True),
                "result_time": pd.to_datetime(
                    np.asarray(columns[2], dtype="int64"), unit="ms", utc=True
                ),
                "value": np.asarray(columns[3], dtype=float),
                "quality": np.asarray(columns[4], dtype=object),
            }
        )


class PgLiveBatch:
    """The writes of one PostGIS live-store transaction (made by :meth:`PgLiveStore.batch`)."""

    def __init__(self, con: Any) -> None:
        self.con = con

    def insert_observations(
        self,
        datastream: Any,
        phenomenon_ms: Any,
        value: Any,
        *,
        result_ms: int,
        quality: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """Insert observations; a mask of the rows stored already (same datastream and time),
        which are left as they are.

        New rows go in with one COPY (in a savepoint); when one of them is stored already
        (a resend, from this process or another), the savepoint is rolled back and the
        batch goes through a temporary table and ``INSERT … ON CONFLICT DO NOTHING``.
        """
        ds = np.asarray(datastream, dtype="int64")
        ms = np.asarray(phenomenon_ms, dtype="int64")
        val = np.asarray(value, dtype=float)
        if not ds.size:
            return np.zeros(0, dtype=bool)
        import psycopg

        data = _copy_data(ds, ms, int(result_ms), val, quality)
        try:  # new readings (the usual case): straight in, in a savepoint
            with self.con.transaction(), self.con.cursor().copy(_COPY_IN % b"observations") as c:
                c.write(data)
            return np.zeros(ds.size, dtype=bool)
        except psycopg.errors.UniqueViolation:
            pass  # some are stored already (a resend): through a temporary table
        self.con.execute(
            b"CREATE TEMP TABLE IF NOT EXISTS incoming (LIKE observations) ON COMMIT DELETE ROWS"
        )
        with self.con.cursor().copy(_COPY_IN % b"incoming") as copy:
            copy.write(data)
        stored = self.con.execute(
            b"INSERT INTO observations SELECT * FROM incoming "
            b"ON CONFLICT (datastream, phenomenon_ms) DO NOTHING "
            b"RETURNING datastream, phenomenon_ms"
        ).fetchall()
        self.con.execute(b"DELETE FROM incoming")
        new = pd.MultiIndex.from_tuples(stored) if stored else pd.MultiIndex.from_arrays([[], []])
        mask: np.ndarray = ~pd.MultiIndex.from_arrays([ds, ms]).isin(new)
        return mask

    def update_latest(
        self, datastream: Any, phenomenon_ms: Any, value: Any, *, prior: bool = False
    ) -> np.ndarray | None:
        """Keep ``latest`` up to date (the newest of each datastream wins); with ``prior``,
        each row's datastream's newest time before this update (``NO_TIME`` where none)."""
        ds = np.asarray(datastream, dtype="int64")
        if not ds.size:
            return np.zeros(0, dtype="int64") if prior else None
        ms = np.asarray(phenomenon_ms, dtype="int64")
        val = np.asarray(value, dtype=float)
        before = None
        if prior:
            rows = self.con.execute(
                b"SELECT datastream, phenomenon_ms FROM latest WHERE datastream = ANY(%s)",
                (np.unique(ds).tolist(),),
            ).fetchall()
            known = dict(rows)
            before = np.asarray([known.get(d, NO_TIME) for d in ds.tolist()], dtype="int64")
        order = np.lexsort((ms, ds))
        last = order[np.r_[ds[order][1:] != ds[order][:-1], True]]  # newest row of each
        # The batch number: the counter's row stays locked until this transaction ends, so
        # batches commit in number order and a reader that saw one saw all before it.
        (batch,) = self.con.execute(
            b"INSERT INTO counters (name, value) VALUES ('latest', 1) ON CONFLICT (name) "
            b"DO UPDATE SET value = counters.value + 1 RETURNING value"
        ).fetchone()
        rows = np.empty(last.size, dtype=_LATEST_ROW)
        rows["n"], rows["ld"], rows["lm"], rows["lv"] = 3, 8, 8, 8
        rows["d"], rows["m"], rows["v"] = ds[last], ms[last], val[last]
        self.con.execute(
            b"CREATE TEMP TABLE IF NOT EXISTS latest_in (datastream BIGINT, "
            b"phenomenon_ms BIGINT, value DOUBLE PRECISION) ON COMMIT DELETE ROWS"
        )
        with self.con.cursor().copy(_COPY_IN % b"latest_in") as copy:
            copy.write(_HEADER + rows.tobytes() + _TRAILER)
        self.con.execute(
            b"INSERT INTO latest SELECT datastream, phenomenon_ms, value, %s FROM latest_in "
            b"ON CONFLICT (datastream) DO UPDATE SET "
            b"phenomenon_ms = excluded.phenomenon_ms, value = excluded.value, "
            b"batch = excluded.batch WHERE excluded.phenomenon_ms >= latest.phenomenon_ms",
            (int(batch),),
        )
        self.con.execute(b"DELETE FROM latest_in")
        return before

    def dead_letters(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Keep rejected readings: ``(received_ms, source, reason, sensor, time, property,
        value)`` each."""
        _PgTx(self.con).many(
            "INSERT INTO dead_letters (received_ms, source, reason, sensor, time, property, "
            "value) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
