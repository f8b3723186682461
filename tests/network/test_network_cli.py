"""``twin network check`` and ``twin analyze pipe-break`` through typer's test runner.

The commands are registered on a fresh app here, as ``twin.cli`` registers them.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import twin
from tests.network.small_network import CRS, pipes_frame, uid
from twin.cli import analyze, network_cmd
from twin.errors import UsageError


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """twin"""

    network_cmd.register(app)
    analyze.register(app)
    return app


def test_network_check_json(app: typer.Typer, small: twin.Twin) -> None:
    result = CliRunner().invoke(app, ["network", "check", str(small.path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # warnings go to stderr
    assert data["issues"]["valve_off_network"] == 1
    assert data["pipes"] == 7
    text = CliRunner().invoke(app, ["network", "check", str(small.path)])
    assert "valve_off_network" in text.output


def test_pipe_break_json_and_out(app: typer.Typer, small: twin.Twin, tmp_path: Path) -> None:
    args = ["analyze", "pipe-break", str(small.path), "--pipe", uid("pipes", "P3")]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # warnings go to stderr
    assert data["valves_to_close"] == 2 and data["buildings"] == 1
    assert {v["uid"] for v in data["valves"]} == {uid("valves", "V3"), uid("valves", "V4")}
    failed = CliRunner().invoke(app, [*args, "--failed-valve", uid("valves", "V4")])
    assert failed.exit_code == 0, failed.output
    assert "extra valve" in failed.output
    target = tmp_path / "break.gpkg"
    written = CliRunner().invoke(app, [*args, "--out", str(target)])
    assert written.exit_code == 0, written.output
    assert len(gpd.read_file(target, layer="cut_off_pipes")) == 1
    assert gpd.read_file(target, layer="buildings")["reason"].tolist() == ["cut_off"]


def test_pipe_break_unknown_pipe(app: typer.Typer, small: twin.Twin) -> None:
    result = CliRunner().invoke(app, ["analyze", "pipe-break", str(small.path), "--pipe", "NOPE"])
    assert isinstance(result.exception, UsageError)
    assert "NOPE" in str(result.exception)


def test_criticality_command(app: typer.Typer, small: twin.Twin, tmp_path: Path) -> None:
    target = tmp_path / "crit.gpkg"
    result = CliRunner().invoke(
        app, ["analyze", "criticality", str(small.path), "--out", str(target), "--json"]
    )
    assert result.exit_code == 0, result.output
    ranking = gpd.read_file(target)
    assert sorted(ranking["rank"]) == [1, 2, 3, 4]
    assert json.loads(result.stdout)[0]["total_pipes"] == 7  # the note goes to stderr


def test_network_check_near_miss(app: typer.Typer, tmp_path: Path) -> None:
    city = twin.Twin.create(tmp_path / "near.gpkg", crs=CRS)
    frame = pd.concat([pipes_frame(), pipes_frame({"P8": [(250, 1.5), (250, 60)]})])
    frame.to_file(tmp_path / "pipes.gpkg", layer="pipes")
    city.import_layer(tmp_path / "pipes.gpkg", layer="pipes", kind="pipe", id="pipe_id")
    args = ["network", "check", str(city.path), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # warnings go to stderr
    assert data["issues"]["near_miss"] == 1
    [near] = [d for d in data["details"] if d["issue"] == "near_miss"]
    assert (near["uid"], near["other_uid"]) == (uid("pipes", "P8"), uid("pipes", "P3"))
    assert near["distance_m"] == pytest.approx(1.5)
    tighter = CliRunner().invoke(app, [*args, "--near-miss", "1"])
    assert json.loads(tighter.stdout)["issues"]["near_miss"] == 0
    bad = CliRunner().invoke(app, [*args, "--near-miss", "-1"])
    assert isinstance(bad.exception, UsageError)
