"""Zonal statistics: raster values summarised per polygon, in one pass.

The zones are burnt into a label grid once (``rasterio.features.rasterize``
with each zone's position as its value; a cell belongs to a zone when its
centre is inside, GDAL's rule, the same as ``rasterstats``); the values are
then grouped with ``numpy.bincount`` (count, sum, mean) and one sort by
(zone, value) (min, max, percentiles), instead of masking the raster once per
polygon. Where zones overlap, a cell counts for the last of them only: use
non-overlapping zones (footprints, parcels, grid cells).

Examples
--------
>>> import numpy as np, geopandas as gpd, shapely
>>> from affine import Affine
>>> from twin.raster import Raster
>>> grid = Raster(np.arange(16, dtype=float).reshape(4, 4), Affine(1, 0, 0, 0, -1, 4), None)
>>> zones = gpd.GeoSeries([shapely.box(0, 2, 2, 4), shapely.box(2, 0, 4, 2)], index=["a", "b"])
>>> zonal_stats(zones, grid, stats=("count", "mean", "max"))
   count  mean   max
a      4   2.5   5.0
b      4  12.5  15.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
from affine import Affine
from rasterio.windows import Window

from twin.errors import UsageError
from twin.raster import Raster

__all__ = ["STATS", "label_grid", "zonal_stats"]

STATS = ("count", "sum", "mean", "min", "max", "median", "std")


def label_grid(
    zones: Any, raster: Raster, *, all_touched: bool = False
) -> tuple[np.ndarray, Window]:
    """Zone positions + 1 burnt into the raster's grid (0: no zone), over the zones' window.

    Returns the label array and the window of ``raster`` it covers.
    """
    geoms = np.asarray(gpd.GeoSeries(zones).array if not isinstance(zones, np.ndarray) else zones)
    rows, cols = raster.shape
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not present.any():
        return np.zeros((0, 0), dtype=np.int32), Window(0, 0, 0, 0)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms[present])
    t = raster.transform
    if t.b != 0 or t.d != 0 or t.e >= 0:
        raise UsageError("zonal statistics need a north-up raster (no rotation)")
    col0 = max(int(np.floor((minx - t.c) / t.a)), 0)
    col1 = min(int(np.ceil((maxx - t.c) / t.a)), cols)
    row0 = max(int(np.floor((maxy - t.f) / t.e)), 0)
    row1 = min(int(np.ceil((miny - t.f) / t.e)), rows)
    if col1 <= col0 or row1 <= row0:
        return np.zeros((0, 0), dtype=np.int32), Window(0, 0, 0, 0)
    window = Window(col0, row0, col1 - col0, row1 - row0)
    height, width = int(window.height), int(window.width)
    transform = raster.transform @ Affine.translation(col0, row0)
    positions = np.flatnonzero(present)
    labels = rasterio.features.rasterize(
        zip(geoms[positions], (positions + 1).tolist(), strict=True),
        out_shape=(height, width),
        transform=transform,
        fill=0,
        dtype="int32",
        all_touched=all_touched,
    )
    return labels, window


def zonal_stats(
    zones: Any,
    raster: Raster,
    *,
    stats: Sequence[str] = ("count", "mean", "min", "max"),
    percentiles: Sequence[float] = (),
    all_touched: bool = False,
    labels: tuple[np.ndarray, Window] | None = None,
) -> pd.DataFrame:
    """Statistics of ``raster`` inside each zone, aligned to the zones' index.

    Parameters
    ----------
    zones : GeoDataFrame or GeoSeries
        Polygons in the raster's CRS.
    raster : Raster
        The values (NaN cells are nodata and ignored).
    stats : sequence of str
        Any of ``count, sum, mean, min, max, median, std``.
    percentiles : sequence of float
        Percentiles (0–100, linear interpolation as ``numpy.percentile``), as
        columns ``p90`` etc.
    all_touched : bool, default False
        Count every cell a zone touches instead of cells whose centre is inside.
    labels : (ndarray, Window), optional
        The zones already burnt by :func:`label_grid` on this raster's grid
        (several rasters on one grid: burn once).

    Returns
    -------
    DataFrame
        One row per zone (index of ``zones``); ``count`` 0 and NaN statistics
        for a zone with no valid cell.
    """
    unknown = [s for s in stats if s not in STATS]
    if unknown:
        raise UsageError(f"unknown statistic {unknown[0]!r}: choose from {', '.join(STATS)}")
    if any(not 0 <= q <= 100 for q in percentiles):
        raise UsageError("percentiles must be between 0 and 100")
    series = zones.geometry if isinstance(zones, gpd.GeoDataFrame) else gpd.GeoSeries(zones)
    n = len(series)
    grid, window = labels or label_grid(np.asarray(series.array), raster, all_touched=all_touched)
    values = raster.values[window.toslices()] if grid.size else np.zeros((0, 0))
    inside = grid > 0  # boolean indexing: no copy of the whole window
    zone = grid[inside] - 1
    data = values[inside]
    finite = np.isfinite(data)
    if not finite.all():
        zone, data = zone[finite], data[finite]
    count = np.bincount(zone, minlength=n)
    result: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.bincount(zone, weights=data, minlength=n)
        mean = total / count
        if "std" in stats:
            squares = np.bincount(zone, weights=data * data, minlength=n)
            result["std"] = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    result.update(count=count, sum=np.where(count > 0, total, np.nan), mean=mean)
    ordered_stats = [s for s in stats if s in ("min", "max", "median")]
    if ordered_stats or percentiles:
        result.update(_order_stats(zone, data, count, ordered_stats, percentiles))
    columns = [*stats, *(_pname(q) for q in percentiles)]
    return pd.DataFrame({c: result[c] for c in columns}, index=series.index)


def _pname(q: float) -> str:
    return f"p{q:g}".replace(".", "_")


def _order_stats(
    zone: np.ndarray,
    data: np.ndarray,
    count: np.ndarray,
    stats: list[str],
    percentiles: Sequence[float],
) -> dict[str, np.ndarray]:
    ranked = data[_by_zone_then_value(zone, data)]
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    has = count > 0
    out: dict[str, np.ndarray] = {}
    wanted = {"min": 0.0, "max": 100.0, "median": 50.0}
    for name in stats:
        out[name] = _quantile(ranked, start, count, has, wanted[name])
    for q in percentiles:
        out[_pname(q)] = _quantile(ranked, start, count, has, q)
    return out


def _by_zone_then_value(zone: np.ndarray, data: np.ndarray) -> np.ndarray:
    """The order sorting by zone, then value: one float sort when the key is exact enough."""
    if not len(data):
        return np.zeros(0, dtype=np.int64)
    low, high = float(data.min()), float(data.max())
    span = (high - low) * (1 + 1e-9) + 1.0
    # zone * span + value stays below 2**30: values more than 2.4e-7 apart keep their
    # order (closer ones may swap, changing a statistic by less than that); else lexsort.
    if (int(zone.max()) + 1) * span < 2.0**30:
        return np.argsort(zone * span + (data - low))
    return np.lexsort((data, zone))


def _quantile(
    ranked: np.ndarray, start: np.ndarray, count: np.ndarray, has: np.ndarray, q: float
) -> np.ndarray:
    position = (count - 1).clip(min=0) * (q / 100.0)
    low = np.floor(position).astype(np.int64)
    high = np.ceil(position).astype(np.int64)
    out = np.full(count.shape, np.nan)
    lo = ranked[(start + low)[has]]
    hi = ranked[(start + high)[has]]
    out[has] = lo + (hi - lo) * (position[has] - low[has])
    return out
