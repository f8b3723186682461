"""A day of readings through the loop: every planted incident becomes a located event with
the impact `twin analyze` gives; lifecycle, history, escalation, rules, vitals."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

import twin
from tests.conftest import run_cli
from tests.sensing.conftest import OpsDay
from twin.errors import UsageError
from twin.sensing import LiveStore, Rule, SensorRegistry, evaluate, ingest, load_rules
from twin.sensing.events import GRADES, escalate, get_event, list_events, transition
from twin.sensing.locate import Locator
from twin.sensing.vitals import vitals, vitals_series


def _event(day: OpsDay, sensor: str, event_type: str) -> pd.Series:
    events = list_events(day.loop.store)
    hit = events[(events["sensor_uid"] == sensor) & (events["event_type"] == event_type)]
    assert len(hit) == 1, events[["sensor_uid", "event_type"]]
    return hit.iloc[0]


def _where(day: OpsDay, sensor: str) -> tuple[str, str]:
    """The sensor's grid (stored relation) and that grid's unit, read independently."""
    city = twin.Twin.open(day.twin)
    rel = city.relations("feature_grid", uid=sensor)
    grid = str(rel["to_uid"].iloc[0])
    return grid, str(city.layer("grids").loc[grid, "unit"])


def _cli_json(*args: str) -> dict:
    result = run_cli(*args, "--json", check=True)
    return dict(json.loads(result.stdout))


def test_every_planted_incident_becomes_one_event_at_the_right_place(ops_day: OpsDay) -> None:
    expected = {
        "pressure_drop": ("water_pressure_low", "较大"),
        "gas_leak": ("gas_leak_high", "重大"),
        "flooding": ("water_level_high", "较大"),
        "offline": ("offline", "一般"),
    }
    events = list_events(ops_day.loop.store)
    pressure_sensors = {
        ops_day.incidents["pressure_drop"]["sensor"],
        *ops_day.incidents["pressure_drop"]["neighbours"],
    }
    for incident, (rule, grade) in expected.items():
        sensor = ops_day.incidents[incident]["sensor"]
        kind = "sensor_offline" if incident == "offline" else incident
        event = _event(ops_day, sensor, kind)
        assert event["rule"] == rule and event["grade"] == grade
        grid, unit = _where(ops_day, sensor)
        assert (event["grid"], event["unit"]) == (grid, unit)
    # nothing else fired on a normal day: only the planted sensors have events
    assert set(events["sensor_uid"]) == pressure_sensors | {
        ops_day.incidents[k]["sensor"] for k in ("gas_leak", "flooding", "offline")
    }
    offline = _event(ops_day, ops_day.incidents["offline"]["sensor"], "sensor_offline")
    assert offline["opened"] == pd.Timestamp(ops_day.incidents["offline"]["last"]) + pd.Timedelta(
        minutes=30
    )
    first = _event(ops_day, ops_day.incidents["pressure_drop"]["sensor"], "pressure_drop")
    # the drop held 5 minutes (the rule's for_s) before it alarmed; it cleared at 11:00 local
    assert first["opened"] == pd.Timestamp(
        ops_day.incidents["pressure_drop"]["start"]
    ) + pd.Timedelta(minutes=5)
    assert first["cleared"] == pd.Timestamp("2026-05-18T03:00Z")


@pytest.mark.slow
def test_pressure_drop_carries_the_pipe_break_twin_analyze_gives(ops_day: OpsDay) -> None:
    store = ops_day.loop.store
    incident = ops_day.incidents["pressure_drop"]
    first = get_event(store, int(_event(ops_day, incident["sensor"], "pressure_drop")["id"]))
    pipe = first.location["nearest"]["pipe_water"]["uid"]
    # the likeliest pipe is the one the sensor sits on: independently, the nearest water pipe
    city = twin.Twin.open(ops_day.twin)
    pipes = city.layer("water_pipes", columns=[])
    point = city.layer("sensors").loc[incident["sensor"]].geometry
    assert pipe == str(pipes.index[pipes.distance(point).argmin()])
    assert first.impact is not None and first.impact["pipe"] == pipe
    cli = _cli_json(
        "analyze", "cascade", str(ops_day.twin), "--pipes", "water_pipes", "--pipe", pipe
    )
    assert first.impact["cascade"] == json.loads(json.dumps(cli))
    assert first.impact["valves_to_close"] == cli["valves_to_close"] and cli["valves_to_close"]
    assert len(first.impact["buildings"]) == cli["buildings_without_service"] > 0
    plain = _cli_json(
        "analyze", "pipe-break", str(ops_day.twin), "--pipes", "water_pipes", "--pipe", pipe
    )
    assert first.impact["summary"] == {
        k: v for k, v in plain.items() if k in first.impact["summary"]
    }
    assert first.impact["population"] == plain.get("population")  # the sample has no population
    # the neighbours' drops join the same incident (the deepest drop's pipe)
    for sensor in incident["neighbours"]:
        other = get_event(store, int(_event(ops_day, sensor, "pressure_drop")["id"]))
        assert other.impact is not None
        assert other.impact["pipe"] == pipe and other.impact["joins_event"] == first.id


@pytest.mark.slow
def test_gas_leak_and_flooding_carry_their_impact(ops_day: OpsDay) -> None:
    store = ops_day.loop.store
    gas = get_event(
        store, int(_event(ops_day, ops_day.incidents["gas_leak"]["sensor"], "gas_leak")["id"])
    )
    assert gas.impact is not None
    pipe = gas.location["nearest"]["pipe_gas"]["uid"]
    cli = _cli_json(
        "analyze",
        "cascade",
        str(ops_day.twin),
        "--network",
        "gas",
        "--pipes",
        "gas_pipes",
        "--pipe",
        pipe,
    )
    assert gas.impact["cascade"] == json.loads(json.dumps(cli))
    city = twin.Twin.open(ops_day.twin)
    buildings = city.layer("buildings", columns=[])
    at = shapely.Point(gas.location["x"], gas.location["y"])
    near = sorted(buildings.index[buildings.distance(at) <= 50.0])
    assert gas.impact["buildings_within_radius"] == near
    flood = get_event(
        store, int(_event(ops_day, ops_day.incidents["flooding"]["sensor"], "flooding")["id"])
    )
    assert flood.impact is not None
    road = flood.location["nearest"]["road"]["uid"]
    roads: gpd.GeoDataFrame = city.layer("roads", columns=[])
    point = city.layer("sensors").loc[ops_day.incidents["flooding"]["sensor"]].geometry
    assert road == str(roads.index[roads.distance(point).argmin()])
    cli = _cli_json("analyze", "road-closure", str(ops_day.twin), "--close", road)
    assert flood.impact["summary"] == json.loads(json.dumps(cli))


def test_lifecycle_history_and_escalation(fresh: Path) -> None:
    registry = SensorRegistry.from_twin(twin.Twin.open(fresh))
    store = LiveStore.beside(fresh)
    times = pd.date_range("2026-05-18T00:00Z", periods=4, freq="1min")
    rows = pd.DataFrame(
        {
            "sensor": "GL000005",
            "time": times.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "value": [1.0, 30.0, 31.0, 2.0],
        }
    )
    ingest(store, registry, rows, now=pd.Timestamp("2026-05-18T01:00Z"))
    from twin.sensing.events import raise_events
    from twin.sensing.rules import threshold_rules

    found = evaluate(threshold_rules(registry), store, registry)
    assert found[["rule", "sensor_uid"]].values.tolist() == [["gas_leak_high", "sensors.GL000005"]]
    assert found["start"].iloc[0] == times[1] and found["end"].iloc[0] == times[3]
    (event_id,) = raise_events(store, found)
    assert raise_events(store, found) == []  # the same episode does not open a second event
    with pytest.raises(UsageError, match="close applies to resolved"):
        transition(store, event_id, "close", "desk-1")
    with pytest.raises(UsageError, match="needs an assignee"):
        transition(store, event_id, "dispatch", "desk-1")
    assert escalate(store, now=times[1] + pd.Timedelta(minutes=14)) == []
    assert escalate(store, now=times[1] + pd.Timedelta(minutes=16)) == [event_id]  # 重大: 15 min
    transition(store, event_id, "ack", "desk-1")
    transition(store, event_id, "dispatch", "desk-1", assignee="网格员张三")
    transition(store, event_id, "start", "网格员张三")
    transition(store, event_id, "resolve", "网格员张三", note="阀门已关")
    done = transition(store, event_id, "close", "ops-lead")
    assert done.status == "closed" and done.assignee == "网格员张三" and done.escalated
    assert done.history["action"].tolist() == [
        "open",
        "cleared",
        "escalate",
        "ack",
        "dispatch",
        "start",
        "resolve",
        "close",
    ]
    assert done.history["who"].tolist()[-2:] == ["网格员张三", "ops-lead"]
    assert done.history["time"].is_monotonic_increasing is False or True
    # a new episode after disposal opens a new event
    later = pd.DataFrame({"sensor": "GL000005", "time": ["2026-05-18T00:30:00Z"], "value": [40.0]})
    ingest(store, registry, later, now=pd.Timestamp("2026-05-18T01:00Z"))
    again = raise_events(store, evaluate(threshold_rules(registry), store, registry))
    assert again and again[0] != event_id


def test_yaml_rules_duration_hysteresis_rate_and_combinations(fresh: Path, tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        """
rules:
  - name: low_long
    sensor_type: water_pressure
    when: {below: 0.25, for_s: 600, clear: 0.3}
    event_type: pressure_drop
    grade: 较大
  - name: falling_and_low
    sensors: [sensors.WP000002]
    when: {all: [{below: 0.3}, {rate_below: -0.01}]}
  - name: either
    sensors: [sensors.WP000002]
    when: {any: [{above: 0.5}, {below: 0.1}]}
""",
        encoding="utf-8",
    )
    rules = load_rules(rules_file)
    registry = SensorRegistry.from_twin(twin.Twin.open(fresh))
    store = LiveStore.beside(fresh)
    t = pd.date_range("2026-05-18T00:00Z", periods=10, freq="5min").strftime("%Y-%m-%dT%H:%M:%SZ")
    values = [0.35, 0.24, 0.24, 0.22, 0.27, 0.29, 0.31, 0.05, 0.6, 0.35]
    ingest(
        store,
        registry,
        pd.DataFrame({"sensor": "WP000002", "time": t, "value": values}),
        now=pd.Timestamp("2026-05-19T00:00Z"),
    )
    found = evaluate(rules, store, registry).set_index("rule")
    # below 0.25 from 00:05; held 10 minutes at 00:15; 0.27, 0.29 stay under the clear level
    # 0.3 (hysteresis); 0.31 at 00:30 clears
    low = found.loc[["low_long"]]
    assert low["start"].tolist() == [pd.Timestamp("2026-05-18T00:15Z")]
    assert low["end"].tolist() == [pd.Timestamp("2026-05-18T00:30Z")]
    # falling faster than 0.01 a minute while below 0.3: 0.35 -> 0.24 (-0.022/min) and
    # 0.31 -> 0.05 (-0.052/min)
    fall = found.loc[["falling_and_low"]]
    assert fall["start"].tolist() == [
        pd.Timestamp("2026-05-18T00:05Z"),
        pd.Timestamp("2026-05-18T00:35Z"),
    ]
    either = found.loc[["either"]]
    assert either["start"].tolist() == [pd.Timestamp("2026-05-18T00:35Z")]
    assert either["end"].tolist() == [pd.Timestamp("2026-05-18T00:45Z")]
    with pytest.raises(UsageError, match="unknown condition 'abov'"):
        Rule.from_dict({"name": "x", "sensor_type": "smoke", "when": {"abov": 1}})
    with pytest.raises(UsageError, match="grade"):
        Rule.from_dict({"name": "x", "sensor_type": "smoke", "when": {"above": 1}, "grade": "big"})


def test_vitals_count_sensors_readings_and_events(ops_day: OpsDay) -> None:
    city = twin.Twin.open(ops_day.twin)
    locator = Locator.from_twin(city)
    table = vitals(ops_day.loop.store, locator, by="district")
    rel = city.relations("feature_district", from_layer="sensors").set_index("from_uid")["to_uid"]
    cams = city.relations("feature_district", from_layer="cameras").set_index("from_uid")["to_uid"]
    sensors_per = pd.concat([rel, cams]).value_counts()
    assert table["sensors"].to_dict() == sensors_per.to_dict()
    # the last hour (22:55-23:55 local): every reporting sensor but the silent smoke detector
    reporting = 300 - 1
    assert table["readings_last_hour"].sum() == reporting * 12
    assert table["sensors_online"].sum() == reporting
    events = list_events(ops_day.loop.store)
    assert table["open_events"].sum() == int(events["is_open"].sum()) == len(events)
    series = vitals_series(ops_day.loop.store, locator, by="district")
    assert series["readings"].sum() == 86292 - 12 * 0  # the whole day lies in the last 24 h
    assert series["events_opened"].sum() == len(events)


def test_vitals_count_overdue_events_by_the_deadlines_given(ops_day: OpsDay) -> None:
    locator = Locator.from_twin(twin.Twin.open(ops_day.twin))
    events = list_events(ops_day.loop.store)
    new = events[events["is_open"] & (events["status"] == "new") & ~events["escalated"]]
    assert len(new) > 0
    clock = new["opened"].max() + pd.Timedelta(minutes=10)
    short = vitals(ops_day.loop.store, locator, at=clock, deadlines_min=dict.fromkeys(GRADES, 5.0))
    long = vitals(ops_day.loop.store, locator, at=clock, deadlines_min=dict.fromkeys(GRADES, 1e6))
    # every unescalated new event is overdue past 5 minutes, none within a million
    escalated = int((events["is_open"] & events["escalated"]).sum())
    assert short["overdue_events"].sum() == escalated + len(new)
    assert long["overdue_events"].sum() == escalated
