"""A streamed import writes the same twin whichever way GDAL is fed: from a helper
process (batches ramped up and down) or in this process (even batches).

Every table of the two twins is compared row by row (the R-tree's nodes byte for
byte), on a delivery with the values an import must get right: nulls, NaN, huge
and tiny numbers, non-ASCII text, multi-polygons, holes, a repaired bow tie, rows
rejected for an empty or repeated id or a missing geometry.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

import twin
from tests.conftest import GK105
from twin.bigimport import import_streamed

N = 3000
FIELDS = {"层数": "floors", "建筑高度": "height_m", "建筑名称": "name", "用途": "use"}


def _awkward_delivery(path: Path) -> Path:
    rng = np.random.default_rng(11)
    x = 400_000 + rng.uniform(0, 5_000, N)
    y = 3_390_000 + rng.uniform(0, 5_000, N)
    geoms = np.array(shapely.box(x, y, x + rng.uniform(5, 30, N), y + 12), dtype=object)
    for i in range(0, N, 7):  # two parts
        geoms[i] = shapely.MultiPolygon(
            [geoms[i], shapely.box(x[i] + 40, y[i], x[i] + 45, y[i] + 5)]
        )
    for i in range(3, N, 11):  # a courtyard
        geoms[i] = geoms[i].difference(shapely.box(x[i] + 2, y[i] + 2, x[i] + 4, y[i] + 4))
    geoms[5] = shapely.Polygon(
        [(x[5], y[5]), (x[5] + 9, y[5] + 9), (x[5] + 9, y[5]), (x[5], y[5] + 9)]
    )
    geoms[8] = None
    ids = np.array([f"建筑-{i:05d}" for i in range(N)], dtype=object)
    ids[40], ids[41], ids[2999] = None, "  ", ids[10]
    floors = rng.integers(1, 40, N).astype(float)
    floors[::13] = np.nan
    heights = floors * 3.1
    heights[17], heights[18], heights[19] = 1e15, 5e-324, np.nan
    names = np.array([f"楼 {i} ☃" if i % 5 else None for i in range(N)], dtype=object)
    names[23] = ""
    frame = gpd.GeoDataFrame(
        {
            "建筑编码": ids,
            "层数": floors,
            "建筑高度": heights,
            "建筑名称": names,
            "用途": np.where(np.arange(N) % 3 == 0, "住宅", "商业"),
        },
        geometry=geoms,
        crs=GK105,
    )
    pyogrio.write_dataframe(frame, path, layer="buildings")
    return path


def _import(path: Path, source: Path, helper: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("twin.bigimport.HELPER_BATCH", 1 if helper else 10**9)
    monkeypatch.setattr("twin.bigimport.spare_core", lambda: True)
    city = twin.Twin.create(path, crs=GK105)
    spec = twin.ImportSpec(
        source=source, layer="buildings", kind="building", id="建筑编码", fields=FIELDS
    )
    report = import_streamed(city, spec, batch_size=800)
    assert (report.read, report.rejected, report.duplicates) == (N, 4, 1)


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table in rowid order, the moments of writing made placeholders."""
    with sqlite3.connect(path) as con:
        (stamp,) = con.execute("SELECT time FROM twin_imports").fetchone()
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out = {}
        for name in names:
            columns = [r[1] for r in con.execute(f'PRAGMA table_info("{name}")')]
            rows = con.execute(f'SELECT * FROM "{name}" ORDER BY rowid').fetchall()
            out[name] = [_steady(name, dict(zip(columns, row, strict=True)), stamp) for row in rows]
    return out


def _steady(table: str, row: dict[str, object], stamp: str) -> tuple[object, ...]:
    row.pop("last_change", None)  # GDAL's own clock (gpkg_contents)
    if table == "twin_meta" and row["key"] == "created":
        row["value"] = "<created>"
    if table == "twin_imports":
        report = json.loads(str(row["report"]))
        report.pop("seconds")
        row["report"] = {k: "<import time>" if v == stamp else v for k, v in report.items()}
    return tuple("<import time>" if value == stamp else value for value in row.values())


@pytest.mark.slow  # a helper process starts
def test_helper_and_in_process_writes_make_the_same_twin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _awkward_delivery(tmp_path / "delivery.gpkg")
    paths = [tmp_path / way / "city.gpkg" for way in ("helper", "here")]  # one name
    for path, helper in zip(paths, (True, False), strict=True):
        path.parent.mkdir()
        _import(path, source, helper, monkeypatch)
    helper, here = _tables(paths[0]), _tables(paths[1])
    assert list(helper) == list(here)
    for name in here:
        assert helper[name] == here[name], name
    assert len(here["buildings"]) == N - 4
    assert len(here["rtree_buildings_geom"]) == N - 4
    stored = {row[2] for row in here["buildings"]}  # the uids
    assert "buildings.建筑-00010" in stored and "buildings.建筑-00040" not in stored
