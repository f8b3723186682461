"""Read-only SQL on a delivery: the range of its feature ids."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from twin.store.gpkgread import fid_range


def _points(path: Path, n: int) -> None:
    frame = gpd.GeoDataFrame(
        {"n": np.arange(n)}, geometry=shapely.points(np.arange(n), np.arange(n)), crs="EPSG:4544"
    )
    pyogrio.write_dataframe(frame, path, layer="pts")


def test_fid_range_is_the_smallest_and_largest_fid_after_deletes(tmp_path: Path) -> None:
    path = tmp_path / "d.gpkg"
    _points(path, 500)
    with sqlite3.connect(path) as con:  # leave gaps, and the ends elsewhere
        con.execute("DELETE FROM pts WHERE fid < 8 OR fid > 490 OR fid % 7 = 0")
    fids = pyogrio.read_dataframe(path, layer="pts", fid_as_index=True).index
    assert fid_range(path, "pts") == (int(fids.min()), int(fids.max())) == (8, 489)


def test_fid_range_of_an_empty_layer_is_none(tmp_path: Path) -> None:
    path = tmp_path / "d.gpkg"
    _points(path, 3)
    with sqlite3.connect(path) as con:
        con.execute("DELETE FROM pts")
    assert fid_range(path, "pts") is None
