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
from twin.sensing.store import LiveStoreProtocol, from_ms, records, to_ms

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


def raise_events(
    store: LiveStoreProtocol,
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
        alarming = store.alarming_pairs()
        pairs = zip(evaluated["rule"].tolist(), evaluated["sensor_uid"].tolist(), strict=True)
        for key in pairs:
            if key in alarming and key not in lasting:
                event_id = _clear(store, str(key[0]), str(key[1]), None, who)
                if event_id is not None:
                    changed.append(event_id)
    return sorted(set(changed))


def _apply_episode(
    store: LiveStoreProtocol,
    ep: Any,
    start: int,
    end: int | None,
    locate: Locate | None,
    impact: Impact | None,
    who: str,
) -> int | None:
    row, newest = store.event_state(ep.rule, ep.sensor_uid)
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
    history = [] if known else [(start, "repeat", who)]
    if end is not None:
        history.append((end, "cleared", who))
    store.update_event(
        event_id,
        last_ms=max(start, end or start),
        value=value,
        repeated=not known,
        cleared_ms=end,
        now_ms=_now_ms(),
        history=history,
    )
    return int(event_id)


def _open(
    store: LiveStoreProtocol,
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
    fields = {
        "rule": ep.rule,
        "sensor_uid": ep.sensor_uid,
        "event_type": ep.event_type,
        "grade": grade,
        "opened_ms": start,
        "updated_ms": _now_ms(),
        "last_ms": end or start,
        "value": value,
        "cleared_ms": end,
        **{k: place.get(k) for k in ("x", "y", "district", "grid", "unit")},
        "location": json.dumps(place, ensure_ascii=False, default=str),
        "impact": None if answer is None else json.dumps(answer, ensure_ascii=False, default=str),
    }
    history = [(start, "open", who)] + ([(end, "cleared", who)] if end is not None else [])
    return store.insert_event(fields, history)


def _clear(
    store: LiveStoreProtocol, rule: str, sensor_uid: str, at: int | None, who: str
) -> int | None:
    return store.clear_event(rule, sensor_uid, at, _now_ms(), who)


def transition(
    store: LiveStoreProtocol,
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
    text = note if assignee is None else f"to {assignee}" + (f": {note}" if note else "")
    found = store.set_event_status(
        int(event_id),
        allowed,
        target,
        assignee=assignee,
        at_ms=stamp,
        action=action,
        who=who,
        note=text,
    )
    if found is None:
        raise FeatureNotFoundError(f"there is no event {event_id}")
    if found not in allowed:
        raise UsageError(
            f"event {event_id} is {found}: {action} applies to {', '.join(allowed)} events"
        )
    return get_event(store, int(event_id))


def escalate(
    store: LiveStoreProtocol,
    *,
    now: pd.Timestamp | None = None,
    deadlines_min: Mapping[str, float] | None = None,
) -> list[int]:
    """Escalate every event still ``new`` past its grade's acknowledgement deadline."""
    limits = {**ACK_DEADLINES_MIN, **(deadlines_min or {})}
    stamp = to_ms(now) if now is not None else _now_ms()
    done = []
    for event_id, grade, opened in store.unescalated_new():
        due = opened + int(limits.get(grade, ACK_DEADLINES_MIN["一般"]) * 60_000)
        if stamp < due:
            continue
        note = f"not acknowledged within {limits.get(grade)} min ({grade})"
        if store.mark_escalated(event_id, stamp, note):
            done.append(int(event_id))
    return done


def list_events(
    store: LiveStoreProtocol,
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
    if status is not None and status not in EVENT_STATUSES:
        raise UsageError(f"unknown status {status!r}: use one of {', '.join(EVENT_STATUSES)}")
    filters = {
        "status": status,
        "event_type": event_type,
        "grade": grade,
        "district": district,
        "grid": grid,
    }
    frame = store.events_frame(
        filters,
        open_only=open_only,
        since_ms=None if since is None else to_ms(since),
        until_ms=None if until is None else to_ms(until),
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


def open_events(store: LiveStoreProtocol) -> pd.DataFrame:
    """The open events (not yet resolved)."""
    return list_events(store, open_only=True)


def event_changes(store: LiveStoreProtocol, after_seq: int, limit: int = 500) -> pd.DataFrame:
    """Events opened or changed after change number ``after_seq``, oldest change first."""
    frame = store.event_changes_frame(int(after_seq), int(limit))
    return _times(frame)


def get_event(store: LiveStoreProtocol, event_id: int) -> Event:
    """One event with its history."""
    frame = store.event_row(int(event_id))
    if frame.empty:
        raise FeatureNotFoundError(f"there is no event {event_id}")
    row = frame.iloc[0]
    history = store.event_history(int(event_id))
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
