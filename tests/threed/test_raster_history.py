"""Raster imports in the twin's provenance and history, like vector imports."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine

import twin
from tests.conftest import run_cli
from twin.errors import UsageError
from twin.raster import raster_dir, raster_imports, read_raster
from twin.rollback import rollback_import

T = Affine(10, 0, 505_000, 0, -10, 3_393_000)


def _write(path: Path, values: np.ndarray) -> Path:
    profile = {
        "driver": "GTiff",
        "width": values.shape[1],
        "height": values.shape[0],
        "count": 1,
        "dtype": "float32",
        "transform": T,
        "crs": "EPSG:4544",
        "nodata": -9999.0,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype("float32"), 1)
    return path


@pytest.fixture
def versions(tmp_path: Path) -> tuple[Path, Path]:
    first = np.arange(20, dtype=float).reshape(4, 5) + 500.0
    second = first.copy()
    second[0, :2] += 1.5  # 2 cells changed
    second[3, 4] = -9999.0  # 1 valid cell becomes nodata
    first[1, 1] = -9999.0  # 1 nodata cell becomes valid
    return _write(tmp_path / "dem-2025.tif", first), _write(tmp_path / "dem-2026.tif", second)


def test_raster_imports_share_the_twin_provenance(
    city: twin.Twin, versions: tuple[Path, Path]
) -> None:
    points = gpd.GeoDataFrame(
        {"id": ["p1"]}, geometry=[shapely.Point(505_020, 3_392_980)], crs="EPSG:4544"
    )
    vector = city.import_frame(points, layer="pois", kind="poi", id="id")
    first = twin.raster.import_raster(city, versions[0], layer="dem", kind="dem")
    second = twin.raster.import_raster(city, versions[1], layer="dem", kind="dem")
    # one sequence of import ids for vector and raster imports
    assert (vector.import_id, first.import_id, second.import_id) == (1, 2, 3)
    rows = city.imports("dem")
    assert list(rows.index) == [2, 3]
    assert list(rows["source"]) == [str(versions[0]), str(versions[1])]
    assert list(rows["source_format"]) == ["GTiff", "GTiff"]
    assert list(rows["initial"]) == [1, 0]
    assert rows["checksum"].str.startswith("sha256:").all()
    assert (rows["src_crs"] == "EPSG:4544").all()
    assert rows["options"].iloc[0]["kind"] == "dem" and rows["options"].iloc[0]["raster"]
    # counts in cells: 20 read; the first has one nodata cell, the second too
    assert list(rows["n_read"]) == [20, 20] and list(rows["n_imported"]) == [19, 19]
    # second against first (hand-checked): +1 valid, 2 changed, -1 now nodata, 16 same
    second_row = rows.loc[3]
    assert (second_row["n_added"], second_row["n_changed"]) == (1, 2)
    assert (second_row["n_removed"], second_row["n_unchanged"]) == (1, 16)
    assert city.changes(3).empty  # no features: the change set is in cells


def test_reimport_keeps_the_earlier_cog_under_its_import_id(
    city: twin.Twin, versions: tuple[Path, Path]
) -> None:
    first = twin.raster.import_raster(city, versions[0], layer="dem", kind="dem")
    second = twin.raster.import_raster(city, versions[1], layer="dem", kind="dem")
    kept = raster_dir(city) / f"dem@{first.import_id}.tif"
    assert second.replaced == kept.name and kept.exists()
    with rasterio.open(versions[0]) as src:
        np.testing.assert_array_equal(
            read_raster(city, "dem", import_id=first.import_id).values,
            np.where(src.read(1) == -9999, np.nan, src.read(1)),
        )
    entries = raster_imports(city, "dem")
    assert [e["import_id"] for e in entries] == [first.import_id, second.import_id]
    assert entries[0]["valid_to"] == second.time and entries[1]["valid_to"] is None
    assert city.imports("dem")["time"].tolist() == [first.time, second.time]
    with pytest.raises(UsageError, match="raster import of dem"):
        rollback_import(city, second.import_id)


@pytest.mark.slow
def test_twin_history_lists_raster_imports(city: twin.Twin, versions: tuple[Path, Path]) -> None:
    for source in versions:
        run_cli(
            "import", str(city.path), str(source), "--layer", "dem", "--kind", "dem", check=True
        )
    listed = run_cli("history", str(city.path), "--layer", "dem", "--json", check=True)
    rows = json.loads(listed.stdout)
    assert [(r["import_id"], Path(r["source"]).name) for r in rows] == [
        (1, "dem-2025.tif"),
        (2, "dem-2026.tif"),
    ]
    assert [(r["n_added"], r["n_changed"], r["n_removed"]) for r in rows] == [(19, 0, 0), (1, 2, 1)]
    table = run_cli("history", str(city.path), "--layer", "dem", check=True).stdout
    assert "dem-2025.tif" in table and "dem-2026.tif" in table
    shown = run_cli("history", str(city.path), "--import", "2", check=True).stdout
    assert "2 changed" in shown and "1 removed" in shown
