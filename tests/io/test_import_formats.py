"""Every delivery format through the real import path, checked against independent reads."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely

import twin
from tests.conftest import GK105, X0, Y0, boxes

PARCEL_FIELDS = {"用地性质": "land_use", "容积率上限": "far_limit", "限高": "height_limit_m"}


def parcels_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "地块编码": ["JJ-01", "JJ-02", "JJ-03"],
            "用地性质": ["R2", "B1", "G1"],
            "容积率上限": [2.5, 4.0, 0.0],
            "限高": [60.0, 100.0, 0.0],
            "地块名称": ["锦江花园", "春熙商业", "滨河绿地"],
        },
        geometry=[b.buffer(20, join_style="mitre") for b in boxes(3, size=60, gap=120)],
        crs=GK105,
    )


def _write_gbk_shapefile(path: Path, *, cpg: bool) -> None:
    pyogrio.write_dataframe(parcels_frame(), path, encoding="GBK")
    if not cpg:
        path.with_suffix(".cpg").unlink()


def _check_parcels(city: twin.Twin) -> None:
    layer = city.layer("parcels")
    assert layer.index.tolist() == ["parcels.JJ-01", "parcels.JJ-02", "parcels.JJ-03"]
    assert layer["land_use"].tolist() == ["R2", "B1", "G1"]
    assert layer["far_limit"].tolist() == [2.5, 4.0, 0.0]
    assert layer["地块名称"].tolist() == ["锦江花园", "春熙商业", "滨河绿地"]
    expected = parcels_frame().area.to_numpy()
    np.testing.assert_allclose(layer.area.to_numpy(), expected, rtol=1e-12)


def test_gbk_shapefile_with_cpg(city: twin.Twin, tmp_path: Path) -> None:
    shp = tmp_path / "parcels.shp"
    _write_gbk_shapefile(shp, cpg=True)
    raw = shp.with_suffix(".dbf").read_bytes()
    assert "锦江花园".encode("gbk") in raw  # really GBK on disk
    report = city.import_layer(
        shp, layer="parcels", kind="parcel", id="地块编码", fields=PARCEL_FIELDS
    )
    assert (report.read, report.imported, report.rejected) == (3, 3, 0)
    _check_parcels(city)


def test_gbk_shapefile_without_cpg_is_detected(city: twin.Twin, tmp_path: Path) -> None:
    shp = tmp_path / "parcels.shp"
    _write_gbk_shapefile(shp, cpg=False)
    report = city.import_layer(
        shp, layer="parcels", kind="parcel", id="地块编码", fields=PARCEL_FIELDS
    )
    _check_parcels(city)
    assert report.encoding == "GB18030"  # recorded in provenance
    assert city.imports().iloc[-1]["report"]["encoding"] == "GB18030"


def test_gbk_shapefile_with_explicit_encoding(city: twin.Twin, tmp_path: Path) -> None:
    shp = tmp_path / "parcels.shp"
    _write_gbk_shapefile(shp, cpg=False)
    city.import_layer(
        shp, layer="parcels", kind="parcel", id="地块编码", fields=PARCEL_FIELDS, encoding="GBK"
    )
    _check_parcels(city)


def test_zipped_shapefile(city: twin.Twin, tmp_path: Path) -> None:
    shp = tmp_path / "parcels.shp"
    _write_gbk_shapefile(shp, cpg=True)
    archive = tmp_path / "parcels.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in tmp_path.glob("parcels.*"):
            if part != archive:
                zf.write(part, part.name)
    city.import_layer(archive, layer="parcels", kind="parcel", id="地块编码", fields=PARCEL_FIELDS)
    _check_parcels(city)


def test_geopackage_with_several_layers_needs_source_layer(city: twin.Twin, tmp_path: Path) -> None:
    gpkg = tmp_path / "delivery.gpkg"
    parcels_frame().to_file(gpkg, layer="parcels")
    parcels_frame().iloc[:1].to_file(gpkg, layer="other")
    with pytest.raises(twin.UsageError, match="source_layer="):
        city.import_layer(gpkg, layer="parcels", kind="parcel", id="地块编码")
    with pytest.raises(twin.UsageError, match=r"no layer 'nope'.*parcels, other"):
        city.import_layer(gpkg, layer="parcels", kind="parcel", id="地块编码", source_layer="nope")
    city.import_layer(
        gpkg,
        layer="parcels",
        kind="parcel",
        id="地块编码",
        fields=PARCEL_FIELDS,
        source_layer="parcels",
    )
    _check_parcels(city)


def test_geojson_in_cgcs2000_lonlat_is_reprojected(city: twin.Twin, tmp_path: Path) -> None:
    lonlat = parcels_frame().to_crs(4490)
    src = tmp_path / "parcels.geojson"
    lonlat.to_file(src)
    city.import_layer(src, layer="parcels", kind="parcel", id="地块编码", fields=PARCEL_FIELDS)
    layer = city.layer("parcels")
    # Independent check: transform the vertices read back from the GeoJSON with pyproj.
    back = pyogrio.read_dataframe(src)
    to_gk = pyproj.Transformer.from_crs(4490, 4544, always_xy=True)
    lon, lat = shapely.get_coordinates(back.geometry.array).T
    x, y = to_gk.transform(lon, lat)
    np.testing.assert_allclose(
        shapely.get_coordinates(layer.geometry.array), np.c_[x, y], atol=1e-6
    )


def test_filegdb(city: twin.Twin, tmp_path: Path) -> None:
    gdb = tmp_path / "roads.gdb"
    roads = gpd.GeoDataFrame(
        {
            "道路编码": ["R1", "R2"],
            "道路名称": ["锦华路", "科华北路"],
            "道路等级": ["主干路", "支路"],
            "单行": [0, 1],
        },
        geometry=[
            shapely.LineString([(X0, Y0), (X0 + 300, Y0)]),
            shapely.LineString([(X0 + 300, Y0), (X0 + 300, Y0 + 200)]),
        ],
        crs=GK105,
    )
    pyogrio.write_dataframe(roads, gdb, layer="roads", driver="OpenFileGDB")
    report = city.import_layer(
        gdb,
        layer="roads",
        kind="road",
        id="道路编码",
        fields={"道路名称": "name", "道路等级": "road_class", "单行": "oneway"},
    )
    assert report.imported == 2
    layer = city.layer("roads")
    # FileGDB returns one-part MultiLineStrings; the twin stores plain LineStrings.
    assert pyogrio.read_info(gdb, layer="roads")["geometry_type"] == "MultiLineString"
    assert layer.geom_type.tolist() == ["LineString", "LineString"]
    assert report.repaired == 0
    assert layer["name"].tolist() == ["锦华路", "科华北路"]
    assert layer["oneway"].tolist() == [0, 1]
    np.testing.assert_allclose(layer.length.to_numpy(), [300.0, 200.0])


def test_geoparquet(city: twin.Twin, tmp_path: Path) -> None:
    src = tmp_path / "parcels.parquet"
    parcels_frame().to_parquet(src)
    city.import_layer(src, layer="parcels", kind="parcel", id="地块编码", fields=PARCEL_FIELDS)
    _check_parcels(city)


def test_csv_xy_needs_src_crs(city: twin.Twin, tmp_path: Path) -> None:
    src = tmp_path / "pois.csv"
    pd.DataFrame(
        {"编号": ["P1", "P2"], "名称": ["医院", "学校"], "x": [X0, X0 + 100], "y": [Y0, Y0 + 50]}
    ).to_csv(src, index=False, encoding="utf-8-sig")
    with pytest.raises(twin.CRSError, match="src_crs="):
        city.import_layer(src, layer="pois", kind="poi", id="编号")
    assert city.layers == []
    city.import_layer(
        src, layer="pois", kind="poi", id="编号", src_crs=GK105, fields={"名称": "name"}
    )
    layer = city.layer("pois")
    assert layer["name"].tolist() == ["医院", "学校"]
    assert shapely.get_coordinates(layer.geometry.array).tolist() == [[X0, Y0], [X0 + 100, Y0 + 50]]


def test_csv_wkt_column(city: twin.Twin, tmp_path: Path) -> None:
    src = tmp_path / "lines.csv"
    pd.DataFrame(
        {
            "id": ["L1"],
            "wkt": [f"LINESTRING ({X0} {Y0}, {X0 + 30} {Y0 + 40})"],
            "network": ["water"],
            "diameter_mm": ["300"],
        }
    ).to_csv(src, index=False)
    city.import_layer(src, layer="pipes", kind="pipe", id="id", src_crs=GK105)
    layer = city.layer("pipes")
    assert layer.length.iloc[0] == pytest.approx(50.0)
    assert layer["diameter_mm"].iloc[0] == 300.0


def test_csv_gcj02_points_are_converted(city: twin.Twin, tmp_path: Path) -> None:
    coordtransform = pytest.importorskip("coordTransform")
    wgs = [(104.0657, 30.6595), (104.0801, 30.6702)]
    gcj = [coordtransform.wgs84_to_gcj02(lon, lat) for lon, lat in wgs]
    src = tmp_path / "sensors.csv"
    pd.DataFrame(
        {
            "设备编号": ["S1", "S2"],
            "类型": ["smoke", "water_pressure"],
            "经度": [p[0] for p in gcj],
            "纬度": [p[1] for p in gcj],
        }
    ).to_csv(src, index=False, encoding="utf-8-sig")
    city.import_layer(
        src,
        layer="sensors",
        kind="sensor",
        id="设备编号",
        src_crs="EPSG:4326",
        coords="gcj02",
        fields={"类型": "sensor_type"},
    )
    layer = city.layer("sensors")
    to_gk = pyproj.Transformer.from_crs(4326, 4544, always_xy=True)
    expected = np.array([to_gk.transform(lon, lat) for lon, lat in wgs])
    error_m = np.hypot(*(shapely.get_coordinates(layer.geometry.array) - expected).T)
    assert error_m.max() < 0.5
    # Without the conversion the points would sit hundreds of metres off.
    gcj_xy = np.array([to_gk.transform(lon, lat) for lon, lat in gcj])
    assert np.hypot(*(gcj_xy - expected).T).min() > 100


def test_coords_on_projected_source_is_an_error(city: twin.Twin, tmp_path: Path) -> None:
    src = tmp_path / "p.gpkg"
    parcels_frame().to_file(src)
    with pytest.raises(twin.CRSError, match="coords='gcj02'"):
        city.import_layer(src, layer="parcels", kind="parcel", coords="gcj02")


def test_unknown_format(city: twin.Twin, tmp_path: Path) -> None:
    src = tmp_path / "plan.dwg"
    src.write_bytes(b"AC1032")
    with pytest.raises(twin.SourceError, match=r"unknown format '\.dwg'"):
        city.import_layer(src, layer="plan", kind="parcel")


def test_corrupt_file(city: twin.Twin, tmp_path: Path) -> None:
    src = tmp_path / "broken.gpkg"
    src.write_bytes(b"not a geopackage at all")
    with pytest.raises(twin.SourceError, match=r"broken\.gpkg"):
        city.import_layer(src, layer="x", kind="parcel")
