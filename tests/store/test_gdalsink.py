"""GDAL writing in a helper process (twin.store.gdalsink) stores what an in-process write
stores; its failures and the caller's are clear errors and leave no process behind."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from tests.conftest import GK105, X0, Y0
from twin.errors import StorageError
from twin.store.files import write_stream


def _frames(n_frames: int = 3, size: int = 40) -> list[gpd.GeoDataFrame]:
    """Boxes, the first frame holding one multi-polygon (the layer is stored multi),
    text with nulls, integers, floats with NaN."""
    out = []
    for k in range(n_frames):
        i = np.arange(k * size, (k + 1) * size)
        geoms = shapely.box(X0 + i * 20.0, Y0, X0 + i * 20.0 + 10, Y0 + 10 + k)
        if k == 0:
            geoms[3] = shapely.MultiPolygon([geoms[3], shapely.box(X0, Y0 - 50, X0 + 5, Y0 - 45)])
        names = np.where(i % 7 == 0, None, np.char.add("楼", i.astype(str))).astype(object)
        out.append(
            gpd.GeoDataFrame(
                {
                    "uid": np.char.add("b.", i.astype(str)),
                    "name": pd.Series(names, dtype="str"),
                    "floors": i % 30,
                    "height_m": np.where(i % 5 == 0, np.nan, i * 0.5),
                },
                geometry=geoms,
                crs=GK105,
            )
        )
    return out


def _stored(path: Path, table: str) -> tuple[pd.DataFrame, list[tuple[object, ...]]]:
    """The table's rows (geometry as WKB hex, fid order) and its GeoPackage bookkeeping."""
    frame = pyogrio.read_dataframe(path, layer=table, fid_as_index=True)
    rows = pd.DataFrame(frame.drop(columns="geometry"))
    rows["wkb"] = shapely.to_wkb(frame.geometry.to_numpy(), hex=True)
    with sqlite3.connect(path) as con:
        meta = con.execute(
            "SELECT c.min_x, c.min_y, c.max_x, c.max_y, c.srs_id, g.geometry_type_name "
            "FROM gpkg_contents c JOIN gpkg_geometry_columns g USING (table_name) "
            "WHERE table_name = ?",
            (table,),
        ).fetchall()
        meta += con.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = ?", (f"rtree_{table}_geom",)
        ).fetchall()
        meta += con.execute(f'SELECT count(*) FROM "rtree_{table}_geom"').fetchall()
    return rows, meta


def _helpers() -> list[int]:
    """Helper processes (``twin/store/gdalsink.py``) that are children of this one."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = next(int(line.split()[1]) for line in status.splitlines() if line[:5] == "PPid:")
        if parent == os.getpid() and b"gdalsink.py" in command:
            found.append(int(entry.name))
    return found


def test_helper_writes_what_the_process_writes(tmp_path: Path) -> None:
    here, helper = tmp_path / "here.gpkg", tmp_path / "helper.gpkg"
    write_stream(here, "b", iter(_frames()))
    write_stream(helper, "b", iter(_frames()), helper=True)
    rows, meta = _stored(helper, "b")
    expected_rows, expected_meta = _stored(here, "b")
    pd.testing.assert_frame_equal(rows, expected_rows)
    assert meta == expected_meta
    assert len(rows) == 120 and rows["name"].isna().sum() == 18  # every 7th of 120 is null
    assert meta[0][5] == "MULTIPOLYGON" and meta[2] == (120,)  # promoted; R-tree of every row
    # independent check of one row: the box drawn for building 47 (frame 1)
    assert shapely.from_wkb(bytes.fromhex(rows["wkb"].iloc[47])).equals(
        shapely.MultiPolygon([shapely.box(X0 + 940, Y0, X0 + 950, Y0 + 11)])
    )
    assert meta[0][:4] == pytest.approx((X0, Y0 - 50, X0 + 119 * 20 + 10, Y0 + 12))
    assert _helpers() == []


def test_helper_failure_is_a_storage_error(tmp_path: Path) -> None:
    missing = tmp_path / "no such folder" / "t.gpkg"
    with pytest.raises(StorageError, match=r"^cannot write t\.gpkg: ") as caught:
        write_stream(missing, "b", iter(_frames()), helper=True)
    assert "\n" not in str(caught.value)
    assert _helpers() == []


def test_failure_while_making_a_frame_ends_the_helper(tmp_path: Path) -> None:
    def frames() -> Iterator[gpd.GeoDataFrame]:
        yield from _frames(2)
        raise ValueError("batch 3 is bad")

    with pytest.raises(ValueError, match="batch 3 is bad"):
        write_stream(tmp_path / "t.gpkg", "b", frames(), helper=True)
    assert _helpers() == []


def test_helper_warnings_reach_the_caller(tmp_path: Path) -> None:
    """A multi-polygon in a later frame of a polygon layer: GDAL warns, as it does here."""
    frames = _frames(2)[::-1]  # polygons first: the layer is declared POLYGON
    with pytest.warns(RuntimeWarning, match="A geometry of type MULTIPOLYGON"):
        write_stream(tmp_path / "t.gpkg", "b", iter(frames), helper=True)
    assert pyogrio.read_info(tmp_path / "t.gpkg", layer="b")["features"] == 80


@pytest.mark.parametrize("helper", [False, True], ids=["in-process", "helper-process"])
def test_encoded_frames_store_the_given_wkb(tmp_path: Path, helper: bool) -> None:
    """Rows with WKB are stored from it as given; rows without (null) from the frame, and
    so are single parts in a multi layer (made multi: their WKB would be single)."""
    import pyarrow as pa

    from twin.store.files import Encoded

    frame = _frames(1)[0].iloc[:6]  # row 3 is a multi-polygon: the layer is multi
    given = [shapely.MultiPolygon([shapely.box(i, i, i + 1, i + 1)]) for i in range(6)]
    wkb = pa.array(
        [None, shapely.to_wkb(given[1]), None, shapely.to_wkb(given[3]), None, None],
        type=pa.binary(),
    )
    write_stream(tmp_path / "t.gpkg", "b", iter([Encoded(frame, wkb)]), helper=helper)
    stored = pyogrio.read_dataframe(tmp_path / "t.gpkg", layer="b").geometry.to_numpy()
    expected = frame.geometry.to_numpy().copy()
    expected[3] = given[3]  # as given, not the frame's multi-polygon
    singles = [0, 1, 2, 4, 5]  # from the frame, row 1 too: a polygon in a multi layer
    expected[singles] = shapely.multipolygons(expected[singles].reshape(-1, 1))
    assert shapely.equals_exact(stored, expected, tolerance=0).all()
    assert (shapely.get_type_id(stored) == 6).all()


def test_helper_dying_mid_stream_is_a_storage_error(tmp_path: Path) -> None:
    """The batches go to the helper from a sender thread: when the helper dies after the
    first batch, the write still ends in one clear error and no thread or process stays."""
    import signal
    import threading

    def frames() -> Iterator[gpd.GeoDataFrame]:
        batches = _frames(6)
        yield batches[0]
        for pid in _helpers():
            os.kill(pid, signal.SIGKILL)
        yield from batches[1:]

    with pytest.raises(StorageError, match=r"^cannot write t\.gpkg: ") as caught:
        write_stream(tmp_path / "t.gpkg", "b", frames(), helper=True)
    assert "\n" not in str(caught.value)
    assert _helpers() == []
    assert not [t for t in threading.enumerate() if t.name == "twin-gdalsink"]
