"""Points and areas in lon/lat, web-map points, and points far from the roads (issue 12)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyproj
import pytest

from tests.cli.test_analyze_roads import at_offset, grid_twin  # noqa: F401 (the fixture)
from tests.cli.test_cli_guards import run_main
from twin.webcoords import wgs84_to_gcj02

TO_LONLAT = pyproj.Transformer.from_crs("EPSG:4544", "EPSG:4326", always_xy=True)


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    return lambda *args: run_main([str(a) for a in args], monkeypatch, capsys)


def _lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = TO_LONLAT.transform(*at_offset(x, y))
    return float(lon), float(lat)


def _route(cli: Callable, twin_path: Path, origin: str, *extra: str) -> tuple[int, str, str]:
    return cli("analyze", "route", twin_path, "--from", origin, "--to", "facilities.F", *extra)


def test_route_from_twin_crs_and_lonlat_agree(grid_twin: Path, cli: Callable) -> None:  # noqa: F811
    x, y = at_offset(200, 100)
    code, out, err = _route(cli, grid_twin, f"{x},{y}", "--json")
    assert code == 0, err
    in_twin = json.loads(out)
    lon, lat = _lonlat(200, 100)
    code, out, err = _route(cli, grid_twin, f"{lon},{lat}", "--point-crs", "EPSG:4326", "--json")
    assert code == 0, err
    in_lonlat = json.loads(out)
    assert in_lonlat["distance_m"] == pytest.approx(in_twin["distance_m"], abs=0.01)
    assert in_lonlat["point_crs"] == "EPSG:4326" and in_twin["point_crs"].endswith("EPSG:4544")


@pytest.mark.parametrize("convention", ["gcj02", "bd09"])
def test_route_from_a_web_map_point(grid_twin: Path, cli: Callable, convention: str) -> None:  # noqa: F811
    lon, lat = _lonlat(200, 100)
    glon, glat = wgs84_to_gcj02(lon, lat)
    if convention == "bd09":
        from twin.webcoords import gcj02_to_bd09

        glon, glat = gcj02_to_bd09(glon, glat)
    code, out, err = _route(cli, grid_twin, f"{glon},{glat}", "--coords", convention, "--json")
    assert code == 0, err
    assert json.loads(out)["origin_access_m"] < 1.0  # back on the road it was read off


LONLAT_LIKE = ["104.0489,30.6685", "0,0", "-73.98,40.75", "179.9,-89.9", "121.47,31.23"]


@pytest.mark.parametrize("origin", LONLAT_LIKE)
def test_lonlat_read_in_a_projected_twin_is_a_usage_error(
    grid_twin: Path,  # noqa: F811
    cli: Callable,
    origin: str,
) -> None:
    code, _, err = _route(cli, grid_twin, origin)
    assert code == 2 and "--point-crs EPSG:4326" in err


@pytest.mark.parametrize(("dx", "ok"), [(10, True), (900, True), (1_500, False), (80_000, False)])
def test_a_point_far_from_every_road_is_an_error(
    grid_twin: Path,  # noqa: F811
    cli: Callable,
    dx: float,
    ok: bool,
) -> None:
    x, y = at_offset(200 + dx, 100)
    code, out, err = _route(cli, grid_twin, f"{x},{y}", "--json")
    if ok:
        assert code == 0 and json.loads(out)["origin_access_m"] == pytest.approx(dx, abs=0.01)
        return
    assert code == 2 and "from the nearest road" in err and "--max-access-m" in err
    code, out, err = _route(cli, grid_twin, f"{x},{y}", "--json", "--max-access-m", str(dx + 1))
    assert code == 0, err


def test_area_wkt_in_lonlat(grid_twin: Path, cli: Callable) -> None:  # noqa: F811
    ring = [_lonlat(x, y) for x, y in ((90, -10), (110, -10), (110, 210), (90, 210), (90, -10))]
    wkt = "POLYGON((" + ", ".join(f"{lon} {lat}" for lon, lat in ring) + "))"
    args = ("analyze", "road-closure", grid_twin, "--area-wkt", wkt, "--json")
    code, _, err = cli(*args)
    assert code == 2 and "--point-crs" in err  # lon/lat read as metres closed nothing before
    code, out, err = cli(*args, "--point-crs", "EPSG:4326")
    assert code == 0, err
    closed = json.loads(out)
    assert closed["closed_roads"] == 4  # H0, H1, H2 cross the strip; V1 runs inside it
