"""City indicators per zone: pure functions over GeoDataFrames (momepy style).

Every function takes the zones (parcels, grid cells 网格, districts) first
and returns a DataFrame (or GeoDataFrame) indexed like the zones, one row per
zone, zones with nothing in them included. Inputs must share one projected
CRS; a geographic CRS or a mismatch raises :class:`~twin.errors.CRSError`.
Nothing here reads or writes files or touches a twin.

- :mod:`twin.indicators.buildings`: :func:`building_indicators` (count,
  footprint, gross floor area, FAR 容积率, coverage 建筑密度, heights,
  population), :func:`building_indicators_from_wkb` (footprints kept as WKB,
  with their stored zones), :func:`floor_counts`, :func:`building_heights`;
- :mod:`twin.indicators.sensors`: :func:`sensor_indicators` (count, density
  and coverage ratio by type), :func:`coverage_gaps`, :func:`sensing_radii`,
  :data:`DEFAULT_RADIUS_M`;
- :mod:`twin.indicators.networks`: :func:`network_lengths`.

Examples
--------
>>> import geopandas as gpd, shapely
>>> from twin.indicators import building_indicators
>>> parcels = gpd.GeoDataFrame(
...     geometry=[shapely.box(0, 0, 50, 20), shapely.box(50, 0, 100, 20)], crs="EPSG:4544")
>>> buildings = gpd.GeoDataFrame(
...     {"floors": [10]}, geometry=[shapely.box(40, 0, 65, 20)], crs="EPSG:4544")
>>> building_indicators(parcels, buildings)[["building_count", "footprint_m2", "far"]]
   building_count  footprint_m2  far
0               0         200.0  2.0
1               1         300.0  3.0
"""

from __future__ import annotations

from twin.indicators.buildings import (
    building_heights,
    building_indicators,
    building_indicators_from_wkb,
    building_indicators_in_batches,
    floor_counts,
)
from twin.indicators.networks import network_lengths
from twin.indicators.sensors import (
    DEFAULT_RADIUS_M,
    coverage_gaps,
    sensing_radii,
    sensor_indicators,
)

__all__ = [
    "DEFAULT_RADIUS_M",
    "building_heights",
    "building_indicators",
    "building_indicators_from_wkb",
    "building_indicators_in_batches",
    "coverage_gaps",
    "floor_counts",
    "network_lengths",
    "sensing_radii",
    "sensor_indicators",
]
