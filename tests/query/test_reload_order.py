"""A reload predicts a re-imported layer's stored order from the change sets.

Every import records a digest of its uids in stored order (``twin_meta``,
:mod:`twin.store.order`); :meth:`CityIndex.updated` predicts the new order
(removed uids out, changed ones in place, added ones at the end), and reads the
stored order only when the digest says the delivery moved features. Either way
the snapshot equals a full load of the new version, on both backends, after one
import and after two chained ones; the service's GeoJSON texts of a patched
layer are carried over from the older layer and equal freshly written ones.
"""

from __future__ import annotations

import shutil
import weakref
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely

import twin
from tests.query.conftest import reimport
from twin.bigimport import import_streamed
from twin.errors import FeatureNotFoundError
from twin.query.delta import CARRY_LIMIT, CarriedArray, Lineage, read_delta
from twin.query.index import CityIndex
from twin.query.live import LiveIndex
from twin.query.urgency import urgent
from twin.store.order import order_key, order_value, uid_digest
from twin_api import geojson


def _reimport(city: twin.Twin, frame: gpd.GeoDataFrame) -> twin.ImportReport:
    return reimport(city, frame)


def _edited(frame: gpd.GeoDataFrame, tag: str) -> gpd.GeoDataFrame:
    """4 buildings renamed, 2 removed (rows 0 and 7), 2 added at the end (moved copies)."""
    frame = frame.copy()
    changed = frame.index[[1, 5, 9, 20]]
    frame.loc[changed, "name"] = [f"{tag} {i}" for i in range(4)]
    added = frame.iloc[[2, 3]].copy()
    added.index = pd.Index([f"buildings.{tag}-1", f"buildings.{tag}-2"], name="uid")
    added["geometry"] = added.geometry.translate(0.0, 3.0)
    kept = frame.drop(index=frame.index[[0, 7]])
    return gpd.GeoDataFrame(pd.concat([kept, added]), crs=frame.crs)


def _assert_same(new: CityIndex, full: CityIndex) -> None:
    for name, layer in full.layers.items():
        pd.testing.assert_frame_equal(new.layers[name].frame, layer.frame)
        assert shapely.equals_exact(new.layers[name].geometries, layer.geometries).all()


def test_every_import_records_the_digest_of_its_stored_order(target: str | Path) -> None:
    city = twin.Twin.open(target)
    shuffled = city.layer("buildings").sample(frac=1.0, random_state=3)
    report = _reimport(city, _edited(shuffled, "乱序"))
    recorded = city.store.meta()[order_key("buildings")]
    stored = city.store.uid_order("buildings")
    assert recorded == order_value(report.import_id, stored)
    assert recorded.split(":")[1] == str(len(stored)) == str(city.info("buildings").feature_count)
    assert recorded != order_value(report.import_id, stored[::-1])


def test_a_streamed_import_records_the_digest_of_its_stored_order(tmp_path: Path) -> None:
    city = twin.Twin.create(tmp_path / "c.gpkg", crs="EPSG:4544")
    spec = twin.ImportSpec(
        source=Path("data/samples/networks.gpkg"),
        layer="valves",
        kind="valve",
        id="valve_id",
        source_layer="valves",
    )
    for _ in range(2):  # a first import, then a re-import compared batch by batch
        report = import_streamed(city, spec, batch_size=50)
        stored = city.store.uid_order("valves")
        assert len(stored) > 100  # several batches
        assert city.store.meta()[order_key("valves")] == order_value(report.import_id, stored)


def test_an_order_keeping_delivery_is_patched_from_a_predicted_order(target: str | Path) -> None:
    old = CityIndex.load(target)
    city = twin.Twin.open(target)
    report = _reimport(city, _edited(city.layer("buildings"), "一"))
    assert (report.added, report.changed, report.removed) == (2, 4, 2)
    delta = read_delta(
        city, old.layer("buildings").frame, old.layer("buildings").info, city.info("buildings")
    )
    assert not isinstance(delta, str) and delta.positions is not None  # no order read
    assert delta.order.equals(city.store.uid_order("buildings"))
    second = city.layer("buildings")  # a second import on top: the change sets chain
    _reimport(city, _edited(second, "二"))
    new = old.updated()
    full = CityIndex.load(target)
    assert new.updates["buildings"] == "patched"
    _assert_same(new, full)
    layer = new.layer("buildings")
    assert layer.uids[-4:].tolist() == [f"buildings.{t}-{i}" for t in "一二" for i in (1, 2)]
    gone = old.layer("buildings").uids[[0, 7]]
    assert not layer.uids.isin(gone).any()
    assert layer.frame.loc[second.index[1], "name"] == "二 0"
    assert layer.lookup is not None and layer.lookup.depth == 1  # one patch for two imports
    assert [layer.position(uid) for uid in full.layer("buildings").uids] == list(range(len(layer)))
    for uid in [*gone, "buildings.none"]:
        with pytest.raises(FeatureNotFoundError, match="has no feature"):
            layer.position(uid)
    again = new.updated()  # nothing new: the same layer, its lookup as it was
    assert again.layer("buildings") is layer


def test_a_delivery_that_moves_features_is_read_in_its_stored_order(target: str | Path) -> None:
    old = CityIndex.load(target)
    city = twin.Twin.open(target)
    frame = city.layer("buildings")
    moved = pd.concat([frame.iloc[10:], frame.iloc[:10]])  # the first ten now last
    _reimport(city, _edited(gpd.GeoDataFrame(moved, crs=frame.crs), "移"))
    delta = read_delta(
        city, old.layer("buildings").frame, old.layer("buildings").info, city.info("buildings")
    )
    assert not isinstance(delta, str) and delta.positions is None  # the order was read
    new = old.updated()
    assert new.updates["buildings"] == "patched"
    _assert_same(new, CityIndex.load(target))
    first_ten = [uid for uid in frame.index[:10] if uid not in moved.index[[0, 7]]]
    expected = [*frame.index[10:].drop(moved.index[[0, 7]]), *first_ten]
    assert new.layer("buildings").uids.tolist() == [*expected, "buildings.移-1", "buildings.移-2"]


def test_a_patched_layers_geojson_texts_are_carried_and_equal_fresh_ones(
    sample_twin: twin.Twin, tmp_path: Path
) -> None:
    path = tmp_path / "twin.gpkg"
    shutil.copy(sample_twin.path, path)
    live = LiveIndex(path)
    before = live.current()
    started = geojson.prepare_geometry_texts(before)
    assert started is not None
    started.join()
    city = twin.Twin.open(path)
    _reimport(city, _edited(city.layer("buildings"), "文"))
    with urgent() as raised:  # what the reload does: it may run nicer than requests
        assert live.refresh()
    assert isinstance(raised, bool)
    after = live.current()
    layer = after.layer("buildings")
    assert layer.lineage is not None and layer.lineage.base() is before.layer("buildings")
    assert len(layer.lineage.read_rows) == 6  # 4 changed, 2 added
    thread = geojson.prepare_geometry_texts(after)
    assert thread is not None
    thread.join()
    carried = geojson.geometry_texts(layer)
    full = CityIndex.load(path)
    fresh = geojson.prepare_geometry_texts(full)
    assert fresh is not None
    fresh.join()
    expected = geojson.geometry_texts(full.layer("buildings"))
    assert isinstance(carried, CarriedArray) and isinstance(expected, pa.Array)
    assert carried.base is geojson.geometry_texts(before.layer("buildings"))  # not copied
    assert carried.whole().equals(expected) and len(carried) == len(full.layer("buildings"))
    moved = layer.position("buildings.文-1")
    assert carried.take([moved]).equals(expected.take([moved]))
    assert carried.take([moved])[0].as_py() != carried.base[2].as_py()  # moved 3 m from row 2
    rows = np.array([moved, 0, 5, len(layer) - 1, 5])
    out = geojson.OutputCrs.of(geojson.CRS84)
    page = geojson.dumps(geojson.feature_dicts(layer, rows, after, out))
    assert page == geojson.dumps(geojson.feature_dicts(full.layer("buildings"), rows, full, out))


def test_a_carried_array_follows_chained_patches_and_is_made_whole_past_its_limit() -> None:
    base = pa.array([f"v{i}" for i in range(100)])
    truth = base.to_pylist()
    carried: pa.Array | CarriedArray = base
    rng = np.random.default_rng(5)
    for step in range(6):  # each patch: 3 rows removed, 2 changed in place, 2 added at the end
        n = len(truth)
        gone = set(rng.choice(n, 3, replace=False).tolist())
        kept = [i for i in range(n) if i not in gone]
        changed = set(rng.choice(len(kept), 2, replace=False).tolist())
        positions = np.array([*kept, 0, 0])
        values, read = [truth[i] for i in kept] + ["", ""], []
        for slot in [*sorted(changed), len(kept), len(kept) + 1]:
            positions[slot] = n + len(read)
            values[slot] = f"s{step}r{len(read)}"
            read.append(values[slot])
        lineage = Lineage(weakref.ref(carried), positions, n)
        assert lineage.read_rows.tolist() == [*sorted(changed), len(kept), len(kept) + 1]
        carried = lineage.carry(carried, pa.array(read))
        truth = values
        assert carried.take(np.arange(len(truth))).to_pylist() == truth
        assert carried.whole().to_pylist() == truth
        assert carried.base is base or step >= 2  # the first base, until past CARRY_LIMIT
    assert len(carried.extra) <= CARRY_LIMIT * len(carried.base) + 4


def test_the_digest_tells_orders_and_batches_apart() -> None:
    uids = np.array([f"buildings.{i}" for i in range(1000)], dtype=object)
    assert uid_digest(uids) == uid_digest(pd.Index(pd.array(uids, dtype="str")))
    assert uid_digest(uids) != uid_digest(uids[::-1])
    assert uid_digest(["ab", "c"]) != uid_digest(["a", "bc"])  # same bytes, other uids
    with pytest.raises(ValueError, match="uid is missing"):
        uid_digest(pd.array(["a", None], dtype="str"))
