"""Write the synthetic city as a municipal data delivery, with its import mapping.

The delivery looks like what a Chinese city hands over: parcels as a
GBK-encoded Shapefile, buildings as GeoJSON in CGCS2000 geographic
coordinates (EPSG:4490), roads in a FileGDB, utility networks and boundaries
in GeoPackages, and IoT devices as UTF-8 (with BOM) CSV files whose
coordinates were read off a Chinese web map (GCJ-02); emergency facilities
(fire stations, hospitals, shelters) come as a GeoPackage. ``mapping.yaml`` tells
``twin import`` which file feeds which layer.

Examples
--------
>>> import tempfile
>>> from twin.sample import generate_city
>>> paths = write_delivery(generate_city(200, seed=1), tempfile.mkdtemp())
>>> sorted(p.name for p in set(paths.values()))[:3]
['boundaries.gpkg', 'buildings.geojson', 'cameras.csv']
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
import yaml
from pyproj import Transformer

from twin.errors import UsageError
from twin.sample.layout import TWIN_CRS
from twin.webcoords import wgs84_to_gcj02

__all__ = ["CSV_COLUMNS", "DELIVERY", "FORMATS", "mapping_document", "write_delivery"]

FORMATS = ("delivery", "gpkg")
GEOGRAPHIC_CRS = "EPSG:4490"  # CGCS2000 geographic
CSV_COLUMNS = (
    "设备编号",
    "类型",
    "经度",
    "纬度",
    "阈值下限",
    "阈值上限",
    "单位",
    "感知半径",
    "名称",
)
SHAPEFILE_ENCODING = "GBK"
SHAPEFILE_FIELD_BYTES = 10
# Fixed dates written into file headers, so the same city gives the same bytes.
FIXED_DATE = "2024-01-01"
_SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg")

#: Per twin layer: kind, delivery file, layer inside it, id field, source -> twin fields.
#: An id field may also be mapped to a twin field (地块编码 -> parcel_code).
DELIVERY: dict[str, dict[str, Any]] = {
    "parcels": {
        "kind": "parcel",
        "file": "parcels.shp",
        "layer": None,
        "id": "地块编码",
        "fields": {
            "地块编码": "parcel_code",
            "用地性质": "land_use",
            "容积率上限": "far_limit",
            "限高": "height_limit_m",
            "密度上限": "coverage_limit",
            "地块名称": "name",
        },
    },
    "buildings": {
        "kind": "building",
        "file": "buildings.geojson",
        "layer": None,
        "id": "建筑编码",
        "fields": {"层数": "floors", "建筑高度": "height_m", "建筑名称": "name", "用途": "use"},
    },
    "roads": {
        "kind": "road",
        "file": "roads.gdb",
        "layer": "roads",
        "id": "道路编码",
        "fields": {
            "道路等级": "road_class",
            "道路名称": "name",
            "单行": "oneway",
            "桥梁": "bridge",
            "层级": "level",
            "车道数": "lanes",
            "设计时速": "speed_kmh",
        },
    },
    **{
        name: {
            "kind": "pipe",
            "file": "networks.gpkg",
            "layer": name,
            "id": "pipe_id",
            "fields": {
                "network": "network",
                "diameter_mm": "diameter_mm",
                "material": "material",
                "install_year": "install_year",
                "length_m": "length_m",
            },
        }
        for name in ("water_pipes", "gas_pipes")
    },
    "valves": {
        "kind": "valve",
        "file": "networks.gpkg",
        "layer": "valves",
        "id": "valve_id",
        "fields": {
            "network": "network",
            "status": "status",
            "diameter_mm": "diameter_mm",
            "valve_type": "valve_type",
        },
    },
    "sources": {
        "kind": "source",
        "file": "networks.gpkg",
        "layer": "sources",
        "id": "source_id",
        "fields": {
            "source_type": "source_type",
            "network": "network",
            "name": "name",
            "elevation_m": "elevation_m",
        },
    },
    **{
        name: {
            "kind": "sensor",
            "file": f"{name}.csv",
            "layer": None,
            "id": "设备编号",
            "fields": {
                "类型": "sensor_type",
                "阈值下限": "threshold_low",
                "阈值上限": "threshold_high",
                "单位": "unit",
                "感知半径": "radius_m",
                "名称": "name",
            },
        }
        for name in ("sensors", "cameras")
    },
    "districts": {
        "kind": "district",
        "file": "boundaries.gpkg",
        "layer": "districts",
        "id": "街道代码",
        "fields": {"街道名称": "name", "街道代码": "district_code", "人口": "population"},
    },
    "grids": {
        "kind": "grid",
        "file": "boundaries.gpkg",
        "layer": "grids",
        "id": "网格编码",
        "fields": {"网格编码": "grid_code", "所属街道": "district_code", "责任单位": "unit"},
    },
    "facilities": {
        "kind": "poi",
        "file": "facilities.gpkg",
        "layer": "facilities",
        "id": "设施编码",
        "fields": {"设施名称": "name", "设施类型": "poi_type"},
    },
    "water": {
        "kind": "water",
        "file": "water.gpkg",
        "layer": "water",
        "id": "水体编码",
        "fields": {"水体名称": "name", "水体类型": "water_type"},
    },
}


def write_delivery(
    city: Mapping[str, gpd.GeoDataFrame],
    out_dir: str | os.PathLike[str],
    *,
    formats: str = "delivery",
) -> dict[str, Path]:
    """Write ``city`` (from :func:`twin.sample.generate_city`) and its ``mapping.yaml``.

    Parameters
    ----------
    city : mapping of str to geopandas.GeoDataFrame
        The layers, in EPSG:4544 with delivery field names.
    out_dir : path
        Folder to write into (created if needed; files of the same names are
        replaced).
    formats : {"delivery", "gpkg"}, default "delivery"
        ``"delivery"`` writes the municipal-style files (``parcels.shp`` in
        GBK, ``buildings.geojson`` in EPSG:4490, ``roads.gdb``,
        ``networks.gpkg``, ``sensors.csv``, ``cameras.csv``,
        ``boundaries.gpkg``, ``facilities.gpkg``, ``water.gpkg``); ``"gpkg"``
        writes every layer into one ``city.gpkg`` in EPSG:4544 (fast, for benchmarks).

    Returns
    -------
    dict of str to pathlib.Path
        The file written for each layer, and ``"mapping"`` for ``mapping.yaml``.

    Raises
    ------
    UsageError
        For an unknown ``formats`` or a layer missing from ``city``.
    """
    if formats not in FORMATS:
        raise UsageError(f"formats must be one of {', '.join(FORMATS)}, not {formats!r}")
    missing = [name for name in DELIVERY if name not in city]
    if missing:
        raise UsageError(f"the city has no layer {missing[0]!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with _fixed_dates():
        paths = _write_gpkg(city, out) if formats == "gpkg" else _write_files(city, out)
    mapping = out / "mapping.yaml"
    mapping.write_text(mapping_document(formats), encoding="utf-8")
    return {**paths, "mapping": mapping}


@contextmanager
def _fixed_dates() -> Iterator[None]:
    """Make GDAL stamp files with :data:`FIXED_DATE` and reproducible FileGDB UUIDs."""
    fixed = {
        "OGR_CURRENT_DATE": f"{FIXED_DATE}T00:00:00.000Z",
        "OPENFILEGDB_REPRODUCIBLE_UUID": "YES",
    }
    before = {key: pyogrio.get_gdal_config_option(key) for key in fixed}
    pyogrio.set_gdal_config_options(fixed)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(before)


def _write_gpkg(city: Mapping[str, gpd.GeoDataFrame], out: Path) -> dict[str, Path]:
    """Every layer into ``city.gpkg`` (twin CRS)."""
    path = out / "city.gpkg"
    path.unlink(missing_ok=True)
    for name in DELIVERY:
        _write(city[name], path, layer=name, driver="GPKG")
    return dict.fromkeys(DELIVERY, path)


def _write_files(city: Mapping[str, gpd.GeoDataFrame], out: Path) -> dict[str, Path]:
    """The municipal-style delivery files."""
    paths: dict[str, Path] = {}
    paths["parcels"] = write_gbk_shapefile(city["parcels"], out / "parcels.shp")
    geojson = out / "buildings.geojson"
    geojson.unlink(missing_ok=True)
    _write(
        city["buildings"].to_crs(GEOGRAPHIC_CRS),
        geojson,
        driver="GeoJSON",
        layer_options={"COORDINATE_PRECISION": 8, "RFC7946": "NO", "WRITE_NAME": "NO"},
    )
    paths["buildings"] = geojson
    gdb = out / "roads.gdb"
    shutil.rmtree(gdb, ignore_errors=True)
    _write(city["roads"], gdb, layer="roads", driver="OpenFileGDB")
    paths["roads"] = gdb
    for file, names, crs in (
        ("networks.gpkg", ("water_pipes", "gas_pipes", "valves", "sources"), TWIN_CRS),
        ("boundaries.gpkg", ("districts", "grids"), GEOGRAPHIC_CRS),
        ("facilities.gpkg", ("facilities",), TWIN_CRS),
        ("water.gpkg", ("water",), TWIN_CRS),
    ):
        path = out / file
        path.unlink(missing_ok=True)
        for name in names:
            _write(city[name].to_crs(crs), path, layer=name, driver="GPKG")
            paths[name] = path
    for name in ("sensors", "cameras"):
        paths[name] = write_device_csv(city[name], out / f"{name}.csv")
    return paths


def _write(frame: gpd.GeoDataFrame, path: Path, **options: Any) -> None:
    """Write one layer with pyogrio (nullable integers become integer fields with nulls)."""
    pyogrio.write_dataframe(frame, path, **options)


def write_gbk_shapefile(frame: gpd.GeoDataFrame, path: Path) -> Path:
    """Write a GBK-encoded Shapefile and check its field names, .cpg and .dbf bytes.

    Raises
    ------
    UsageError
        When a field name is longer than 10 bytes in GBK (a Shapefile would
        truncate it).
    RuntimeError
        When the written .cpg or .dbf does not hold what was meant.
    """
    fields = [c for c in frame.columns if c != frame.geometry.name]
    too_long = [f for f in fields if len(f.encode(SHAPEFILE_ENCODING)) > SHAPEFILE_FIELD_BYTES]
    if too_long:
        raise UsageError(f"Shapefile field name {too_long[0]!r} is over 10 bytes in GBK")
    for ext in _SIDECARS:
        path.with_suffix(ext).unlink(missing_ok=True)
    _write(
        frame,
        path,
        driver="ESRI Shapefile",
        encoding=SHAPEFILE_ENCODING,
        layer_options={"DBF_DATE_LAST_UPDATE": FIXED_DATE},
    )
    cpg = path.with_suffix(".cpg").read_bytes().strip().decode("ascii")
    if cpg.upper() != SHAPEFILE_ENCODING:
        raise RuntimeError(f"{path.with_suffix('.cpg')} says {cpg!r}, not GBK")
    names = dbf_field_names(path.with_suffix(".dbf"), SHAPEFILE_ENCODING)
    if names != fields:
        raise RuntimeError(f"{path.with_suffix('.dbf')} has fields {names}, not {fields}")
    return path


def dbf_field_names(path: Path, encoding: str) -> list[str]:
    """Field names read from a .dbf header, decoded with ``encoding``.

    Examples
    --------
    >>> import tempfile, pathlib, geopandas as gpd, shapely
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.shp"
    >>> g = gpd.GeoDataFrame({"地块编码": ["甲"]}, geometry=[shapely.Point(0, 0)], crs=4544)
    >>> _ = write_gbk_shapefile(g, p)
    >>> dbf_field_names(p.with_suffix(".dbf"), "GBK")
    ['地块编码']
    """
    raw = path.read_bytes()
    header_size = int.from_bytes(raw[8:10], "little")
    names = []
    for start in range(32, header_size - 1, 32):
        names.append(raw[start : start + 11].split(b"\x00", 1)[0].decode(encoding))
    return names


def device_lonlat(frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 longitude and latitude of points in the twin CRS.

    CGCS2000 is taken as WGS 84 (they differ by centimetres), so the points
    go to EPSG:4326 and then through the GCJ-02 offset, as a web map shows them.
    """
    to_wgs84 = Transformer.from_crs(frame.crs, "EPSG:4326", always_xy=True)
    xy = shapely.get_coordinates(frame.geometry.to_numpy())
    lon, lat = to_wgs84.transform(xy[:, 0], xy[:, 1])
    return wgs84_to_gcj02(lon, lat)


def write_device_csv(frame: gpd.GeoDataFrame, path: Path) -> Path:
    """Write devices as UTF-8 (BOM) CSV with GCJ-02 ``经度``/``纬度`` (7 decimals, ~1 cm)."""
    lon, lat = device_lonlat(frame)
    table = pd.DataFrame({c: frame[c] for c in CSV_COLUMNS if c in frame.columns})
    table.insert(2, "经度", np.char.mod("%.7f", lon))
    table.insert(3, "纬度", np.char.mod("%.7f", lat))
    table = table[list(CSV_COLUMNS)]
    table.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\n")
    return path


def mapping_document(formats: str = "delivery") -> str:
    """The text of ``mapping.yaml`` for a delivery written with ``formats``.

    Examples
    --------
    >>> import yaml
    >>> doc = yaml.safe_load(mapping_document())
    >>> doc["layers"]["sensors"]["coords"], doc["layers"]["parcels"]["encoding"]
    ('gcj02', 'GBK')
    """
    layers: dict[str, dict[str, Any]] = {}
    for name, spec in DELIVERY.items():
        gpkg = formats == "gpkg"
        csv = spec["file"].endswith(".csv") and not gpkg
        layers[name] = {
            "source": "city.gpkg" if gpkg else spec["file"],
            "kind": spec["kind"],
            "id": spec["id"],
            "encoding": SHAPEFILE_ENCODING if name == "parcels" and not gpkg else None,
            "source_layer": name if gpkg else spec["layer"],
            "src_crs": "EPSG:4326" if csv else None,
            "coords": "gcj02" if csv else None,
            "x": "经度" if csv else None,
            "y": "纬度" if csv else None,
            "set": {},
            "fields": dict(spec["fields"]),
        }
    head = "# twin import mapping: one entry per twin layer. Paths are relative to this file.\n"
    if formats == "gpkg":
        head += "# Every layer is in city.gpkg (EPSG:4544).\n"
    else:
        head += "# Synthetic sample delivery written by `python -m twin.sample`; see README.md.\n"
    body = yaml.safe_dump(
        {"layers": layers},
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        width=100,
    )
    return head + body
