"""The named queries of the live store: events, their history, leases, vitals, SensorThings.

Everything :mod:`twin.sensing` and the API ask of the live store beyond
observations goes through these methods; no SQL lives above ``twin.store``.
The statements are written once, in the SQL both backends speak (``?``
placeholders, ``INSERT … ON CONFLICT``, ``RETURNING``): :class:`LiveQueries`
is mixed into the SQLite :class:`~twin.store.live.LiveStore` and the PostGIS
:class:`~twin.store.pglive.PgLiveStore`, each of which supplies four
primitives (see :class:`SqliteAccess` for SQLite's):

``_rows(sql, params)``
    the rows of one read;
``_frame(sql, params)``
    the same as a DataFrame with the query's column names;
``_tx()``
    a write transaction (a context manager) yielding a :class:`LiveTx`;
``_in(column, values)``
    the condition "``column`` is one of ``values``" and its parameters.

Examples
--------
>>> import tempfile, pathlib
>>> from twin.store.live import LiveStore
>>> live = LiveStore(pathlib.Path(tempfile.mkdtemp()) / "x.live.sqlite")
>>> live.max_seq(), live.take_lease("escalation", "me", until_ms=2_000, now_ms=1_000)
(0, True)
>>> live.take_lease("escalation", "you", until_ms=2_500, now_ms=1_500)
False
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import pandas as pd

__all__ = ["EVENT_COLUMNS", "LiveQueries", "LiveTx", "SqliteAccess"]

#: The columns of an event row in lists and change streams (not location, impact).
EVENT_COLUMNS = (
    "id, rule, sensor_uid, event_type, grade, status, is_open, opened_ms, updated_ms, last_ms, "
    "value, repeats, escalated, cleared_ms, assignee, x, y, district, grid, unit, seq"
)
#: The columns :meth:`LiveQueries.insert_event` fills (with ``status`` 'new' and ``seq``).
EVENT_FIELDS = (
    "rule",
    "sensor_uid",
    "event_type",
    "grade",
    "opened_ms",
    "updated_ms",
    "last_ms",
    "value",
    "cleared_ms",
    "x",
    "y",
    "district",
    "grid",
    "unit",
    "location",
    "impact",
)
#: The leases table (created on first use).
LEASES = (
    "CREATE TABLE IF NOT EXISTS leases "
    "(name TEXT PRIMARY KEY, holder TEXT NOT NULL, until_ms BIGINT NOT NULL)"
)
#: Beyond any stored time (ms): the open ends of a time window.
_FAR = 2**62
_FILTERS = ("status", "event_type", "grade", "district", "grid")
_NEXT_SEQ = (
    "INSERT INTO counters (name, value) VALUES ('seq', 1) "
    "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value"
)


class LiveTx(Protocol):
    """The statements of one write transaction."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (``RETURNING``, ``SELECT``)."""
        ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; how many rows it changed."""
        ...

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per row of parameters."""
        ...


class LiveQueries:
    """The named queries, over the backend's primitives (see the module's docstring)."""

    lock: threading.RLock
    #: The column that orders an event's history as written.
    _history_key = "rowid"

    # -- primitives (the backend's) -------------------------------------------------
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        raise NotImplementedError

    def _tx(self) -> Any:
        raise NotImplementedError

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        raise NotImplementedError

    # -- events: reads ----------------------------------------------------------------
    def max_seq(self) -> int:
        """The newest event change number (0 before any event)."""
        return int(self._rows("SELECT coalesce(max(seq), 0) FROM events")[0][0])

    def max_datastream_id(self) -> int:
        """The newest datastream id (0 before any); datastreams are only ever added."""
        return int(self._rows("SELECT coalesce(max(id), 0) FROM datastreams")[0][0])

    def alarming_pairs(self) -> set[tuple[str, str]]:
        """``(rule, sensor_uid)`` of the open events whose alarm has not cleared."""
        rows = self._rows(
            "SELECT rule, sensor_uid FROM events WHERE is_open = 1 AND cleared_ms IS NULL"
        )
        return {(str(r), str(s)) for r, s in rows}

    def event_state(self, rule: str, sensor_uid: str) -> tuple[tuple[int, int, Any] | None, Any]:
        """The open event of a rule on a sensor ``(id, last_ms, cleared_ms)`` (or None), and
        the newest ``opened_ms`` of any of its events (or None)."""
        with self.lock:
            row = self._rows(
                "SELECT id, last_ms, cleared_ms FROM events WHERE rule = ? AND sensor_uid = ? "
                "AND is_open = 1",
                (rule, sensor_uid),
            )
            newest = self._rows(
                "SELECT max(opened_ms) FROM events WHERE rule = ? AND sensor_uid = ?",
                (rule, sensor_uid),
            )[0][0]
        found = (int(row[0][0]), int(row[0][1]), row[0][2]) if row else None
        return found, newest

    def events_frame(
        self,
        filters: Mapping[str, Any],
        *,
        open_only: bool = False,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> pd.DataFrame:
        """Events (:data:`EVENT_COLUMNS`), newest first; ``filters``: column -> value (status,
        event_type, grade, district, grid)."""
        where, params = ["1 = 1"], []
        for column in _FILTERS:
            if filters.get(column) is not None:
                where.append(f"{column} = ?")
                params.append(filters[column])
        if open_only:
            where.append("is_open = 1")
        if since_ms is not None:
            where.append("last_ms >= ?")
            params.append(int(since_ms))
        if until_ms is not None:
            where.append("opened_ms <= ?")
            params.append(int(until_ms))
        return self._frame(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY id DESC",
            params,
        )

    def event_changes_frame(self, after_seq: int, limit: int) -> pd.DataFrame:
        """Events changed after change number ``after_seq``, oldest change first."""
        return self._frame(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (int(after_seq), int(limit)),
        )

    def event_row(self, event_id: int) -> pd.DataFrame:
        """Every column of one event (no row when there is none)."""
        return self._frame("SELECT * FROM events WHERE id = ?", (int(event_id),))

    def event_history(self, event_id: int) -> pd.DataFrame:
        """An event's history as written: ``at_ms, action, status, who, note``."""
        return self._frame(
            "SELECT at_ms, action, status, who, note FROM event_history WHERE event_id = ? "
            f"ORDER BY {self._history_key}",
            (int(event_id),),
        )

    def unescalated_new(self) -> list[tuple[int, str, int]]:
        """``(id, grade, opened_ms)`` of the events still new and not escalated."""
        rows = self._rows(
            "SELECT id, grade, opened_ms FROM events WHERE status = 'new' AND escalated = 0"
        )
        return [(int(i), str(g), int(t)) for i, g, t in rows]

    def resolved_ms(self) -> dict[int, int]:
        """When each resolved event was first resolved (ms), by event id."""
        rows = self._rows(
            "SELECT event_id, min(at_ms) FROM event_history WHERE action = 'resolve' "
            "GROUP BY event_id"
        )
        return {int(i): int(t) for i, t in rows}

    def nearest_incident(
        self, event_type: str, x: float, y: float, radius: float
    ) -> tuple[int, str] | None:
        """The open event of ``event_type`` with an impact within ``radius`` of ``(x, y)`` with
        the lowest value (the lowest id on ties): ``(id, impact JSON)``, or None."""
        rows = self._rows(
            "SELECT id, impact FROM events WHERE is_open = 1 AND event_type = ? "
            "AND impact IS NOT NULL AND (x - ?) * (x - ?) + (y - ?) * (y - ?) <= ? "
            "ORDER BY value, id LIMIT 1",
            (event_type, x, x, y, y, radius * radius),
        )
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    # -- events: writes ---------------------------------------------------------------
    def insert_event(self, fields: Mapping[str, Any], history: Sequence[tuple[Any, ...]]) -> int:
        """Open a new event (status ``new``; ``fields``: :data:`EVENT_FIELDS`) with its first
        history rows ``(at_ms, action, who)``; its id."""
        names = ", ".join(EVENT_FIELDS)
        marks = ", ".join("?" for _ in EVENT_FIELDS)
        with self._tx() as tx:
            seq = tx.rows(_NEXT_SEQ)[0][0]
            (row,) = tx.rows(
                f"INSERT INTO events ({names}, status, seq) VALUES ({marks}, 'new', ?) "
                "RETURNING id",
                [*(fields.get(n) for n in EVENT_FIELDS), seq],
            )
            event_id = int(row[0])
            _history(tx, event_id, "new", history)
        return event_id

    def update_event(
        self,
        event_id: int,
        *,
        last_ms: int,
        value: float | None,
        repeated: bool,
        cleared_ms: int | None,
        now_ms: int,
        history: Sequence[tuple[Any, ...]],
    ) -> None:
        """A new or ended episode of an open event: last time, value, repeats, cleared;
        ``history`` rows ``(at_ms, action, who)`` take the event's status."""
        with self._tx() as tx:
            seq = tx.rows(_NEXT_SEQ)[0][0]
            tx.run(
                "UPDATE events SET last_ms = CASE WHEN last_ms > ? THEN last_ms ELSE ? END, "
                "value = coalesce(?, value), repeats = repeats + ?, cleared_ms = ?, "
                "updated_ms = ?, seq = ? WHERE id = ?",
                (last_ms, last_ms, value, int(repeated), cleared_ms, now_ms, seq, event_id),
            )
            status = tx.rows("SELECT status FROM events WHERE id = ?", (event_id,))[0][0]
            _history(tx, event_id, str(status), history)

    def clear_event(
        self, rule: str, sensor_uid: str, at_ms: int | None, now_ms: int, who: str
    ) -> int | None:
        """Mark the open, alarming event of a rule on a sensor cleared at ``at_ms`` (default: the
        data's clock, else now); its id, or None when there is none."""
        with self.lock:
            rows = self._rows(
                "SELECT id, status FROM events WHERE rule = ? AND sensor_uid = ? AND is_open = 1 "
                "AND cleared_ms IS NULL",
                (rule, sensor_uid),
            )
            if not rows:
                return None
            event_id, status = int(rows[0][0]), str(rows[0][1])
            at = at_ms if at_ms is not None else (self.clock_ms() or now_ms)
            with self._tx() as tx:
                seq = tx.rows(_NEXT_SEQ)[0][0]
                tx.run(
                    "UPDATE events SET cleared_ms = ?, updated_ms = ?, seq = ? WHERE id = ?",
                    (at, now_ms, seq, event_id),
                )
                _history(tx, event_id, status, [(at, "cleared", who)])
        return event_id

    def set_event_status(
        self,
        event_id: int,
        allowed: Sequence[str],
        target: str,
        *,
        assignee: str | None,
        at_ms: int,
        action: str,
        who: str,
        note: str | None,
    ) -> str | None:
        """Move an event whose status is one of ``allowed`` to ``target``, recording the action;
        the status it had (None: no such event; unchanged when not allowed)."""
        with self._tx() as tx:
            rows = tx.rows("SELECT status FROM events WHERE id = ?", (int(event_id),))
            if not rows or rows[0][0] not in allowed:
                return None if not rows else str(rows[0][0])
            seq = tx.rows(_NEXT_SEQ)[0][0]
            tx.run(
                "UPDATE events SET status = ?, is_open = ?, assignee = coalesce(?, assignee), "
                "updated_ms = ?, seq = ? WHERE id = ?",
                (
                    target,
                    0 if target in ("resolved", "closed") else 1,
                    assignee,
                    at_ms,
                    seq,
                    int(event_id),
                ),
            )
            _history(tx, int(event_id), target, [(at_ms, action, who, note)])
        return str(rows[0][0])

    def mark_escalated(self, event_id: int, at_ms: int, note: str) -> bool:
        """Escalate an event if it is still new and not escalated (another process may have
        done it, or acknowledged it, meanwhile); whether this call did."""
        with self._tx() as tx:
            seq = tx.rows(_NEXT_SEQ)[0][0]
            changed = tx.run(
                "UPDATE events SET escalated = 1, updated_ms = ?, seq = ? WHERE id = ? "
                "AND status = 'new' AND escalated = 0",
                (at_ms, seq, int(event_id)),
            )
            if changed:
                _history(tx, int(event_id), "new", [(at_ms, "escalate", "system", note)])
        return bool(changed)

    # -- dead letters, leases -----------------------------------------------------------
    def add_dead_letters(self, rows: Iterable[Sequence[Any]]) -> None:
        """Keep rejected input: ``(received_ms, source, reason, sensor, time, property,
        value)`` each, in one transaction."""
        with self._tx() as tx:
            tx.many(
                "INSERT INTO dead_letters (received_ms, source, reason, sensor, time, property, "
                "value) VALUES (?, ?, ?, ?, ?, ?, ?)",
                list(rows),
            )

    def take_lease(self, name: str, holder: str, *, until_ms: int, now_ms: int) -> bool:
        """Take or renew the lease ``name`` until ``until_ms`` when it is free, expired (before
        ``now_ms``) or ``holder``'s already; whether ``holder`` holds it now. One statement:
        two processes can never both take it."""
        self._ensure_leases()
        with self._tx() as tx:
            rows = tx.rows(
                "INSERT INTO leases (name, holder, until_ms) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                "until_ms = excluded.until_ms "
                "WHERE leases.holder = excluded.holder OR leases.until_ms < ? RETURNING holder",
                (name, holder, int(until_ms), int(now_ms)),
            )
        return bool(rows)

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease ``name`` back (only if ``holder`` holds it)."""
        self._ensure_leases()
        with self._tx() as tx:
            tx.run("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def _ensure_leases(self) -> None:
        if not getattr(self, "_leases_ready", False):
            with self._tx() as tx:
                tx.run(LEASES)
            self._leases_ready = True

    # -- observations: reads ---------------------------------------------------------
    def windows(
        self, streams: Sequence[int], lo: int | None = None, hi: int | None = None
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """The readings ``(times ms, values)`` of many datastreams in ``[lo, hi]`` ms, by
        datastream, in time order (one query); datastreams without readings are left out."""
        if not len(streams):
            return {}
        among, params = self._in("datastream", [int(s) for s in streams])
        rows = self._rows(
            f"SELECT datastream, phenomenon_ms, value FROM observations WHERE {among} "
            "AND phenomenon_ms BETWEEN ? AND ? ORDER BY datastream, phenomenon_ms",
            (*params, lo if lo is not None else -_FAR, hi if hi is not None else _FAR),
        )
        if not rows:
            return {}
        ds = np.fromiter((r[0] for r in rows), dtype="int64", count=len(rows))
        t = np.fromiter((r[1] for r in rows), dtype="int64", count=len(rows))
        v = np.fromiter((r[2] for r in rows), dtype=float, count=len(rows))
        cuts = np.flatnonzero(np.diff(ds)) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [len(ds)]])
        return {int(ds[a]): (t[a:b], v[a:b]) for a, b in zip(starts, ends, strict=True)}

    def latest_ms(self) -> dict[int, int]:
        """The newest phenomenon time (ms) of every datastream with a reading."""
        rows = self._rows("SELECT datastream, phenomenon_ms FROM latest")
        return {int(d): int(t) for d, t in rows}

    def last_before(self, datastream: int, clock: int | None) -> int | None:
        """The newest phenomenon time (ms) of a datastream at or before ``clock`` ms."""
        row = self._rows(
            "SELECT max(phenomenon_ms) FROM observations "
            "WHERE datastream = ? AND phenomenon_ms <= ?",
            (int(datastream), clock if clock is not None else _FAR),
        )[0]
        return None if row[0] is None else int(row[0])

    def observations_of(
        self, datastream: int, *, skip: int = 0, top: int = 100, newest_first: bool = True
    ) -> pd.DataFrame:
        """One page of a datastream's observations (for the SensorThings read paths)."""
        order = "DESC" if newest_first else "ASC"
        return self._frame(
            "SELECT phenomenon_ms, result_ms, value, quality FROM observations "
            f"WHERE datastream = ? ORDER BY phenomenon_ms {order} LIMIT ? OFFSET ?",
            (int(datastream), int(top), int(skip)),
        )

    def count_observations(self, datastream: int | None = None) -> int:
        """How many observations are stored (for one datastream, or all)."""
        if datastream is None:
            return int(self._rows("SELECT count(*) FROM observations")[0][0])
        sql = "SELECT count(*) FROM observations WHERE datastream = ?"
        return int(self._rows(sql, (int(datastream),))[0][0])

    def dead_letters(self, reason: str | None = None) -> pd.DataFrame:
        """The rejected readings with their reason, oldest first."""
        where, params = (" WHERE reason = ?", (reason,)) if reason is not None else ("", ())
        frame = self._frame(f"SELECT * FROM dead_letters{where} ORDER BY id", params)
        received = frame.pop("received_ms").to_numpy(dtype="int64")
        frame.insert(1, "received", pd.to_datetime(received, unit="ms", utc=True))
        return frame

    def clock_ms(self) -> int | None:
        """The newest phenomenon time stored (the data's own clock), or None."""
        row = self._rows("SELECT max(phenomenon_ms) FROM latest")[0]
        return None if row[0] is None else int(row[0])

    # -- readings for vitals and SensorThings ------------------------------------------
    def readings_between(self, lo_ms: int, hi_ms: int) -> pd.DataFrame:
        """``sensor_uid, phenomenon_ms`` of every reading in ``(lo_ms, hi_ms]``."""
        return self._frame(
            "SELECT d.sensor_uid, o.phenomenon_ms FROM observations o JOIN datastreams d "
            "ON d.id = o.datastream WHERE o.phenomenon_ms > ? AND o.phenomenon_ms <= ?",
            (int(lo_ms), int(hi_ms)),
        )

    def observation_page(
        self,
        sensors: Sequence[str] | None,
        conditions: Sequence[tuple[str, Sequence[Any]]],
        *,
        order: str,
        top: int,
        skip: int,
    ) -> tuple[pd.DataFrame, int]:
        """One page of observations joined to their datastream, and how many match.

        ``sensors``: only theirs (None: all); ``conditions``: ``(SQL condition over
        ``o.`` observations and ``d.`` datastreams with ``?`` marks, parameters)`` each,
        as :func:`twin.sensing.odata.to_sql` writes them; ``order``: an ORDER BY list, to
        which the key is added (ties in a stable order: pages neither repeat nor skip).
        Columns: ``datastream, phenomenon_ms, result_ms, value, quality, sensor_uid``.
        """
        where, params = ["1 = 1"], []
        if sensors is not None:
            sql, more = self._in("d.sensor_uid", list(sensors))
            where.append(sql)
            params += more
        for condition, values in conditions:
            where.append(condition)
            params += list(values)
        source = (
            "FROM observations o JOIN datastreams d ON d.id = o.datastream WHERE "
            + " AND ".join(where)
        )
        with self.lock:
            frame = self._frame(
                "SELECT o.datastream, o.phenomenon_ms, o.result_ms, o.value, o.quality, "
                f"d.sensor_uid {source} ORDER BY {order}, o.datastream, o.phenomenon_ms "
                "LIMIT ? OFFSET ?",
                [*params, int(top), int(skip)],
            )
            total = int(self._rows(f"SELECT count(*) {source}", params)[0][0])
        return frame, total


def _history(tx: LiveTx, event_id: int, status: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """History rows ``(at_ms, action, who[, note])`` of one event, all with ``status``."""
    tx.many(
        "INSERT INTO event_history (event_id, at_ms, action, status, who, note) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(event_id, r[0], r[1], status, r[2], r[3] if len(r) > 3 else None) for r in rows],
    )


class _SqliteTx:
    def __init__(self, con: Any) -> None:
        self.con = con

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.con.execute(sql, tuple(params)).fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.con.execute(sql, tuple(params)).rowcount)

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.con.executemany(sql, rows)


class SqliteAccess:
    """The primitives of :class:`LiveQueries` on one ``sqlite3`` connection ``self.con``."""

    con: Any
    lock: threading.RLock

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return list(self.con.execute(sql, tuple(params)).fetchall())

    def _frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self.lock:
            cursor = self.con.execute(sql, tuple(params))
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return pd.DataFrame.from_records(rows, columns=names)

    @contextmanager
    def _tx(self) -> Iterator[_SqliteTx]:
        with self.lock:
            self.con.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(self.con)
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(list(values))]
