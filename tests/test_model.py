"""Creating and opening twins, CRS choice, layer metadata."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely

import twin
from tests.conftest import BUILDING_FIELDS, GK105, buildings_frame


def test_create_with_explicit_crs(city: twin.Twin) -> None:
    assert city.crs is not None and city.crs.to_epsg() == 4544
    assert city.layers == []


def test_auto_crs_is_chosen_at_first_import_from_longitude(tmp_path: Path) -> None:
    city = twin.Twin.create(tmp_path / "auto.gpkg")
    assert city.crs is None and city.crs_text == "auto"
    src = tmp_path / "pt.geojson"
    # Beijing, 116.4E: CGCS2000 3-degree GK zone CM 117E is EPSG:4548 (4534 + (117-75)/3).
    gpd.GeoDataFrame({"id": ["p1"]}, geometry=[shapely.Point(116.4, 39.9)], crs=4490).to_file(src)
    city.import_layer(src, layer="pois", kind="poi", id="id")
    assert twin.Twin.open(city.path).crs.to_epsg() == 4548
    frame = city.layer("pois")
    assert frame.crs.to_epsg() == 4548
    # CM 117E, false easting 500 km: 116.4E lies ~51 km west of the meridian.
    assert 440_000 < frame.geometry.iloc[0].x < 460_000


def test_geographic_twin_crs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(twin.CRSError, match="projected"):
        twin.Twin.create(tmp_path / "x.gpkg", crs="EPSG:4490")
    assert not (tmp_path / "x.gpkg").exists()


def test_unknown_crs_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(twin.CRSError, match="EPSG:99999"):
        twin.Twin.create(tmp_path / "x.gpkg", crs="EPSG:99999")


def test_create_refuses_to_overwrite(city: twin.Twin) -> None:
    with pytest.raises(twin.TwinExistsError, match="overwrite=True"):
        twin.Twin.create(city.path)


def test_open_missing_twin(tmp_path: Path) -> None:
    with pytest.raises(twin.TwinNotFoundError, match=r"Twin\.create\("):
        twin.Twin.open(tmp_path / "nope.gpkg")


def test_layer_metadata(city: twin.Twin, tmp_path: Path) -> None:
    src = tmp_path / "b.gpkg"
    frame = buildings_frame(4)
    frame.to_file(src)
    city.import_layer(
        src, layer="buildings", kind="building", id="建筑编码", fields=BUILDING_FIELDS
    )
    info = city.info("buildings")
    assert (info.kind, info.category, info.classification) == (
        "building",
        "spatio_temporal_base",
        "public",
    )
    assert info.category_zh == "时空基础"
    assert info.feature_count == 4 and info.id_field == "建筑编码"
    assert info.extent == pytest.approx(tuple(frame.total_bounds))
    layer = city.layer("buildings")
    assert layer.index.name == "uid"
    assert str(layer["floors"].dtype) == "Int64"
    assert layer["name"].tolist() == ["0号楼", "1号楼", "2号楼", "3号楼"]


def test_unknown_layer_lists_the_layers(city: twin.Twin) -> None:
    with pytest.raises(twin.LayerNotFoundError, match="no layer 'roads'"):
        city.layer("roads")


def test_restricted_kinds_and_camera_layers(city: twin.Twin, tmp_path: Path) -> None:
    pts = gpd.GeoDataFrame(
        {"id": ["c1", "s1"], "sensor_type": ["camera", "smoke"]},
        geometry=[shapely.Point(505_700, 3_392_300), shapely.Point(505_710, 3_392_300)],
        crs=GK105,
    )
    pts.to_file(tmp_path / "s.gpkg")
    report = city.import_layer(tmp_path / "s.gpkg", layer="sensors", kind="sensor", id="id")
    assert city.info("sensors").classification == "restricted"
    assert any("camera" in w for w in report.warnings)
    pts.iloc[[1]].to_file(tmp_path / "smoke.gpkg")
    city.import_layer(tmp_path / "smoke.gpkg", layer="smoke", kind="sensor", id="id")
    assert city.info("smoke").classification == "internal"
    assert twin.get_kind("pipe").classification.value == "restricted"
    assert twin.get_kind("valve").classification.value == "restricted"


def test_kind_cannot_change_on_reimport(city: twin.Twin, tmp_path: Path) -> None:
    src = tmp_path / "b.gpkg"
    buildings_frame(2).to_file(src)
    city.import_layer(src, layer="things", kind="building", id="建筑编码")
    with pytest.raises(twin.UsageError, match="kind='building'"):
        city.import_layer(src, layer="things", kind="parcel", id="建筑编码")


@pytest.mark.parametrize("name", ["Buildings", "建筑", "a__b", "twin_x", "1abc", "a-b"])
def test_bad_layer_names(city: twin.Twin, tmp_path: Path, name: str) -> None:
    src = tmp_path / "b.gpkg"
    buildings_frame(1).to_file(src)
    with pytest.raises(twin.UsageError, match="layer name"):
        city.import_layer(src, layer=name, kind="building")


def test_import_frame_is_an_import_like_any_other(city: twin.Twin) -> None:
    frame = buildings_frame(3).to_crs(4490)
    report = city.import_frame(
        frame,
        layer="buildings",
        kind="building",
        id="建筑编码",
        fields=BUILDING_FIELDS,
        source="survey 2026-05 (notebook)",
    )
    assert (report.read, report.imported, report.source_format) == (3, 3, "geodataframe")
    assert report.checksum.startswith("frame-sha256:")
    assert city.layer("buildings").crs.to_epsg() == 4544
    assert city.imports().iloc[-1]["source"] == "survey 2026-05 (notebook)"
    frame.loc[0, "层数"] = 8
    again = city.import_frame(
        frame, layer="buildings", kind="building", id="建筑编码", fields=BUILDING_FIELDS
    )
    assert (again.changed, again.unchanged) == (1, 2)
    assert again.checksum != report.checksum
    with pytest.raises(twin.UsageError, match="GeoDataFrame"):
        city.import_frame(frame.drop(columns="geometry"), layer="b", kind="building")
