"""Each sensor's state for the map: normal, alarm, offline or no data.

From the live store's latest values and the thresholds the sensor layer
declares (the same thresholds :func:`twin.sensing.rules.threshold_rules`
turns into rules), at a clock (the newest reading stored, unless given, as
:func:`twin.sensing.vitals.vitals` does):

=========  ==============================================================
state      when
=========  ==============================================================
no_data    no reading stored for the sensor
offline    its newest reading is older than ``online_min`` before the clock
alarm      online, and a latest value above ``threshold_high`` or below
           ``threshold_low``
normal     online and within its thresholds
=========  ==============================================================

A sensor with several datastreams is in alarm when any of its online
streams is; its ``time`` and ``value`` are those of its newest reading.

Examples
--------
>>> states = sensor_states(store, registry)  # doctest: +SKIP
>>> states["state"].value_counts().to_dict()  # doctest: +SKIP
{'normal': 297, 'alarm': 2, 'offline': 1}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from twin.sensing.events import ACK_DEADLINES_MIN, list_events
from twin.sensing.locate import Locator
from twin.sensing.sensors import SensorRegistry
from twin.sensing.store import LiveStoreProtocol, to_ms
from twin.sensing.vitals import vitals

__all__ = [
    "SENSOR_STATES",
    "area_vitals",
    "overdue_events",
    "sensor_states",
    "states_from_latest",
]

#: The states, in the order a legend lists them.
SENSOR_STATES = ("normal", "alarm", "offline", "no_data")


def sensor_states(
    store: LiveStoreProtocol,
    registry: SensorRegistry,
    *,
    sensors: Sequence[str] | None = None,
    at: pd.Timestamp | None = None,
    online_min: float = 30.0,
) -> pd.DataFrame:
    """The state of every sensor (or of ``sensors``), one row each.

    Parameters
    ----------
    store : LiveStore
        The live store beside the twin.
    registry : SensorRegistry
        The twin's sensors, with their thresholds.
    sensors : sequence of str, optional
        Uids to report (default: every sensor of the registry).
    at : Timestamp, optional
        The clock; default the newest reading stored (now when there is none).
    online_min : float, default 30
        A sensor whose newest reading is older than this is offline.

    Returns
    -------
    pandas.DataFrame
        Indexed by sensor uid: ``layer, state, time, value, property``
        (``time``/``value`` of the newest reading; NaN/NaT without one).
    """
    frame = registry.frame
    uids = pd.Index(frame.index if sensors is None else list(sensors), name="uid")
    latest = store.latest(list(uids))
    clock = to_ms(at) if at is not None else (store.clock_ms() or to_ms(pd.Timestamp.now("UTC")))
    return states_from_latest(
        frame.reindex(uids), latest, clock_ms=int(clock), online_min=online_min
    )


def states_from_latest(
    sensors: pd.DataFrame, latest: pd.DataFrame, *, clock_ms: int, online_min: float = 30.0
) -> pd.DataFrame:
    """The states of ``sensors`` (registry rows) from ``latest`` (:meth:`LiveStore.latest`).

    Examples
    --------
    >>> sensors = pd.DataFrame(
    ...     {"layer": "s", "threshold_low": [1.0, 1.0, 1.0, 1.0], "threshold_high": 5.0},
    ...     index=["s.a", "s.b", "s.c", "s.d"],
    ... )
    >>> latest = pd.DataFrame({
    ...     "sensor_uid": ["s.a", "s.b", "s.c"], "property": "p",
    ...     "time": pd.to_datetime([0, 0, -3_600_000], unit="ms", utc=True),
    ...     "value": [3.0, 7.0, 3.0]})
    >>> states_from_latest(sensors, latest, clock_ms=0)["state"].tolist()
    ['normal', 'alarm', 'offline', 'no_data']
    """
    uids = sensors.index
    ms = to_ms(latest["time"]).to_numpy(dtype="int64") if len(latest) else np.array([], "int64")
    readings = pd.DataFrame(
        {
            "uid": latest["sensor_uid"].to_numpy(),
            "ms": ms,
            "value": latest["value"].to_numpy(dtype=float),
            "property": latest["property"].to_numpy(),
        }
    )
    online = (readings["ms"] <= clock_ms) & (readings["ms"] > clock_ms - online_min * 60_000)
    low = readings["uid"].map(sensors["threshold_low"]).astype(float)
    high = readings["uid"].map(sensors["threshold_high"]).astype(float)
    beyond = (readings["value"] > high.fillna(np.inf)) | (readings["value"] < low.fillna(-np.inf))
    alarm = readings[online & beyond].groupby("uid").size()
    newest = readings.sort_values("ms").drop_duplicates("uid", keep="last").set_index("uid")
    is_online = readings[online].groupby("uid").size()
    state = pd.Series("no_data", index=uids, dtype=object)
    has = uids.isin(newest.index)
    state[has] = "offline"
    state[uids.isin(is_online.index)] = "normal"
    state[uids.isin(alarm.index)] = "alarm"
    times = newest["ms"].reindex(uids).to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "layer": sensors["layer"].to_numpy(),
            "state": state.to_numpy(),
            "time": pd.to_datetime(times, unit="ms", utc=True),
            "value": newest["value"].reindex(uids).to_numpy(),
            "property": newest["property"].reindex(uids).to_numpy(),
        },
        index=pd.Index(uids, name="uid"),
    )


def overdue_events(events: pd.DataFrame, clock_ms: int) -> pd.Series:
    """Whether each event is overdue at ``clock_ms``: open, and escalated or still new
    past its grade's acknowledgement deadline (as :func:`twin.sensing.vitals.vitals` counts).

    Examples
    --------
    >>> events = pd.DataFrame({"is_open": [True, True, False], "escalated": [False, True, True],
    ...     "status": ["new", "acknowledged", "resolved"], "grade": ["重大", "一般", "一般"],
    ...     "opened": pd.to_datetime([0, 0, 0], unit="ms", utc=True)})
    >>> overdue_events(events, clock_ms=16 * 60_000).tolist()
    [True, True, False]
    """
    if events.empty:
        return pd.Series(False, index=events.index, dtype=bool)
    deadline = events["grade"].map(ACK_DEADLINES_MIN).fillna(120.0) * 60_000
    late = (events["status"] == "new") & (to_ms(events["opened"]) + deadline < clock_ms)
    return (events["is_open"].astype(bool) & (events["escalated"].astype(bool) | late)).rename(
        "overdue"
    )


def area_vitals(
    store: LiveStoreProtocol,
    locator: Locator,
    *,
    sensors: Sequence[str] | None = None,
    by: str = "district",
    at: pd.Timestamp | None = None,
    online_min: float = 30.0,
) -> pd.DataFrame:
    """Per district (or grid): sensors, sensors online, open and overdue events, of ``sensors``.

    :func:`twin.sensing.vitals.vitals` restricted to the sensors a caller may
    read (default all): their count and how many are online, and the open and
    overdue events raised by them or by citizen reports.

    Returns
    -------
    pandas.DataFrame
        Indexed by area uid: ``sensors, sensors_online, open_events, overdue_events``.
    """
    frame = locator.registry.frame
    chosen = frame if sensors is None else frame.loc[frame.index.intersection(list(sensors))]
    narrowed = dataclasses.replace(locator, registry=SensorRegistry(chosen))
    table = vitals(store, narrowed, by=by, at=at, online_min=online_min)
    out = table[["sensors", "sensors_online"]].copy()
    events = list_events(store, open_only=True)
    keep = events["sensor_uid"].isin(chosen.index) | events["sensor_uid"].str.startswith("report:")
    events = events[keep]
    clock = to_ms(at) if at is not None else (store.clock_ms() or to_ms(pd.Timestamp.now("UTC")))
    late = overdue_events(events, int(clock))
    out = out.reindex(out.index.union(pd.Index(events[by].dropna().unique())))
    out["open_events"] = events.groupby(by).size()
    out["overdue_events"] = events[late].groupby(by).size()
    return out.fillna(0).astype(int).rename_axis(by)
