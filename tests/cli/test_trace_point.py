"""``twin network trace --point`` takes lon/lat like ``analyze route`` (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pyproj
import pytest
from shapely import LineString

import twin
from tests.conftest import run_cli
from tests.network.small_network import at
from twin.webcoords import wgs84_to_gcj02


def drains_frame() -> gpd.GeoDataFrame:
    """D1 -> D2 -> D3 along y=0 (D3 digitised against the flow), D4 joins at (100, 0)."""
    lines = {
        "D1": [(0, 0), (100, 0)],
        "D2": [(100, 0), (200, 0)],
        "D3": [(300, 0), (200, 0)],  # invert 7.0 at (300, 0) < 8.0 at (200, 0)
        "D4": [(100, 100), (100, 0)],
    }
    return gpd.GeoDataFrame(
        {
            "pipe_id": list(lines),
            "network": "drainage",
            "invert_up_m": [10.0, 9.0, 7.0, 12.0],
            "invert_down_m": [9.0, 8.0, 8.0, 9.5],
        },
        geometry=[LineString([at(*p) for p in pts]) for pts in lines.values()],
        crs="EPSG:4544",
    )


@pytest.fixture(scope="module")
def drained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("drains")
    src = folder / "drains.gpkg"
    drains_frame().to_file(src)
    city = twin.Twin.create(folder / "city.gpkg", crs="EPSG:4544")
    city.import_layer(src, layer="drains", kind="pipe", id="pipe_id")
    return city.path


def _lonlat(x: float, y: float) -> tuple[float, float]:
    to_wgs = pyproj.Transformer.from_crs("EPSG:4544", "EPSG:4326", always_xy=True)
    lon, lat = to_wgs.transform(*at(x, y))
    return float(lon), float(lat)


def _trace(path: Path, *options: str) -> dict[str, object]:
    result = run_cli(
        "network", "trace", str(path), "--pipes", "drains", "--direction", "upstream",
        "--json", *options,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def test_point_in_lonlat_and_gcj02_traces_like_the_twin_crs_point(drained: Path) -> None:
    x, y = at(250, 3)  # on D3: upstream are D3, D2, D1 and D4 (D3 flows to (300, 0))
    plain = _trace(drained, "--point", f"{x},{y}")
    lon, lat = _lonlat(250, 3)
    in_wgs = _trace(drained, "--point", f"{lon:.9f},{lat:.9f}", "--point-crs", "EPSG:4326")
    glon, glat = wgs84_to_gcj02(lon, lat)
    in_gcj = _trace(drained, "--point", f"{float(glon):.9f},{float(glat):.9f}", "--coords", "gcj02")
    expected = {"drains.D1", "drains.D2", "drains.D3", "drains.D4"}
    for answer in (plain, in_wgs, in_gcj):
        assert set(answer["pipe_uids"]) == expected  # type: ignore[arg-type]
    assert plain["point_crs"] == "the twin CRS EPSG:4544"
    assert in_wgs["point_crs"] == "EPSG:4326"
    assert in_gcj["point_crs"] == "EPSG:4326 (lon/lat)"


@pytest.mark.parametrize(
    "options",
    [
        ["--point", "104.06,30.66", "--point-crs", "EPSG:4326"],  # ~100 km from the drains
        ["--point", "{lon},{lat}", "--point-crs", "EPSG:4326", "--max-distance-m", "1"],
        ["--point", "{x},{y_far}"],  # twin CRS, 60 m off the network
    ],
)
def test_a_far_point_is_an_error_naming_its_crs(drained: Path, options: list[str]) -> None:
    lon, lat = _lonlat(250, 20)  # 20 m from D3
    x, y = at(250, 0)
    values = {"lon": lon, "lat": lat, "x": x, "y_far": y + 60}
    filled = [o.format(**values) for o in options]
    result = run_cli("network", "trace", str(drained), "--pipes", "drains", *filled)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("WARNING")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "no drainage pipe within" in errors[0] and "read in" in errors[0]


def test_degrees_without_point_crs_are_refused(drained: Path) -> None:
    result = run_cli("network", "trace", str(drained), "--pipes", "drains", "--point", "104,30")
    assert result.returncode == 2
    assert "--point-crs" in result.stderr
