"""Plan compliance (规划管控): built reality against the parcels' planning controls.

Four checks, one table:

* ``far``: a parcel whose floor area ratio (容积率) exceeds its ``far_limit``;
* ``coverage``: a parcel whose building coverage (建筑密度) exceeds its ``coverage_limit``;
* ``height``: a building taller than its parcel's ``height_limit_m`` (限高), the
  parcel being the one holding the largest share of its footprint;
* ``no_parcel``: a building on no parcel at all.

A limit of 0 is a limit (no building allowed, as on green land); a missing limit
means the parcel has none, and is not checked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from geopandas import GeoDataFrame

from twin.indicators import building_heights, building_indicators
from twin.relate import largest_share

COLUMNS = ["check", "layer", "uid", "parcel_uid", "measured", "limit", "excess", "unit", "geometry"]
_TOLERANCE = 1e-9  # measured values equal to the limit comply


def plan_compliance(
    parcels: GeoDataFrame,
    buildings: GeoDataFrame,
    *,
    floor_height_m: float = 3.0,
    parcel_layer: str = "parcels",
    building_layer: str = "buildings",
) -> GeoDataFrame:
    """The compliance table: one row per violation, worst first within each check.

    Parameters
    ----------
    parcels : GeoDataFrame
        Parcels indexed by uid with ``far_limit``, ``coverage_limit`` and/or
        ``height_limit_m``.
    buildings : GeoDataFrame
        Buildings indexed by uid with ``floors`` and/or ``height_m``.
    floor_height_m : float, default 3.0
        Storey height used where only floors (or only height) are known.

    Returns
    -------
    GeoDataFrame
        Columns ``check, layer, uid, parcel_uid, measured, limit, excess, unit``
        and the geometry of the offending parcel or building.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> parcels = gpd.GeoDataFrame({"far_limit": [1.0], "height_limit_m": [20.0]},
    ...     geometry=[shapely.box(0, 0, 100, 100)], index=["parcels.P1"], crs="EPSG:4544")
    >>> buildings = gpd.GeoDataFrame({"floors": [12, 2], "height_m": [40.0, 6.0]},
    ...     geometry=[shapely.box(10, 10, 40, 40), shapely.box(200, 0, 210, 10)],
    ...     index=["buildings.B1", "buildings.B2"], crs="EPSG:4544")
    >>> plan_compliance(parcels, buildings)[["check", "uid", "measured", "limit", "excess"]]
           check           uid  measured  limit  excess
    0        far    parcels.P1      1.08    1.0    0.08
    1     height  buildings.B1     40.00   20.0   20.00
    2  no_parcel  buildings.B2       NaN    NaN     NaN
    """
    zones = building_indicators(parcels, buildings, floor_height_m=floor_height_m)
    frames = [
        _over_limit(parcels, zones["far"], "far_limit", "far", "ratio", parcel_layer),
        _over_limit(
            parcels, zones["coverage"], "coverage_limit", "coverage", "ratio", parcel_layer
        ),
    ]
    home = largest_share(buildings, parcels)
    heights = building_heights(buildings, floor_height_m=floor_height_m)["height_m"]
    frames.append(_too_tall(parcels, buildings, home["zone"], heights, building_layer))
    frames.append(_no_parcel(buildings, home["zone"], building_layer))
    frames = [f for f in frames if len(f)]
    if not frames:
        return GeoDataFrame(pd.DataFrame(columns=COLUMNS), geometry="geometry", crs=parcels.crs)
    table = pd.concat(frames, ignore_index=True)[COLUMNS]
    return GeoDataFrame(table, geometry="geometry", crs=parcels.crs)


def _over_limit(
    parcels: GeoDataFrame,
    measured: pd.Series,
    limit_field: str,
    check: str,
    unit: str,
    layer: str,
) -> pd.DataFrame:
    if limit_field not in parcels.columns:
        return pd.DataFrame(columns=COLUMNS)
    limit = pd.to_numeric(parcels[limit_field], errors="coerce")
    over = limit.notna() & (measured > limit + _TOLERANCE)
    return _rows(
        check,
        layer,
        parcels.index[over],
        parcels.index[over],
        measured[over],
        limit[over],
        unit,
        parcels.geometry[over],
    )


def _too_tall(
    parcels: GeoDataFrame,
    buildings: GeoDataFrame,
    home: pd.Series,
    heights: pd.Series,
    layer: str,
) -> pd.DataFrame:
    if "height_limit_m" not in parcels.columns:
        return pd.DataFrame(columns=COLUMNS)
    limits = pd.to_numeric(parcels["height_limit_m"], errors="coerce")
    limit = pd.Series(limits.reindex(home.to_numpy()).to_numpy(), index=buildings.index)
    over = limit.notna() & (heights > limit + _TOLERANCE)
    return _rows(
        "height",
        layer,
        buildings.index[over],
        home[over],
        heights[over],
        limit[over],
        "m",
        buildings.geometry[over],
    )


def _no_parcel(buildings: GeoDataFrame, home: pd.Series, layer: str) -> pd.DataFrame:
    alone = home.isna()
    nothing = pd.Series(np.nan, index=buildings.index[alone])
    return _rows(
        "no_parcel",
        layer,
        buildings.index[alone],
        nothing.astype(object),
        nothing,
        nothing,
        "",
        buildings.geometry[alone],
    )


def _rows(
    check: str,
    layer: str,
    uids: pd.Index,
    parcel_uids: pd.Index | pd.Series,
    measured: pd.Series,
    limit: pd.Series,
    unit: str,
    geometry: pd.Series,
) -> pd.DataFrame:
    measured_values = np.asarray(measured, dtype=float)
    limit_values = np.asarray(limit, dtype=float)
    frame = pd.DataFrame(
        {
            "check": check,
            "layer": layer,
            "uid": np.asarray(uids, dtype=object),
            "parcel_uid": np.asarray(parcel_uids, dtype=object),
            "measured": measured_values.round(4),
            "limit": limit_values,
            "excess": (measured_values - limit_values).round(4),
            "unit": unit,
            "geometry": np.asarray(geometry.array, dtype=object),
        }
    )
    return frame.sort_values("excess", ascending=False, kind="stable")
