"""The ``twin`` command line, run as a real process."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from tests.conftest import GK105, X0, Y0, buildings_frame, run_cli

COMMANDS = ["init", "import", "info", "history", "export", "kinds", "sample"]


@pytest.fixture
def twin_file(tmp_path: Path) -> Path:
    path = tmp_path / "city.gpkg"
    run_cli("init", str(path), "--crs", GK105, check=True)
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "buildings.geojson"
    buildings_frame(4).to_crs(4490).to_file(src)
    return src


def _import(twin_file: Path, source: Path, *extra: str) -> dict:
    result = run_cli(
        "import",
        str(twin_file),
        str(source),
        "-l",
        "buildings",
        "-k",
        "building",
        "--id",
        "建筑编码",
        "--map",
        "层数=floors",
        "--map",
        "建筑高度=height_m",
        "--json",
        *extra,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_explains_with_an_example(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert "Example" in result.stdout and "twin " in result.stdout


def test_init_import_info_history_export(twin_file: Path, source: Path, tmp_path: Path) -> None:
    report = _import(twin_file, source)
    assert (report["read"], report["imported"], report["added"]) == (4, 4, 4)
    assert report["src_crs"] == "EPSG:4490" and report["crs"] == "EPSG:4544"
    info = json.loads(run_cli("info", str(twin_file), "--json", check=True).stdout)
    assert info["crs"] == "EPSG:4544"
    [layer] = info["layers"]
    assert (layer["name"], layer["kind"], layer["feature_count"]) == ("buildings", "building", 4)
    assert layer["classification"] == "public" and layer["category"] == "spatio_temporal_base"
    hist = json.loads(run_cli("history", str(twin_file), "--json", check=True).stdout)
    assert [(h["import_id"], h["layer"], h["n_added"]) for h in hist] == [(1, "buildings", 4)]
    assert hist[0]["field_mapping"] == {"层数": "floors", "建筑高度": "height_m"}
    out = tmp_path / "out.gpkg"
    exported = json.loads(
        run_cli(
            "export",
            str(twin_file),
            "buildings",
            str(out),
            "--crs",
            "EPSG:4326",
            "--json",
            check=True,
        ).stdout
    )
    assert exported["path"] == str(out)
    back = gpd.read_file(out)
    assert back.crs.to_epsg() == 4326 and sorted(back["floors"]) == [1, 2, 3, 4]


def test_human_output(twin_file: Path, source: Path) -> None:
    result = run_cli(
        "import",
        str(twin_file),
        str(source),
        "-l",
        "buildings",
        "-k",
        "building",
        "--id",
        "建筑编码",
    )
    assert result.returncode == 0
    assert "import into buildings (building)" in result.stdout
    assert "none of floors, height_m present" in result.stderr
    info = run_cli("info", str(twin_file)).stdout
    assert "buildings" in info and "时空基础" in info and "EPSG:4544" in info


def test_reimport_and_change_set(twin_file: Path, source: Path, tmp_path: Path) -> None:
    _import(twin_file, source)
    frame = buildings_frame(4).drop(index=0)
    frame.loc[1, "层数"] = 20
    second = tmp_path / "v2.geojson"
    frame.to_crs(4490).to_file(second)
    report = _import(twin_file, second, "--allow-removals")  # 1 of 4 is over 20%
    assert (report["added"], report["changed"], report["removed"], report["unchanged"]) == (
        0,
        1,
        1,
        2,
    )
    changes = json.loads(
        run_cli(
            "history", str(twin_file), "--import", str(report["import_id"]), "--json", check=True
        ).stdout
    )["changes"]
    assert sorted((c["change"], c["uid"]) for c in changes) == [
        ("changed", "buildings.B001"),
        ("removed", "buildings.B000"),
    ]
    old = tmp_path / "as_of.geojson"
    run_cli(
        "export",
        str(twin_file),
        "buildings",
        str(old),
        "--as-of",
        json.loads(run_cli("history", str(twin_file), "--json").stdout)[0]["time"],
        check=True,
    )
    assert len(gpd.read_file(old)) == 4


def test_exit_code_2_for_usage_errors(twin_file: Path, source: Path, tmp_path: Path) -> None:
    cases = [
        ("import", str(twin_file), str(source), "-k", "building"),  # no --layer
        ("import", str(twin_file), str(source), "-l", "b", "-k", "castle"),
        ("info", str(tmp_path / "missing.gpkg")),
        ("export", str(twin_file), "nope", str(tmp_path / "x.gpkg")),
        ("import", str(twin_file), str(source), "-l", "b", "-k", "building", "--map", "oops"),
        ("init", str(twin_file)),
        ("history", str(twin_file), "--bogus-option"),
    ]
    for args in cases:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
    castle = run_cli(*cases[1]).stderr
    assert castle.strip().startswith("error: unknown layer kind 'castle'")
    assert len(castle.strip().splitlines()) == 1


def test_exit_code_3_for_bad_data(twin_file: Path, tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("id,x,y\np1,1,2\n", encoding="utf-8")
    result = run_cli("import", str(twin_file), str(csv), "-l", "pois", "-k", "poi", "--id", "id")
    assert result.returncode == 3
    assert "--src-crs" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    bad = gpd.GeoDataFrame(
        {"id": ["a", "b"], "floors": [1, -4]},
        geometry=[shapely.box(X0, Y0, X0 + 5, Y0 + 5)] * 2,
        crs=GK105,
    )
    bad.to_file(tmp_path / "bad.gpkg")
    before = twin_file.read_bytes()
    strict = run_cli(
        "import",
        str(twin_file),
        str(tmp_path / "bad.gpkg"),
        "-l",
        "b",
        "-k",
        "building",
        "--id",
        "id",
        "--strict",
        "--json",
    )
    assert strict.returncode == 3
    assert json.loads(strict.stdout)["rejections"][0]["reason"] == "floors=-4 is below 0"
    assert twin_file.read_bytes() == before


def test_quiet_and_verbose(twin_file: Path, source: Path) -> None:
    quiet = run_cli(
        "-q", "import", str(twin_file), str(source), "-l", "b", "-k", "building", "--id", "建筑编码"
    )
    assert quiet.returncode == 0 and "INFO" not in quiet.stderr
    verbose = run_cli("-v", "info", str(twin_file))
    assert verbose.returncode == 0


def test_info_on_an_empty_twin_says_what_to_do(twin_file: Path) -> None:
    result = run_cli("info", str(twin_file))
    assert result.returncode == 0 and "no layers yet" in result.stdout
    assert json.loads(run_cli("info", str(twin_file), "--json").stdout)["layers"] == []


def test_kinds(tmp_path: Path) -> None:
    kinds = json.loads(run_cli("kinds", "--json", check=True).stdout)
    names = {k["name"] for k in kinds}
    assert {
        "parcel",
        "building",
        "sensor",
        "road",
        "pipe",
        "valve",
        "source",
        "district",
        "grid",
        "poi",
    } <= names
    one = run_cli("kinds", "valve").stdout
    assert "open, closed, inoperable" in one


def test_sample_then_import_with_its_mapping(tmp_path: Path) -> None:
    made = json.loads(
        run_cli(
            "sample", str(tmp_path / "d"), "--buildings", "500", "--seed", "3", "--json", check=True
        ).stdout
    )
    assert made["counts"]["buildings"] == 500
    path = tmp_path / "c.gpkg"
    run_cli("init", str(path), check=True)
    reports = json.loads(
        run_cli(
            "import", str(path), "--mapping", made["files"]["mapping"], "--json", check=True
        ).stdout
    )
    by_layer = {r["layer"]: r for r in reports}
    assert by_layer["buildings"]["imported"] == 500
    assert all(r["rejected"] == 0 for r in reports)
    assert {r["crs"] for r in reports} == {"EPSG:4544"}
