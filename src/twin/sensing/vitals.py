"""City vital signs (城市体征) per district or grid cell: a table now, a time series over a day.

Per area: sensors, sensors online (a reading within ``online_min`` of the
clock), readings in the last hour, open events (and by grade), overdue events
(escalated, or open past their grade's deadline), and the mean time to
dispose (opened → resolved, minutes). The clock is the newest reading stored
unless given (replayed days have their own clock).

Examples
--------
>>> vitals(store, locator, by="district")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from twin.errors import UsageError
from twin.sensing.events import ACK_DEADLINES_MIN, GRADES, list_events
from twin.sensing.locate import Locator
from twin.sensing.store import LiveStoreProtocol, from_ms, to_ms

__all__ = ["vitals", "vitals_series"]


def _areas(locator: Locator, by: str, sensors: Sequence[str] | None = None) -> pd.Series:
    if by not in ("district", "grid"):
        raise UsageError(f"vitals by {by!r}: use district or grid")
    uids = locator.registry.frame.index
    if sensors is not None:
        uids = uids[uids.isin(list(sensors))]
    return pd.Series([locator.relations.get((u, by)) for u in uids], index=uids, name=by)


def _events(store: LiveStoreProtocol, by: str, sensors: Sequence[str] | None) -> pd.DataFrame:
    """Every event (of ``sensors`` and citizen reports, when given), its area in ``area``."""
    events = list_events(store)
    if sensors is not None:
        mine = events["sensor_uid"].isin(list(sensors))
        events = events[mine | events["sensor_uid"].str.startswith("report:")]
    return events.assign(area=events[by]).reset_index(drop=True)


def _readings(store: LiveStoreProtocol, lo: int, hi: int) -> pd.DataFrame:
    return store.readings_between(lo, hi)


def vitals(
    store: LiveStoreProtocol,
    locator: Locator,
    *,
    by: str = "district",
    at: pd.Timestamp | None = None,
    online_min: float = 30.0,
    sensors: Sequence[str] | None = None,
    deadlines_min: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The vital signs of every district (or grid) at ``at``, one row per area.

    ``sensors`` (uids) limits the count to those sensors, their readings and
    events (citizen reports always count): what a caller who may read only
    some sensor layers is shown. ``deadlines_min`` (minutes per grade, over
    :data:`~twin.sensing.events.ACK_DEADLINES_MIN`) decides which events are overdue.
    """
    areas = _areas(locator, by, sensors)
    clock = to_ms(at) if at is not None else (store.clock_ms() or to_ms(pd.Timestamp.now("UTC")))
    latest = store.latest(None if sensors is None else list(sensors))
    last = latest.groupby("sensor_uid")["time"].max()
    last_ms = to_ms(last) if len(last) else pd.Series(dtype="int64")
    online = last_ms[(last_ms <= clock) & (last_ms > clock - online_min * 60_000)].index
    hour = _readings(store, clock - 3_600_000, clock)
    hour = hour[hour["sensor_uid"].isin(areas.index)]
    table = pd.DataFrame({"sensors": areas.value_counts()})
    table["sensors_online"] = areas[areas.index.isin(online)].value_counts()
    table["readings_last_hour"] = hour["sensor_uid"].map(areas).value_counts()
    events = _events(store, by, sensors)
    is_open = events["is_open"]
    table["open_events"] = events[is_open].groupby("area").size()
    for grade in GRADES:
        table[f"open_{grade}"] = events[is_open & (events["grade"] == grade)].groupby("area").size()
    limits = {**ACK_DEADLINES_MIN, **(deadlines_min or {})}
    deadline = events["grade"].map(limits).astype(float).fillna(120.0) * 60_000
    opened = to_ms(events["opened"]) if len(events) else pd.Series(dtype="int64")
    overdue = is_open & (
        events["escalated"] | ((events["status"] == "new") & (opened + deadline < clock))
    )
    table["overdue_events"] = events[overdue].groupby("area").size()
    done = events[events["status"].isin(["resolved", "closed"])]
    dispose = _dispose_minutes(store, done)
    table["mean_dispose_min"] = dispose.groupby(done["area"]).mean() if len(done) else None
    counts = [c for c in table.columns if c != "mean_dispose_min"]
    table[counts] = table[counts].fillna(0).astype(int)
    table.index.name = by
    return table.sort_index()


def _dispose_minutes(store: LiveStoreProtocol, done: pd.DataFrame) -> pd.Series:
    if done.empty:
        return pd.Series(dtype=float)
    rows = pd.Series(store.resolved_ms(), dtype="float64")
    resolved = done["id"].map(rows)
    return (resolved - to_ms(done["opened"])) / 60_000.0


def vitals_series(
    store: LiveStoreProtocol,
    locator: Locator,
    *,
    by: str = "district",
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    freq: str = "1h",
    sensors: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per period and area: readings, sensors reporting, events opened, events open at the end.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(time, area)``: ``readings``, ``sensors_reporting``,
        ``events_opened``, ``events_open``. ``sensors`` limits it as in :func:`vitals`.
    """
    areas = _areas(locator, by, sensors)
    clock = store.clock_ms()
    if clock is None:
        return pd.DataFrame(
            columns=["readings", "sensors_reporting", "events_opened", "events_open"]
        )
    hi = to_ms(end) if end is not None else clock
    lo = to_ms(start) if start is not None else hi - 86_400_000
    readings = _readings(store, lo, hi)
    readings = readings[readings["sensor_uid"].isin(areas.index)].copy()
    readings["time"] = from_ms(readings["phenomenon_ms"].to_numpy()).floor(freq)
    readings["area"] = readings["sensor_uid"].map(areas)
    grouped = readings.groupby(["time", "area"])
    out = pd.DataFrame(
        {"readings": grouped.size(), "sensors_reporting": grouped["sensor_uid"].nunique()}
    )
    events = _events(store, by, sensors)
    events = events[(events["opened"] > from_ms(lo)) & (events["opened"] <= from_ms(hi))]
    opened = events.assign(time=events["opened"].dt.floor(freq)).groupby(["time", "area"]).size()
    out["events_opened"] = opened
    periods = out.index.get_level_values("time").unique()
    open_counts = {}
    resolved_at = _resolved_at(store)
    for period in periods:
        period_end = period + pd.Timedelta(freq)
        alive = events[(events["opened"] < period_end)]
        still = [
            resolved_at.get(int(i)) is None or resolved_at[int(i)] >= period_end
            for i in alive["id"].tolist()
        ]
        alive = alive[np.asarray(still, dtype=bool)]
        for area, n in alive.groupby("area").size().items():
            open_counts[(period, area)] = n
    out["events_open"] = pd.Series(open_counts, dtype=float)
    return out.fillna(0).astype(int).sort_index()


def _resolved_at(store: LiveStoreProtocol) -> dict[int, pd.Timestamp]:
    return {i: from_ms(t) for i, t in store.resolved_ms().items()}
