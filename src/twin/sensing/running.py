"""The value rules kept running over readings as they arrive (no window re-read per batch).

:func:`twin.sensing.rules.evaluate` answers "which rules fire on this window"
by reading the window from the store. The operations loop instead keeps, for
every rule and datastream, where the alarm stands (:class:`AlarmState`) and
the last reading, and advances it with each stored batch: the conditions are
evaluated for the whole batch at once (thresholds by position in the
registry), and only the datastreams whose condition holds, or whose alarm is
on, step through the state machine.

The state is trusted only while this process has seen every reading of the
datastream: the ingest reports each datastream's newest time before the batch
(``prior_ms``), and when that is not the last reading the state saw (another
process wrote readings, or this one just started) or a reading arrives late
(older than one already seen), that datastream is re-run from the store over
the rules' look-back window, as :func:`~twin.sensing.rules.evaluate` would,
and its state rebuilt from there.

Examples
--------
>>> import geopandas as gpd, shapely
>>> sensors = gpd.GeoDataFrame(
...     {"sensor_type": ["gas_leak"], "threshold_low": [float("nan")],
...      "threshold_high": [20.0], "property": ["gas"]},
...     geometry=[shapely.Point(0, 0)], index=pd.Index(["sensors.G1"], name="uid"))
>>> rule = Rule("gas_leak_high", {"above": "threshold_high"}, ("gas_leak",), clear=0.9)
>>> runner = RuleRunner([rule], SensorRegistry(sensors), lookback_s=3600)
>>> rows = pd.DataFrame({"ds": [1, 1], "uid": "sensors.G1", "pos": 0, "property": "gas",
...                      "ms": [0, 1000], "value": [45.0, 1.0], "prior_ms": NO_TIME})
>>> found, evaluated = runner.step(rows, store=None)
>>> found[["rule", "sensor_uid", "value"]].values.tolist(), bool(found["end"].notna().all())
([['gas_leak_high', 'sensors.G1', 45.0]], True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from twin.sensing.rules import (
    EPISODE_COLUMNS,
    AlarmState,
    Rule,
    advance,
    conditions,
    episodes,
)
from twin.sensing.sensors import SensorRegistry
from twin.sensing.store import NO_TIME, LiveStoreProtocol, from_ms

__all__ = ["RuleRunner"]

_NO_EPISODES = pd.DataFrame(
    {
        **{c: pd.Series(dtype=object) for c in EPISODE_COLUMNS},
        "start": pd.Series(dtype="datetime64[ms, UTC]"),
        "end": pd.Series(dtype="datetime64[ms, UTC]"),
        "value": pd.Series(dtype=float),
    }
)[EPISODE_COLUMNS]


class RuleRunner:
    """Value rules (not the no-data ones) advanced batch by batch, state kept in memory.

    Parameters
    ----------
    rules : sequence of Rule
        Rules with ``no_data_min`` are ignored (the offline check handles them).
    registry : SensorRegistry
    lookback_s : float
        How far back a datastream is re-run from the store when its state
        cannot be trusted.
    """

    def __init__(self, rules: Sequence[Rule], registry: SensorRegistry, lookback_s: float) -> None:
        self.rules = [r for r in rules if r.no_data_min is None]
        self.registry = registry
        self.lookback_ms = int(lookback_s * 1000)
        frame = registry.frame
        self._uids = registry.arrays["uid"]
        self._types = frame["sensor_type"].to_numpy(dtype=object)
        self._prop = registry.arrays["property"]
        self._levels = {
            c: frame[c].to_numpy(dtype=float) for c in ("threshold_low", "threshold_high")
        }
        self._applies = [frame.index.isin(r.applies(registry)) for r in self.rules]
        self._any = np.any(self._applies, axis=0) if self.rules else np.zeros(len(frame), bool)
        self.states: dict[tuple[int, int], AlarmState] = {}  # (rule number, datastream)
        self.last: dict[int, tuple[int, float]] = {}  # datastream -> last reading seen

    def step(
        self, rows: pd.DataFrame, store: LiveStoreProtocol | None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Advance the rules over one stored batch (``IngestReport.rows``).

        Returns
        -------
        (episodes, evaluated)
            Episodes that began or ended in the batch (``rule, sensor_uid,
            event_type, grade, start, end, value``, as ``evaluate`` gives them)
            and the ``rule, sensor_uid`` pairs evaluated whose alarm is off
            (their open events are marked cleared by ``raise_events``).
        """
        found: list[list[Any]] = []
        evaluated: list[tuple[str, str]] = []
        pos = rows["pos"].to_numpy(dtype="int64")
        ok = (pos >= 0) & self._any[np.maximum(pos, 0)]
        ok &= rows["property"].to_numpy(dtype=object) == self._prop[np.maximum(pos, 0)]
        if ok.any():
            mine = rows[ok]
            order = np.lexsort((mine["ms"].to_numpy(), mine["ds"].to_numpy()))
            mine = mine.iloc[order]
            trusted = self._trusted(mine)
            if store is not None and not trusted.all():
                self._rerun(mine[~trusted], store, found, evaluated)
            self._advance(mine[trusted], found, evaluated)
        return _episodes(found), pd.DataFrame(evaluated, columns=["rule", "sensor_uid"])

    def _trusted(self, mine: pd.DataFrame) -> np.ndarray:
        """Rows of datastreams whose state holds every earlier reading (see the module)."""
        ds = mine["ds"].to_numpy(dtype="int64")
        first = np.r_[True, ds[1:] != ds[:-1]]
        starts = np.flatnonzero(first)
        prior = mine["prior_ms"].to_numpy(dtype="int64")[starts]
        earliest = mine["ms"].to_numpy(dtype="int64")[starts]
        good = np.empty(starts.size, dtype=bool)
        for i, (d, p, e) in enumerate(zip(ds[starts].tolist(), prior, earliest, strict=True)):
            seen = self.last.get(d)
            if seen is None:
                good[i] = p == NO_TIME  # a datastream's first readings ever
            else:
                good[i] = p == seen[0] and e > seen[0]
        return np.repeat(good, np.diff(np.r_[starts, ds.size]))

    def _sensor(self, pos: Any) -> dict[str, Any]:
        return {name: levels[pos] for name, levels in self._levels.items()}

    def _advance(
        self, mine: pd.DataFrame, found: list[list[Any]], evaluated: list[tuple[str, str]]
    ) -> None:
        if mine.empty:
            return
        ds = mine["ds"].to_numpy(dtype="int64")
        t = mine["ms"].to_numpy(dtype="int64")
        v = mine["value"].to_numpy(dtype=float)
        pos = mine["pos"].to_numpy(dtype="int64")
        starts = np.flatnonzero(np.r_[True, ds[1:] != ds[:-1]])
        ends = np.r_[starts[1:], ds.size]
        before_t = np.r_[0, t[:-1]].astype("int64")
        before_v = np.r_[np.nan, v[:-1]]
        for s in starts.tolist():  # each datastream's first reading follows its last seen
            seen = self.last.get(int(ds[s]))
            before_t[s], before_v[s] = seen if seen is not None else (t[s], np.nan)
        minutes = (t - before_t) / 60_000.0
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = (v - before_v) / np.where(minutes > 0, minutes, np.nan)
        for number, rule in enumerate(self.rules):
            applies = self._applies[number][pos]
            if not applies.any():
                continue
            on, off = conditions(rule, v, rates, self._sensor(pos))
            any_on = np.add.reduceat(on.astype("int64"), starts) > 0
            need = int(rule.for_s * 1000)
            for g, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
                if not applies[a]:
                    continue
                key = (number, int(ds[a]))
                state = self.states.get(key)
                if state is None and not any_on[g]:
                    evaluated.append((rule.name, str(self._uids[pos[a]])))
                    continue  # never on: nothing to remember
                if state is None:
                    state = self.states[key] = AlarmState()
                was_on, was_start = state.active, state.start
                closed = advance(state, need, t[a:b], v[a:b], on[a:b], off[a:b])
                self._report(rule, int(pos[a]), closed, state, was_on, was_start, found)
                if not state.active:
                    evaluated.append((rule.name, str(self._uids[pos[a]])))
                    if state.since is None:
                        del self.states[key]
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            self.last[int(ds[a])] = (int(t[b - 1]), float(v[b - 1]))

    def _report(
        self,
        rule: Rule,
        pos: int,
        closed: list[tuple[int, int | None, float]],
        state: AlarmState,
        was_on: bool,
        was_start: int,
        found: list[list[Any]],
    ) -> None:
        uid, kind = str(self._uids[pos]), rule.type_for(str(self._types[pos]))
        for s, e, value in closed:
            found.append([rule.name, uid, kind, rule.grade, s, e, value])
        if state.active and (not was_on or state.start != was_start):  # began in this batch
            found.append([rule.name, uid, kind, rule.grade, state.start, None, state.value])

    def _rerun(
        self,
        mine: pd.DataFrame,
        store: LiveStoreProtocol,
        found: list[list[Any]],
        evaluated: list[tuple[str, str]],
    ) -> None:
        """Re-run datastreams from the store over the look-back window; rebuild their state."""
        first = mine.groupby("ds", sort=False).agg(ms=("ms", "min"), pos=("pos", "first"))
        lo = int(first["ms"].min()) - self.lookback_ms
        windows = store.windows(first.index.tolist(), lo, None)
        for ds, since, pos in zip(
            first.index.tolist(), first["ms"].tolist(), first["pos"].tolist(), strict=True
        ):
            t, v = windows.get(int(ds), (np.zeros(0, dtype="int64"), np.zeros(0)))
            keep = t >= int(since) - self.lookback_ms
            t, v = t[keep], v[keep]
            pos = int(pos)
            for number, rule in enumerate(self.rules):
                if not self._applies[number][pos]:
                    continue
                state = AlarmState()
                uid, kind = str(self._uids[pos]), rule.type_for(str(self._types[pos]))
                for s, e, value in episodes(rule, self._sensor(pos), t, v, state):
                    found.append([rule.name, uid, kind, rule.grade, s, e, value])
                evaluated.append((rule.name, uid))
                self.states[(number, int(ds))] = state
            if t.size:
                self.last[int(ds)] = (int(t[-1]), float(v[-1]))


def _episodes(found: list[list[Any]]) -> pd.DataFrame:
    if not found:
        return _NO_EPISODES
    frame = pd.DataFrame(found, columns=EPISODE_COLUMNS)
    frame["start"] = from_ms(frame["start"].to_numpy(dtype="int64"))
    frame["end"] = pd.to_datetime(frame["end"].astype("Int64").astype("float"), unit="ms", utc=True)
    return frame.sort_values(["start", "rule", "sensor_uid"]).reset_index(drop=True)
