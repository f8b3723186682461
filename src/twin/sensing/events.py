"""Events: alarms become one open event per rule and sensor, with a lifecycle and a history.

Lifecycle (every transition timestamped, with who did it)::

    new ──ack──▶ acknowledged ──dispatch──▶ dispatched ──start──▶ in_progress
     └──────────dispatch──────────────────────▲                        │
    resolved ◀──resolve── (acknowledged, dispatched, in_progress) ◀────┘
    resolved ──close──▶ closed

An event is *open* until it is resolved; while it is open, the same rule on the
same sensor updates it (``repeats``, ``last`` time, latest value) instead of
opening another. When the alarm clears by itself (hysteresis, data back), the
event records ``cleared`` but stays open for the unit to dispose of it.

Grades follow the national four levels (一般 IV, 较大 III, 重大 II, 特别重大 I).
An event still ``new`` past its grade's acknowledgement deadline is escalated
(:func:`escalate`; deadlines configurable).

Examples
--------
>>> ACTIONS["dispatch"][1]
'dispatched'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pandas as pd

from twin.errors import FeatureNotFoundError, UsageError
from twin.sensing.store import LiveStore, from_ms, records, to_ms

__all__ = [
    "ACK_DEADLINES_MIN",
    "ACTIONS",
    "EVENT_STATUSES",
    "GRADES",
    "Event",
    "escalate",
    "event_changes",
    "get_event",
    "list_events",
    "open_events",
    "raise_events",
    "transition",
]

GRADES = ("一般", "较大", "重大", "特别重大")
EVENT_STATUSES = ("new", "acknowledged", "dispatched", "in_progress", "resolved", "closed")
#: action -> (statuses it applies to, status it leads to)
ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "ack": (("new",), "acknowledged"),
    "dispatch": (("new", "acknowledged", "dispatched"), "dispatched"),
    "start": (("dispatched",), "in_progress"),
    "resolve": (("new", "acknowledged", "dispatched", "in_progress"), "resolved"),
    "close": (("resolved",), "closed"),
}
#: Minutes an event of each grade may stay unacknowledged before it is escalated.
ACK_DEADLINES_MIN = {"特别重大": 5.0, "重大": 15.0, "较大": 30.0, "一般": 120.0}

Locate = Callable[[str], Mapping[str, Any]]
Impact = Callable[[str, str, dict[str, Any]], dict[str, Any] | None]


@dataclass
class Event:
    """One event with its history (``history``: ``time, action, status, who, note``)."""

    id: int
    rule: str
    sensor_uid: str
    event_type: str
    grade: str
    status: str
    opened: pd.Timestamp
    updated: pd.Timestamp
    last: pd.Timestamp
    value: float | None
    repeats: int
    escalated: bool
    cleared: pd.Timestamp | None
    assignee: str | None
    location: dict[str, Any]
    impact: dict[str, Any] | None
    history: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601 UTC)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if key == "history":
                out[key] = [{**row, "time": _iso(row["time"])} for row in value.to_dict("records")]
            elif isinstance(value, pd.Timestamp):
                out[key] = _iso(value)
            else:
                out[key] = value
        return out


def _iso(value: Any) -> str | None:
    if value is None or value is pd.NaT:
        return None
    return pd.Timestamp(value).isoformat().replace("+00:00", "Z")


def _now_ms() -> int:
    return to_ms(pd.Timestamp.now(tz="UTC"))


def _history(
    store: LiveStore,
    event_id: int,
    at: int,
    action: str,
    status: str,
    who: str,
    note: str | None = None,
) -> None:
    store.con.execute(
        "INSERT INTO event_history VALUES (?, ?, ?, ?, ?, ?)",
        (event_id, at, action, status, who, note),
    )


def raise_events(
    store: LiveStore,
    episodes: pd.DataFrame,
    *,
    evaluated: pd.DataFrame | None = None,
    locate: Locate | None = None,
    impact: Impact | None = None,
    who: str = "rules",
) -> list[int]:
    """Open or update events from alarm episodes (see :func:`twin.sensing.rules.evaluate`).

    Parameters
    ----------
    store : LiveStore
    episodes : pandas.DataFrame
        ``rule, sensor_uid, event_type, grade, start, end, value``.
    evaluated : pandas.DataFrame, optional
        ``rule, sensor_uid`` pairs that were evaluated: an open event of such a
        pair with no lasting episode is marked cleared.
    locate : callable, optional
        ``locate(sensor_uid) -> dict`` (building, parcel, grid, district, unit, …).
    impact : callable, optional
        ``impact(event_type, sensor_uid, location) -> dict or None``, run once
        when an event opens.
    who : str
        Recorded in the history.

    Returns
    -------
    list of int
        Ids of the events opened or changed.
    """
    changed: list[int] = []
    eps = records(episodes)
    for ep in eps:
        start = to_ms(pd.Timestamp(ep["start"]))
        end = None if pd.isna(ep["end"]) else to_ms(pd.Timestamp(ep["end"]))
        event_id = _apply_episode(store, SimpleNamespace(**ep), start, end, locate, impact, who)
        if event_id is not None:
            changed.append(event_id)
    if evaluated is not None and len(evaluated):
        lasting = {(e["rule"], e["sensor_uid"]) for e in eps if pd.isna(e["end"])}
        with store.lock:
            alarming = set(
                store.con.execute(
                    "SELECT rule, sensor_uid FROM events WHERE is_open = 1 AND cleared_ms IS NULL"
                ).fetchall()
            )
        pairs = zip(evaluated["rule"].tolist(), evaluated["sensor_uid"].tolist(), strict=True)
        for key in pairs:
            if key in alarming and key not in lasting:
                event_id = _clear(store, str(key[0]), str(key[1]), None, who)
                if event_id is not None:
                    changed.append(event_id)
    return sorted(set(changed))


def _apply_episode(
    store: LiveStore,
    ep: Any,
    start: int,
    end: int | None,
    locate: Locate | None,
    impact: Impact | None,
    who: str,
) -> int | None:
    con = store.con
    with store.lock:
        row = con.execute(
            "SELECT id, last_ms, cleared_ms FROM events WHERE rule = ? AND sensor_uid = ? "
            "AND is_open = 1",
            (ep.rule, ep.sensor_uid),
        ).fetchone()
        newest = con.execute(
            "SELECT max(opened_ms) FROM events WHERE rule = ? AND sensor_uid = ?",
            (ep.rule, ep.sensor_uid),
        ).fetchone()[0]
    value = None if pd.isna(ep.value) else float(ep.value)
    if row is None:
        if newest is not None and start <= newest:
            return None  # this episode already had its event, since disposed of
        place = dict(locate(ep.sensor_uid)) if locate is not None else {}
        answer = impact(ep.event_type, ep.sensor_uid, place) if impact is not None else None
        return _open(store, ep, start, end, value, place, answer, who)
    event_id, last_ms, cleared_ms = row
    known = start <= last_ms  # this episode is the one the event holds
    if known and (end is None or cleared_ms is not None):
        return None  # seen again, nothing new
    with store.lock:
        con.execute("BEGIN IMMEDIATE")
        con.execute(
            "UPDATE events SET last_ms = max(last_ms, ?), value = coalesce(?, value), "
            "repeats = repeats + ?, cleared_ms = ?, updated_ms = ?, seq = ? WHERE id = ?",
            (max(start, end or start), value, int(not known), end, _now_ms(), _seq(con), event_id),
        )
        status = _status(con, event_id)
        if not known:
            _history(store, event_id, start, "repeat", status, who)
        if end is not None:
            _history(store, event_id, end, "cleared", status, who)
        con.execute("COMMIT")
    return int(event_id)


def _seq(con: Any) -> int:
    row = con.execute(
        "INSERT INTO counters (name, value) VALUES ('seq', 1) "
        "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value"
    ).fetchone()
    return int(row[0])


def _status(con: Any, event_id: int) -> str:
    return str(con.execute("SELECT status FROM events WHERE id = ?", (event_id,)).fetchone()[0])


def _open(
    store: LiveStore,
    ep: Any,
    start: int,
    end: int | None,
    value: float | None,
    place: dict[str, Any],
    answer: Mapping[str, Any] | None,
    who: str,
) -> int:
    grade = str(ep.grade)
    if answer and answer.get("grade") in GRADES:
        grade = max(grade, str(answer["grade"]), key=GRADES.index)
    con = store.con
    with store.lock:
        con.execute("BEGIN IMMEDIATE")
        cursor = con.execute(
            "INSERT INTO events (rule, sensor_uid, event_type, grade, status, opened_ms, "
            "updated_ms, last_ms, value, cleared_ms, x, y, district, grid, unit, location, "
            "impact, seq) VALUES (?, ?, ?, ?, 'new', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ep.rule,
                ep.sensor_uid,
                ep.event_type,
                grade,
                start,
                _now_ms(),
                end or start,
                value,
                end,
                place.get("x"),
                place.get("y"),
                place.get("district"),
                place.get("grid"),
                place.get("unit"),
                json.dumps(place, ensure_ascii=False, default=str),
                None if answer is None else json.dumps(answer, ensure_ascii=False, default=str),
                _seq(con),
            ),
        )
        event_id = int(cursor.lastrowid or 0)
        _history(store, event_id, start, "open", "new", who)
        if end is not None:
            _history(store, event_id, end, "cleared", "new", who)
        con.execute("COMMIT")
    return event_id


def _clear(store: LiveStore, rule: str, sensor_uid: str, at: int | None, who: str) -> int | None:
    con = store.con
    with store.lock:
        row = con.execute(
            "SELECT id, status FROM events WHERE rule = ? AND sensor_uid = ? AND is_open = 1 "
            "AND cleared_ms IS NULL",
            (rule, sensor_uid),
        ).fetchone()
        if row is None:
            return None
        at = at if at is not None else (store.clock_ms() or _now_ms())
        con.execute("BEGIN IMMEDIATE")
        con.execute(
            "UPDATE events SET cleared_ms = ?, updated_ms = ?, seq = ? WHERE id = ?",
            (at, _now_ms(), _seq(con), row[0]),
        )
        _history(store, int(row[0]), at, "cleared", str(row[1]), who)
        con.execute("COMMIT")
    return int(row[0])


def transition(
    store: LiveStore,
    event_id: int,
    action: str,
    who: str,
    *,
    assignee: str | None = None,
    note: str | None = None,
    at: pd.Timestamp | None = None,
) -> Event:
    """Apply ``action`` (ack, dispatch, start, resolve, close) to an event, recording who did it.

    Raises
    ------
    UsageError
        Unknown action, an action the event's status does not allow, a
        dispatch without an assignee, or no ``who``.
    FeatureNotFoundError
        No event of that id.
    """
    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    if not who:
        raise UsageError("say who does it (who=...)")
    if action == "dispatch" and not assignee:
        raise UsageError("dispatch needs an assignee (the unit or worker it goes to)")
    allowed, target = ACTIONS[action]
    stamp = to_ms(at) if at is not None else _now_ms()
    con = store.con
    with store.lock:
        row = con.execute("SELECT status FROM events WHERE id = ?", (int(event_id),)).fetchone()
        if row is None:
            raise FeatureNotFoundError(f"there is no event {event_id}")
        if row[0] not in allowed:
            raise UsageError(
                f"event {event_id} is {row[0]}: {action} applies to {', '.join(allowed)} events"
            )
        con.execute("BEGIN IMMEDIATE")
        con.execute(
            "UPDATE events SET status = ?, is_open = ?, assignee = coalesce(?, assignee), "
            "updated_ms = ?, seq = ? WHERE id = ?",
            (
                target,
                0 if target in ("resolved", "closed") else 1,
                assignee,
                stamp,
                _seq(con),
                int(event_id),
            ),
        )
        text = note if assignee is None else f"to {assignee}" + (f": {note}" if note else "")
        _history(store, int(event_id), stamp, action, target, who, text)
        con.execute("COMMIT")
    return get_event(store, int(event_id))


def escalate(
    store: LiveStore,
    *,
    now: pd.Timestamp | None = None,
    deadlines_min: Mapping[str, float] | None = None,
) -> list[int]:
    """Escalate every event still ``new`` past its grade's acknowledgement deadline."""
    limits = {**ACK_DEADLINES_MIN, **(deadlines_min or {})}
    stamp = to_ms(now) if now is not None else _now_ms()
    with store.lock:
        rows = store.con.execute(
            "SELECT id, grade, opened_ms FROM events WHERE status = 'new' AND escalated = 0"
        ).fetchall()
    done = []
    for event_id, grade, opened in rows:
        due = opened + int(limits.get(grade, ACK_DEADLINES_MIN["一般"]) * 60_000)
        if stamp < due:
            continue
        with store.lock:
            store.con.execute("BEGIN IMMEDIATE")
            # Conditional: another process may have escalated (or acknowledged) it meanwhile.
            cursor = store.con.execute(
                "UPDATE events SET escalated = 1, updated_ms = ?, seq = ? WHERE id = ? "
                "AND status = 'new' AND escalated = 0",
                (stamp, _seq(store.con), event_id),
            )
            if cursor.rowcount == 0:
                store.con.execute("COMMIT")
                continue
            _history(
                store,
                event_id,
                stamp,
                "escalate",
                "new",
                "system",
                f"not acknowledged within {limits.get(grade)} min ({grade})",
            )
            store.con.execute("COMMIT")
        done.append(int(event_id))
    return done


EVENT_COLUMNS = (
    "id, rule, sensor_uid, event_type, grade, status, is_open, opened_ms, updated_ms, last_ms, "
    "value, repeats, escalated, cleared_ms, assignee, x, y, district, grid, unit, seq"
)


def list_events(
    store: LiveStore,
    *,
    status: str | None = None,
    open_only: bool = False,
    event_type: str | None = None,
    grade: str | None = None,
    district: str | None = None,
    grid: str | None = None,
    sensors: list[str] | None = None,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Events, filtered, newest first: one row each (times as UTC Timestamps)."""
    where, params = ["1 = 1"], []
    for column, value in (
        ("status", status),
        ("event_type", event_type),
        ("grade", grade),
        ("district", district),
        ("grid", grid),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if status is not None and status not in EVENT_STATUSES:
        raise UsageError(f"unknown status {status!r}: use one of {', '.join(EVENT_STATUSES)}")
    if open_only:
        where.append("is_open = 1")
    if since is not None:
        where.append("last_ms >= ?")
        params.append(to_ms(since))
    if until is not None:
        where.append("opened_ms <= ?")
        params.append(to_ms(until))
    frame = store._query(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY id DESC", params
    )
    if sensors is not None:
        frame = frame[frame["sensor_uid"].isin(sensors)]
    return _times(frame)


def _times(frame: pd.DataFrame) -> pd.DataFrame:
    for column in ("opened_ms", "updated_ms", "last_ms", "cleared_ms"):
        if column in frame.columns:
            values = pd.to_numeric(frame.pop(column), errors="coerce").astype(float)
            frame[column[:-3]] = pd.to_datetime(values, unit="ms", utc=True)
    if "is_open" in frame.columns:
        frame["is_open"] = frame["is_open"].astype(bool)
        frame["escalated"] = frame["escalated"].astype(bool)
    return frame.reset_index(drop=True)


def open_events(store: LiveStore) -> pd.DataFrame:
    """The open events (not yet resolved)."""
    return list_events(store, open_only=True)


def event_changes(store: LiveStore, after_seq: int, limit: int = 500) -> pd.DataFrame:
    """Events opened or changed after change number ``after_seq``, oldest change first."""
    frame = store._query(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
        (int(after_seq), int(limit)),
    )
    return _times(frame)


def get_event(store: LiveStore, event_id: int) -> Event:
    """One event with its history."""
    frame = store._query("SELECT * FROM events WHERE id = ?", (int(event_id),))
    if frame.empty:
        raise FeatureNotFoundError(f"there is no event {event_id}")
    row = frame.iloc[0]
    history = store._query(
        "SELECT at_ms, action, status, who, note FROM event_history WHERE event_id = ? "
        "ORDER BY rowid",
        (int(event_id),),
    )
    history.insert(0, "time", from_ms(history.pop("at_ms").to_numpy()))

    def stamp(value: Any) -> pd.Timestamp | None:
        return None if value is None or pd.isna(value) else from_ms(int(value))

    return Event(
        id=int(row["id"]),
        rule=str(row["rule"]),
        sensor_uid=str(row["sensor_uid"]),
        event_type=str(row["event_type"]),
        grade=str(row["grade"]),
        status=str(row["status"]),
        opened=from_ms(int(row["opened_ms"])),
        updated=from_ms(int(row["updated_ms"])),
        last=from_ms(int(row["last_ms"])),
        value=None if row["value"] is None or pd.isna(row["value"]) else float(row["value"]),
        repeats=int(row["repeats"]),
        escalated=bool(row["escalated"]),
        cleared=stamp(row["cleared_ms"]),
        assignee=None if row["assignee"] is None else str(row["assignee"]),
        location=json.loads(row["location"] or "{}"),
        impact=None if row["impact"] is None else json.loads(row["impact"]),
        history=history,
    )
