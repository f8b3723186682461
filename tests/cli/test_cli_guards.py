"""Bad twin files and bad options give one-line errors and exit codes 2 / 3 (issue 12).

Every command that opens a twin is run against every kind of bad file; the
commands run in-process (the real ``main`` entry point) to keep this quick,
and ``serve`` runs as a real process.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from pathlib import Path

import pytest

import twin
from tests.conftest import GK105, buildings_frame, run_cli
from twin.cli import main

COMMANDS: list[list[str]] = [
    ["info", "{t}"],
    ["history", "{t}"],
    ["export", "{t}", "buildings", "{d}/out.gpkg"],
    ["import", "{t}", "{d}/src.geojson", "-l", "b", "-k", "building"],
    ["build", "{t}"],
    ["grid", "{t}"],
    ["indicators", "{t}", "--by", "district"],
    ["check", "{t}"],
    ["network", "check", "{t}", "--network", "water"],
    ["network", "trace", "{t}", "--pipe", "p.1"],
    ["analyze", "pipe-break", "{t}", "--pipe", "p.1"],
    ["analyze", "criticality", "{t}"],
    ["analyze", "route", "{t}", "--from", "1,2", "--to", "3,4"],
    ["analyze", "service-area", "{t}"],
    ["analyze", "road-closure", "{t}", "--close", "r.1"],
    ["analyze", "cascade", "{t}", "--pipe", "p.1"],
]


def _good_twin(path: Path) -> Path:
    city = twin.Twin.create(path, crs=GK105)
    src = path.with_name("seed.gpkg")
    buildings_frame(40).to_file(src)
    city.import_layer(src, layer="buildings", kind="building", id="建筑编码")
    return path


def _bad_file(kind: str, folder: Path) -> Path:
    path = folder / "bad.gpkg"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a database\n" * 20)
    elif kind == "random":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind.startswith("truncated-"):
        raw = _good_twin(folder / "good.gpkg").read_bytes()
        share = int(kind.split("-")[1])
        path.write_bytes(raw[: max(100, len(raw) * share // 100)])
    elif kind == "header-only":
        path.write_bytes(_good_twin(folder / "good.gpkg").read_bytes()[:100])
    elif kind == "plain-geopackage":
        buildings_frame(3).to_file(path, driver="GPKG")
    elif kind == "plain-sqlite":
        with sqlite3.connect(path) as con:
            con.execute("CREATE TABLE t (a)")
        con.close()
    return path


BAD_FILES = [
    "empty",
    "text",
    "random",
    "truncated-10",
    "truncated-50",
    "truncated-95",
    "header-only",
    "plain-geopackage",
    "plain-sqlite",
]


def run_main(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """Run the ``twin`` entry point in this process: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["twin", *args])
    # The entry point configures the root logger; put it back for the tests that follow.
    monkeypatch.setattr(logging.root, "handlers", list(logging.root.handlers))
    monkeypatch.setattr(logging.root, "level", logging.root.level)
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = {}
    for kind in BAD_FILES:
        folder = tmp_path_factory.mktemp(kind)
        files[kind] = _bad_file(kind, folder)
        buildings_frame(2).to_crs(4490).to_file(folder / "src.geojson")
    return files


@pytest.mark.parametrize("bad", BAD_FILES)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c[:2]).replace("-{t}", ""))
def test_every_command_rejects_a_bad_twin_file_with_exit_3(
    bad_files: dict[str, Path],
    bad: str,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = bad_files[bad]
    before = path.read_bytes()
    args = [a.format(t=path, d=path.parent) for a in command]
    code, _, err = run_main(args, monkeypatch, capsys)
    assert code == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "not a twin" in err or "truncated" in err or "damaged" in err
    assert path.read_bytes() == before


@pytest.mark.parametrize("bad", ["text", "truncated-50", "plain-geopackage"])
def test_serve_fails_before_it_says_serving(bad_files: dict[str, Path], bad: str) -> None:
    result = run_cli("serve", str(bad_files[bad]), "--port", "1")
    assert result.returncode == 3
    assert "serving" not in result.stderr and "error:" in result.stderr


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--classification", "secret"], 2, "not a level"),
        (["--encoding", "no-such-codec"], 2, "not a known text encoding"),
        (["--where", "a ==== b"], 2, "--where"),
        (["--max-removed", "2"], 2, "--max-removed"),
    ],
)
def test_bad_import_options_exit_2(
    tmp_path: Path,
    extra: list[str],
    code: int,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _good_twin(tmp_path / "city.gpkg")
    src = tmp_path / "b.geojson"
    buildings_frame(3).to_crs(4490).to_file(src)
    args = ["import", str(path), str(src), "-l", "b", "-k", "building", *extra]
    got, _, err = run_main(args, monkeypatch, capsys)
    assert got == code, err
    assert message in err


@pytest.mark.parametrize("case", ["empty", "all-rejected", "removes-most"])
def test_bad_deliveries_exit_3_and_change_nothing(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _good_twin(tmp_path / "city.gpkg")
    before = path.read_bytes()
    src = tmp_path / "seed.gpkg"  # same name as the first delivery
    if case == "empty":
        buildings_frame(1).iloc[:0].to_file(src)
    elif case == "all-rejected":
        frame = buildings_frame(5)
        frame["建筑编码"] = None
        frame.to_file(src)
    else:
        buildings_frame(10).to_file(src)
    args = ["import", str(path), str(src), "-l", "buildings", "-k", "building"]
    code, out, err = run_main([*args, "--id", "建筑编码", "--json"], monkeypatch, capsys)
    assert code == 3, err
    assert path.read_bytes() == before
    if case == "removes-most":
        assert "--allow-removals" in err
        code, out, err = run_main(
            [*args, "--id", "建筑编码", "--json", "--allow-removals"], monkeypatch, capsys
        )
        assert code == 0, err
        assert json.loads(out)["removed"] == 30
