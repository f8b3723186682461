"""Impact routes over HTTP against a real ``twin serve``: the answers of the library and the CLI."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import pytest

import twin
from tests.api.conftest import LiveServer
from tests.conftest import SAMPLES, failing_valve_break, run_cli
from twin.network import BreakResult, pipe_break, pipe_network, service_connections


def post(server: LiveServer, path: str, body: dict[str, Any], role: str | None) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=server.headers(role), timeout=120)


def cli_path_break(path: Path, pipe: str, failed: list[str]) -> BreakResult:
    """The break as ``twin analyze pipe-break`` computes it, from the twin file."""
    city = twin.Twin.open(path)
    net = pipe_network(city, "water", pipes="water_pipes")
    links = service_connections(city.layer("buildings"), net)
    return pipe_break(net, pipe, failed_valves=failed, connections=links)


@pytest.fixture(scope="module")
def break_case(live_server: LiveServer) -> tuple[str, str]:
    """A pipe whose break closes a few valves, one of which fails and widens the outage."""
    return failing_valve_break(twin.Twin.open(live_server.twin))


def by_result(features: list[dict[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for feature in features:
        found.setdefault(feature["properties"]["result"], set()).add(feature["id"])
    return found


def test_pipe_break_over_http_equals_library_and_cli(
    live_server: LiveServer, break_case: tuple[str, str]
) -> None:
    pipe, failed = break_case
    answer = post(
        live_server, "/impact/pipe-break", {"pipe": pipe, "failed_valves": [failed]}, "restricted"
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = cli_path_break(live_server.twin, pipe, [failed])
    summary = {k: v for k, v in body["summary"].items() if k not in ("layers", "extra_valve_uids")}
    assert summary == json.loads(json.dumps(expected.summary))
    assert body["summary"]["layers"] == {
        "pipes": "water_pipes",
        "valves": "valves",
        "sources": "sources",
        "buildings": "buildings",
    }
    found = by_result(body["features"])
    roles = expected.valves_to_close["role"]
    assert found["valve_to_close"] == set(roles.index[roles == "close"])
    assert found.get("valve_already_closed", set()) == set(roles.index[roles == "already closed"])
    assert found["isolated_pipe"] == set(expected.isolated_pipes.index)
    assert found.get("cut_off_pipe", set()) == set(expected.cut_off_pipes.index)
    assert found["building"] == set(expected.buildings.index)
    extra = {f["id"] for f in body["features"] if f["properties"]["extra"]}
    assert extra == set(expected.extra_valves.index) | set(expected.extra_buildings.index)
    cli = run_cli(
        "analyze",
        "pipe-break",
        str(live_server.twin),
        "--pipes",
        "water_pipes",
        "--pipe",
        pipe,
        "--failed-valve",
        failed,
        "--json",
        check=True,
    )
    printed = json.loads(cli.stdout)
    assert {k: printed[k] for k in summary} == summary
    assert printed["extra_valve_uids"] == body["summary"]["extra_valve_uids"]
    assert sorted(v["uid"] for v in printed["valves"]) == sorted(
        found["valve_to_close"] | found.get("valve_already_closed", set())
    )


def test_pipe_break_geometry_and_web_coordinates(
    live_server: LiveServer, break_case: tuple[str, str]
) -> None:
    pipe = break_case[0]
    plain = post(live_server, "/impact/pipe-break", {"pipe": pipe}, "ops").json()
    bare = post(live_server, "/impact/pipe-break", {"pipe": pipe, "geometry": False}, "ops").json()
    assert all(f["geometry"] is None for f in bare["features"])
    assert [f["id"] for f in bare["features"]] == [f["id"] for f in plain["features"]]
    city = twin.Twin.open(live_server.twin)
    valves = city.layer("valves").to_crs("OGC:CRS84")
    for feature in plain["features"]:
        if feature["properties"]["layer"] == "valves":
            x, y = feature["geometry"]["coordinates"]
            point = valves.geometry.loc[feature["id"]]
            assert (x, y) == pytest.approx((point.x, point.y), abs=1e-9)


@pytest.mark.parametrize(
    ("body", "role", "status", "words"),
    [
        ({"pipe": "water_pipes.JS000001"}, None, 404, "pipe layer"),
        ({"pipe": "water_pipes.JS000001"}, "internal", 404, "pipe layer"),
        ({"pipe": "water_pipes.JS000001", "pipes": "water_pipes"}, None, 404, "water_pipes"),
        ({"pipe": "water_pipes.NOPE"}, "restricted", 400, "not in the water network"),
        ({"pipe": "water_pipes.JS000001", "failed_valves": ["v.NOPE"]}, "restricted", 400, "valve"),
        ({"pipe": "water_pipes.JS000001", "colour": "red"}, "restricted", 400, "colour"),
        ({"pipe": "water_pipes.JS000001", "max_service_m": -5}, "restricted", 400, "max_service_m"),
        ({"failed_valves": []}, "restricted", 400, "pipe"),
    ],
)
def test_pipe_break_bad_requests(
    live_server: LiveServer, body: dict[str, Any], role: str | None, status: int, words: str
) -> None:
    answer = post(live_server, "/impact/pipe-break", body, role)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["description"]


def wait_for_reload(server: LiveServer, reloads: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.get("/health").json()["reloads"] >= reloads:
            return
        time.sleep(0.1)
    raise AssertionError("the server did not reload the re-imported twin")


def test_networks_follow_a_reimport(
    fresh_server: LiveServer, break_case: tuple[str, str], tmp_path: Path
) -> None:
    pipe, failed = break_case
    before = post(fresh_server, "/impact/pipe-break", {"pipe": pipe}, "restricted").json()
    valves = gpd.read_file(SAMPLES / "networks.gpkg", layer="valves")
    code = failed.split(".", 1)[1]
    valves.loc[valves["valve_id"] == code, "status"] = "inoperable"
    changed = tmp_path / "valves-v2.gpkg"
    valves.to_file(changed, layer="valves")
    spec = twin.read_mapping(SAMPLES / "mapping.yaml")["valves"]
    report = twin.Twin.open(fresh_server.twin).import_spec(
        dataclasses.replace(spec, source=changed)
    )
    assert report.changed == 1
    wait_for_reload(fresh_server, 1)
    after = post(fresh_server, "/impact/pipe-break", {"pipe": pipe}, "restricted").json()
    expected = cli_path_break(fresh_server.twin, pipe, [])
    assert after["summary"]["valves_to_close"] == expected.summary["valves_to_close"]
    assert by_result(after["features"])["building"] == set(expected.buildings.index)
    assert len(by_result(after["features"])["building"]) > before["summary"]["buildings"]
    assert failed not in by_result(after["features"])["valve_to_close"]
