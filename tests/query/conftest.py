"""The sample district as a built twin and its in-memory index, shared by the query tests."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import geopandas as gpd
import pytest

import twin
from twin.query.index import CityIndex
from twin.store.pgtest import TempCluster
from twin.store.transfer import copy_twin


@pytest.fixture(scope="package")
def city(sample_twin: twin.Twin) -> twin.Twin:
    """The session's built sample twin (read only)."""
    return sample_twin


@pytest.fixture(scope="package")
def index(city: twin.Twin) -> CityIndex:
    return CityIndex.load(city.path)


@pytest.fixture(scope="package")
def layers(city: twin.Twin) -> dict[str, gpd.GeoDataFrame]:
    return {name: city.layer(name) for name in city.layers}


@pytest.fixture(scope="package")
def public(city: twin.Twin) -> list[str]:
    """The layers an anonymous caller may read."""
    names = [i.name for i in city.layer_infos() if i.classification == "public"]
    assert {"parcels", "buildings", "roads", "districts", "grids"} <= set(names)
    assert not {"water_pipes", "valves", "cameras", "sensors"} & set(names)
    return names


_SCHEMAS = itertools.count()


@pytest.fixture(params=["gpkg", "postgis"])
def target(request: pytest.FixtureRequest, sample_twin: twin.Twin, tmp_path: Path) -> str | Path:
    """A writable copy of the built sample twin: a GeoPackage file, or a PostGIS schema."""
    if request.param == "gpkg":
        path = tmp_path / "twin.gpkg"
        shutil.copy(sample_twin.path, path)
        return path
    cluster: TempCluster = request.getfixturevalue("pg_cluster")
    url = cluster.url(schema=f"query_{next(_SCHEMAS)}")
    copy_twin(sample_twin.path, url)
    return url


def reimport(
    city: twin.Twin, frame: gpd.GeoDataFrame, layer: str = "buildings"
) -> twin.ImportReport:
    """Re-import ``frame`` (indexed by uid) as the new delivery of ``layer``, as it stands."""
    info = city.info(layer)
    return city.import_frame(
        frame.reset_index(),
        layer=layer,
        kind=info.kind,
        source=f"edited {layer}",
        classification=info.classification,
        allow_removals=True,
        replace=True,
        local_coords=True,
    )
