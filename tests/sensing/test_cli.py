"""The sensing commands as a user runs them: observe import/latest/sample, rules check,
events list/show/ack/dispatch/resolve/close, vitals; exit codes on bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import run_cli
from twin.sensing import LiveStore


def _json(*args: str) -> Any:
    result = run_cli(*args, "--json", check=True)
    return json.loads(result.stdout)


@pytest.mark.slow
def test_observe_import_maps_columns_and_the_operator_disposes_of_the_event(
    fresh: Path, day: tuple[pd.DataFrame, dict[str, Any]], tmp_path: Path
) -> None:
    frame, incidents = day
    gas = incidents["gas_leak"]["sensor"].split(".", 1)[1]
    part = frame[(frame["sensor"] == gas) & (frame["time"] < "2026-05-18T07:00:00Z")]
    delivery = part.rename(columns={"sensor": "设备编号", "time": "采集时间", "value": "读数"})
    delivery = delivery.drop(columns="property")
    path = tmp_path / "readings.csv"
    delivery.to_csv(path, index=False)
    missing = run_cli("observe", "import", str(fresh), str(path))
    assert missing.returncode == 3 and "--column sensor=" in missing.stderr
    args = [
        "observe",
        "import",
        str(fresh),
        str(path),
        "--column",
        "sensor=设备编号",
        "--column",
        "time=采集时间",
        "--column",
        "value=读数",
    ]
    report = _json(*args)
    assert report["stored"] == len(part) and report["rejected"] == {}
    assert report["events_changed"] == 1
    again = _json(*args)
    assert again["stored"] == 0 and again["rejected"] == {"duplicate": len(part)}
    latest = _json("observe", "latest", str(fresh))
    assert [(r["sensor_uid"], r["property"]) for r in latest] == [(f"sensors.{gas}", "gas")]
    assert latest[0]["value"] == part["value"].iloc[-1]
    found = _json("rules", "check", str(fresh), "--start", "2026-05-18T00:00:00Z")
    assert [(f["rule"], f["start"]) for f in found] == [
        ("gas_leak_high", "2026-05-18 05:20:00+00:00")
    ]
    (event,) = _json("events", "list", str(fresh), "--open")
    assert event["event_type"] == "gas_leak" and event["grade"] == "重大"
    eid = str(event["id"])
    wrong = run_cli("events", "close", str(fresh), eid, "--who", "lead")
    assert wrong.returncode == 2 and "close applies to resolved" in wrong.stderr
    assert _json("events", "ack", str(fresh), eid, "--who", "desk-1")["status"] == "acknowledged"
    sent = _json("events", "dispatch", str(fresh), eid, "--who", "desk-1", "--to", "燃气抢修队")
    assert sent["assignee"] == "燃气抢修队"
    _json("events", "resolve", str(fresh), eid, "--who", "燃气抢修队", "--note", "已处置")
    shown = _json("events", "close", str(fresh), eid, "--who", "lead")
    assert [h["action"] for h in shown["history"]] == [
        "open",
        "cleared",
        "ack",
        "dispatch",
        "resolve",
        "close",
    ]
    assert shown["impact"]["analysis"] == "pipe_break" and shown["impact"]["network"] == "gas"
    assert _json("events", "list", str(fresh), "--open") == []
    table = run_cli("events", "show", str(fresh), eid, check=True).stdout
    assert "gas_leak" in table and "燃气抢修队" in table
    signs = _json("vitals", str(fresh), "--by", "grid")
    grid = event["grid"]
    row = next(r for r in signs if r["grid"] == grid)
    assert row["open_events"] == 0 and row["mean_dispose_min"] is not None


@pytest.mark.slow
def test_bad_input_gives_one_line_and_the_right_exit_code(fresh: Path, tmp_path: Path) -> None:
    gone = run_cli("observe", "import", str(fresh), str(tmp_path / "nope.csv"))
    assert gone.returncode == 3 and "does not exist" in gone.stderr
    odd = tmp_path / "r.json"
    odd.write_text("{}")
    wrong = run_cli("observe", "import", str(fresh), str(odd))
    assert wrong.returncode == 3 and ".csv or .parquet" in wrong.stderr
    bad_map = run_cli("observe", "import", str(fresh), str(odd), "--column", "sensor")
    assert bad_map.returncode == 2 and "ours=theirs" in bad_map.stderr
    for name, text in (("header.csv", "sensor,time,property,value\n"), ("blank.csv", "")):
        (tmp_path / name).write_text(text, encoding="utf-8")
        empty = run_cli("observe", "import", str(fresh), str(tmp_path / name))
        assert empty.returncode == 3, (name, empty.stderr)
        assert "holds no readings" in empty.stderr or "cannot read" in empty.stderr
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: x\n    sensor_type: smoke\n    when: {abov: 1}\n")
    bad_rule = run_cli("rules", "check", str(fresh), "--rules", str(rules))
    assert bad_rule.returncode == 2 and "unknown condition 'abov'" in bad_rule.stderr
    missing = run_cli("events", "show", str(fresh), "99")
    assert missing.returncode == 2 and "no event 99" in missing.stderr
    assert LiveStore.beside(fresh).count_observations() == 0


def test_observe_sample_writes_the_day(fresh: Path, tmp_path: Path) -> None:
    out = tmp_path / "day.parquet"
    made = _json("observe", "sample", str(fresh), str(out))
    frame = pd.read_parquet(out)
    assert made["readings"] == len(frame) == 300 * 288 - 108  # the silent smoke detector
    assert sorted(made["incidents"]) == ["flooding", "gas_leak", "offline", "pressure_drop"]


@pytest.mark.slow
def test_citizen_reports_from_a_csv_by_place_name(fresh: Path, tmp_path: Path) -> None:
    import twin

    city = twin.Twin.open(fresh)
    named = city.layer("facilities", columns=["name"]).dropna(subset=["name"]).iloc[[0]]
    name, uid = str(named["name"].iloc[0]), str(named.index[0])
    path = tmp_path / "reports.csv"
    pd.DataFrame(
        {
            "ticket": ["T-1", "T-2"],
            "type": ["noise", "road_blocked"],
            "time": ["2026-05-18T01:00:00Z", "2026-05-18T02:00:00Z"],
            "place": [name, "roads." + city.layer("roads", columns=[]).index[0].split(".", 1)[1]],
        }
    ).to_csv(path, index=False)
    made = _json("events", "report", str(fresh), str(path))
    assert len(made["events"]) == 2
    first = _json("events", "show", str(fresh), str(made["events"][0]))
    grid = city.relations("feature_grid", uid=uid)["to_uid"].iloc[0]
    assert first["location"]["grid"] == grid and first["sensor_uid"] == "report:T-1"
    second = _json("events", "show", str(fresh), str(made["events"][1]))
    assert second["impact"]["analysis"] == "road_closure"
    unknown = tmp_path / "bad.csv"
    unknown.write_text("ticket,type,time,place\nT-3,noise,2026-05-18T01:00:00Z,无此地\n")
    bad = run_cli("events", "report", str(fresh), str(unknown))
    assert bad.returncode == 2 and "no building, facility or road is named '无此地'" in bad.stderr
