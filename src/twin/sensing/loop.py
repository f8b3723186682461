"""The operations loop of one twin: ingest → rules → events (located, with their impact).

:class:`OperationsLoop` is what the CLI, the API and the MQTT ingester share:
it holds the live store, the twin's sensors, the rules, and (built on first
need) the locator and the impact engine.

Examples
--------
>>> loop = OperationsLoop.open("chengdu.twin.gpkg")  # doctest: +SKIP
>>> report, changed = loop.ingest(readings, source="file:day.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from twin.analyses import Twin
from twin.sensing.events import escalate, raise_events
from twin.sensing.ingest import IngestReport, ingest
from twin.sensing.locate import Locator
from twin.sensing.rules import EPISODE_COLUMNS, Rule, evaluate, load_rules, threshold_rules
from twin.sensing.running import RuleRunner
from twin.sensing.sensors import SensorRegistry
from twin.sensing.store import LiveStore, LiveStoreProtocol, from_ms
from twin.store.postgis import is_url

__all__ = ["OperationsLoop"]

#: Offline rule added to every loop: a sensor silent for 30 minutes.
OFFLINE_RULE = Rule(
    name="offline",
    condition={},
    sensor_types=("water_pressure", "gas_leak", "water_level", "smoke"),
    no_data_min=30.0,
    event_type="sensor_offline",
    grade="一般",
)


@dataclass
class OperationsLoop:
    """Store, sensors and rules of one twin; events raised as readings arrive."""

    twin_path: Path | str
    store: LiveStoreProtocol
    registry: SensorRegistry
    rules: list[Rule]
    with_impact: bool = True
    cluster_m: float = 500.0
    _locator: Locator | None = field(default=None, repr=False)
    _impact: Any = field(default=None, repr=False)
    _runner: RuleRunner | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        twin_path: str | os.PathLike[str],
        *,
        rules_file: str | os.PathLike[str] | None = None,
        with_impact: bool = True,
        offline_min: float | None = 30.0,
        store: LiveStoreProtocol | None = None,
    ) -> OperationsLoop:
        """The loop of the twin at ``twin_path``: threshold rules, the file's rules, offline."""
        city = Twin.open(twin_path)
        registry = SensorRegistry.from_twin(city)
        rules = threshold_rules(registry)
        if rules_file is not None:
            rules += load_rules(rules_file)
        if offline_min is not None:
            from dataclasses import replace

            rules.append(replace(OFFLINE_RULE, no_data_min=float(offline_min)))
        live = store if store is not None else LiveStore.beside(twin_path)
        name = str(twin_path) if is_url(twin_path) else Path(twin_path)  # a URL stays one
        return cls(name, live, registry, rules, with_impact)

    @property
    def locator(self) -> Locator:
        """The locator (built on first use)."""
        if self._locator is None:
            self._locator = Locator.from_twin(Twin.open(self.twin_path), self.registry)
        return self._locator

    def warm(self) -> None:
        """Build the locator and the impact engine now, not when the first alarm needs them."""
        _ = self.locator
        if self.with_impact and self._impact is None:
            from twin.sensing.impact import ImpactEngine

            self._impact = ImpactEngine(Twin.open(self.twin_path))

    def impact_of(
        self, event_type: str, sensor_uid: str, place: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The impact an event of ``event_type`` carries (None when there is nothing to run)."""
        if not self.with_impact:
            return None
        joined = self._cluster(event_type, place)
        if joined is not None:
            return joined
        if self._impact is None:
            from twin.sensing.impact import ImpactEngine

            self._impact = ImpactEngine(Twin.open(self.twin_path))
        answer: dict[str, Any] | None = self._impact.for_event(event_type, place)
        return answer

    def _cluster(self, event_type: str, place: dict[str, Any]) -> dict[str, Any] | None:
        """A pressure drop near an open one joins its incident: the same likeliest pipe.

        The open event of that type within ``cluster_m`` with the lowest reading
        (the first to cross, on ties) is the incident; its impact is reused.
        """
        if event_type != "pressure_drop" or place.get("x") is None:
            return None
        found = self.store.nearest_incident(
            event_type, float(place["x"]), float(place["y"]), self.cluster_m
        )
        if found is None:
            return None
        answer: dict[str, Any] = json.loads(found[1])
        answer["joins_event"] = found[0]
        return answer

    def lookback_s(self) -> float:
        """How far back the rules look for context (twice the longest ``for_s`` plus an hour)."""
        return 2 * max([r.for_s for r in self.rules] + [0.0]) + 3600.0

    @property
    def runner(self) -> RuleRunner:
        """The value rules kept running over the readings this loop stores."""
        if self._runner is None:
            self._runner = RuleRunner(self.rules, self.registry, self.lookback_s())
        return self._runner

    def ingest(
        self, readings: pd.DataFrame, *, source: str = "api", now: pd.Timestamp | None = None
    ) -> tuple[IngestReport, list[int]]:
        """Store a batch, then advance the rules over it and raise events; events changed."""
        report = self.store_batch(readings, source=source, now=now)
        return report, self.raise_for(report)

    def store_batch(
        self, readings: pd.DataFrame, *, source: str = "api", now: pd.Timestamp | None = None
    ) -> IngestReport:
        """Validate and store a batch (one transaction), keeping its rows for :meth:`raise_for`."""
        return ingest(self.store, self.registry, readings, source=source, now=now, keep_rows=True)

    def raise_for(self, report: IngestReport) -> list[int]:
        """Advance the rules over a stored batch (its ``rows``) and raise events; their ids."""
        if not report.stored or report.rows is None:
            return []
        found, evaluated = self.runner.step(report.rows, self.store)
        if found.empty and evaluated.empty:
            return []
        return raise_events(
            self.store,
            found,
            evaluated=evaluated,
            locate=self.locator.sensor,
            impact=self.impact_of,
        )

    def evaluate_sensors(
        self, sensors: Sequence[str], readings: pd.DataFrame | None = None
    ) -> list[int]:
        """Run the value rules on ``sensors`` over the recent window (read from the store)
        and raise events: the full re-evaluation :meth:`ingest` avoids."""
        if not sensors:
            return []
        clock = self.store.clock_ms()
        if clock is None:
            return []
        end = from_ms(clock)
        start = end - pd.Timedelta(seconds=self.lookback_s())
        if readings is not None and len(readings):
            times = pd.to_datetime(readings["time"], utc=True, errors="coerce", format="ISO8601")
            if times.notna().any():
                start = min(start, times.min() - pd.Timedelta(seconds=self.lookback_s()))
        value_rules = [r for r in self.rules if r.no_data_min is None]
        found = evaluate(
            value_rules, self.store, self.registry, start=start, end=end, sensors=sensors
        )
        evaluated = self._pairs(value_rules, sensors)
        return raise_events(
            self.store,
            found,
            evaluated=evaluated,
            locate=self.locator.sensor,
            impact=self.impact_of,
        )

    def _pairs(self, rules: Sequence[Rule], sensors: Sequence[str]) -> pd.DataFrame:
        rows = []
        for rule in rules:
            uids = rule.applies(self.registry)
            rows += [(rule.name, uid) for uid in uids[uids.isin(list(sensors))]]
        return pd.DataFrame(rows, columns=["rule", "sensor_uid"])

    def check_offline(self, at: pd.Timestamp | None = None) -> list[int]:
        """Raise (and clear) the no-data events at ``at`` (default: the data's clock)."""
        rules = [r for r in self.rules if r.no_data_min is not None]
        if not rules:
            return []
        found = evaluate(rules, self.store, self.registry, end=at)
        streams = set(self.store.datastreams()["sensor_uid"])
        evaluated = self._pairs(rules, sorted(streams))
        return raise_events(
            self.store,
            found,
            evaluated=evaluated,
            locate=self.locator.sensor,
            impact=self.impact_of,
        )

    def escalate(self, at: pd.Timestamp | None = None) -> list[int]:
        """Escalate unacknowledged events past their deadline."""
        return escalate(self.store, now=at)

    def check(
        self, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Which rules would fire on ``[start, end]`` (nothing is written)."""
        if not self.rules:
            return pd.DataFrame(columns=EPISODE_COLUMNS)
        return evaluate(self.rules, self.store, self.registry, start=start, end=end)
