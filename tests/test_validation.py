"""Import reports: what is repaired, what is rejected and why, --strict."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

import twin
from tests.conftest import GK105, X0, Y0, boxes

BOWTIE = shapely.Polygon([(X0, Y0), (X0 + 10, Y0 + 10), (X0 + 10, Y0), (X0, Y0 + 10)])


def _write(frame: gpd.GeoDataFrame, path: Path) -> Path:
    frame.to_file(path)
    return path


def test_report_counts_and_reasons(city: twin.Twin, tmp_path: Path) -> None:
    geoms = boxes(7)
    geoms[1] = BOWTIE  # invalid: repaired
    geoms[2] = shapely.Polygon()  # empty: rejected
    geoms[3] = None  # null: rejected
    geoms[4] = shapely.LineString([(X0, Y0), (X0 + 5, Y0)])  # wrong type for a building
    frame = gpd.GeoDataFrame(
        {"id": ["a", "b", "c", "d", "e", "f", "a"], "floors": [3, 2, 1, 1, 1, -2, 4]},
        geometry=geoms,
        crs=GK105,
    )
    src = tmp_path / "b.geojson"
    frame.to_file(src)
    report = city.import_layer(src, layer="buildings", kind="building", id="id")
    assert (report.read, report.imported, report.repaired, report.rejected) == (7, 2, 1, 5)
    assert report.duplicates == 1
    reasons = {r.row: r.reason for r in report.rejections}
    assert reasons == {
        3: "empty geometry",
        4: "no geometry",
        5: "a LineString does not fit kind building (polygon)",
        6: "floors=-2 is below 0",
        7: "duplicate id 'a' (first at row 1)",
    }
    assert city.layer("buildings").index.tolist() == ["buildings.a", "buildings.b"]
    repaired = city.layer("buildings").geometry.loc["buildings.b"]
    assert repaired.is_valid
    # make_valid keeps both triangles of the bowtie (buffer(0) would silently drop one).
    assert repaired.area == pytest.approx(50) and repaired.geom_type == "MultiPolygon"
    stored = city.imports().iloc[-1]
    assert stored["n_rejected"] == 5 and len(stored["report"]["rejections"]) == 5


def test_impossible_values(city: twin.Twin, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {
            "id": ["v1", "v2", "v3", "v4"],
            "status": ["open", "half", "Closed", "INOPERABLE"],
            "diameter_mm": ["300", "abc", "200", "-5"],
        },
        geometry=[shapely.Point(X0 + i, Y0) for i in range(4)],
        crs=GK105,
    )
    report = city.import_layer(
        _write(frame, tmp_path / "v.gpkg"), layer="valves", kind="valve", id="id"
    )
    assert [(r.row, r.reason) for r in report.rejections] == [
        (2, "status='half' is not one of open, closed, inoperable"),
        (4, "diameter_mm='-5' is below 0"),
    ]
    assert city.layer("valves")["status"].tolist() == ["open", "closed"]


def test_missing_required_field_names_the_fix(city: twin.Twin, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"id": ["p1"]}, geometry=[shapely.LineString([(X0, Y0), (X0 + 1, Y0)])], crs=GK105
    )
    src = _write(frame, tmp_path / "p.gpkg")
    with pytest.raises(twin.SchemaError, match=r"needs field 'network'.*set=\{'network': VALUE\}"):
        city.import_layer(src, layer="pipes", kind="pipe", id="id")
    report = city.import_layer(src, layer="pipes", kind="pipe", id="id", set={"network": "water"})
    assert report.imported == 1 and city.layer("pipes")["network"].tolist() == ["water"]


def test_mapped_field_missing_from_source(city: twin.Twin, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"id": ["b1"]}, geometry=boxes(1), crs=GK105)
    src = _write(frame, tmp_path / "b.gpkg")
    with pytest.raises(twin.SchemaError, match=r"field '层数'.*its fields are: id"):
        city.import_layer(src, layer="b", kind="building", id="id", fields={"层数": "floors"})
    with pytest.raises(twin.SchemaError, match=r"id field 'code' is not in b\.gpkg"):
        city.import_layer(src, layer="b", kind="building", id="code")


def test_valve_status_defaults_to_open_with_a_warning(city: twin.Twin, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"id": ["v1"]}, geometry=[shapely.Point(X0, Y0)], crs=GK105)
    report = city.import_layer(
        _write(frame, tmp_path / "v.gpkg"), layer="valves", kind="valve", id="id"
    )
    assert city.layer("valves")["status"].tolist() == ["open"]
    assert report.warnings == ["no status field: every feature set to 'open'"]


def test_strict_import_writes_nothing(city: twin.Twin, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"id": ["a", "b"], "floors": [1, -1]}, geometry=boxes(2), crs=GK105)
    src = _write(frame, tmp_path / "b.gpkg")
    before = city.path.read_bytes()
    with pytest.raises(
        twin.RejectedFeaturesError, match=r"1 of 2 features rejected.*row 2"
    ) as info:
        city.import_layer(src, layer="buildings", kind="building", id="id", strict=True)
    assert info.value.report.rejected == 1
    assert city.path.read_bytes() == before


def test_uids_without_source_id_are_stable_geometry_hashes(city: twin.Twin, tmp_path: Path) -> None:
    geoms = boxes(3)
    frame = gpd.GeoDataFrame({"floors": [1, 2, 3]}, geometry=[*geoms[:2], geoms[0]], crs=GK105)
    src = _write(frame, tmp_path / "b.gpkg")
    city.import_layer(src, layer="buildings", kind="building")
    first = city.layer("buildings").index.tolist()
    assert first[0] + "-2" == first[2]  # same footprint twice: told apart
    assert len(set(first)) == 3 and all(u.startswith("buildings.g") for u in first)
    report = city.import_layer(src, layer="buildings", kind="building")
    assert city.layer("buildings").index.tolist() == first
    assert (report.added, report.changed, report.removed, report.unchanged) == (0, 0, 0, 3)


def test_source_fields_named_like_bookkeeping_are_kept(city: twin.Twin, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"id": ["a"], "uid": ["X-1"], "valid_from": ["2001"]}, geometry=boxes(1), crs=GK105
    )
    report = city.import_layer(
        _write(frame, tmp_path / "b.gpkg"), layer="b", kind="building", id="id"
    )
    layer = city.layer("b")
    assert layer["src_uid"].tolist() == ["X-1"] and layer["src_valid_from"].tolist() == ["2001"]
    assert "uid -> src_uid" in report.warnings[0]


def test_numeric_ids_make_clean_uids(city: twin.Twin, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"id": pd.array([7, 12], dtype="float64")}, geometry=boxes(2), crs=GK105
    )
    city.import_layer(_write(frame, tmp_path / "b.gpkg"), layer="b", kind="building", id="id")
    assert city.layer("b").index.tolist() == ["b.7", "b.12"]


def test_id_field_that_is_also_renamed(city: twin.Twin, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"街道代码": ["510104001", "510104002"], "街道名称": ["甲", "乙"]},
        geometry=boxes(2),
        crs=GK105,
    )
    city.import_layer(
        _write(frame, tmp_path / "d.gpkg"),
        layer="districts",
        kind="district",
        id="街道代码",
        fields={"街道代码": "district_code", "街道名称": "name"},
    )
    layer = city.layer("districts")
    assert layer.index.tolist() == ["districts.510104001", "districts.510104002"]
    assert layer["district_code"].tolist() == ["510104001", "510104002"]
    assert city.info("districts").id_field == "district_code"


@pytest.mark.parametrize("as_text", [False, True], ids=["numbers", "text"])
def test_non_finite_and_huge_numbers_are_rejected_not_crashed(
    city: twin.Twin, tmp_path: Path, as_text: bool
) -> None:
    """Every class of number a delivery can hold, in an int field (floors) and a float
    field (height_m): finite ones pass, NaN is blank, ±inf and whole numbers past 2**53
    are rejected with their reason (they used to raise OverflowError)."""
    floors = [3.0, float("nan"), float("inf"), float("-inf"), 1e308, 2.0**60, 7.0, 4.0]
    heights = [9.5, 6.0, 3.0, 3.0, 3.0, 3.0, float("inf"), 1e308]
    frame = gpd.GeoDataFrame(
        {
            "id": [f"b{i}" for i in range(8)],
            "floors": [str(v) for v in floors] if as_text else floors,
            "height_m": [str(v) for v in heights] if as_text else heights,
        },
        geometry=boxes(8),
        crs=GK105,
    )
    src = _write(frame, tmp_path / "b.gpkg")
    report = city.import_layer(src, layer="buildings", kind="building", id="id")
    reasons = {r.row: r.reason for r in report.rejections}
    shown = (lambda v: f"'{v}'") if as_text else str  # text values are quoted
    assert reasons == {  # rows count from 1, as a delivery's rows are shown to users
        3: f"floors={shown('inf')} is not a finite number",
        4: f"floors={shown('-inf')} is not a finite number",
        5: f"floors={shown('1e+308')} is too large for a whole number",
        6: f"floors={shown('1.152921504606847e+18')} is too large for a whole number",
        7: f"height_m={shown('inf')} is not a finite number",
    }
    stored = city.layer("buildings").sort_index()
    assert list(stored.index) == ["buildings.b0", "buildings.b1", "buildings.b7"]
    assert stored["floors"].tolist()[0] == 3 and pd.isna(stored["floors"].tolist()[1])
    assert stored["height_m"].tolist() == [9.5, 6.0, 1e308]
