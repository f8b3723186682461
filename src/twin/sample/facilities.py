"""Emergency facilities (应急设施) of the synthetic city: fire stations, hospitals, shelters.

About one facility per 50,000 buildings (20 at 1,000,000; never fewer than
six, so even the 3,000-building sample has two of each type). The city is
cut into a grid of cells; each facility stands in a different cell, at the
representative point of a building drawn in that cell, so the facilities
spread over the city as emergency planning spreads them. Types take turns:
消防站 (fire station), 医院 (hospital), 应急避难场所 (emergency shelter).

Examples
--------
>>> import geopandas as gpd, numpy as np, shapely
>>> xy = np.random.default_rng(0).random((500, 2)) * 1000
>>> homes = gpd.GeoDataFrame(geometry=shapely.buffer(shapely.points(xy), 3), crs="EPSG:4544")
>>> fac = facilities_frame(homes, np.random.default_rng(1))
>>> len(fac), sorted(fac["设施类型"].unique().tolist())
(6, ['医院', '应急避难场所', '消防站'])
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely

from twin.sample.draws import numbered
from twin.sample.names import two_syllable_names

__all__ = ["FACILITY_TYPES", "facilities_frame", "facility_count"]

#: Facility types (设施类型), in the order they take turns.
FACILITY_TYPES = ("消防站", "医院", "应急避难场所")
_SUFFIX = {"消防站": "消防救援站", "医院": "医院", "应急避难场所": "公园应急避难场所"}
BUILDINGS_PER_FACILITY = 50_000
MIN_FACILITIES = 6


def facility_count(n_buildings: int) -> int:
    """How many facilities a city of ``n_buildings`` gets.

    Examples
    --------
    >>> facility_count(3000), facility_count(1_000_000)
    (6, 20)
    """
    return max(MIN_FACILITIES, round(n_buildings / BUILDINGS_PER_FACILITY))


def facilities_frame(buildings: gpd.GeoDataFrame, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """The facility layer in delivery field names: 设施编码, 设施名称, 设施类型.

    Parameters
    ----------
    buildings : geopandas.GeoDataFrame
        The city's buildings (the facilities stand in some of them).
    rng : numpy.random.Generator
        The random stream.

    Returns
    -------
    geopandas.GeoDataFrame
        Points in the buildings' CRS.
    """
    n = facility_count(len(buildings))
    geoms = buildings.geometry.to_numpy()
    centre = shapely.get_coordinates(shapely.centroid(geoms))
    chosen = _spread(centre, n, rng)
    kinds = np.array(FACILITY_TYPES)[np.arange(n) % len(FACILITY_TYPES)]
    bases = two_syllable_names(rng, n)
    names = [f"{base}{_SUFFIX[kind]}" for base, kind in zip(bases, kinds, strict=True)]
    return gpd.GeoDataFrame(
        {"设施编码": numbered("YJ", n, width=4), "设施名称": names, "设施类型": kinds},
        geometry=shapely.point_on_surface(geoms[chosen]),
        crs=buildings.crs,
    )


def _spread(xy: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of ``n`` points, each from a different cell of a grid over ``xy``."""
    side = math.ceil(math.sqrt(n)) + 1
    low, high = xy.min(axis=0), xy.max(axis=0)
    cell = np.minimum(((xy - low) / np.maximum(high - low, 1e-9) * side).astype(np.int64), side - 1)
    key = cell[:, 0] * side + cell[:, 1]
    occupied = np.unique(key)
    cells = rng.choice(occupied, size=min(n, len(occupied)), replace=False)
    rows = [int(rng.choice(np.flatnonzero(key == c))) for c in cells]
    if len(rows) < n:  # fewer occupied cells than facilities: any other buildings
        rest = np.setdiff1d(np.arange(len(xy)), rows)
        rows.extend(rng.choice(rest, size=n - len(rows), replace=False).tolist())
    return np.array(rows, dtype=np.int64)
