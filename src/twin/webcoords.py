"""Coordinates captured from Chinese web maps: GCJ-02 and BD-09 to and from WGS 84.

Chinese web maps do not publish longitude/latitude in WGS 84 (or CGCS2000,
which agrees with WGS 84 to well under a metre). Amap (高德), Tencent and
Google's China tiles use **GCJ-02** (国测局坐标, "Mars coordinates"): WGS 84
plus a smooth, nonlinear offset of a few hundred metres. Baidu uses **BD-09**:
GCJ-02 with a further small rotation and shift. No EPSG code describes either,
so points copied from those maps must be converted before they enter the twin.

The forward formulas implemented here are the widely published ones (the
GCJ-02 offset polynomial on the Krasovsky 1940 ellipsoid, and the BD-09
polar-coordinate perturbation). The inverses are not the usual one-step
approximation, which leaves errors of one to two metres: they solve the
forward formula by fixed-point iteration until the update is below
``1e-10`` degrees (about 0.01 mm), so a round trip is exact to well under a
millimetre against the forward formula. Map providers' own servers may differ
from the published formulas by a metre or so; that is beyond any
implementation.

GCJ-02 is applied only inside China. As every implementation does, "inside
China" is a rough rectangle, :data:`CHINA_BOX`, which also covers parts of
neighbouring countries (Mongolia, the Korean peninsula, northern Vietnam,
…); points outside it pass through the GCJ-02 functions unchanged. The BD-09
step is applied everywhere (Baidu uses it outside China too, on WGS 84).

All functions take scalars or arrays (any shape, broadcast together) and
return float64 arrays: a million points convert in a fraction of a second.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, TypeVar

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely

from twin.errors import CRSError, UsageError

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
_Pair = tuple[FloatArray, FloatArray]
_G = TypeVar("_G", npt.NDArray[np.object_], gpd.GeoSeries)

#: Rough extent of China ``(lon_min, lat_min, lon_max, lat_max)`` in degrees.
#: It holds China's extreme points (Pamirs ~73.5E, Heixiazi island ~135.08E,
#: Mohe ~53.56N, Zengmu Ansha ~3.9N) with a small margin. It is a box, not a
#: border: it also covers parts of neighbouring countries. Shared by the
#: GCJ-02 functions here and :func:`twin.crs.auto_crs`.
CHINA_BOX: Final = (73.0, 3.5, 135.1, 53.6)

# Krasovsky 1940 ellipsoid, the one the published GCJ-02 algorithm uses:
# semi-major axis 6378245 m, first eccentricity squared 0.00669342162296594323
# (= 2f - f**2 with 1/f = 298.3).
_KRASOVSKY_A: Final = 6378245.0
_KRASOVSKY_E2: Final = 0.00669342162296594323
# BD-09 constants as published: angular frequency 3000 * pi / 180 per degree,
# radius and angle perturbations 2e-5 deg and 3e-6 rad, shift (0.0065, 0.006) deg.
_BD_FREQ: Final = np.pi * 3000.0 / 180.0
_BD_DR: Final = 0.00002
_BD_DTHETA: Final = 0.000003
_BD_SHIFT_LON: Final = 0.0065
_BD_SHIFT_LAT: Final = 0.006

_TOLERANCE_DEG: Final = 1e-10
_MAX_ITERATIONS: Final = 10
_CONVENTIONS: Final = ("gcj02", "bd09")


def in_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Return True where a point lies in :data:`CHINA_BOX` (NaN is outside).

    Examples
    --------
    >>> in_china([116.4, 2.35], [39.9, 48.85]).tolist()
    [True, False]
    """
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    lon_min, lat_min, lon_max, lat_max = CHINA_BOX
    inside: npt.NDArray[np.bool_] = (x >= lon_min) & (x <= lon_max) & (y >= lat_min) & (y <= lat_max)
    return inside


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> _Pair:
    """Convert WGS 84 longitude/latitude to GCJ-02 (points outside China unchanged).

    Parameters
    ----------
    lon, lat : float or array_like
        WGS 84 (or CGCS2000) degrees; broadcast together.

    Returns
    -------
    (ndarray, ndarray)
        GCJ-02 longitude and latitude, float64, in the broadcast shape.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(116.391, 39.907)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.397243, 39.908403)
    """
    x, y = _arrays(lon, lat)
    inside = in_china(x, y)
    if inside.any():
        x[inside], y[inside] = _gcj_forward(x[inside], y[inside])
    return x, y


def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> _Pair:
    """Convert GCJ-02 longitude/latitude to WGS 84 by iterating the forward formula.

    The result ``w`` satisfies ``wgs84_to_gcj02(w) == (lon, lat)`` to about
    1e-10 degrees; points outside China are returned unchanged.

    Parameters
    ----------
    lon, lat : float or array_like
        GCJ-02 degrees, e.g. read off Amap or Tencent maps.

    Returns
    -------
    (ndarray, ndarray)
        WGS 84 longitude and latitude.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(116.397243, 39.908403)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.391, 39.907)
    """
    x, y = _arrays(lon, lat)
    inside = in_china(x, y)
    if inside.any():
        x[inside], y[inside] = _invert(_gcj_forward, x[inside], y[inside])
    return x, y


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> _Pair:
    """Convert GCJ-02 longitude/latitude to Baidu's BD-09.

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09(116.397243, 39.908403)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.403749, 39.914783)
    """
    x, y = _arrays(lon, lat)
    return _bd_forward(x, y)


def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> _Pair:
    """Convert BD-09 longitude/latitude to GCJ-02 by iterating the forward formula.

    Examples
    --------
    >>> lon, lat = bd09_to_gcj02(116.403749, 39.914783)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.397243, 39.908403)
    """
    x, y = _arrays(lon, lat)
    finite = np.isfinite(x) & np.isfinite(y)
    if finite.any():
        x[finite], y[finite] = _invert(_bd_forward, x[finite], y[finite])
    return x, y


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> _Pair:
    """Convert WGS 84 longitude/latitude to BD-09 (via GCJ-02).

    Examples
    --------
    >>> lon, lat = wgs84_to_bd09(116.391, 39.907)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.403749, 39.914783)
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> _Pair:
    """Convert BD-09 longitude/latitude (Baidu maps) to WGS 84 (via GCJ-02).

    Examples
    --------
    >>> lon, lat = bd09_to_wgs84(116.403749, 39.914783)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.391, 39.907)
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def geometries_to_wgs84(geoms: _G, convention: str) -> _G:
    """Convert shapely geometries from a web-map convention to WGS 84 longitude/latitude.

    Every vertex of points, lines and polygons (and their multi- and
    collection forms) is converted; Z values are kept; None stays None.

    Parameters
    ----------
    geoms : ndarray of shapely geometries or GeoSeries
        Longitude/latitude geometries in the web map's convention. A
        GeoSeries keeps its index, name and CRS (which must be geographic or
        unset).
    convention : {"gcj02", "bd09"}
        ``"gcj02"`` for Amap, Tencent and Google China; ``"bd09"`` for Baidu.
        Case, ``-`` and ``_`` are ignored (``"GCJ-02"`` works).

    Returns
    -------
    ndarray or GeoSeries
        The same type as ``geoms``, in WGS 84 degrees.

    Raises
    ------
    UsageError
        If ``convention`` is not one of the above.
    CRSError
        If the coordinates are not longitude/latitude degrees.

    Examples
    --------
    >>> import numpy as np
    >>> from shapely import Point
    >>> out = geometries_to_wgs84(np.array([Point(116.397243, 39.908403)]), "gcj02")
    >>> round(out[0].x, 6), round(out[0].y, 6)
    (116.391, 39.907)
    """
    to_wgs84 = _converter(convention)
    if isinstance(geoms, gpd.GeoSeries):
        if geoms.crs is not None and not geoms.crs.is_geographic:
            raise CRSError(
                f"web-map ({convention}) coordinates are longitude/latitude, but the data has "
                f"the projected CRS {geoms.crs.name!r}: declare the source as EPSG:4326"
            )
        values = _convert_array(np.asarray(geoms.values, dtype=object), to_wgs84, convention)
        return gpd.GeoSeries(values, index=geoms.index, crs=geoms.crs, name=geoms.name)
    return _convert_array(np.asarray(geoms, dtype=object), to_wgs84, convention)


def _converter(convention: str) -> Callable[[FloatArray, FloatArray], _Pair]:
    key = str(convention).strip().lower().replace("-", "").replace("_", "")
    if key == "gcj02":
        return gcj02_to_wgs84
    if key == "bd09":
        return bd09_to_wgs84
    raise UsageError(
        f"unknown web-map convention {convention!r}: choose 'gcj02' (Amap, Tencent, "
        "Google China) or 'bd09' (Baidu)"
    )


def _convert_array(
    geoms: npt.NDArray[np.object_],
    to_wgs84: Callable[[FloatArray, FloatArray], _Pair],
    convention: str,
) -> npt.NDArray[np.object_]:
    _check_lonlat_bounds(geoms, convention)

    def transform(coords: FloatArray) -> FloatArray:
        out = coords.copy()
        out[:, 0], out[:, 1] = to_wgs84(coords[:, 0], coords[:, 1])
        return out

    result = np.empty(geoms.shape, dtype=object)
    has_z = shapely.has_z(geoms)
    result[~has_z] = shapely.transform(geoms[~has_z], transform, include_z=False)
    result[has_z] = shapely.transform(geoms[has_z], transform, include_z=True)
    return result


def _check_lonlat_bounds(geoms: npt.NDArray[np.object_], convention: str) -> None:
    """Refuse data that cannot be lon/lat; single bad features pass (the importer rejects them)."""
    bounds = shapely.bounds(geoms).reshape(-1, 4)
    known = np.isfinite(bounds).all(axis=1)
    if not known.any():
        return
    minx, miny, maxx, maxy = bounds.T
    lonlat = known & (minx >= -180) & (maxx <= 180) & (miny >= -90) & (maxy <= 90)
    if not lonlat.any():
        raise CRSError(
            f"web-map ({convention}) coordinates must be longitude/latitude degrees, but no "
            f"feature is (x {np.nanmin(minx):g}..{np.nanmax(maxx):g}, y {np.nanmin(miny):g}.."
            f"{np.nanmax(maxy):g}): are x and y swapped, or is the data projected?"
        )
    lon_min, lat_min, lon_max, lat_max = CHINA_BOX
    touches = lonlat & (maxx >= lon_min) & (minx <= lon_max) & (maxy >= lat_min) & (miny <= lat_max)
    if not touches.any():
        log.warning(
            "no feature lies in China's box %s: %s leaves them unchanged (are x and y swapped?)",
            CHINA_BOX,
            convention,
        )


def _arrays(lon: npt.ArrayLike, lat: npt.ArrayLike) -> _Pair:
    """Broadcast to two new writable float64 arrays."""
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return np.array(x, dtype=np.float64), np.array(y, dtype=np.float64)


def _gcj_forward(lon: FloatArray, lat: FloatArray) -> _Pair:
    """GCJ-02 of WGS 84 points (no box test): the published offset polynomial."""
    x = lon - 105.0
    y = lat - 35.0
    px = np.pi * x
    py = np.pi * y
    xy = x * y
    root = np.sqrt(np.abs(x))
    wave = 20.0 * np.sin(6.0 * px) + 20.0 * np.sin(2.0 * px)
    north = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * xy + 0.2 * root
    north += (wave + 20.0 * np.sin(py) + 40.0 * np.sin(py / 3.0)) * (2.0 / 3.0)
    north += (160.0 * np.sin(py / 12.0) + 320.0 * np.sin(py / 30.0)) * (2.0 / 3.0)
    east = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * xy + 0.1 * root
    east += (wave + 20.0 * np.sin(px) + 40.0 * np.sin(px / 3.0)) * (2.0 / 3.0)
    east += (150.0 * np.sin(px / 12.0) + 300.0 * np.sin(px / 30.0)) * (2.0 / 3.0)
    # ``north``/``east`` are offsets in metres on the Krasovsky ellipsoid: divide
    # by the meridian and prime-vertical radii of curvature to get degrees.
    phi = np.radians(lat)
    w2 = 1.0 - _KRASOVSKY_E2 * np.sin(phi) ** 2
    w = np.sqrt(w2)
    dlat = np.degrees(north * w2 * w / (_KRASOVSKY_A * (1.0 - _KRASOVSKY_E2)))
    dlon = np.degrees(east * w / (_KRASOVSKY_A * np.cos(phi)))
    return lon + dlon, lat + dlat


def _bd_forward(lon: FloatArray, lat: FloatArray) -> _Pair:
    """BD-09 of GCJ-02 points: the published polar perturbation and shift."""
    radius = np.hypot(lon, lat) + _BD_DR * np.sin(lat * _BD_FREQ)
    theta = np.arctan2(lat, lon) + _BD_DTHETA * np.cos(lon * _BD_FREQ)
    return radius * np.cos(theta) + _BD_SHIFT_LON, radius * np.sin(theta) + _BD_SHIFT_LAT


def _invert(forward: Callable[[FloatArray, FloatArray], _Pair], lon: FloatArray, lat: FloatArray) -> _Pair:
    """Solve ``forward(x, y) == (lon, lat)`` by fixed-point iteration.

    Both forward maps are the identity plus a perturbation whose derivative is
    of order 1e-2 or less, so ``p <- p + (target - forward(p))`` contracts by
    two orders of magnitude per step: 4-5 steps reach 1e-10 degrees.
    """
    x, y = lon.copy(), lat.copy()
    for _ in range(_MAX_ITERATIONS):
        fx, fy = forward(x, y)
        dx, dy = lon - fx, lat - fy
        x += dx
        y += dy
        if max(np.abs(dx).max(initial=0.0), np.abs(dy).max(initial=0.0)) < _TOLERANCE_DEG:
            break
    return x, y
