"""``twin analyze route|service-area|road-closure|cascade`` and ``twin network check --roads``.

Run through the real ``twin`` console script on small twins whose answers are
worked out by hand (the grid of tests/network/test_roads.py, shifted near
Chengdu), and on the sample district twin.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from shapely import LineString, Point, box

import twin
from tests.conftest import run_cli
from tests.network.small_network import X0, Y0, make_twin

CRS = "EPSG:4544"
S_PER_M = 0.12  # 支路, 30 km/h
GRID = {  # 100 m blocks; H1 one-way eastwards
    "H0": [(0, 0), (100, 0), (200, 0)],
    "H1": [(0, 100), (100, 100), (200, 100)],
    "H2": [(0, 200), (100, 200), (200, 200)],
    "V0": [(0, 0), (0, 100), (0, 200)],
    "V1": [(100, 0), (100, 100), (100, 200)],
    "V2": [(200, 0), (200, 100), (200, 200)],
}


def at_offset(x: float, y: float) -> tuple[float, float]:
    return (X0 + x, Y0 + y)


def _import(city: twin.Twin, frame: gpd.GeoDataFrame, layer: str, kind: str) -> None:
    city.import_frame(frame, layer=layer, kind=kind, id="code")


@pytest.fixture(scope="module")
def grid_twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "grid.gpkg"
    city = twin.Twin.create(path, crs=CRS)
    roads = gpd.GeoDataFrame(
        {"code": list(GRID), "road_class": "支路", "oneway": [0, 1, 0, 0, 0, 0]},
        geometry=[LineString([at_offset(*p) for p in pts]) for pts in GRID.values()],
        crs=CRS,
    )
    _import(city, roads, "roads", "road")
    facilities = gpd.GeoDataFrame(
        {"code": ["F", "H"], "poi_type": ["消防站", "医院"]},
        geometry=[Point(at_offset(-7, -7)), Point(at_offset(205, 200))],
        crs=CRS,
    )
    _import(city, facilities, "facilities", "poi")
    homes = {"b": (150, 205), "c": (100, 50), "d": (20, 3)}
    buildings = gpd.GeoDataFrame(
        {"code": list(homes), "floors": 3},
        geometry=[
            box(*at_offset(x - 2, y - 2), *at_offset(x + 2, y + 2)) for x, y in homes.values()
        ],
        crs=CRS,
    )
    _import(city, buildings, "buildings", "building")
    return path


def _json(*args: str) -> dict:
    result = run_cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_route_json(grid_twin: Path) -> None:
    x, y = at_offset(200, 100)
    data = _json(
        "analyze",
        "route",
        str(grid_twin),
        "--from",
        f"{x},{y}",
        "--to",
        "facilities.F",
        "--weight",
        "length",
    )
    # H1 runs east only: down V2 100 m, west along H0 200 m to the node under F
    assert data["distance_m"] == pytest.approx(300.0)
    assert data["time_s"] == pytest.approx(300 * S_PER_M)
    assert data["roads"] == ["roads.V2", "roads.H0"]
    assert data["destination_access_m"] == pytest.approx(7 * 2**0.5)


def test_service_area_json_and_out(grid_twin: Path, tmp_path: Path) -> None:
    data = _json("analyze", "service-area", str(grid_twin), "--max-time", "20")
    # b stands 50 m along H2's east edge, 50 m from H (at the node (200,200)): 6 s;
    # c (50 m up V1) is 150 m from F (18 s) and 250 m from H; d is 20 m from F (2.4 s)
    assert data["per_facility"] == {"facilities.F": 2, "facilities.H": 1}
    assert data["within_max_time"] == 3
    fire = _json("analyze", "service-area", str(grid_twin), "--where", "poi_type=消防站")
    assert fire["facilities"] == 1 and fire["per_facility"] == {"facilities.F": 3}
    out = tmp_path / "areas.gpkg"
    result = run_cli("analyze", "service-area", str(grid_twin), "--out", str(out))
    assert result.returncode == 0, result.stderr
    back = pyogrio.read_dataframe(out, layer="buildings").set_index("uid")
    assert back.loc["buildings.b", "time_s"] == pytest.approx(50 * S_PER_M)
    assert back.loc["buildings.c", "time_s"] == pytest.approx(150 * S_PER_M)


def test_road_closure_json(grid_twin: Path) -> None:
    args = ("analyze", "road-closure", str(grid_twin), "--where", "poi_type=消防站")
    data = _json(*args, "--close", "roads.V0", "--close", "roads.V1", "--max-time", "45")
    # b: 350 m from F before (42 s); with V0 and V1 closed 450 m (54 s); c stands on V1: cut
    assert data["buildings_lost"] == 1
    assert data["buildings_delayed"] == 1
    assert data["mean_detour_s"] == pytest.approx(100 * S_PER_M)
    assert data["buildings_beyond_max"] == 2  # b (54 s after) and c (cut off)
    assert data["closed_length_m"] == pytest.approx(400.0)
    x0, y0 = at_offset(-10, 40)
    x1, y1 = at_offset(110, 60)
    wkt = f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"
    area = _json(*args, "--area-wkt", wkt, "--rank", "2")
    # the area closes the lower halves of V0 and V1: c (50 m up V1) stands on one of them
    assert area["closed_edges"] == 2 and area["buildings_lost"] == 1
    assert area["mean_detour_s"] == pytest.approx(100 * S_PER_M)
    assert [row["rank"] for row in area["criticality"]] == [1, 2]


def test_road_closure_and_route_out_files(grid_twin: Path, tmp_path: Path) -> None:
    out = tmp_path / "closure.gpkg"
    args = ("analyze", "road-closure", str(grid_twin), "--where", "poi_type=消防站")
    result = run_cli(
        *args, "--close", "roads.V0", "--close", "roads.V1", "--rank", "2", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    layers = {row[0] for row in pyogrio.list_layers(out)}
    assert layers == {"closed_roads", "buildings", "criticality"}
    closed = pyogrio.read_dataframe(out, layer="closed_roads")
    assert sorted(closed["road"]) == ["roads.V0"] * 2 + ["roads.V1"] * 2
    hit = pyogrio.read_dataframe(out, layer="buildings").set_index("uid")
    assert sorted(hit.index) == ["buildings.b", "buildings.c"]  # b delayed, c cut off
    assert hit.loc["buildings.b", "detour_s"] == pytest.approx(100 * S_PER_M)
    summary = tmp_path / "closure.json"
    assert run_cli(*args, "--close", "roads.V0", "--out", str(summary)).returncode == 0
    assert json.loads(summary.read_text())["closed_edges"] == 2
    line = tmp_path / "route.gpkg"
    x, y = at_offset(200, 100)
    result = run_cli(
        "analyze",
        "route",
        str(grid_twin),
        "--from",
        f"{x},{y}",
        "--to",
        "facilities.F",
        "--out",
        str(line),
    )
    assert result.returncode == 0, result.stderr
    back = pyogrio.read_dataframe(line, layer="route")
    assert back.geometry.iloc[0].length == pytest.approx(300.0)
    assert back["time_s"].iloc[0] == pytest.approx(300 * S_PER_M)


def test_bad_input_is_one_line_and_exit_2(grid_twin: Path, tmp_path: Path) -> None:
    for args, words in (
        (("road-closure", str(grid_twin), "--close", "roads.NOPE"), "no road 'roads.NOPE'"),
        (("service-area", str(grid_twin), "--where", "poi_type"), "must look like field=value"),
        (("service-area", str(grid_twin), "--where", "kind=医院"), "no field 'kind'"),
        (("route", str(grid_twin), "--from", "here", "--to", "1,2"), "must be 'x,y'"),
        (("road-closure", str(grid_twin)), "closes no road"),
        (
            ("service-area", str(grid_twin), "--json", "--out", str(tmp_path / "a.gpkg")),
            "not both",
        ),
    ):
        result = run_cli("analyze", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert words in result.stderr
        assert "Traceback" not in result.stderr


def test_network_check_roads(tmp_path: Path) -> None:
    path = tmp_path / "gap.gpkg"
    city = twin.Twin.create(path, crs=CRS)
    roads = gpd.GeoDataFrame(
        {"code": ["A", "B"], "road_class": "支路"},
        geometry=[
            LineString([at_offset(0, 0), at_offset(100, 0)]),
            LineString([at_offset(101, 0.5), at_offset(200, 0)]),
        ],
        crs=CRS,
    )
    _import(city, roads, "roads", "road")
    data = _json("network", "check", str(path), "--roads", "roads", "--near-miss", "2")
    # A ends 1.12 m (the hypotenuse of 1 and 0.5) from B's start: not snapped at 0.5 m,
    # so four dangling ends, two near misses (A's end to B, B's start to A), two parts
    assert data["issues"] == {
        "dangling_end": 4,
        "near_miss": 2,
        "disconnected_part": 1,
        "one_way_trap": 0,
    }
    misses = [d for d in data["details"] if d["issue"] == "near_miss"]
    assert sorted(round(d["distance_m"], 3) for d in misses) == [1.118, 1.118]


def test_cascade_json(tmp_path: Path) -> None:
    city = make_twin(tmp_path)
    lines = {  # roads 5 m south of the mains, and a bypass R5 50 m south
        "R1": [(0, -5), (100, -5)],
        "R2": [(100, -5), (200, -5)],
        "R3": [(200, -5), (300, -5)],
        "R7": [(300, -5), (400, -5)],
        "R4": [(100, -5), (100, 105)],
        "R5": [(0, -5), (0, -50), (400, -50), (400, -5)],
    }
    roads = gpd.GeoDataFrame(
        {"code": list(lines), "road_class": "支路"},
        geometry=[LineString([at_offset(*p) for p in pts]) for pts in lines.values()],
        crs=CRS,
    )
    _import(city, roads, "roads", "road")
    station = gpd.GeoDataFrame({"code": ["F1"]}, geometry=[Point(at_offset(-10, -5))], crs=CRS)
    _import(city, station, "facilities", "poi")
    data = _json(
        "analyze",
        "cascade",
        str(city.path),
        "--pipe",
        "pipes.P2",
        "--distance",
        "6",
        "--min-overlap",
        "0",
    )
    assert sorted(data["valves_to_close"]) == ["valves.V1", "valves.V2"]
    assert data["roads_closed"] == ["roads.R1", "roads.R2", "roads.R3", "roads.R4"]
    closure = data["road_closure"]
    # b2 (on R2) and b3 (on R4) cut off; b1 goes round by R5: 190 m more
    assert closure["buildings_lost"] == 2
    assert closure["max_detour_s"] == pytest.approx(190 * S_PER_M)
    assert closure["population_affected"] == 4 + 3 + 12  # b1 delayed, b2 and b3 cut
    # by default a road needs 15 m within reach: only R2, over the pipe, closes
    default = _json("analyze", "cascade", str(city.path), "--pipe", "pipes.P2", "--distance", "6")
    assert default["roads_closed"] == ["roads.R2"]


@pytest.mark.slow
def test_sample_service_area_matches_the_library(sample_twin: twin.Twin) -> None:
    from twin.network import road_access, road_network, select_facilities, service_areas

    data = _json(
        "analyze",
        "service-area",
        str(sample_twin.path),
        "--where",
        "poi_type=消防站",
        "--max-time",
        "120",
    )
    city = sample_twin
    fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
    access = road_access(road_network(city), city.layer("buildings"), fire)
    times = service_areas(access).buildings["time_s"]
    assert data["buildings"] == 3000 == data["reached"]
    assert data["within_max_time"] == int((times <= 120).sum())
    assert data["mean_time_s"] == pytest.approx(float(times.mean()))
    assert sum(data["per_facility"].values()) == 3000
    table = pd.Series(data["per_facility"])
    assert set(table.index) == set(fire.index)
