"""The twin file is a GeoPackage that GDAL's own tools open as it is."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pyogrio
import pytest

import twin
from tests.conftest import BUILDING_FIELDS, GK105, buildings_frame


@pytest.fixture
def filled(city: twin.Twin, tmp_path: Path) -> twin.Twin:
    src = tmp_path / "b.gpkg"
    buildings_frame(5).to_file(src)
    city.import_layer(
        src, layer="buildings", kind="building", id="建筑编码", fields=BUILDING_FIELDS
    )
    return city


def test_ogrinfo_lists_layer_and_metadata_tables(filled: twin.Twin) -> None:
    listing = subprocess.run(
        ["ogrinfo", "-ro", "-q", str(filled.path)], capture_output=True, text=True, check=True
    ).stdout
    for table in ("buildings", "twin_meta", "twin_layers", "twin_imports", "twin_changes"):
        assert f": {table}" in listing


def test_ogrinfo_reads_features_crs_and_fields(filled: twin.Twin) -> None:
    text = subprocess.run(
        ["ogrinfo", "-ro", "-al", str(filled.path), "buildings"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Warning" not in text.stderr
    lines = text.stdout.splitlines()
    assert "Feature Count: 5" in lines
    assert 'ID["EPSG",4544]]' in text.stdout.replace(" ", "")
    uids = sorted(line.split("= ")[1] for line in lines if line.strip().startswith("uid (String)"))
    assert uids == [f"buildings.B{i:03d}" for i in range(5)]
    floors = [int(line.split("= ")[1]) for line in lines if line.strip().startswith("floors (")]
    assert sorted(floors) == [1, 2, 3, 4, 5]
    names = [line.split("= ")[1] for line in lines if line.strip().startswith("建筑编码 (String)")]
    assert sorted(names) == [f"B{i:03d}" for i in range(5)]


def test_layer_has_spatial_index_and_valid_gpkg_header(filled: twin.Twin) -> None:
    with sqlite3.connect(filled.path) as con:
        app_id = con.execute("PRAGMA application_id").fetchone()[0]
        rtree = con.execute(
            "SELECT count(*) FROM sqlite_master WHERE name='rtree_buildings_geom'"
        ).fetchone()[0]
        indexed = con.execute("SELECT count(*) FROM rtree_buildings_geom").fetchone()[0]
        kinds = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents"))
    assert app_id == 0x47504B47  # "GPKG"
    assert rtree == 1 and indexed == 5
    assert kinds["buildings"] == "features"
    assert kinds["twin_imports"] == kinds["twin_layers"] == "attributes"


def test_pyogrio_reads_the_layer_in_twin_crs(filled: twin.Twin) -> None:
    frame = pyogrio.read_dataframe(filled.path, layer="buildings")
    assert frame.crs.to_string() == GK105
    assert frame["floors"].tolist() == [1, 2, 3, 4, 5]
