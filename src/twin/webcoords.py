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
approximation, which misses by metres (up to 4.6 m for GCJ-02 across
China): they solve the forward formula by fixed-point iteration until no
point moves more than ``1e-10`` degrees (about 0.01 mm), so a round trip
through the forward formula is exact to nanometres. Map providers' own servers may differ
from the published formulas by a metre or so; that is beyond any
implementation.

GCJ-02 is applied only inside China. As every implementation does, "inside
China" is a rough rectangle, :data:`CHINA_BOX`, which also covers parts of
neighbouring countries (Mongolia, the Korean peninsula, northern Vietnam,
…); points outside it pass through the GCJ-02 functions unchanged. The BD-09
step is a plain formula and is applied everywhere (as coordTransform does),
so outside China BD-09 is WGS 84 plus Baidu's shift.

All functions take scalars or arrays (any shape, broadcast together) and
return float64 arrays (0-d for scalars: use ``float()``). A million points
convert in 0.1 s (forward) to 0.5 s (BD-09 to WGS 84) on two cores.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely

from twin.errors import CRSError, UsageError

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
_Pair = tuple[FloatArray, FloatArray]
_Kernel = Callable[[FloatArray, FloatArray], _Pair]
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

_TOLERANCE_DEG: Final = 1e-10  # stop iterating when no point moves more (~0.01 mm)
_MAX_ITERATIONS: Final = 10
_CHUNK: Final = 1 << 16  # points per chunk when converting in threads
_MAX_WORKERS: Final = 8


def in_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Return True where a point lies in :data:`CHINA_BOX` (NaN is outside).

    Examples
    --------
    >>> in_china([116.4, 2.35], [39.9, 48.85]).tolist()
    [True, False]
    """
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    lon_min, lat_min, lon_max, lat_max = CHINA_BOX
    inside: npt.NDArray[np.bool_] = (
        (x >= lon_min) & (x <= lon_max) & (y >= lat_min) & (y <= lat_max)
    )
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
    (116.397241, 39.908401)
    """
    return _apply_in_china(_gcj_forward, lon, lat)


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
    >>> lon, lat = gcj02_to_wgs84(116.397241, 39.908401)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.391, 39.907)
    """
    return _apply_in_china(_gcj_inverse, lon, lat)


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> _Pair:
    """Convert GCJ-02 longitude/latitude to Baidu's BD-09.

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09(116.397241, 39.908401)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.403614, 39.914744)
    """
    return _apply_finite(_bd_forward, lon, lat)


def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> _Pair:
    """Convert BD-09 longitude/latitude to GCJ-02 by iterating the forward formula.

    Examples
    --------
    >>> lon, lat = bd09_to_gcj02(116.403614, 39.914744)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.397241, 39.908401)
    """
    return _apply_finite(_bd_inverse, lon, lat)


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> _Pair:
    """Convert WGS 84 longitude/latitude to BD-09 (via GCJ-02).

    Examples
    --------
    >>> lon, lat = wgs84_to_bd09(116.391, 39.907)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.403614, 39.914744)
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> _Pair:
    """Convert BD-09 longitude/latitude (Baidu maps) to WGS 84 (via GCJ-02).

    Examples
    --------
    >>> lon, lat = bd09_to_wgs84(116.403614, 39.914744)
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
    >>> out = geometries_to_wgs84(np.array([Point(116.397241, 39.908401)]), "gcj02")
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
    to_wgs84: _Kernel,
    convention: str,
) -> npt.NDArray[np.object_]:
    _check_lonlat_bounds(geoms, convention)

    def transform(coords: FloatArray) -> FloatArray:
        out = coords.copy()
        out[:, 0], out[:, 1] = to_wgs84(coords[:, 0], coords[:, 1])
        return out

    result = np.empty(geoms.shape, dtype=object)
    has_z = shapely.has_z(geoms)
    # Non-empty points are rebuilt directly: shapely.transform clones every
    # geometry first, which is most of the time for a million points.
    point = (shapely.get_type_id(geoms) == 0) & ~shapely.is_empty(geoms)
    for z in (False, True):
        group = point & (has_z == z)
        if group.any():
            result[group] = shapely.points(
                transform(shapely.get_coordinates(geoms[group], include_z=z))
            )
        group = ~point & (has_z == z)
        if group.any():
            result[group] = shapely.transform(geoms[group], transform, include_z=z)
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


def _apply_in_china(kernel: _Kernel, lon: npt.ArrayLike, lat: npt.ArrayLike) -> _Pair:
    """Apply ``kernel`` to the points in :data:`CHINA_BOX`; copy the others."""
    x, y = _arrays(lon, lat)
    inside = in_china(x, y)
    if inside.all():
        return _parallel(kernel, x, y)
    if inside.any():
        x[inside], y[inside] = _parallel(kernel, x[inside], y[inside])
    return x, y


def _apply_finite(kernel: _Kernel, lon: npt.ArrayLike, lat: npt.ArrayLike) -> _Pair:
    """Apply ``kernel`` to the finite points; NaN and inf pass through."""
    x, y = _arrays(lon, lat)
    finite = np.isfinite(x) & np.isfinite(y)
    if finite.all():
        return _parallel(kernel, x, y)
    if finite.any():
        x[finite], y[finite] = _parallel(kernel, x[finite], y[finite])
    return x, y


def _arrays(lon: npt.ArrayLike, lat: npt.ArrayLike) -> _Pair:
    """Broadcast to two new writable float64 arrays."""
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return np.array(x, dtype=np.float64), np.array(y, dtype=np.float64)


def _parallel(kernel: _Kernel, x: FloatArray, y: FloatArray) -> _Pair:
    """Run ``kernel`` over chunks of the points in threads (numpy releases the GIL).

    Chunks also keep the many temporaries in cache: about 2x faster on two
    cores for a million points. Small inputs run directly.
    """
    shape, x, y = x.shape, x.ravel(), y.ravel()
    if x.size <= _CHUNK:
        out_x, out_y = kernel(x, y)
        return out_x.reshape(shape), out_y.reshape(shape)
    out_x, out_y = np.empty_like(x), np.empty_like(y)

    def work(start: int) -> None:
        part = slice(start, start + _CHUNK)
        out_x[part], out_y[part] = kernel(x[part], y[part])

    workers = min(os.cpu_count() or 1, _MAX_WORKERS)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(work, range(0, x.size, _CHUNK)))
    return out_x.reshape(shape), out_y.reshape(shape)


def _gcj_forward(lon: FloatArray, lat: FloatArray) -> _Pair:
    """GCJ-02 of WGS 84 points (no box test): the published offset polynomial."""
    x = lon - 105.0
    y = lat - 35.0
    x30, x12, x3, x1, x_half, x_sixth = _sines(x)
    y30, y12, y3, y1, _, _ = _sines(y)
    xy = x * y
    root = np.sqrt(np.abs(x))
    wave = 20.0 * x_sixth + 20.0 * x_half
    north = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * xy + 0.2 * root
    north += (wave + 20.0 * y1 + 40.0 * y3 + 160.0 * y12 + 320.0 * y30) * (2.0 / 3.0)
    east = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * xy + 0.1 * root
    east += (wave + 20.0 * x1 + 40.0 * x3 + 150.0 * x12 + 300.0 * x30) * (2.0 / 3.0)
    # ``north``/``east`` are offsets in metres on the Krasovsky ellipsoid: divide
    # by the meridian and prime-vertical radii of curvature to get degrees.
    sin2 = np.sin(np.radians(lat)) ** 2
    w2 = 1.0 - _KRASOVSKY_E2 * sin2
    w = np.sqrt(w2)
    dlat = np.degrees(north * w2 * w / (_KRASOVSKY_A * (1.0 - _KRASOVSKY_E2)))
    dlon = np.degrees(east * w / (_KRASOVSKY_A * np.sqrt(1.0 - sin2)))  # cos(lat) >= 0
    return lon + dlon, lat + dlat


def _sines(t: FloatArray) -> tuple[FloatArray, ...]:
    """``sin(k * pi * t)`` for k = 1/30, 1/12, 1/3, 1, 2, 6: the GCJ-02 formula's sines.

    All six come from one sine/cosine pair at ``pi * t / 60`` through the
    double-, triple- and sum-angle identities: a multiplication is some 30
    times cheaper than ``np.sin``, and the rounding they add stays near 1e-13
    (picometres on the formula's 20-320 m terms).
    """
    s1, c1 = _sin_cos(np.pi / 60.0 * t)
    s2, c2 = _double(s1, c1)  # pi t / 30
    s5, c5 = _add(s2, c2, *_triple(s1, c1))  # pi t / 12
    s20, c20 = _double(*_double(s5, c5))  # pi t / 3
    s60, c60 = _triple(s20, c20)  # pi t
    s120 = 2.0 * s60 * c60  # 2 pi t
    s360 = s120 * (3.0 - 4.0 * s120 * s120)  # 6 pi t (triple angle)
    return s2, s5, s20, s60, s120, s360


def _sin_cos(angle: FloatArray) -> _Pair:
    return np.sin(angle), np.cos(angle)


def _double(s: FloatArray, c: FloatArray) -> _Pair:
    return 2.0 * s * c, 1.0 - 2.0 * s * s


def _triple(s: FloatArray, c: FloatArray) -> _Pair:
    return s * (3.0 - 4.0 * s * s), c * (4.0 * c * c - 3.0)


def _add(s1: FloatArray, c1: FloatArray, s2: FloatArray, c2: FloatArray) -> _Pair:
    return s1 * c2 + c1 * s2, c1 * c2 - s1 * s2


def _gcj_inverse(lon: FloatArray, lat: FloatArray) -> _Pair:
    """WGS 84 of GCJ-02 points: solve ``_gcj_forward(p) == (lon, lat)`` by fixed point.

    ``_gcj_forward`` is the identity plus an offset whose derivative is below
    0.01, so ``p <- p + (target - forward(p))`` gains two digits a step: five
    steps reach 1e-10 degrees.
    """
    x, y = lon.copy(), lat.copy()
    for _ in range(_MAX_ITERATIONS):
        fx, fy = _gcj_forward(x, y)
        dx, dy = lon - fx, lat - fy
        x += dx
        y += dy
        if _converged(dx, dy):
            break
    return x, y


def _bd_forward(lon: FloatArray, lat: FloatArray) -> _Pair:
    """BD-09 of GCJ-02 points: the published polar perturbation and shift."""
    radius = np.hypot(lon, lat) + _BD_DR * np.sin(lat * _BD_FREQ)
    theta = np.arctan2(lat, lon) + _BD_DTHETA * np.cos(lon * _BD_FREQ)
    return radius * np.cos(theta) + _BD_SHIFT_LON, radius * np.sin(theta) + _BD_SHIFT_LAT


def _bd_inverse(lon: FloatArray, lat: FloatArray) -> _Pair:
    """GCJ-02 of BD-09 points: solve ``_bd_forward(p) == (lon, lat)`` by fixed point.

    The forward formula lengthens the polar radius of ``p`` by ``dr`` and turns
    it by ``dt``, both evaluated at ``p``: undo them with ``dr`` and ``dt``
    evaluated at the current estimate. The first step is the usual one-step
    inverse (errors up to a metre); the terms' derivatives are about 0.01, so
    each further step gains two digits.
    """
    u, v = lon - _BD_SHIFT_LON, lat - _BD_SHIFT_LAT
    radius_bd = np.hypot(u, v)
    cos_bd = np.divide(u, radius_bd, out=np.ones_like(u), where=radius_bd > 0)
    sin_bd = np.divide(v, radius_bd, out=np.zeros_like(v), where=radius_bd > 0)
    x, y = u, v
    for _ in range(_MAX_ITERATIONS):
        radius = radius_bd - _BD_DR * np.sin(y * _BD_FREQ)
        turn = _BD_DTHETA * np.cos(x * _BD_FREQ)
        # |turn| <= 3e-6 rad: these two Taylor terms give cos and sin to full precision.
        cos_turn, sin_turn = 1.0 - turn * turn / 2.0, turn - turn**3 / 6.0
        new_x = radius * (cos_bd * cos_turn + sin_bd * sin_turn)
        new_y = radius * (sin_bd * cos_turn - cos_bd * sin_turn)
        dx, dy = new_x - x, new_y - y
        x, y = new_x, new_y
        if _converged(dx, dy):
            break
    return x, y


def _converged(dx: FloatArray, dy: FloatArray) -> bool:
    return bool(max(np.abs(dx).max(initial=0.0), np.abs(dy).max(initial=0.0)) < _TOLERANCE_DEG)
