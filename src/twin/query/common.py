"""What every one-map query shares: points in, features out, visible layers, per-snapshot caches.

Points come in as longitude/latitude in CRS84, EPSG:4326 or EPSG:4490 (always
longitude first), or in the web-map conventions GCJ-02 / BD-09
(:mod:`twin.webcoords`); they are taken to the twin CRS once. Features go out
as GeoJSON-like dicts in CRS84, or in the caller's web-map convention when the
point came in one, so a web map draws them where it drew the click.

Everything derived from a snapshot (relation lookups, networks, statistics) is
cached on the :class:`~twin.query.index.CityIndex` object itself (a weak-key
cache): a re-import brings a new snapshot, and the old caches go with the old one.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd
import shapely

from twin import webcoords
from twin.errors import LayerNotFoundError, UsageError
from twin.query.index import CityIndex, IndexedLayer, note_reads, recording_reads

__all__ = [
    "GEOGRAPHIC_CRS",
    "GeometryOut",
    "QueryPoint",
    "derived",
    "feature_dict",
    "json_ready",
    "json_value",
    "normalise_coords",
    "query_point",
    "visible_layer",
    "visible_layers",
]

T = TypeVar("T")

#: Accepted spellings of the geographic CRSs a query point may be given in.
GEOGRAPHIC_CRS: dict[str, str] = {
    "crs84": "OGC:CRS84",
    "ogc:crs84": "OGC:CRS84",
    "http://www.opengis.net/def/crs/ogc/1.3/crs84": "OGC:CRS84",
    "epsg:4326": "EPSG:4326",
    "4326": "EPSG:4326",
    "http://www.opengis.net/def/crs/epsg/0/4326": "EPSG:4326",
    "epsg:4490": "EPSG:4490",
    "4490": "EPSG:4490",
    "http://www.opengis.net/def/crs/epsg/0/4490": "EPSG:4490",
}
WEB_COORDS = ("wgs84", "gcj02", "bd09")


@dataclass(frozen=True)
class QueryPoint:
    """A query point: where the caller gave it and where it is in the twin CRS.

    Attributes
    ----------
    lon, lat : float
        As given (in ``crs``, or in the ``coords`` web-map convention).
    crs : str
        ``OGC:CRS84``, ``EPSG:4326`` or ``EPSG:4490`` (longitude first in all three).
    coords : str
        ``wgs84`` (no web-map offset), ``gcj02`` or ``bd09``.
    x, y : float
        The point in the twin CRS.
    """

    lon: float
    lat: float
    crs: str
    coords: str
    x: float
    y: float

    @property
    def geometry(self) -> shapely.Point:
        """The point in the twin CRS."""
        return shapely.Point(self.x, self.y)


def normalise_coords(coords: str | None) -> str:
    """The web-map convention's name: ``wgs84`` (None), ``gcj02`` (``GCJ-02``) or ``bd09``."""
    key = "wgs84" if coords is None else str(coords).strip().lower().replace("-", "")
    key = key.replace("_", "")
    if key not in WEB_COORDS:
        raise UsageError(f"coords {coords!r}: give wgs84 (the default), gcj02 or bd09")
    return key


def normalise_crs(crs: str | None) -> str:
    """The canonical name of an accepted geographic CRS (``CRS84`` → ``OGC:CRS84``)."""
    key = "crs84" if crs is None else str(crs).strip().lower()
    if key not in GEOGRAPHIC_CRS:
        raise UsageError(
            f"crs {crs!r}: query points are longitude/latitude in CRS84, EPSG:4326 or EPSG:4490"
        )
    return GEOGRAPHIC_CRS[key]


def query_point(
    index: CityIndex,
    lon: float,
    lat: float,
    *,
    crs: str | None = None,
    coords: str | None = None,
) -> QueryPoint:
    """Take a longitude/latitude to the twin CRS.

    Parameters
    ----------
    index : CityIndex
        The twin snapshot (gives the twin CRS).
    lon, lat : float
        Degrees, longitude first whatever the CRS.
    crs : str, default "CRS84"
        ``CRS84``, ``EPSG:4326`` or ``EPSG:4490`` (or their OGC URIs).
    coords : {"wgs84", "gcj02", "bd09"}, optional
        The web-map convention the point was read in (Amap/Tencent: gcj02,
        Baidu: bd09); it is converted to WGS 84 first.

    Returns
    -------
    QueryPoint

    Raises
    ------
    UsageError
        A coordinate that is not a finite longitude/latitude, an unknown CRS or convention.

    Examples
    --------
    >>> point = query_point(index, 104.06, 30.66, coords="gcj02")
    >>> 400_000 < point.x < 600_000
    True
    """
    name, convention = normalise_crs(crs), normalise_coords(coords)
    lon_f, lat_f = float(lon), float(lat)
    if not (math.isfinite(lon_f) and -180 <= lon_f <= 180):
        raise UsageError(f"longitude {lon!r} is out of range: give degrees in [-180, 180]")
    if not (math.isfinite(lat_f) and -90 <= lat_f <= 90):
        raise UsageError(f"latitude {lat!r} is out of range: give degrees in [-90, 90]")
    wgs_lon, wgs_lat = lon_f, lat_f
    if convention == "gcj02":
        a, b = webcoords.gcj02_to_wgs84(lon_f, lat_f)
        wgs_lon, wgs_lat = float(a), float(b)
    elif convention == "bd09":
        a, b = webcoords.bd09_to_wgs84(lon_f, lat_f)
        wgs_lon, wgs_lat = float(a), float(b)
    if index.crs is None:
        raise UsageError(f"{index.path.name} has no CRS yet: import a layer first")
    x, y = index.to_twin(name).transform(wgs_lon, wgs_lat)
    if not (math.isfinite(x) and math.isfinite(y)):
        raise UsageError(f"({lon}, {lat}) cannot be placed in the twin's CRS {index.crs_text}")
    return QueryPoint(lon_f, lat_f, name, convention, float(x), float(y))


# --------------------------------------------------------------------------- visibility


def visible_layers(index: CityIndex, layers: Collection[str] | None) -> list[IndexedLayer]:
    """The snapshot's layers the caller may read (all of them when ``layers`` is None)."""
    chosen = [item for item in index if layers is None or item.name in layers]
    note_reads([item.name for item in chosen])
    return chosen


def visible_layer(index: CityIndex, name: str, layers: Collection[str] | None) -> IndexedLayer:
    """Layer ``name`` if the caller may read it; a layer it may not read does not exist.

    Raises
    ------
    LayerNotFoundError
        With the same message for a layer that is absent and one that is hidden.
    """
    if layers is not None and name not in layers:
        shown = ", ".join(n for n in index.layers if n in layers) or "none"
        raise LayerNotFoundError(f"the twin has no layer {name!r}; its layers: {shown}")
    return index.layer(name)


# --------------------------------------------------------------------------- features out


def json_value(value: Any) -> Any:
    """A cell as JSON: numpy scalars to Python, NaN / NA / NaT to None, times to ISO 8601.

    Examples
    --------
    >>> json_value(np.int64(3)), json_value(float("nan")), json_value(pd.NA)
    (3, None, None)
    >>> json_value(pd.Timestamp("2026-05-01T12:00Z"))
    '2026-05-01T12:00:00+00:00'
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str | bool | int):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value if isinstance(value, str | bool | int) else str(value)


def json_ready(value: Any) -> Any:
    """:func:`json_value` applied through dicts, lists and tuples.

    Examples
    --------
    >>> json_ready({"roads": ("a", "b"), "time_s": float("inf"), "n": np.int32(2)})
    {'roads': ['a', 'b'], 'time_s': None, 'n': 2}
    """
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return json_value(value)


def _columns(index: CityIndex, layer: IndexedLayer) -> list[tuple[str, Any]]:
    """The layer's attribute columns as arrays, ready to index by position (cached)."""

    def build() -> list[tuple[str, Any]]:
        frame = layer.attributes
        return [(str(c), frame[c].array) for c in layer.fields]

    return derived(index, ("columns", layer.name), build)


def properties(index: CityIndex, layer: IndexedLayer, position: int) -> dict[str, Any]:
    """The attributes of the feature at ``position`` as a JSON-ready dict."""
    return {name: json_value(values[position]) for name, values in _columns(index, layer)}


class GeometryOut:
    """Takes twin-CRS geometries to CRS84, or to a web-map convention, as GeoJSON dicts."""

    def __init__(self, index: CityIndex, coords: str | None = None) -> None:
        self.convention = normalise_coords(coords)
        self._to84 = index.from_twin("OGC:CRS84")

    def _transform(self, xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        lon, lat = self._to84.transform(xy[:, 0], xy[:, 1])
        if self.convention == "gcj02":
            lon, lat = webcoords.wgs84_to_gcj02(lon, lat)
        elif self.convention == "bd09":
            lon, lat = webcoords.wgs84_to_bd09(lon, lat)
        return np.column_stack([lon, lat])

    def many(self, geometries: npt.NDArray[np.object_]) -> list[dict[str, Any] | None]:
        """GeoJSON geometry dicts of an array of twin-CRS geometries."""
        if not len(geometries):
            return []
        out = shapely.transform(np.asarray(geometries, dtype=object), self._transform)
        return [None if t is None else orjson.loads(t) for t in shapely.to_geojson(out)]

    def one(self, geometry: shapely.Geometry | None) -> dict[str, Any] | None:
        """The GeoJSON geometry dict of one twin-CRS geometry."""
        return self.many(np.array([geometry], dtype=object))[0]


def feature_dict(
    index: CityIndex,
    layer: IndexedLayer,
    positions: Iterable[int],
    out: GeometryOut | None,
    extra: Sequence[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """GeoJSON Feature dicts of ``layer``'s rows at ``positions``.

    The geometry is None when ``out`` is None; ``extra[i]`` adds properties
    (such as ``distance_m``) to the ``i``-th feature.
    """
    rows = [int(p) for p in positions]
    uids = layer.uids
    geometries: list[dict[str, Any] | None] = (
        out.many(layer.geometries[rows]) if out is not None else [None] * len(rows)
    )
    features = []
    for i, (row, geometry) in enumerate(zip(rows, geometries, strict=True)):
        props = properties(index, layer, row)
        if extra is not None:
            props.update(extra[i])
        features.append(
            {"type": "Feature", "id": str(uids[row]), "geometry": geometry, "properties": props}
        )
    return features


# --------------------------------------------------------------------------- caches


@dataclass(frozen=True)
class _Cached:
    """A cached value and the layers it was derived from (heard again on every hit)."""

    value: Any
    layers: tuple[str, ...]


_CACHES: weakref.WeakKeyDictionary[CityIndex, dict[Hashable, _Cached]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_BUILDING: dict[tuple[int, Hashable], threading.Lock] = {}


def key_layers(index: CityIndex, key: Hashable) -> set[str]:
    """Layer names a cache key mentions (strings, and string fields of dataclasses in it).

    Examples
    --------
    >>> sorted(key_layers(index, ("columns", "buildings", ("x", "parcels"))))
    ['buildings', 'parcels']
    """
    found: set[str] = set()
    items: list[Any] = [key]
    while items:
        item = items.pop()
        if isinstance(item, str):
            if item in index.layers:
                found.add(item)
        elif isinstance(item, tuple | list | frozenset | set):
            items.extend(item)
        elif hasattr(item, "__dataclass_fields__"):
            items.extend(getattr(item, name) for name in item.__dataclass_fields__)
    return found


def derived(index: CityIndex, key: Hashable, build: Callable[[], T]) -> T:
    """``build()`` once per snapshot and key; later calls get the same object.

    Concurrent first calls for one key build it once (the others wait). The
    layers the value was derived from (those ``build`` resolved, and those the
    key names) are recorded with it and reported as read on every call, cache
    hit or not, so a caller auditing reads (the API) hears them by construction.

    Examples
    --------
    >>> derived(index, ("answer",), lambda: 42)
    42
    """
    with _LOCK:
        cache = _CACHES.setdefault(index, {})
        hit = cache.get(key)
        if hit is None:
            lock = _BUILDING.setdefault((id(index), key), threading.Lock())
    if hit is None:
        with lock:
            with _LOCK:
                hit = cache.get(key)
            if hit is None:
                with recording_reads() as seen:
                    value = build()
                layers = tuple(sorted(seen | key_layers(index, key)))
                hit = _Cached(value, layers)
                with _LOCK:
                    cache[key] = hit
                    _BUILDING.pop((id(index), key), None)
    note_reads(list(hit.layers))
    return cast(T, hit.value)
