"""Sensor indicators per zone: count, density and sensing coverage by type.

A sensor covers the disc of its sensing radius. The radius is the sensor's
own ``radius_m`` where it is a positive number, otherwise the default of its
type (:data:`DEFAULT_RADIUS_M`, or the table given as ``radius_m=``). A
zone's coverage ratio for a type is the share of the zone's area inside the
union of that type's discs, whichever zone the sensors stand in; the
coverage gaps are the rest of the zone (物联感知覆盖不足的区域).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from twin.errors import UsageError
from twin.indicators._overlay import (
    Frame,
    Geoms,
    check_inputs,
    geometry_array,
    per_area,
    zone_areas,
)
from twin.indicators.coverage import CoverZones, covered_areas, disc_polygons, overlap_groups

__all__ = [
    "DEFAULT_RADIUS_M",
    "coverage_gaps",
    "sensing_radii",
    "sensor_indicators",
]

log = logging.getLogger(__name__)

#: Default sensing radius by sensor type, in metres, used for sensors that
#: carry no ``radius_m`` of their own. Orders of magnitude of the devices'
#: reach: a point smoke detector protects a room-scale area, a gas leak
#: detector a plant room or a street section, a camera its field of view, a
#: water-level gauge a stretch of channel, a pipe pressure logger a district
#: metered area.
DEFAULT_RADIUS_M: Mapping[str, float] = MappingProxyType(
    {
        "smoke": 10.0,
        "gas_leak": 50.0,
        "camera": 50.0,
        "video": 50.0,
        "water_level": 200.0,
        "water_pressure": 500.0,
    }
)
RadiusSpec = float | Mapping[str, float] | None
_ALL = "sensor"  # the group name when sensors are not split by type
_QUAD_SEGS = 16  # segments per quarter circle of a sensing disc (area within 0.2 %)
_SMALL_GROUP = 64  # overlapping discs unioned in one vectorised call up to this many (or a zone
# minus its discs one at a time, where they cross its boundary); larger sets with union_all


def _types(sensors: pd.DataFrame, by: str | None) -> npt.NDArray[np.object_]:
    if by is None:
        return np.full(len(sensors), _ALL, dtype=object)
    if by not in sensors.columns:
        raise UsageError(
            f"the sensors have no column {by!r} to split by: use one of "
            f"{', '.join(map(str, sensors.columns))} or by=None"
        )
    return sensors[by].astype(object).where(sensors[by].notna(), "unknown").to_numpy(dtype=object)


def sensing_radii(
    sensors: pd.DataFrame, *, radius_m: RadiusSpec = None, by: str | None = "sensor_type"
) -> pd.Series:
    """Sensing radius of each sensor in metres (NaN when none applies).

    Parameters
    ----------
    sensors : DataFrame
        Sensors, optionally with ``radius_m`` (used where a positive number).
    radius_m : float or mapping of str to float, optional
        Radius for sensors without their own: one number for all, or a table
        by type merged over :data:`DEFAULT_RADIUS_M` (default: that table).
    by : str or None, default "sensor_type"
        Column holding the type looked up in the table.

    Returns
    -------
    Series
        Float radii indexed like ``sensors``.

    Examples
    --------
    >>> s = pd.DataFrame(
    ...     {"sensor_type": ["smoke", "smoke", "noise"], "radius_m": [7.5, None, None]})
    >>> sensing_radii(s).tolist()
    [7.5, 10.0, nan]
    >>> sensing_radii(s, radius_m={"noise": 100}).tolist()
    [7.5, 10.0, 100.0]
    """
    own = np.full(len(sensors), np.nan)
    if "radius_m" in sensors.columns:
        own = pd.to_numeric(sensors["radius_m"], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        own = np.where(np.isfinite(own) & (own > 0), own, np.nan)
    if radius_m is None or isinstance(radius_m, Mapping):
        table = {**DEFAULT_RADIUS_M, **(radius_m or {})}
        fallback = np.array([table.get(t, np.nan) for t in _types(sensors, by)], dtype=np.float64)
    else:
        fallback = np.full(len(sensors), float(radius_m))
    if np.any(fallback <= 0):
        raise UsageError(f"sensing radii must be positive numbers of metres, not {radius_m}")
    return pd.Series(np.where(np.isnan(own), fallback, own), index=sensors.index, name="radius_m")


def sensor_indicators(
    zones: Frame,
    sensors: gpd.GeoDataFrame,
    *,
    radius_m: RadiusSpec = None,
    by: str | None = "sensor_type",
) -> pd.DataFrame:
    """Sensor count, density per km² and coverage ratio per zone, by type.

    A sensor is *counted* in the first zone (in the order of ``zones``) that
    it intersects: a sensor exactly on the boundary between two zones counts
    once, for the one that comes first. Coverage does not depend on where a
    sensor stands: a disc reaching across a boundary covers both sides.

    Parameters
    ----------
    zones : GeoDataFrame or GeoSeries
        Polygons in a projected CRS.
    sensors : GeoDataFrame
        Points in the zones' CRS, with the ``by`` column and optionally
        ``radius_m``.
    radius_m : float or mapping of str to float, optional
        Radius for sensors without their own (see :func:`sensing_radii`).
    by : str or None, default "sensor_type"
        Column to split by; None for all sensors as one group ``"sensor"``.

    Returns
    -------
    DataFrame
        Indexed like ``zones``: ``sensor_count`` and ``sensor_per_km2`` over
        all sensors, then for each type ``t`` (sorted) ``t_count``,
        ``t_per_km2`` and ``t_coverage`` (share of the zone's area within
        reach of a sensor of type ``t``, from 0 to 1; NaN when no sensor of
        the type has a radius). With ``by=None`` the columns are
        ``sensor_count``, ``sensor_per_km2`` and ``sensor_coverage``.
        Sensors without a radius are counted but left out of coverage.

    Raises
    ------
    CRSError
        When the zones are not in a projected CRS or the sensors are in
        another CRS.
    UsageError
        When ``by`` is not a column of the sensors or a radius is not positive.

    Examples
    --------
    >>> zones = gpd.GeoDataFrame(
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)],
    ...     index=["A", "B"], crs="EPSG:4544")
    >>> sensors = gpd.GeoDataFrame(
    ...     {"sensor_type": ["smoke", "smoke", "water_level"], "radius_m": [5.0, 5.0, 1000.0]},
    ...     geometry=shapely.points([(50, 50), (100, 50), (150, 50)]), crs="EPSG:4544")
    >>> out = sensor_indicators(zones, sensors)
    >>> out[["sensor_count", "smoke_count", "water_level_count", "water_level_coverage"]]
       sensor_count  smoke_count  water_level_count  water_level_coverage
    A             2            2                  0                   1.0
    B             1            0                  1                   1.0
    >>> out["smoke_per_km2"].tolist()
    [200.0, 0.0]
    """
    check_inputs(zones, {"sensors": sensors})
    zone_geoms = geometry_array(zones)
    points = geometry_array(sensors)
    n = len(zone_geoms)
    area = zone_areas(zone_geoms)
    km2 = area / 1e6
    types = _types(sensors, by)
    radii = sensing_radii(sensors, radius_m=radius_m, by=by).to_numpy(dtype=np.float64)
    owner = _first_zone(zone_geoms, points)
    counted = owner >= 0
    total = np.bincount(owner[counted], minlength=n).astype(np.int64)
    out: dict[str, Any] = {"sensor_count": total, "sensor_per_km2": per_area(total, km2)}
    cover_zones: CoverZones | None = None  # made once, for the first type with radii
    for name in sorted(set(types.tolist())):
        of_type = types == name
        label = str(name)
        count = np.bincount(owner[of_type & counted], minlength=n).astype(np.int64)
        if by is not None:
            out[f"{label}_count"] = count
            out[f"{label}_per_km2"] = per_area(count, km2)
        reach = of_type & ~np.isnan(radii)
        if not reach.any():
            out[f"{label}_coverage"] = np.full(n, np.nan)
            continue
        if reach.sum() < of_type.sum():
            log.warning(
                "%d %s sensors have no sensing radius: left out of coverage",
                int(of_type.sum() - reach.sum()),
                name,
            )
        cover_zones = cover_zones or CoverZones.of(zone_geoms)
        covered = covered_areas(
            cover_zones,
            points[reach],
            radii[reach],
            quad_segs=_QUAD_SEGS,
            small_group=_SMALL_GROUP,
        )
        out[f"{label}_coverage"] = np.minimum(per_area(covered, area), 1.0)
    return pd.DataFrame(out, index=zones.index)


def _first_zone(zones: Geoms, points: Geoms) -> npt.NDArray[np.intp]:
    """Position of the first zone each point intersects, -1 for none."""
    owner = np.full(len(points), len(zones), dtype=np.intp)
    point_i, zone_i = shapely.STRtree(zones).query(points, predicate="intersects")
    np.minimum.at(owner, point_i, zone_i.astype(np.intp))
    owner[owner == len(zones)] = -1
    return owner


def covered_parts(zones: Geoms, points: Geoms, radii: npt.NDArray[np.float64]) -> Geoms:
    """For each zone, the part of it within reach of at least one point.

    Parameters
    ----------
    zones : ndarray of shapely polygons
    points : ndarray of shapely points
    radii : ndarray of float
        Reach of each point, in CRS units.

    Returns
    -------
    ndarray of shapely geometries
        One (possibly empty) polygonal geometry per zone.

    Examples
    --------
    >>> z = np.array([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)])
    >>> p = shapely.points([(0, 0), (10, 10), (10, 0)])
    >>> shapely.area(covered_parts(z, p, np.array([1.0, 1.0, 100.0]))).round(3).tolist()
    [100.0, 100.0]
    """
    usable = (shapely.get_type_id(points) == shapely.GeometryType.POINT) & ~shapely.is_empty(points)
    usable &= np.isfinite(radii) & (radii > 0)
    blobs = _disjoint_union(points[usable], radii[usable])
    result = np.array([shapely.Polygon()] * len(zones), dtype=np.object_)
    zone_i, blob_i = shapely.STRtree(blobs).query(zones, predicate="intersects")
    shapely.prepare(blobs)
    whole = np.zeros(len(zones), dtype=bool)
    whole[zone_i[shapely.contains(blobs[blob_i], zones[zone_i])]] = True
    result[whole] = zones[whole]
    keep = ~whole[zone_i]
    zone_i, blob_i = zone_i[keep], blob_i[keep]
    if len(zone_i) == 0:
        return result
    shapely.prepare(zones)
    clipped = blobs[blob_i]
    cross = ~shapely.contains_properly(zones[zone_i], clipped)
    clipped[cross] = shapely.intersection(clipped[cross], zones[zone_i[cross]])
    parts, source = shapely.get_parts(clipped, return_index=True)
    polygonal = shapely.get_type_id(parts) == shapely.GeometryType.POLYGON
    parts, owner = parts[polygonal], zone_i[source[polygonal]]
    order = np.argsort(owner, kind="stable")
    parts, owner = parts[order], owner[order]
    present = np.unique(owner)
    # The blobs are disjoint, so their parts inside a zone make a valid
    # multipolygon as they are: no union per zone is needed.
    result[present] = shapely.multipolygons(parts, indices=np.searchsorted(present, owner))
    return result


def _disjoint_union(points: Geoms, radii: npt.NDArray[np.float64]) -> Geoms:
    """The union of the discs around the points, as disjoint polygons.

    Discs are grouped into connected components of overlap (centres closer
    than the sum of the radii); only components of more than one disc are
    unioned (small ones in one vectorised call, large ones with
    ``union_all``), so sparse sensors cost little and dense ones are merged
    once for all zones.
    """
    if len(points) == 0:
        return np.empty(0, dtype=np.object_)
    xy = shapely.get_coordinates(points)
    discs = disc_polygons(xy, radii, _QUAD_SEGS)
    n_groups, group = overlap_groups(xy, radii)
    size = np.bincount(group, minlength=n_groups)
    alone = size[group] == 1
    merged: list[Any] = [discs[alone]]
    small = ~alone & (size[group] <= _SMALL_GROUP)
    if small.any():
        order = np.argsort(group[small], kind="stable")
        members, labels = discs[small][order], group[small][order]
        _, index = np.unique(labels, return_inverse=True)
        multi = shapely.multipolygons(members, indices=index)
        # "structure" unions the overlapping members of each multipolygon.
        merged.append(shapely.get_parts(shapely.make_valid(multi, method="structure")))
    large = size[group] > _SMALL_GROUP
    if large.any():
        order = np.argsort(group[large], kind="stable")
        members, labels = discs[large][order], group[large][order]
        starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
        for start, stop in zip(starts, np.r_[starts[1:], len(labels)], strict=True):
            merged.append(shapely.get_parts(shapely.union_all(members[start:stop])))
    parts = np.concatenate(merged)
    return parts[shapely.get_type_id(parts) == shapely.GeometryType.POLYGON]


def coverage_gaps(
    zones: Frame,
    sensors: gpd.GeoDataFrame,
    sensor_type: str | None,
    *,
    radius_m: RadiusSpec = None,
    by: str = "sensor_type",
) -> gpd.GeoDataFrame:
    """The parts of each zone that no sensor of a type reaches.

    Parameters
    ----------
    zones : GeoDataFrame or GeoSeries
        Polygons in a projected CRS.
    sensors : GeoDataFrame
        Points in the zones' CRS, with the ``by`` column and optionally
        ``radius_m``.
    sensor_type : str or None
        The type to map (``"smoke"``); None for all sensors whatever their type.
    radius_m : float or mapping of str to float, optional
        Radius for sensors without their own (see :func:`sensing_radii`).
    by : str, default "sensor_type"
        Column holding the type.

    Returns
    -------
    GeoDataFrame
        Indexed like ``zones``, in their CRS: ``zone`` (the zone's index
        label), ``sensor_type``, ``gap_m2``, ``gap_share`` (of the zone's
        area) and the gap geometry. A fully covered zone keeps its row with
        an empty geometry and ``gap_m2`` 0: filter with ``gaps[gaps.gap_m2 > 0]``
        for a map. Zones without any sensor of the type are all gap.

    Raises
    ------
    CRSError
        When the zones are not in a projected CRS or the sensors are in
        another CRS.
    UsageError
        When sensors of the type exist but none has a sensing radius.

    Examples
    --------
    >>> zones = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 100, 100)], crs="EPSG:4544")
    >>> sensors = gpd.GeoDataFrame({"sensor_type": ["camera"], "radius_m": [200.0]},
    ...     geometry=shapely.points([(100, 100)]), crs="EPSG:4544")
    >>> gaps = coverage_gaps(zones, sensors, "camera", radius_m=None)
    >>> gaps[["zone", "gap_m2"]].round(1)
       zone  gap_m2
    0     0     0.0
    >>> coverage_gaps(zones, sensors.assign(radius_m=50.0), "camera").geometry.bounds.round(1)
       minx  miny   maxx   maxy
    0   0.0   0.0  100.0  100.0
    """
    check_inputs(zones, {"sensors": sensors})
    zone_geoms = geometry_array(zones)
    points = geometry_array(sensors)
    radii = sensing_radii(sensors, radius_m=radius_m, by=by).to_numpy(dtype=np.float64)
    chosen = np.ones(len(points), dtype=bool)
    if sensor_type is not None:
        chosen = _types(sensors, by) == sensor_type
    if chosen.any() and np.isnan(radii[chosen]).all():
        raise UsageError(
            f"no {sensor_type} sensor has a sensing radius: give one with radius_m="
            f"{{{sensor_type!r}: metres}} or a radius_m column"
        )
    reach = chosen & ~np.isnan(radii)
    covered = covered_parts(zone_geoms, points[reach], radii[reach])
    gaps = shapely.difference(zone_geoms, covered)
    gap_m2 = np.asarray(shapely.area(gaps), dtype=np.float64)
    return gpd.GeoDataFrame(
        {
            "zone": zones.index.to_numpy(),
            "sensor_type": sensor_type if sensor_type is not None else _ALL,
            "gap_m2": gap_m2,
            "gap_share": per_area(gap_m2, zone_areas(zone_geoms)),
        },
        geometry=gpd.GeoSeries(gaps, index=zones.index, crs=zones.crs),
        index=zones.index,
        crs=zones.crs,
    )
