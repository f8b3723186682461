"""A snapshot brought up to date from the change sets equals a full read of the new version.

On both backends: the sample twin (a GeoPackage copy, and the same twin copied
into the session's throwaway PostGIS cluster) is indexed, its buildings are
re-imported twice (features changed, removed, added) and its parcels once,
then :meth:`CityIndex.updated` is compared with :meth:`CityIndex.load` of the
new version: every frame equal (rows, order, dtypes, geometries), the same
answers to bbox, identify and a pipe break's impact, and the untouched layers
shared as they were.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely

import twin
from tests.query.conftest import reimport
from twin.query.delta import LayerDelta, PatchedTree, apply_delta, read_delta
from twin.query.identify import identify
from twin.query.impact import pipe_break_impact
from twin.query.index import CityIndex
from twin.query.live import LiveIndex


def _reimport(city: twin.Twin, layer: str, frame: gpd.GeoDataFrame) -> twin.ImportReport:
    """Re-import ``frame`` (with its uids) as the new delivery of ``layer``."""
    return reimport(city, frame, layer)


def _edited_buildings(city: twin.Twin) -> gpd.GeoDataFrame:
    """The buildings with 3 heights and names changed, 2 removed and 2 added (moved copies)."""
    frame = city.layer("buildings")
    changed = frame.index[[1, 5, 9]]
    frame.loc[changed, "height_m"] = frame.loc[changed, "height_m"].fillna(0) + 4.5
    frame.loc[changed, "name"] = [f"改建 {i}" for i in range(3)]
    added = frame.iloc[[2, 3]].copy()
    added.index = pd.Index(["buildings.NEW-1", "buildings.NEW-2"], name="uid")
    added["geometry"] = added.geometry.translate(0.0, 3.0)
    kept = frame.drop(index=frame.index[[0, 7]])
    return gpd.GeoDataFrame(pd.concat([kept, added]), crs=frame.crs)


def _bbox_answers(snapshot: CityIndex, layer: str, box: tuple[float, ...]) -> list[str]:
    found = snapshot.layer(layer)
    return found.frame.index[found.bbox(box)].tolist()


def test_the_updated_snapshot_equals_a_full_load(target: str | Path) -> None:
    old = CityIndex.load(target)
    city = twin.Twin.open(target)
    first = _reimport(city, "buildings", _edited_buildings(city))
    assert (first.added, first.changed, first.removed) == (2, 3, 2)
    again = city.layer("buildings")
    again.loc[again.index[4], "floors"] = 30  # a second import on top: change sets chain
    assert _reimport(city, "buildings", again).changed == 1
    parcels = city.layer("parcels").iloc[1:]  # another layer: one parcel removed
    assert _reimport(city, "parcels", parcels).removed == 1

    new = old.updated()
    full = CityIndex.load(target)
    assert new.updates["buildings"] == "patched" and new.updates["parcels"] == "patched"
    assert isinstance(new.layer("buildings").tree, PatchedTree)  # 5 rows new of 3,000
    kept = {n for n, how in new.updates.items() if how == "kept"}
    assert kept == set(full.layers) - {"buildings", "parcels"} and "water_pipes" in kept
    assert all(new.layers[n] is old.layers[n] for n in kept)
    assert list(new.layers) == list(full.layers) and new.identity == full.identity
    for name, layer in full.layers.items():
        pd.testing.assert_frame_equal(new.layers[name].frame, layer.frame)
        assert new.layers[name].info == layer.info
        assert shapely.equals_exact(new.layers[name].geometries, layer.geometries).all()
    moved = full.layer("buildings").frame.loc["buildings.NEW-1"].geometry
    assert "buildings.NEW-1" in _bbox_answers(new, "buildings", moved.bounds)
    gone = old.layer("buildings").frame.index[0]
    assert gone not in new.layer("buildings").frame.index
    whole = tuple(full.layer("buildings").frame.total_bounds)
    assert _bbox_answers(new, "buildings", whole) == _bbox_answers(full, "buildings", whole)
    assert len(_bbox_answers(new, "buildings", whole)) == len(old.layer("buildings"))  # -2 +2
    _same_identify(new, full, moved.representative_point())
    _same_identify(new, full, full.layer("parcels").frame.geometry.iloc[0].representative_point())
    _same_impact(new, full)


def _same_identify(new: CityIndex, full: CityIndex, where: shapely.Point) -> None:
    lon, lat = full.from_twin("OGC:CRS84").transform(where.x, where.y)
    ours, theirs = identify(new, lon, lat), identify(full, lon, lat)
    assert [(h.layer, [f["id"] for f in h.features]) for h in ours.layers] == [
        (h.layer, [f["id"] for f in h.features]) for h in theirs.layers
    ]
    assert ours.layers and ours.layers == theirs.layers  # properties and geometries too


def _same_impact(new: CityIndex, full: CityIndex) -> None:
    pipes = full.layer("water_pipes").frame.index
    for pipe in pipes[:: max(len(pipes) // 3, 1)]:
        ours, theirs = pipe_break_impact(new, pipe), pipe_break_impact(full, pipe)
        assert ours.result.summary == theirs.result.summary
        assert ours.result.buildings.index.tolist() == theirs.result.buildings.index.tolist()


def test_a_layer_the_change_sets_cannot_bring_up_to_date_is_read_whole(
    target: str | Path,
) -> None:
    old = CityIndex.load(target)
    city = twin.Twin.open(target)
    roads = city.layer("roads")
    roads.loc[roads.index[:5], "name"] = "新路"  # a quarter of the roads or more
    assert _reimport(city, "roads", roads).changed == 5
    pois = gpd.GeoDataFrame(
        {"code": ["p1"]}, geometry=[city.layer("buildings").geometry.iloc[0].centroid], crs=city.crs
    )
    city.import_frame(pois, layer="pois", kind="poi", id="code")  # a new layer
    new = old.updated(max_share=5 / len(roads) - 1e-9)
    assert new.updates["roads"].startswith("read: 5 features changed, more than")
    assert new.updates["pois"] == "read: a new layer"
    full = CityIndex.load(target)
    for name in ("roads", "pois"):
        pd.testing.assert_frame_equal(new.layer(name).frame, full.layer(name).frame)
    patched = old.updated()  # within the share: patched, and equal all the same
    assert patched.updates["roads"] == "patched"
    pd.testing.assert_frame_equal(patched.layer("roads").frame, full.layer("roads").frame)


def test_a_compact_layer_is_read_again_compact_not_patched(
    sample_twin: twin.Twin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "twin.gpkg"
    shutil.copy(sample_twin.path, path)
    monkeypatch.setenv("TWIN_COMPACT_ABOVE", "1000")  # buildings (3,000) held compact
    old = CityIndex.load(path)
    assert old.layer("buildings").compact and not old.layer("parcels").compact
    city = twin.Twin.open(path)
    assert _reimport(city, "buildings", _edited_buildings(city)).changed == 3
    new = old.updated()
    assert new.updates["buildings"] == "read: held compact"
    assert new.layer("buildings").compact  # read again the way a load reads it
    full = CityIndex.load(path)
    pd.testing.assert_frame_equal(new.layer("buildings").frame, full.layer("buildings").frame)
    assert new.layers["parcels"] is old.layers["parcels"]


def test_a_twin_file_restored_from_elsewhere_is_read_again(tmp_path: Path) -> None:
    city = twin.Twin.create(tmp_path / "a.gpkg", crs="EPSG:4544")
    frame = gpd.GeoDataFrame(
        {"code": ["a", "b", "c"], "levels": [1, 2, 3]},
        geometry=[
            shapely.box(505_700 + 20 * i, 3_392_300, 505_710 + 20 * i, 3_392_310) for i in range(3)
        ],
        crs="EPSG:4544",
    )
    city.import_frame(
        frame, layer="buildings", kind="building", id="code", fields={"levels": "floors"}
    )
    shutil.copy(city.path, tmp_path / "b.gpkg")
    old = CityIndex.load(city.path)
    edited = frame.assign(levels=[1, 5, 3])
    city.import_frame(
        edited, layer="buildings", kind="building", id="code", fields={"levels": "floors"}
    )
    other = twin.Twin.open(tmp_path / "b.gpkg")  # the same start, another second import
    other.import_frame(
        frame.iloc[:2],
        layer="buildings",
        kind="building",
        id="code",
        fields={"levels": "floors"},
        allow_removals=True,
    )
    shutil.copy(tmp_path / "b.gpkg", city.path)
    new = old.updated(max_share=1.0)
    assert new.updates["buildings"] == "patched"  # it follows on from the same import
    assert new.layer("buildings").frame.index.tolist() == ["buildings.a", "buildings.b"]
    elsewhere = twin.Twin.create(tmp_path / "c.gpkg", crs="EPSG:4544")  # another lineage
    for delivery in (frame, edited):
        elsewhere.import_frame(
            delivery, layer="buildings", kind="building", id="code", fields={"levels": "floors"}
        )
    shutil.copy(elsewhere.path, city.path)
    newer = new.updated(max_share=1.0)
    assert newer.updates["buildings"] == "read: its history does not follow on from the snapshot's"
    assert newer.layer("buildings").frame["floors"].tolist() == [1, 5, 3]


def test_apply_delta_refuses_uids_the_change_set_does_not_explain(
    target: str | Path,
) -> None:
    city = twin.Twin.open(target)
    old = city.layer("roads")
    info = city.info("roads")
    delta = read_delta(city, old, info, info)
    assert not isinstance(delta, str) and len(delta.touched) == 0
    pd.testing.assert_frame_equal(apply_delta(old, delta), old)
    for order in (  # uids held by pandas as one Arrow array, as chunks, or as objects
        pd.Index(pd.array(pa.array(delta.order.tolist(), pa.large_string()), dtype="str")),
        pd.Index(pd.array(pa.chunked_array([pa.array(delta.order.tolist())]), dtype="str")),
        pd.Index(np.asarray(delta.order.tolist(), dtype=object)),
    ):
        same = type(delta)(delta.touched, delta.rows, order, delta.imports)
        pd.testing.assert_frame_equal(apply_delta(old, same), old)
    bogus = type(delta)(delta.touched, delta.rows, delta.order[1:], delta.imports)
    assert apply_delta(old, bogus) is None  # a uid gone that no change set removed
    shuffled = type(delta)(delta.touched, delta.rows, delta.order[::-1], delta.imports)
    reordered = apply_delta(old, shuffled)  # a reordered delivery: the stored order wins
    assert reordered is not None and reordered.index.equals(old.index[::-1])


def test_a_live_index_swaps_in_the_patched_snapshot(target: str | Path) -> None:
    live = LiveIndex(target)
    before = live.current()
    city = twin.Twin.open(target)
    _reimport(city, "buildings", _edited_buildings(city))
    assert live.refresh()
    after = live.current()
    assert after.updates["buildings"] == "patched" and after.updates["roads"] == "kept"
    assert after.layers["roads"] is before.layers["roads"]
    heights = after.layer("buildings").frame["height_m"]
    assert np.allclose(
        heights.fillna(-1).to_numpy(), city.layer("buildings")["height_m"].fillna(-1).to_numpy()
    )


def test_a_patched_tree_answers_as_a_tree_over_the_new_geometries() -> None:
    rng = np.random.default_rng(7)
    old = shapely.points(rng.uniform(0, 1000, (3000, 2)))
    boxes = shapely.box(*rng.uniform(0, 1000, (2, 3000)), *rng.uniform(0, 1000, (2, 3000)) + 5)
    geoms = np.concatenate([boxes[:1500], old[1500:]])  # polygons and points
    gone = np.zeros(len(geoms), dtype=bool)
    gone[rng.choice(len(geoms), 150, replace=False)] = True  # changed or removed
    kept = np.flatnonzero(~gone)
    fresh = shapely.box(*rng.uniform(0, 1000, (2, 100)), *rng.uniform(0, 1000, (2, 100)) + 8)
    order = rng.permutation(len(kept) + len(fresh))  # new rows anywhere
    new = np.empty(len(order), dtype=object)
    new[order[: len(kept)]] = geoms[kept]
    new[order[len(kept) :]] = fresh
    old_rows = np.full(len(geoms), -1)
    old_rows[kept] = order[: len(kept)]
    new_rows = np.sort(order[len(kept) :])
    tree = PatchedTree(shapely.STRtree(geoms), old_rows, new_rows, new)
    reference = shapely.STRtree(new)
    probes = shapely.box(*rng.uniform(0, 1000, (2, 40)), *rng.uniform(0, 1000, (2, 40)) + 60)
    for probe in probes:
        for predicate in (None, "intersects", "contains", "within"):
            assert sorted(tree.query(probe, predicate)) == sorted(reference.query(probe, predicate))
        near = tree.query(probe, "dwithin", distance=25.0)
        assert sorted(near) == sorted(reference.query(probe, "dwithin", distance=25.0))
    pairs, expected = tree.query(probes, "intersects"), reference.query(probes, "intersects")
    assert sorted(map(tuple, pairs.T)) == sorted(map(tuple, expected.T)) and len(expected.T) > 100
    assert (tree.query_nearest(probes) == reference.query_nearest(probes)).all()
    assert len(tree) == len(new) and tree.whole() is tree.whole()


def test_uid_order_is_the_order_a_full_read_gives(target: str | Path) -> None:
    city = twin.Twin.open(target)
    ids = ["楼-1", "a'b", 'c,"d"', "e\\f", "ü 2"]
    frame = gpd.GeoDataFrame(
        {"code": ids},
        geometry=[city.layer("buildings").geometry.iloc[i].centroid for i in range(5)],
        crs=city.crs,
    ).iloc[[3, 0, 4, 1, 2]]
    city.import_frame(frame, layer="odd_pois", kind="poi", id="code")
    order = city.store.uid_order("odd_pois")
    assert order.tolist() == city.layer("odd_pois").index.tolist()
    assert order.tolist() == [f"odd_pois.{ids[i]}" for i in (3, 0, 4, 1, 2)]
    assert city.store.uid_order("buildings").equals(city.layer("buildings").index)


@pytest.mark.parametrize("old_chunks", [1, 2])
@pytest.mark.parametrize("order_chunks", [1, 2])
def test_uids_compare_however_arrow_holds_them(old_chunks: int, order_chunks: int) -> None:
    ids = ["a", "b", "c", "d"]

    def index(chunks: int) -> pd.Index:
        parts = [pa.array(ids[:2], pa.large_string()), pa.array(ids[2:], pa.large_string())]
        held = pa.chunked_array(parts) if chunks == 2 else pa.concat_arrays(parts)
        return pd.Index(pd.array(held, dtype="str"), name="uid")

    old = gpd.GeoDataFrame(
        {"h": [1.0, 2.0, 3.0, 4.0]},
        geometry=[shapely.Point(i, 0) for i in range(4)],
        index=index(old_chunks),
    )
    rows = gpd.GeoDataFrame(
        {"h": [9.0]}, geometry=[shapely.Point(1, 1)], index=pd.Index(["b"], name="uid")
    )
    order = index(order_chunks).delete(2)  # c removed, b changed
    patched = apply_delta(old, type_delta(np.array(["b", "c"], dtype=object), rows, order))
    assert patched is not None and patched["h"].to_dict() == {"a": 1.0, "b": 9.0, "d": 4.0}


def type_delta(touched: np.ndarray, rows: gpd.GeoDataFrame, order: pd.Index) -> LayerDelta:
    return LayerDelta(touched, rows, order, [2])
