"""The sample twin with its DEM and DSM imported and heights measured, made once a session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import twin
from tests.conftest import SAMPLES
from twin.heights import apply_heights
from twin.raster import import_raster


@pytest.fixture(scope="session")
def sample3d_master(sample_twin: twin.Twin, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's sample twin (root ``conftest.py``) with dem and dsm
    imported and the buildings' heights measured."""
    path = Path(shutil.copy(sample_twin.path, tmp_path_factory.mktemp("sample3d") / "city.gpkg"))
    city = twin.Twin.open(path)
    import_raster(city, SAMPLES / "dem.tif", layer="dem", kind="dem")
    import_raster(city, SAMPLES / "dsm.tif", layer="dsm", kind="dsm")
    apply_heights(city, layer="buildings", dsm="dsm", dem="dem")
    return path


@pytest.fixture
def sample3d(sample3d_master: Path, tmp_path: Path) -> twin.Twin:
    """A private copy of the measured sample twin (tests may write to it)."""
    target = tmp_path / "city.gpkg"
    shutil.copy(sample3d_master, target)
    shutil.copytree(sample3d_master.with_name("city.gpkg.rasters"), tmp_path / "city.gpkg.rasters")
    return twin.Twin.open(target)


@pytest.fixture(scope="session")
def sample3d_read(sample3d_master: Path) -> twin.Twin:
    """The measured sample twin, for tests that only read it."""
    return twin.Twin.open(sample3d_master)
