"""The rules kept running batch by batch give the episodes a full evaluation of the stored
readings gives (in-memory state, re-runs after another writer's readings)."""

from __future__ import annotations

import itertools
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin.sensing import LiveStore, Rule, SensorRegistry, evaluate, ingest, threshold_rules
from twin.sensing.running import RuleRunner

START = pd.Timestamp("2026-05-18T00:00:00Z")
NOW = START + pd.Timedelta(days=2)


def _registry(n: int) -> SensorRegistry:
    kinds = ["water_pressure", "gas_leak"] * (n // 2)
    frame = gpd.GeoDataFrame(
        {
            "layer": "sensors",
            "classification": "internal",
            "sensor_type": kinds,
            "name": None,
            "unit": ["MPa" if k == "water_pressure" else "%LEL" for k in kinds],
            "threshold_low": [0.2 if k == "water_pressure" else np.nan for k in kinds],
            "threshold_high": [0.6 if k == "water_pressure" else 20.0 for k in kinds],
            "property": ["pressure" if k == "water_pressure" else "gas" for k in kinds],
        },
        geometry=shapely.points(np.zeros((n, 2))),
        index=pd.Index([f"sensors.S{i:03d}" for i in range(n)], name="uid"),
        crs="EPSG:4544",
    )
    return SensorRegistry(frame)


def _readings(registry: SensorRegistry, steps: int, seed: int) -> pd.DataFrame:
    """A reading a minute per sensor: random walks that cross thresholds now and then."""
    rng = np.random.default_rng(seed)
    frames = []
    for uid, kind in registry.frame["sensor_type"].items():
        base = 0.4 if kind == "water_pressure" else 10.0
        step = 0.08 if kind == "water_pressure" else 6.0
        walk = base + np.cumsum(rng.normal(0, step, steps)) * 0.5
        walk = np.clip(walk, 0, None)
        frames.append(
            pd.DataFrame(
                {
                    "sensor": uid,
                    "time": START + pd.to_timedelta(np.arange(steps), unit="min"),
                    "value": walk,
                }
            )
        )
    return pd.concat(frames).sort_values("time", kind="stable").reset_index(drop=True)


def _key(frame: pd.DataFrame) -> dict[tuple[str, str, pd.Timestamp], object]:
    return {
        (r.rule, r.sensor_uid, r.start): (None if pd.isna(r.end) else r.end, r.value)
        for r in frame.itertuples()
    }


def test_running_rules_match_a_full_evaluation(tmp_path: Path) -> None:
    registry = _registry(12)
    rules = [
        *threshold_rules(registry),
        Rule.from_dict(
            {
                "name": "falling_fast",
                "sensor_type": "water_pressure",
                "when": {"all": [{"below": 0.45}, {"rate_below": -0.05}]},
            }
        ),
        Rule.from_dict(
            {
                "name": "gas_either",
                "sensor_type": "gas_leak",
                "when": {"any": [{"above": 15}, {"rate_above": 8}], "for_s": 120},
            }
        ),
    ]
    readings = _readings(registry, 240, seed=5)
    store = LiveStore(tmp_path / "a.live.sqlite")
    other = LiveStore(tmp_path / "a.live.sqlite")  # another process writing the same store
    runner = RuleRunner(rules, registry, lookback_s=7 * 86400)
    rng = np.random.default_rng(1)
    cuts = np.sort(rng.choice(np.arange(1, len(readings) - 12), 60, replace=False))
    found: dict[tuple[str, str, pd.Timestamp], object] = {}
    reran = 0
    bounds = [0, *cuts.tolist(), len(readings) - 12]  # the last step (12 sensors) comes last
    for lo, hi in itertools.pairwise(bounds):
        part = readings.iloc[lo:hi]
        foreign = part.sample(frac=0.05, random_state=int(rng.integers(1000)))
        ingest(other, registry, foreign, source="other", now=NOW)
        report = ingest(store, registry, part, source="test", now=NOW, keep_rows=True)
        assert report.rows is not None
        episodes, _ = runner.step(report.rows, store)
        found.update(_key(episodes))
        reran += len(foreign)
    report = ingest(store, registry, readings.iloc[-12:], now=NOW, keep_rows=True)
    assert report.rows is not None and report.stored == 12
    found.update(_key(runner.step(report.rows, store)[0]))
    assert store.count_observations() == len(readings)  # every reading stored once
    full = evaluate([r for r in rules if r.no_data_min is None], store, registry)
    expected = _key(full)
    assert reran > 0 and len(expected) > 20  # alarms of every kind came and went
    assert set(full["rule"]) == {r.name for r in rules}
    assert found == expected


def test_a_late_reading_reruns_its_datastream_from_the_store(tmp_path: Path) -> None:
    registry = _registry(2)
    rule = Rule("hot", {"above": 20.0}, sensor_types=("gas_leak",), clear=10.0)
    store = LiveStore(tmp_path / "b.live.sqlite")
    runner = RuleRunner([rule], registry, lookback_s=3600)
    minutes = START + pd.to_timedelta([0, 1, 3], unit="min")
    first = pd.DataFrame({"sensor": "S001", "time": minutes, "value": [1.0, 30.0, 5.0]})
    report = ingest(store, registry, first, now=NOW, keep_rows=True)
    assert report.rows is not None
    episodes, _ = runner.step(report.rows, store)
    assert [(e.start, e.end) for e in episodes.itertuples()] == [(minutes[1], minutes[2])]
    late = pd.DataFrame(  # minute 2 arrives after minute 3: still hot, 25
        {"sensor": ["S001"], "time": [START + pd.Timedelta(minutes=2)], "value": [25.0]}
    )
    report = ingest(store, registry, late, now=NOW, keep_rows=True)
    assert report.rows is not None
    episodes, evaluated = runner.step(report.rows, store)
    assert [(e.start, e.end, e.value) for e in episodes.itertuples()] == [
        (minutes[1], minutes[2], 30.0)
    ]
    assert evaluated.values.tolist() == [["hot", "sensors.S001"]]
