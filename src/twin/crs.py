"""Coordinate reference systems: parsing, automatic choice, and metric checks.

A twin holds every layer in one projected CRS (统一时空定位基准). With
``crs="auto"`` it is chosen from the data's location:

- in China (the rough box :data:`twin.webcoords.CHINA_BOX`), the CGCS2000
  3-degree Gauss-Krüger zone whose central meridian is nearest, EPSG:4534
  (CM 75E) to EPSG:4554 (CM 135E), with false easting 500 km and no zone
  prefix;
- elsewhere the WGS 84 UTM zone (EPSG:326xx north, 327xx south), with the
  Norway and Svalbard exceptions of the UTM grid, and the polar UPS
  projections beyond 84N / 80S.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final, Protocol

import numpy as np
import pyproj
from pyproj import CRS

from twin.errors import CRSError
from twin.webcoords import in_china

# EPSG:4534 is "CGCS2000 / 3-degree Gauss-Kruger CM 75E"; the codes run in
# steps of one zone (3 degrees) to EPSG:4554, "CM 135E" (EPSG registry).
_GK3_FIRST_CODE: Final = 4534
_GK3_FIRST_CM: Final = 75
_GK3_LAST_CM: Final = 135
# WGS 84 / UTM zone 1N is EPSG:32601 and 1S is EPSG:32701; UPS North (N,E) is
# EPSG:32661 and UPS South (N,E) EPSG:32761 (EPSG registry). UTM covers 80S..84N.
_UTM_NORTH: Final = 32600
_UTM_SOUTH: Final = 32700
_UPS_NORTH: Final = 32661
_UPS_SOUTH: Final = 32761
_EXAMPLE: Final = "e.g. 'EPSG:4547' (CGCS2000 / 3-degree GK CM 114E), 4547, a WKT or PROJ string"


class _HasBounds(Protocol):
    @property
    def total_bounds(self) -> np.ndarray: ...

    @property
    def crs(self) -> Any: ...


def resolve_crs(value: Any) -> CRS:
    """Return the :class:`pyproj.CRS` for anything pyproj accepts.

    Parameters
    ----------
    value : str, int, dict or pyproj.CRS
        ``"EPSG:4547"``, ``4547``, a WKT or PROJ string, a PROJJSON dict, a CRS.

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    CRSError
        If pyproj does not understand ``value``; the one-line message repeats
        what was given and shows a valid example.

    Examples
    --------
    >>> resolve_crs("EPSG:4547").name
    'CGCS2000 / 3-degree Gauss-Kruger CM 114E'
    >>> resolve_crs(4490).is_geographic
    True
    """
    if isinstance(value, CRS):
        return value
    if value is None:
        raise CRSError(f"no CRS given: name one, {_EXAMPLE}")
    text = str(value).strip().lower().replace("-", "")
    if text in {"gcj02", "bd09"}:
        raise CRSError(
            f"{value} is a web-map convention, not a CRS: give the CRS as EPSG:4326 and the "
            f"convention separately (coords={text!r})"
        )
    if text == "auto":
        raise CRSError("'auto' is chosen from the data: use auto_crs_for(data) (or crs='auto')")
    try:
        return CRS.from_user_input(value)
    except (pyproj.exceptions.CRSError, TypeError, ValueError):
        raise CRSError(
            f"unknown CRS {_shorten(value)}: give one pyproj knows, {_EXAMPLE}"
        ) from None


def auto_crs(lon: float, lat: float) -> CRS:
    """Return the projected CRS for metric work around a longitude/latitude.

    In China (:data:`twin.webcoords.CHINA_BOX`) the CGCS2000 3-degree
    Gauss-Krüger zone by central meridian ``cm = 3 * round(lon / 3)``
    (EPSG:4534-4554); elsewhere the WGS 84 UTM zone (or UPS near the poles).

    Parameters
    ----------
    lon, lat : float
        Degrees (WGS 84 / CGCS2000).

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    CRSError
        If ``lon``/``lat`` are not finite degrees in range (data whose CRS was
        declared wrongly often shows up here).

    Examples
    --------
    >>> auto_crs(104.06, 30.67).to_epsg()  # Chengdu
    4544
    >>> auto_crs(24.94, 60.17).name  # Helsinki
    'WGS 84 / UTM zone 35N'
    """
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise CRSError(
            f"({lon}, {lat}) is not a longitude/latitude in degrees: check the source CRS "
            "(pass src_crs=, e.g. src_crs='EPSG:4490') or give the twin's CRS explicitly"
        )
    if bool(in_china(lon, lat)):
        return CRS.from_epsg(_gk3_code(lon))
    return CRS.from_epsg(_utm_code(lon, lat))


def auto_crs_for(data: _HasBounds | Sequence[float] | np.ndarray, crs: Any = None) -> CRS:
    """Return :func:`auto_crs` at the centre of the data's extent.

    Parameters
    ----------
    data : GeoDataFrame, GeoSeries or (minx, miny, maxx, maxy)
        The data, or its bounds, in ``crs``.
    crs : CRS-like, optional
        The CRS of ``data``; defaults to ``data.crs``.

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    CRSError
        If the CRS is missing or unknown, or the data has no coordinates.

    Examples
    --------
    >>> auto_crs_for((396000.0, 3395000.0, 408000.0, 3405000.0), "EPSG:4544").to_epsg()
    4544
    >>> auto_crs_for((116.2, 39.8, 116.6, 40.0), 4490).name  # Beijing
    'CGCS2000 / 3-degree Gauss-Kruger CM 117E'
    """
    if crs is None:
        crs = getattr(data, "crs", None)
    if crs is None:
        raise CRSError("the data has no CRS: say which it is (e.g. src_crs='EPSG:4490')")
    source = resolve_crs(crs)
    bounds = data.total_bounds if hasattr(data, "total_bounds") else data
    minx, miny, maxx, maxy = np.asarray(bounds, dtype=float).reshape(4)
    if not np.isfinite([minx, miny, maxx, maxy]).all():
        raise CRSError(
            "cannot choose a CRS automatically for data with no coordinates: "
            f"give the CRS explicitly, {_EXAMPLE}"
        )
    to_lonlat = pyproj.Transformer.from_crs(source, "EPSG:4326", always_xy=True)
    try:
        lon, lat = to_lonlat.transform((minx + maxx) / 2, (miny + maxy) / 2, errcheck=True)
    except pyproj.exceptions.ProjError:
        lon, lat = math.inf, math.inf
    return auto_crs(float(lon), float(lat))


def require_projected(crs: Any, what: str) -> None:
    """Raise :class:`~twin.errors.CRSError` unless ``crs`` is projected (metric).

    Parameters
    ----------
    crs : CRS-like or None
        The CRS to check.
    what : str
        What is being checked, for the message ("layer 'buildings'").

    Examples
    --------
    >>> require_projected("EPSG:4547", "the buildings")
    >>> require_projected("EPSG:4326", "the buildings")
    Traceback (most recent call last):
    ...
    twin.errors.CRSError: the buildings is in a geographic CRS (degrees); metric work needs a \
projected CRS: reproject with .to_crs(twin.crs) or create the twin with crs='auto'
    """
    if crs is None:
        raise CRSError(
            f"{what} has no CRS: set it (e.g. .set_crs('EPSG:4490')) and reproject "
            "with .to_crs(twin.crs)"
        )
    resolved = resolve_crs(crs)
    if resolved.is_geographic:
        raise CRSError(
            f"{what} is in a geographic CRS (degrees); metric work needs a projected CRS: "
            "reproject with .to_crs(twin.crs) or create the twin with crs='auto'"
        )
    if not resolved.is_projected:
        raise CRSError(
            f"{what} is in {resolved.name!r}, which is not a projected CRS: reproject with "
            ".to_crs(twin.crs) or create the twin with crs='auto'"
        )


def _gk3_code(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree GK zone (CM variant) nearest ``lon``."""
    cm = 3 * math.floor(lon / 3 + 0.5)  # round half up: no banker's rounding at zone edges
    cm = min(max(cm, _GK3_FIRST_CM), _GK3_LAST_CM)
    return _GK3_FIRST_CODE + (cm - _GK3_FIRST_CM) // 3


def _utm_code(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 UTM zone (or UPS) holding ``lon``/``lat``."""
    if lat >= 84:
        return _UPS_NORTH
    if lat < -80:
        return _UPS_SOUTH
    zone = min(int((lon + 180) // 6) + 1, 60)
    if 56 <= lat < 64 and 3 <= lon < 12:
        zone = 32  # south-west Norway is widened to zone 32
    elif 72 <= lat < 84 and 0 <= lon < 42:
        zone = (31, 33, 35, 37)[int(np.searchsorted((9, 21, 33), lon, side="right"))]  # Svalbard
    return (_UTM_NORTH if lat >= 0 else _UTM_SOUTH) + zone


def _shorten(value: Any, limit: int = 60) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
