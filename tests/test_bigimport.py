"""Imports in batches (twin.bigimport) give the one-frame import's result exactly.

Each delivery is imported twice, into two twins: once read whole
(``Twin.import_spec``, below the streaming threshold) and once in batches of a
few features (``import_streamed``), then every stored row, report, change set
and history row is compared.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pytest
import shapely

import twin
from tests.conftest import BUILDING_FIELDS, GK105
from twin.bigimport import import_streamed, streams
from twin.errors import InputDataError, RejectedFeaturesError

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples"
FIELDS = {**BUILDING_FIELDS, "用途": "use"}
BATCH = 23  # features a batch: the 230-feature delivery is read in 10 batches


def _delivery(path: Path, frame: gpd.GeoDataFrame) -> Path:
    pyogrio.write_dataframe(frame, path, layer="buildings", driver="GPKG")
    return path


def _first_delivery() -> gpd.GeoDataFrame:
    """230 sample buildings (CGCS2000 lon/lat) with the faults an import must catch,
    several of them across batch boundaries."""
    frame = pyogrio.read_dataframe(SAMPLE / "buildings.geojson", max_features=230)
    ids = frame["建筑编码"].to_numpy(dtype=object)
    ids[100] = ids[3]  # duplicate of a feature 4 batches earlier
    ids[101] = ids[100]  # and again
    ids[150] = None  # empty id
    ids[151] = "  "  # blank id
    frame["建筑编码"] = ids
    geoms = frame.geometry.to_numpy()
    x, y = shapely.get_coordinates(geoms[60])[0]
    d = 0.0001
    geoms[60] = shapely.Polygon([(x, y), (x + d, y + d), (x + d, y), (x, y + d)])  # bow tie
    geoms[61] = None  # no geometry
    geoms[62] = shapely.Point(x, y)  # wrong type for a building
    frame = frame.set_geometry(gpd.GeoSeries(geoms, crs=frame.crs))
    return frame


def _spec(source: Path, **options: object) -> twin.ImportSpec:
    return twin.ImportSpec(
        source=source, layer="buildings", kind="building", id="建筑编码", fields=FIELDS, **options
    )


def _pair(tmp_path: Path) -> tuple[twin.Twin, twin.Twin]:
    whole = twin.Twin.create(tmp_path / "whole.gpkg", crs=GK105)
    batched = twin.Twin.create(tmp_path / "batched.gpkg", crs=GK105)
    return whole, batched


def _rows(city: twin.Twin, table: str) -> pd.DataFrame:
    """Every stored row of ``table`` in fid order, geometry as WKB, times as text."""
    frame = pyogrio.read_dataframe(city.path, layer=table, fid_as_index=True)
    out = pd.DataFrame(frame.drop(columns="geometry"))
    out["wkb"] = shapely.to_wkb(frame.geometry.to_numpy(), hex=True)
    return out.astype(str)


def _report(report: twin.ImportReport) -> dict[str, object]:
    skip = {"seconds", "time", "checksum"}  # the two twins import at different moments
    return {k: v for k, v in report.to_dict().items() if k not in skip}


def _same_times(left: twin.Twin, right: twin.Twin, table: str, column: str) -> None:
    """Each row's time is the same import's time in both twins (import times differ)."""
    times = []
    for city in (left, right):
        stamps = _rows(city, table)[column]
        imports = city.imports()
        by_time = {pd.Timestamp(t): i for i, t in zip(imports.index, imports["time"], strict=True)}
        times.append([by_time.get(pd.Timestamp(t), t) for t in stamps])
    assert all(isinstance(i, int) for i in times[1])  # every time is an import's time
    assert times[0] == times[1]


def test_first_import_in_batches_equals_whole(tmp_path: Path) -> None:
    source = _delivery(tmp_path / "v1.gpkg", _first_delivery())
    whole, batched = _pair(tmp_path)
    expected = whole.import_spec(_spec(source))
    got = import_streamed(batched, _spec(source), batch_size=BATCH)
    assert _report(got) == _report(expected)
    assert (got.read, got.rejected, got.duplicates, got.repaired) == (230, 6, 2, 1)
    assert [r.row for r in got.rejections] == [62, 63, 101, 102, 151, 152]
    assert "first at row 4" in got.rejections[2].reason
    assert got.checksum == expected.checksum
    left, right = _rows(whole, "buildings"), _rows(batched, "buildings")
    pd.testing.assert_frame_equal(left.drop(columns="valid_from"), right.drop(columns="valid_from"))
    assert len(right) == 224 and right["uid"].is_unique
    _same_times(whole, batched, "buildings", "valid_from")
    _pair_of = (whole, batched)
    info = [dataclasses.replace(c.info("buildings"), created="", updated="") for c in _pair_of]
    assert info[0] == info[1]  # count, extent, geometry type, id field, classification


@pytest.mark.parametrize(
    "helper",
    [False, pytest.param(True, marks=pytest.mark.slow)],  # five helper processes start
    ids=["in-process", "helper-process"],
)
def test_reimport_in_batches_equals_whole(
    tmp_path: Path, helper: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also with GDAL writing the layer and the stored layer's scratch copy in a helper
    process (as batches of 50,000 features and more are)."""
    monkeypatch.setattr("twin.bigimport.HELPER_BATCH", 1 if helper else 10**9)
    monkeypatch.setattr("twin.bigimport.spare_core", lambda: True)  # whatever the load
    v1 = _first_delivery()
    v2 = v1.copy()
    v2.loc[5, "层数"] = 40  # changed attribute (batch 1)
    moved = shapely.affinity.translate(v2.geometry.iloc[120], 0.00001, 0)
    v2.loc[120, "geometry"] = moved  # changed geometry (batch 6)
    v2 = v2.drop(index=[7, 199])  # removed, in two batches
    extra = v1.iloc[[10]].copy()
    extra["建筑编码"] = "NEW-1"
    v2 = gpd.GeoDataFrame(pd.concat([v2, extra], ignore_index=True), crs=v1.crs)
    whole, batched = _pair(tmp_path)
    reports: list[tuple[twin.ImportReport, twin.ImportReport]] = []
    for n, frame in enumerate((v1, v2, v2)):
        source = _delivery(tmp_path / f"v{n}.gpkg", frame)
        spec = _spec(source)
        reports.append(
            (whole.import_spec(spec), import_streamed(batched, _spec(source), batch_size=BATCH))
        )
    for expected, got in reports:
        assert _report(got) == _report(expected)
    second = reports[1][1]
    assert (second.added, second.changed, second.removed) == (1, 2, 2)
    assert (reports[2][1].changed, reports[2][1].unchanged) == (0, 223)
    for n in (1, 2):
        left = whole.changes(reports[n][0].import_id)
        right = batched.changes(reports[n][1].import_id)
        pd.testing.assert_frame_equal(left, right)
    for table in ("buildings", "buildings__history"):
        left, right = _rows(whole, table), _rows(batched, table)
        times = [c for c in ("valid_from", "valid_to") if c in left.columns]
        pd.testing.assert_frame_equal(left.drop(columns=times), right.drop(columns=times))
        for column in times:
            _same_times(whole, batched, table, column)
    assert (
        sorted(_rows(batched, "buildings__history")["change"]) == ["changed"] * 2 + ["removed"] * 2
    )
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp.gpkg")]
    assert leftovers == []  # the scratch copy of the stored layer is gone


def test_geometry_uids_count_on_across_batches(tmp_path: Path) -> None:
    """Without an id, uids hash the geometry; a repeat in a later batch gets ``-2``."""
    frame = _first_delivery().drop(columns="建筑编码").iloc[:60]
    frame = gpd.GeoDataFrame(pd.concat([frame, frame.iloc[[2]]], ignore_index=True), crs=frame.crs)
    source = _delivery(tmp_path / "noid.gpkg", frame)
    whole, batched = _pair(tmp_path)
    spec = twin.ImportSpec(source=source, layer="buildings", kind="building", fields=FIELDS)
    whole.import_spec(spec)
    spec = twin.ImportSpec(source=source, layer="buildings", kind="building", fields=FIELDS)
    import_streamed(batched, spec, batch_size=BATCH)
    uids = _rows(batched, "buildings")["uid"]
    assert uids.tolist() == _rows(whole, "buildings")["uid"].tolist()
    assert uids.iloc[-1] == uids.iloc[2] + "-2"


def test_strict_rejection_in_a_late_batch_writes_nothing(tmp_path: Path) -> None:
    frame = pyogrio.read_dataframe(SAMPLE / "buildings.geojson", max_features=100)
    frame.loc[90, "geometry"] = None  # in the last batch
    source = _delivery(tmp_path / "bad.gpkg", frame)
    _, batched = _pair(tmp_path)
    before = batched.path.read_bytes()
    with pytest.raises(RejectedFeaturesError, match=r"1 of 100 features rejected \(first: row 91"):
        import_streamed(batched, _spec(source, strict=True), batch_size=BATCH)
    assert batched.path.read_bytes() == before


def test_removal_guard_runs_over_the_whole_delivery(tmp_path: Path) -> None:
    frame = pyogrio.read_dataframe(SAMPLE / "buildings.geojson", max_features=100)
    _, batched = _pair(tmp_path)
    import_streamed(batched, _spec(_delivery(tmp_path / "a.gpkg", frame)), batch_size=BATCH)
    half = _delivery(tmp_path / "b.gpkg", frame.iloc[:50])
    with pytest.raises(InputDataError, match="remove 50 of the 100"):
        import_streamed(batched, _spec(half), batch_size=BATCH)
    assert len(batched.layer("buildings")) == 100
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp.gpkg")]


def test_large_sources_stream_small_ones_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``import_spec`` sends a delivery past STREAM_ABOVE features to the batches."""
    source = _delivery(tmp_path / "v1.gpkg", _first_delivery())
    city = twin.Twin.create(tmp_path / "c.gpkg", crs=GK105)
    assert not streams(city, _spec(source))
    assert not streams(city, _spec(SAMPLE / "buildings.geojson"))  # GeoJSON is read whole
    monkeypatch.setattr("twin.bigimport.STREAM_ABOVE", 100)
    monkeypatch.setattr("twin.bigimport.BATCH_SIZE", 50)
    assert streams(city, _spec(source))
    report = city.import_spec(_spec(source))
    assert report.imported == 224
    with sqlite3.connect(city.path) as con:
        (count,) = con.execute("SELECT count(*) FROM buildings").fetchone()
    assert count == 224
    assert np.array_equal(
        np.sort(city.layer("buildings").index.to_numpy()), np.sort(_rows(city, "buildings")["uid"])
    )


# -- indicators by zone over buildings read in batches --------------------------------


@pytest.mark.parametrize("by", ["parcel", "grid"])
def test_indicators_in_batches_equal_whole_layer(
    sample_twin: twin.Twin, by: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bit for bit: the batched sums add piece by piece in the whole layer's order."""
    from twin.zones import indicators_by_zone

    whole = indicators_by_zone(sample_twin, by)
    monkeypatch.setattr("twin.zones.STREAM_ABOVE", 0)
    monkeypatch.setattr("twin.zones.BATCH_SIZE", 170)  # 3,000 buildings: 18 batches
    batched = indicators_by_zone(sample_twin, by)
    pd.testing.assert_frame_equal(pd.DataFrame(batched), pd.DataFrame(whole), check_exact=True)
    assert batched["building_count"].sum() > 2900  # nearly every sample building is counted


def test_building_indicators_in_batches_with_straddlers() -> None:
    """Footprints across zone edges, in different batches, split as in one frame."""
    from twin.indicators import building_indicators, building_indicators_in_batches

    zones = gpd.GeoDataFrame(
        geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)],
        index=["A", "B"],
        crs=GK105,
    )
    rng = np.random.default_rng(7)
    x, y = rng.uniform(0, 190, 400), rng.uniform(0, 90, 400)
    buildings = gpd.GeoDataFrame(
        {
            "floors": rng.integers(1, 30, 400).astype(float),
            "height_m": np.where(rng.random(400) < 0.3, np.nan, rng.uniform(3, 90, 400)),
            "population": rng.integers(0, 200, 400).astype(float),
        },
        geometry=shapely.box(x, y, x + 9.7, y + 9.3),
        crs=GK105,
    )
    buildings.loc[::7, "floors"] = np.nan
    whole = building_indicators(zones, buildings)
    parts = [buildings.iloc[i : i + 37] for i in range(0, 400, 37)]
    batched = building_indicators_in_batches(zones, parts)
    pd.testing.assert_frame_equal(batched, whole, check_exact=True)
    # independent check of the clipped footprint: the areas of the footprints' parts in A
    inside_a = shapely.area(
        shapely.intersection(buildings.geometry.to_numpy(), zones.geometry["A"])
    )
    assert batched.loc["A", "footprint_m2"] == pytest.approx(inside_a.sum())
    assert batched["building_count"].sum() == 400


@pytest.mark.parametrize("layer", ["parcels", "roads", "water_pipes", "grids"])
def test_sample_layers_in_batches_equal_whole(tmp_path: Path, layer: str) -> None:
    """The sample delivery's Shapefile (GBK text), FileGDB and GeoPackage layers, in
    batches of a seventh of the layer: the same rows, report and layer info."""
    from twin.mapping import read_mapping

    spec = read_mapping(SAMPLE / "mapping.yaml")[layer]
    size = pyogrio.read_info(spec.source, layer=spec.source_layer if spec.source_layer else None)[
        "features"
    ]
    whole, batched = _pair(tmp_path)
    expected = whole.import_spec(read_mapping(SAMPLE / "mapping.yaml")[layer])
    got = import_streamed(batched, spec, batch_size=max(size // 7, 1))
    assert _report(got) == _report(expected)
    assert got.imported > 0
    left, right = _rows(whole, layer), _rows(batched, layer)
    pd.testing.assert_frame_equal(left.drop(columns="valid_from"), right.drop(columns="valid_from"))
    info = [dataclasses.replace(c.info(layer), created="", updated="") for c in (whole, batched)]
    assert info[0] == info[1]


def test_write_stream_takes_chunked_arrow_strings(tmp_path: Path) -> None:
    """A batch of more than GDAL's 65,536-row Arrow chunks reads back with chunked text
    columns; the stream writes them as text, every row, in order."""
    from twin.store.files import write_stream

    chunked = pd.arrays.ArrowStringArray(pa.chunked_array([["一", "二"], ["三"]]))
    frames = [
        gpd.GeoDataFrame(
            {"name": pd.Series(chunked), "n": [1, 2, 3]},
            geometry=[shapely.Point(i, i) for i in range(3)],
            crs=GK105,
        ),
        gpd.GeoDataFrame({"name": ["四"], "n": [4]}, geometry=[shapely.Point(9, 9)], crs=GK105),
    ]
    write_stream(tmp_path / "t.gpkg", "t", iter(frames))
    back = pyogrio.read_dataframe(tmp_path / "t.gpkg", layer="t")
    assert back["name"].tolist() == ["一", "二", "三", "四"]
    assert back["n"].tolist() == [1, 2, 3, 4]
    assert shapely.get_x(back.geometry.to_numpy()).tolist() == [0.0, 1.0, 2.0, 9.0]


def test_unchanged_geometries_are_stored_as_read(tmp_path: Path) -> None:
    """A delivery in the twin's CRS: batches keep the WKB GDAL read for every geometry
    no step changed and encode the others (the repaired bow tie); the stored
    GeoPackage geometry blobs are byte for byte the one-frame import's."""
    import pyproj

    from twin.imports import BatchState, prepare_batch
    from twin.io import read_source_batches

    frame = _first_delivery().to_crs(GK105)
    geoms = frame.geometry.to_numpy().copy()
    geoms[10] = shapely.force_3d(geoms[10], 7.5)  # a 3D footprint: ISO Z WKB
    frame = frame.set_geometry(gpd.GeoSeries(geoms, crs=GK105))
    source = _delivery(tmp_path / "local.gpkg", frame)
    data = next(read_source_batches(source, batch_size=100, keep_wkb=True))
    batch = prepare_batch(data, _spec(source), pyproj.CRS(GK105), BatchState())
    assert batch.wkb is not None and len(batch.wkb) == 98  # rows 61 (none) and 62 (point) go
    encoded = np.flatnonzero(batch.wkb.is_null().to_numpy(zero_copy_only=False))
    assert encoded.tolist() == [60]  # the repaired bow tie (row 61 in the delivery)
    as_read = shapely.from_wkb(batch.wkb.to_numpy(zero_copy_only=False))
    kept = np.delete(np.arange(100), [61, 62])
    same = shapely.equals_exact(as_read, shapely.force_2d(geoms[kept]), tolerance=0)
    assert same.sum() == 97 and not same[60]  # every other is the delivery's geometry
    assert shapely.get_coordinates(as_read[10], include_z=True)[0, 2] == 7.5

    whole, batched = _pair(tmp_path)
    whole.import_spec(_spec(source))
    import_streamed(batched, _spec(source), batch_size=BATCH)
    blobs = []
    for city in (whole, batched):
        with sqlite3.connect(city.path) as con:
            blobs.append(con.execute("SELECT fid, geom FROM buildings ORDER BY fid").fetchall())
    assert len(blobs[1]) == 224 and blobs[0] == blobs[1]


def test_duplicate_ids_across_distinct_batches(tmp_path: Path) -> None:
    """Batches whose own ids are all distinct are checked by their hashes: an id seen in
    an earlier batch is still a duplicate, reported at its first row, as read whole."""
    frame = pyogrio.read_dataframe(SAMPLE / "buildings.geojson", max_features=92)
    ids = frame["建筑编码"].to_numpy(dtype=object)
    ids[30] = ids[5]  # batch 1 repeats batch 0 (batches of 23: rows 0-22, 23-45, …)
    ids[80] = ids[50]  # batch 3 repeats batch 2
    frame["建筑编码"] = ids
    source = _delivery(tmp_path / "dups.gpkg", frame)
    whole, batched = _pair(tmp_path)
    expected = whole.import_spec(_spec(source))
    got = import_streamed(batched, _spec(source), batch_size=BATCH)
    assert _report(got) == _report(expected)
    assert (got.duplicates, got.imported) == (2, 90)
    assert [(r.row, r.source_id) for r in got.rejections] == [(31, ids[5]), (81, ids[50])]
    assert "first at row 6" in got.rejections[0].reason
    assert "first at row 51" in got.rejections[1].reason
    left, right = _rows(whole, "buildings"), _rows(batched, "buildings")
    pd.testing.assert_frame_equal(left.drop(columns="valid_from"), right.drop(columns="valid_from"))


def test_ramped_batches_read_the_whole_layer_in_order(tmp_path: Path) -> None:
    """Batch sizes given one by one (small first and last ones, as a helper-process
    import reads them) read every feature once, in order, in those sizes."""
    from twin.io import ramped_sizes, read_source_batches

    frame = pyogrio.read_dataframe(SAMPLE / "buildings.geojson", max_features=230)
    source = _delivery(tmp_path / "all.gpkg", frame)
    sizes = ramped_sizes(230, 80, first=10)
    assert sizes == [10, 20, 40, 10, 80, 40, 20, 10]  # up, the middle (230 - 140), down
    batches = list(read_source_batches(source, batch_size=sizes))
    assert [len(b.frame) for b in batches] == sizes
    ids = pd.concat([b.frame["建筑编码"] for b in batches]).tolist()
    assert ids == frame["建筑编码"].tolist()
