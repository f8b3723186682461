"""Alarm rules: the sensor layer's thresholds plus rules from a YAML file.

A rule selects sensors (by ``sensor_type`` or by named ``sensors``) and has a
condition, evaluated on each reading of the sensor's default property:

``above: X`` / ``below: X``
    X a number or ``threshold_high`` / ``threshold_low`` (the sensor's own).
``rate_above: R`` / ``rate_below: R``
    change per minute since the previous reading (``rate_below: -0.02``: falling
    faster than 0.02 units a minute).
``all: [...]`` / ``any: [...]``
    AND / OR of conditions.
``no_data_min: N``
    no reading for N minutes (the sensor is offline).

and options: ``for_s`` (the condition must hold that long, default 0),
``clear`` (hysteresis: an alarm on ``above`` clears only once the value is at
or below ``clear``; on ``below``, at or above), ``event_type``, ``grade``.

A YAML rule file::

    rules:
      - name: pressure_low
        sensor_type: water_pressure
        when: {below: 0.2, for_s: 300, clear: 0.25}
        event_type: pressure_drop
        grade: 较大
      - name: falling_fast
        sensors: [sensors.WP000003]
        when: {all: [{below: 0.3}, {rate_below: -0.01}]}

Evaluation runs the alarm's state machine over the readings in time order
and returns *episodes*: when the alarm went on (``start``), when it cleared
(``end``, NaT while it lasts) and the value that set it off.

Examples
--------
>>> rule = Rule.from_dict({"name": "hot", "sensor_type": "smoke", "when": {"above": 0.2}})
>>> rule.condition, rule.grade
({'above': 0.2}, '一般')
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from twin.errors import SourceError, UsageError
from twin.sensing.sensors import SensorRegistry
from twin.sensing.store import LiveStoreProtocol, from_ms, records, to_ms

__all__ = [
    "EPISODE_COLUMNS",
    "AlarmState",
    "Rule",
    "advance",
    "conditions",
    "episodes",
    "evaluate",
    "load_rules",
    "rates_per_min",
    "threshold_rules",
]

GRADES = ("一般", "较大", "重大", "特别重大")
LEAVES = ("above", "below", "rate_above", "rate_below")
OPTIONS = ("for_s", "clear", "no_data_min")
#: The event type a threshold crossing raises, by sensor type and side.
THRESHOLD_EVENTS = {
    ("water_pressure", "low"): ("pressure_drop", "较大"),
    ("water_pressure", "high"): ("pressure_surge", "一般"),
    ("gas_leak", "high"): ("gas_leak", "重大"),
    ("water_level", "high"): ("flooding", "较大"),
    ("water_level", "low"): ("low_water", "一般"),
    ("smoke", "high"): ("fire", "重大"),
}
#: How long a threshold must be crossed before it alarms, by sensor type (seconds).
THRESHOLD_FOR_S = {"water_pressure": 300.0, "water_level": 300.0}
EPISODE_COLUMNS = ["rule", "sensor_uid", "event_type", "grade", "start", "end", "value"]


@dataclass(frozen=True)
class Rule:
    """One alarm rule (see the module docstring for the condition language)."""

    name: str
    condition: dict[str, Any]
    sensor_types: tuple[str, ...] = ()
    sensors: tuple[str, ...] = ()
    for_s: float = 0.0
    clear: Any = None
    event_type: str | None = None
    grade: str = "一般"
    no_data_min: float | None = None
    event_types: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> Rule:
        """A rule from its YAML mapping; :class:`UsageError` names what is wrong."""
        name = str(item.get("name") or "")
        if not name:
            raise UsageError(f"a rule needs a name: {dict(item)}")
        when = dict(item.get("when") or {})
        options = {k: when.pop(k) for k in OPTIONS if k in when}
        if not when and "no_data_min" not in options:
            raise UsageError(f"rule {name!r}: 'when' needs a condition ({', '.join(LEAVES)}, …)")
        _check_condition(name, when)
        grade = str(item.get("grade", "一般"))
        if grade not in GRADES:
            raise UsageError(f"rule {name!r}: grade {grade!r} must be one of {', '.join(GRADES)}")
        types = item.get("sensor_type") or ()
        sensors = item.get("sensors") or ()
        if not types and not sensors:
            raise UsageError(f"rule {name!r}: say which sensors (sensor_type or sensors)")
        return cls(
            name=name,
            condition=when,
            sensor_types=tuple([types] if isinstance(types, str) else types),
            sensors=tuple([sensors] if isinstance(sensors, str) else sensors),
            for_s=float(options.get("for_s", 0.0)),
            clear=options.get("clear"),
            event_type=item.get("event_type"),
            grade=grade,
            no_data_min=float(options["no_data_min"]) if "no_data_min" in options else None,
        )

    def applies(self, registry: SensorRegistry) -> pd.Index:
        """Uids of the sensors this rule watches."""
        frame = registry.frame
        mask = frame["sensor_type"].isin(self.sensor_types) | frame.index.isin(self.sensors)
        return frame.index[mask]

    def type_for(self, sensor_type: str) -> str:
        """The event type this rule raises for a sensor of ``sensor_type``."""
        return self.event_types.get(sensor_type) or self.event_type or self.name


def _check_condition(name: str, cond: Mapping[str, Any]) -> None:
    for key, value in cond.items():
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise UsageError(f"rule {name!r}: {key} needs a list of conditions")
            for part in value:
                _check_condition(name, dict(part))
        elif key in LEAVES:
            if not isinstance(value, (int, float)) and value not in (
                "threshold_low",
                "threshold_high",
            ):
                raise UsageError(
                    f"rule {name!r}: {key} needs a number or threshold_low/threshold_high"
                )
        else:
            raise UsageError(
                f"rule {name!r}: unknown condition {key!r}; use {', '.join(LEAVES)}, all, any, "
                f"{', '.join(OPTIONS)}"
            )


def load_rules(path: str | os.PathLike[str]) -> list[Rule]:
    """The rules of a YAML file (a mapping with a ``rules`` list)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise SourceError(f"rule file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise SourceError(f"rule file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise SourceError(f"rule file {path} must hold a mapping with a 'rules' list")
    rules = [Rule.from_dict(dict(item)) for item in data["rules"]]
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise SourceError(f"rule file {path}: rule names must be unique")
    return rules


def threshold_rules(registry: SensorRegistry) -> list[Rule]:
    """One rule per sensor type and side for the thresholds the sensor layer declares.

    Hysteresis: the alarm clears 10 % of the threshold back inside it.
    """
    rules = []
    frame = registry.frame
    for sensor_type in sorted(frame["sensor_type"].dropna().unique()):
        of_type = frame[frame["sensor_type"] == sensor_type]
        for side, column, leaf in (
            ("high", "threshold_high", "above"),
            ("low", "threshold_low", "below"),
        ):
            if of_type[column].isna().all():
                continue
            event_type, grade = THRESHOLD_EVENTS.get((sensor_type, side), (f"{column}", "一般"))
            rules.append(
                Rule(
                    name=f"{sensor_type}_{side}",
                    condition={leaf: column},
                    sensor_types=(sensor_type,),
                    for_s=THRESHOLD_FOR_S.get(sensor_type, 0.0),
                    clear=0.9 if side == "high" else 1.1,
                    event_type=event_type,
                    grade=grade,
                )
            )
    return rules


# -- evaluation -------------------------------------------------------------
def _threshold(value: Any, sensor: Mapping[str, Any]) -> Any:
    """A rule's level: a number, or the sensor's own threshold (a float, or an array of
    one threshold per reading when ``sensor`` maps the threshold names to arrays)."""
    if isinstance(value, str):
        level = sensor[value]
        return np.asarray(level, dtype=float) if np.ndim(level) else float(level)
    return float(value)


def _mask(
    cond: Mapping[str, Any], values: np.ndarray, rates: np.ndarray, sensor: Mapping[str, Any]
) -> np.ndarray:
    """Whether each reading meets ``cond``."""
    result = np.ones(values.size, dtype=bool)
    for key, arg in cond.items():
        if key == "all":
            part = np.all([_mask(dict(c), values, rates, sensor) for c in arg], axis=0)
        elif key == "any":
            part = np.any([_mask(dict(c), values, rates, sensor) for c in arg], axis=0)
        else:
            level = _threshold(arg, sensor)
            data = values if key in ("above", "below") else rates
            with np.errstate(invalid="ignore"):
                part = data > level if key.endswith("above") else data < level
        result &= part
    return result


def _clear_mask(
    rule: Rule, values: np.ndarray, on: np.ndarray, sensor: Mapping[str, Any]
) -> np.ndarray:
    """Whether each reading clears an active alarm (hysteresis when the rule has ``clear``)."""
    if rule.clear is None or len(rule.condition) != 1:
        return ~on
    ((key, arg),) = rule.condition.items()
    if key not in ("above", "below"):
        return ~on
    level = _threshold(arg, sensor)
    # a threshold rule's clear is a factor of the sensor's own threshold
    clear = level * float(rule.clear) if isinstance(arg, str) else float(rule.clear)
    with np.errstate(invalid="ignore"):
        return np.asarray(values <= clear if key == "above" else values >= clear)


def conditions(
    rule: Rule, values: np.ndarray, rates: np.ndarray, sensor: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each reading meets the rule (``on``) and whether it clears it (``off``).

    ``sensor`` maps ``threshold_low`` / ``threshold_high`` to one number or to an
    array with one threshold per reading (many sensors at once).

    Examples
    --------
    >>> rule = Rule("hot", {"above": "threshold_high"}, sensor_types=("x",), clear=0.9)
    >>> on, off = conditions(rule, np.array([5.0, 9.5]), np.zeros(2),
    ...                      {"threshold_high": np.array([4.0, 10.0])})
    >>> on.tolist(), off.tolist()
    ([True, False], [False, False])
    """
    on = _mask(rule.condition, values, rates, sensor)
    return on, _clear_mask(rule, values, on, sensor)


def rates_per_min(t: np.ndarray, v: np.ndarray, before: tuple[int, float] | None = None) -> Any:
    """Change per minute of each reading since the one before (``before``: the reading
    preceding ``t[0]``, when known; otherwise the first rate is NaN).

    Examples
    --------
    >>> rates_per_min(np.array([0, 60_000]), np.array([1.0, 3.0]), (-60_000, 2.0)).tolist()
    [-1.0, 2.0]
    """
    if before is None:
        pt, pv = np.concatenate([[0], t[:-1]]), np.concatenate([[np.nan], v[:-1]])
    else:
        pt, pv = np.concatenate([[before[0]], t[:-1]]), np.concatenate([[before[1]], v[:-1]])
    minutes = (t - pt) / 60_000.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return (v - pv) / np.where(minutes > 0, minutes, np.nan)


@dataclass
class AlarmState:
    """Where one rule's alarm stands on one datastream after the readings seen so far."""

    active: bool = False
    since: int | None = None  # when the condition began to hold (for ``for_s``)
    start: int = 0  # when the alarm went on
    value: float = 0.0  # the reading that set it off
    last: tuple[int, float] | None = None  # the last reading seen (time ms, value)


def advance(
    state: AlarmState, need_ms: int, t: np.ndarray, v: np.ndarray, on: Any, off: Any
) -> list[tuple[int, int | None, float]]:
    """Run the alarm's state machine over new readings (in time order); the episodes that
    ended among them. ``state`` is updated in place.

    Examples
    --------
    >>> state = AlarmState()
    >>> t, v = np.array([0, 1000]), np.array([5.0, 0.0])
    >>> advance(state, 0, t, v, v > 1, v <= 1), state.active
    ([(0, 1000, 5.0)], False)
    """
    found: list[tuple[int, int | None, float]] = []
    active, since, start, value = state.active, state.since, state.start, state.value
    times = t.tolist()
    for i, (stamp, yes, no) in enumerate(zip(times, on.tolist(), off.tolist(), strict=True)):
        if not active:
            if not yes:
                since = None
                continue
            since = stamp if since is None else since
            if stamp - since >= need_ms:
                active, start, value = True, int(stamp), float(v[i])
        elif no:
            found.append((start, int(stamp), value))
            active, since = False, None
    state.active, state.since, state.start, state.value = active, since, start, value
    if times:
        state.last = (int(times[-1]), float(v[-1]))
    return found


def episodes(
    rule: Rule,
    sensor: Mapping[str, Any],
    t: np.ndarray,
    v: np.ndarray,
    state: AlarmState | None = None,
) -> list[tuple[int, int | None, float]]:
    """The alarm episodes of ``rule`` over one sensor's readings ``(start_ms, end_ms, value)``.

    ``t`` (int ms) and ``v`` are the readings in time order; ``sensor`` maps
    ``threshold_low`` / ``threshold_high`` to the sensor's own thresholds.
    ``state``, when given, is where the alarm stood before ``t[0]`` and is
    left where it stands after the last reading.

    Examples
    --------
    >>> rule = Rule("hot", {"above": 1.0}, sensor_types=("x",), for_s=60, clear=0.5)
    >>> t = np.arange(6) * 30_000
    >>> episodes(rule, {}, t, np.array([0, 2, 2, 2, 0.8, 0.4]))
    [(90000, 150000, 2.0)]
    """
    state = state if state is not None else AlarmState()
    if t.size == 0:
        return [(state.start, None, state.value)] if state.active else []
    rates = rates_per_min(t, v, state.last)
    try:
        on = _mask(rule.condition, v, rates, sensor)
        off = _clear_mask(rule, v, on, sensor)
    except (KeyError, ValueError):
        return []
    found = advance(state, int(rule.for_s * 1000), t, v, on, off)
    if state.active:
        found.append((state.start, None, state.value))
    return found


def evaluate(
    rules: Sequence[Rule],
    store: LiveStoreProtocol,
    registry: SensorRegistry,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    sensors: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Which rules fire on the readings in ``[start, end]``: one row per alarm episode.

    Parameters
    ----------
    rules : sequence of Rule
    store, registry
        The live store and the twin's sensors.
    start, end : Timestamp, optional
        The window (default: everything stored; ``end`` is also the clock
        for ``no_data_min``, default the newest reading stored).
    sensors : iterable of str, optional
        Only these sensor uids.

    Returns
    -------
    pandas.DataFrame
        ``rule, sensor_uid, event_type, grade, start, end, value`` (``end`` NaT
        while the alarm lasts).
    """
    wanted = None if sensors is None else set(sensors)
    streams = store.datastreams()
    keys = zip(streams["sensor_uid"], streams["property"], strict=True)
    ids = dict(zip(keys, streams.index, strict=True))
    rows: list[list[Any]] = []
    lo = to_ms(start) if start is not None else None
    clock = to_ms(end) if end is not None else store.clock_ms()
    tasks: list[tuple[Rule, str, int]] = []
    for rule in rules:
        uids = rule.applies(registry)
        if wanted is not None:
            uids = uids[uids.isin(list(wanted))]
        props = registry.frame.loc[uids, "property"].tolist()
        for uid, prop in zip(uids.tolist(), props, strict=True):
            found = ids.get((uid, prop))
            if found is not None:
                tasks.append((rule, uid, int(found)))
    needed = sorted({uid for _, uid, _ in tasks})
    info = registry.frame.loc[needed].drop(columns="geometry")
    sensors_of = dict(zip(needed, records(info), strict=True))
    value_ds = sorted({ds for rule, _, ds in tasks if rule.no_data_min is None})
    cache = store.windows(value_ds, lo, clock)
    latest = store.latest_ms() if any(r.no_data_min is not None for r, _, _ in tasks) else {}
    empty = (np.zeros(0, dtype="int64"), np.zeros(0))
    for rule, uid, ds in tasks:
        sensor = sensors_of[uid]
        if rule.no_data_min is not None:
            rows += _offline(rule, store, ds, uid, sensor, clock, latest.get(ds))
            continue
        for s, e, value in episodes(rule, sensor, *cache.get(ds, empty)):
            rows.append(
                [rule.name, uid, rule.type_for(sensor["sensor_type"]), rule.grade, s, e, value]
            )
    frame = pd.DataFrame(rows, columns=EPISODE_COLUMNS)
    frame["start"] = from_ms(frame["start"].to_numpy(dtype="int64"))
    frame["end"] = pd.to_datetime(frame["end"].astype("Int64").astype("float"), unit="ms", utc=True)
    return frame.sort_values(["start", "rule", "sensor_uid"]).reset_index(drop=True)


def _offline(
    rule: Rule,
    store: LiveStoreProtocol,
    ds: int,
    uid: str,
    sensor: Mapping[str, Any],
    clock: int | None,
    latest: int | None,
) -> list[list[Any]]:
    """The no-data episode of one datastream at ``clock`` (at most one, while it lasts)."""
    assert rule.no_data_min is not None
    if latest is not None and clock is not None and latest <= clock:
        last: int | None = latest
    else:
        last = store.last_before(ds, clock)
    if last is None or clock is None:
        return []
    silent_from = int(last) + int(rule.no_data_min * 60_000)
    if clock < silent_from:
        return []
    kind = rule.type_for(sensor["sensor_type"])
    return [[rule.name, uid, kind, rule.grade, silent_from, None, np.nan]]
