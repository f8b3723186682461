"""Generated management grids: they tile the districts, ids are stable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import twin
from tests.conftest import GK105, SAMPLES, run_cli
from twin.grid import grid_from_districts


def _districts(geoms: list, codes: list[str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"district_code": codes},
        geometry=geoms,
        index=pd.Index([f"districts.{c}" for c in codes], name="uid"),
        crs=GK105,
    )


def test_cells_tile_each_district_exactly() -> None:
    triangle = shapely.Polygon([(0, 0), (1300, 0), (0, 900)])
    holed = shapely.box(2000, 0, 3000, 1000).difference(shapely.box(2400, 400, 2600, 600))
    districts = _districts([triangle, holed], ["A", "B"])
    cells = grid_from_districts(districts, cell_m=250)
    for code, geom in zip(["A", "B"], districts.geometry, strict=True):
        mine = cells[cells["district_code"] == code]
        assert mine["area_m2"].sum() == pytest.approx(geom.area, rel=1e-12)
        assert shapely.union_all(mine.geometry.array).symmetric_difference(geom).area < 1e-6
    assert cells["grid_code"].is_unique
    assert (cells["area_m2"] <= 250 * 250 + 1e-9).all()
    # Cells never overlap.
    assert cells.area.sum() == pytest.approx(shapely.union_all(cells.geometry.array).area)


def test_a_square_cut_by_a_boundary_gives_one_cell_per_district() -> None:
    districts = _districts(
        [shapely.box(0, 0, 600, 500), shapely.box(600, 0, 1000, 500)], ["A", "B"]
    )
    cells = grid_from_districts(districts, cell_m=500).set_index("grid_code")
    assert cells.loc["A-500-1-0", "area_m2"] == pytest.approx(100 * 500)
    assert cells.loc["B-500-1-0", "area_m2"] == pytest.approx(400 * 500)


def test_ids_survive_a_boundary_change() -> None:
    before = grid_from_districts(_districts([shapely.box(0, 0, 2000, 2000)], ["A"]), cell_m=500)
    after = grid_from_districts(_districts([shapely.box(0, 0, 2000, 1700)], ["A"]), cell_m=500)
    assert set(after["grid_code"]) <= set(before["grid_code"])
    kept = before.set_index("grid_code").loc[after["grid_code"]]
    full = after.set_index("grid_code")["area_m2"] == 250_000
    assert np.allclose(kept.loc[full[full].index, "area_m2"], 250_000)


def test_bad_cell_size() -> None:
    with pytest.raises(twin.UsageError, match="positive"):
        grid_from_districts(_districts([shapely.box(0, 0, 1, 1)], ["A"]), cell_m=0)


def test_twin_grid_cli_on_the_sample(tmp_path: Path) -> None:
    path = tmp_path / "c.gpkg"
    city = twin.Twin.create(path, crs="auto")
    city.import_mapping(SAMPLES / "mapping.yaml", layers=["districts", "buildings"])
    result = run_cli("grid", str(path), "--cell-m", "250", "-l", "grid250", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    cells = city.layer("grid250")
    assert report["imported"] == len(cells) > 0 and city.info("grid250").kind == "grid"
    districts = city.layer("districts")
    assert cells.area.sum() == pytest.approx(districts.area.sum(), rel=1e-9)
    assert cells.index.str.startswith("grid250.").all()
    assert city.imports().iloc[-1]["source"].startswith("generated: 250 m grid")
    again = json.loads(
        run_cli("grid", str(path), "--cell-m", "250", "-l", "grid250", "--json", check=True).stdout
    )
    assert again["unchanged"] == len(cells) and again["changed"] == again["added"] == 0
    shutil.copy(path, tmp_path / "copy.gpkg")
    two = twin.Twin.open(tmp_path / "copy.gpkg")
    two.import_frame(districts.iloc[:1].reset_index(), layer="other_districts", kind="district")
    assert run_cli("grid", str(tmp_path / "copy.gpkg")).returncode == 2  # which districts?
