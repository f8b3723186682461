"""A PostGIS re-import records the rows its readers need; a reload reads that one value.

The importer writes, in its transaction, the added and changed rows as
``Twin.features`` reads them and where each row of the layer now comes from
(``twin_delta_rows``). A snapshot one import behind takes them from there (no
per-row read); the result must equal a full load of the new version row for
row and dtype for dtype, after added, changed, removed and reordered features;
a snapshot two imports behind, a twin copied in (no rows recorded) and a
GeoPackage twin take the old path, with the same answer.
"""

from __future__ import annotations

import threading
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely

import twin
from tests.query.conftest import reimport
from twin.query.delta import predicted, read_delta
from twin.query.index import CityIndex
from twin.settings import MAX_CHANGED_SHARE
from twin.store.order import order_key
from twin.store.pgsession import delta_positions
from twin.store.pgtest import TempCluster
from twin.store.transfer import copy_twin


def _edited(frame: gpd.GeoDataFrame, tag: str, *, moved: bool = False) -> gpd.GeoDataFrame:
    """5 buildings changed (3 renamed, 1 taller, 1 moved 2 m), rows 0 and 7 removed, 3 added
    at the end; ``moved``: the first ten rows delivered last."""
    frame = frame.copy()
    frame.loc[frame.index[[1, 5, 9]], "name"] = [f"{tag} {i}" for i in range(3)]
    frame.loc[frame.index[12], "height_m"] = 99.5
    frame.loc[frame.index[20], "geometry"] = shapely.affinity.translate(
        frame.geometry.iloc[20], 2.0, 0.0
    )
    added = frame.iloc[[2, 3, 4]].copy()
    added.index = pd.Index([f"buildings.{tag}-{i}" for i in range(3)], name="uid")
    added["geometry"] = added.geometry.translate(0.0, 3.0)
    kept = frame.drop(index=frame.index[[0, 7]])
    if moved:
        kept = pd.concat([kept.iloc[10:], kept.iloc[:10]])
    return gpd.GeoDataFrame(pd.concat([kept, added]), crs=frame.crs)


def _assert_same(new: CityIndex, full: CityIndex) -> None:
    for name, layer in full.layers.items():
        pd.testing.assert_frame_equal(new.layers[name].frame, layer.frame)
        assert shapely.equals_exact(new.layers[name].geometries, layer.geometries).all()


@pytest.fixture
def pg_twin(pg_cluster: TempCluster, sample_twin: twin.Twin, request: pytest.FixtureRequest) -> str:
    url = pg_cluster.url(schema=f"delta_rows_{request.node.name[-12:].strip('[]_')}".lower())
    copy_twin(sample_twin.path, url, overwrite=True)
    return url


@pytest.mark.parametrize("moved", [False, True], ids=["kept-order", "moved"])
def test_the_recorded_rows_equal_a_read_of_the_touched_features(pg_twin: str, moved: bool) -> None:
    city = twin.Twin.open(pg_twin)
    before = city.layer("buildings")
    base = city.info("buildings").last_import
    assert city.delta_rows("buildings", base, base - 1) is None  # copied in: none recorded
    report = reimport(city, _edited(before, "记", moved=moved))
    assert (report.added, report.changed, report.removed) == (3, 5, 2)
    found = city.delta_rows("buildings", report.import_id, base)
    assert found is not None
    rows, positions = found
    changes = city.store.layer_changes("buildings", base)
    read = changes.loc[changes["change"] != "removed", "uid"]
    pd.testing.assert_frame_equal(rows, city.features("buildings", read))
    after = city.layer("buildings")
    if moved:  # the order cannot be predicted: the reader reads it
        assert len(positions) == 0
    else:  # independently: each uid's row in the old layer, else among the rows read
        expected = [
            len(before) + rows.index.get_loc(uid) if uid in set(read) else before.index.get_loc(uid)
            for uid in after.index
        ]
        assert positions.tolist() == expected
        guess = predicted(
            before.index,
            changes,
            rows.index,
            city.store.meta()[order_key("buildings")],
            report.import_id,
        )
        assert guess is not None and np.array_equal(guess[1], positions)
    assert city.delta_rows("buildings", report.import_id, base - 1) is None  # another base


@pytest.mark.parametrize("moved", [False, True], ids=["kept-order", "moved"])
def test_a_reload_one_import_behind_equals_a_full_load(pg_twin: str, moved: bool) -> None:
    old = CityIndex.load(pg_twin)
    city = twin.Twin.open(pg_twin)
    reimport(city, _edited(city.layer("buildings"), "一", moved=moved))
    layer = old.layer("buildings")
    delta = read_delta(city, layer.frame, layer.info, city.info("buildings"))
    assert not isinstance(delta, str)
    assert (delta.positions is None) == moved
    assert sorted(delta.touched) == sorted(
        city.store.layer_changes("buildings", layer.info.last_import)["uid"]
    )
    new = old.updated()
    full = CityIndex.load(pg_twin)
    assert new.updates["buildings"] == "patched"
    _assert_same(new, full)
    frame = new.layer("buildings").frame
    assert frame.loc[layer.frame.index[[1, 5, 9]], "name"].tolist() == ["一 0", "一 1", "一 2"]
    assert frame.loc[layer.frame.index[12], "height_m"] == 99.5
    assert frame.index[-3:].tolist() == [f"buildings.一-{i}" for i in range(3)]
    second = new.updated()  # nothing new
    assert second.layer("buildings") is new.layer("buildings")


def test_a_reload_one_import_behind_does_not_read_the_layer_table(pg_twin: str) -> None:
    """With the layer's table locked by another transaction, the reload still finishes:
    it reads the recorded rows, not the table (the old path waits for the lock)."""
    old = CityIndex.load(pg_twin)
    city = twin.Twin.open(pg_twin)
    reimport(city, _edited(city.layer("buildings"), "锁"))
    layer, info = old.layer("buildings"), city.info("buildings")
    result: list[object] = []
    with psycopg.connect(city.store.conninfo) as other:
        other.execute(f"LOCK TABLE {city.store.schema}.buildings IN ACCESS EXCLUSIVE MODE")
        reader = threading.Thread(
            target=lambda: result.append(read_delta(city, layer.frame, layer.info, info))
        )
        reader.start()
        reader.join(timeout=30)
        finished = not reader.is_alive()
    reader.join()
    assert finished
    assert len(result) == 1 and not isinstance(result[0], str)


def test_two_imports_behind_and_a_geopackage_take_the_old_path(
    pg_twin: str, tmp_path: Path
) -> None:
    old = CityIndex.load(pg_twin)
    city = twin.Twin.open(pg_twin)
    base = city.info("buildings").last_import
    first = reimport(city, _edited(city.layer("buildings"), "甲"))
    assert city.delta_rows("buildings", first.import_id, base) is not None
    second = reimport(city, _edited(city.layer("buildings"), "乙"))
    assert city.delta_rows("buildings", first.import_id, base) is None  # replaced
    assert city.delta_rows("buildings", second.import_id, first.import_id) is not None
    new = old.updated()
    assert new.updates["buildings"] == "patched"
    _assert_same(new, CityIndex.load(pg_twin))
    path = tmp_path / "back.gpkg"  # copied out and in again: the copies hold no rows
    copy_twin(pg_twin, path)
    copied = twin.Twin.open(path)
    assert copied.delta_rows("buildings", second.import_id, first.import_id) is None
    again = pg_twin.replace("delta_rows_", "delta_back_")
    copy_twin(path, again, overwrite=True)
    assert twin.Twin.open(again).delta_rows("buildings", second.import_id, first.import_id) is None
    pd.testing.assert_frame_equal(twin.Twin.open(again).layer("buildings"), city.layer("buildings"))


def test_a_re_import_changing_most_of_a_layer_records_no_rows(pg_twin: str) -> None:
    old = CityIndex.load(pg_twin)
    city = twin.Twin.open(pg_twin)
    frame = city.layer("buildings")
    share = MAX_CHANGED_SHARE + 0.05
    renamed = frame.index[: int(share * len(frame))]
    frame.loc[renamed, "name"] = [f"改 {i}" for i in range(len(renamed))]
    base = city.info("buildings").last_import
    report = reimport(city, frame)
    assert report.changed == len(renamed) > MAX_CHANGED_SHARE * len(frame)
    assert city.delta_rows("buildings", report.import_id, base) is None
    new = old.updated()
    assert new.updates["buildings"].startswith("read: ")
    _assert_same(new, CityIndex.load(pg_twin))


def test_rows_recorded_before_the_table_changed_columns_are_not_used(pg_twin: str) -> None:
    city = twin.Twin.open(pg_twin)
    base = city.info("buildings").last_import
    report = reimport(city, _edited(city.layer("buildings"), "列"))
    assert city.delta_rows("buildings", report.import_id, base) is not None
    with psycopg.connect(city.store.conninfo) as other:
        other.execute(f"ALTER TABLE {city.store.schema}.buildings ADD COLUMN extra text")
    assert city.delta_rows("buildings", report.import_id, base) is None


def test_delta_positions_places_each_uid() -> None:
    old = ["a", "b", "c", "d"]
    new = ["d", "b", "e", "a"]  # c removed, b changed, e added, the rest moved
    assert delta_positions(old, new, ["b", "e"]).tolist() == [3, 4, 5, 0]
    with pytest.raises(twin.StorageError, match="neither in the old one nor read"):
        delta_positions(old, ["x"], [])
