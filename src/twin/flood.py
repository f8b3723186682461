"""Flood inundation (城市内涝): the water connected to a seed, depth per cell, what it hits.

:func:`inundation` floods the cells below a water level that are connected
(4-neighbourhood) to a seed: the river's cells, given points, or by default
the lowest cell of the DEM. It is not every low cell of the city: a hollow
behind a dyke stays dry. Connected components are found on row runs: each
row's stretches below the level are runs (found in one pass), the runs of
the row above sharing a column with a run are a contiguous range found by
binary search, a sparse graph of runs gives the components, and the wet runs
are painted back with one cumulative sum; no cell is visited one by one.

:func:`flood_impact` measures the depth at each building footprint and along
each road. The cells deeper than ``impassable_m`` (0.15 m by default, a car's
limit) are the impassable extent (:func:`impassable_extent`); the road
network's edges (the segments between junctions) crossing it close, not whole
road features: a long road only partly under water keeps its dry segments
open. The road-closure analysis (:mod:`twin.network.closures`) on those edges
tells who loses access to hospitals and fire stations.

Examples
--------
>>> import numpy as np
>>> from affine import Affine
>>> from twin.raster import Raster
>>> dem = Raster(np.array([[1.0, 1, 5, 1], [1, 5, 5, 1], [5, 5, 5, 1.0]]),
...              Affine(1, 0, 0, 0, -1, 3), None)
>>> depth = inundation(dem, level_m=2.0, seeds=[(0.5, 2.5)])
>>> np.nan_to_num(depth.values)
array([[1., 1., 0., 0.],
       [1., 0., 0., 0.],
       [0., 0., 0., 0.]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from twin import settings
from twin.errors import UsageError
from twin.raster import Raster
from twin.zonal import zonal_stats

__all__ = [
    "FloodImpact",
    "FloodSummary",
    "connected_to",
    "flood_impact",
    "impassable_edges",
    "impassable_extent",
    "inundation",
]

IMPASSABLE_M = settings.IMPASSABLE_M


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Row runs of ``mask``: start and end (exclusive) as flat indices of the mask padded
    with one False column, and the padded row width."""
    rows, cols = mask.shape
    width = cols + 1
    padded = np.zeros((rows, width), dtype=bool)
    padded[:, :cols] = mask
    flat = padded.ravel()
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    if flat[0]:
        edges = np.concatenate([[0], edges])
    return edges[0::2], edges[1::2], width


def connected_to(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Cells of ``mask`` 4-connected to any ``True`` cell of ``seeds`` (same shape)."""
    rows, cols = mask.shape
    starts, ends, width = _runs(mask)
    n_runs = len(starts)
    if n_runs == 0:
        return np.zeros_like(mask)
    # Runs of the row above that share a column with each run: a contiguous range.
    first = np.searchsorted(ends, starts - width, side="right")
    last = np.searchsorted(starts, ends - width, side="left") - 1
    counts = np.clip(last - first + 1, 0, None)
    below = np.repeat(np.arange(n_runs), counts)
    above = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    above += np.repeat(first, counts)
    graph = sparse.coo_matrix(
        (np.ones(len(below), dtype=np.int8), (below, above)), shape=(n_runs, n_runs)
    )
    _, component = connected_components(graph.tocsr(), directed=False)
    seed_rows, seed_cols = np.nonzero(seeds & mask)
    cells = seed_rows * width + seed_cols
    seed_runs = np.searchsorted(starts, cells, side="right") - 1
    chosen = np.zeros(component.max() + 1, dtype=bool)
    chosen[component[seed_runs]] = True
    wet_runs = chosen[component]
    delta = np.zeros(rows * width + 1, dtype=np.int8)
    delta[starts[wet_runs]] = 1
    delta[ends[wet_runs]] = -1
    painted = np.cumsum(delta[:-1], dtype=np.int8).view(bool)
    return painted.reshape(rows, width)[:, :cols]


def _seed_grid(
    dem: Raster,
    seeds: Sequence[tuple[float, float]] | None,
    water: Any,
) -> np.ndarray:
    grid = np.zeros(dem.shape, dtype=bool)
    if water is not None and len(water):
        geoms = water.geometry if isinstance(water, gpd.GeoDataFrame) else water
        grid |= rasterio.features.rasterize(
            geoms,
            out_shape=dem.shape,
            transform=dem.transform,
            fill=0,
            dtype="uint8",
            all_touched=True,
        ).astype(bool)
    for x, y in seeds or ():
        col, row = ~dem.transform @ (x, y)
        row, col = int(np.floor(row)), int(np.floor(col))
        if not (0 <= row < dem.shape[0] and 0 <= col < dem.shape[1]):
            raise UsageError(f"flood seed {x:g},{y:g} is outside the DEM")
        grid[row, col] = True
    if not grid.any():
        values = np.where(np.isfinite(dem.values), dem.values, np.inf)
        grid.flat[int(np.argmin(values))] = True
    return grid


def inundation(
    dem: Raster,
    *,
    level_m: float,
    seeds: Sequence[tuple[float, float]] | None = None,
    water: Any = None,
) -> Raster:
    """Water depth (m) of a flood at ``level_m`` connected to the seeds; NaN where dry.

    Parameters
    ----------
    dem : Raster
        Ground elevation (m); nodata cells never flood.
    level_m : float
        Water surface elevation, in the DEM's vertical datum.
    seeds : sequence of (x, y), optional
        Points in the DEM's CRS where the water comes from.
    water : GeoDataFrame or GeoSeries, optional
        Water bodies (the river) the flood rises from.

    Without seeds or water the flood rises from the DEM's lowest cell.
    """
    if not np.isfinite(level_m):
        raise UsageError("the water level must be a number of metres")
    below = dem.values < level_m  # NaN (nodata) compares False
    wet = connected_to(below, _seed_grid(dem, seeds, water))
    depth = level_m - dem.values
    depth[~wet] = np.nan
    return Raster(depth, dem.transform, dem.crs, "flood_depth")


@dataclass
class FloodSummary:
    """Counts of a flood scenario (``to_dict`` for JSON)."""

    level_m: float | None
    flooded_cells: int
    flooded_area_m2: float
    max_depth_m: float
    buildings_flooded: int
    roads_impassable: int
    impassable_m: float
    edges_impassable: int = 0
    impassable_length_m: float = 0.0
    buildings_lost_access: int | None = None
    buildings_delayed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FloodImpact:
    """A flood's depth grid, flooded buildings and roads, and (optionally) lost access."""

    depth: Raster
    buildings: pd.DataFrame  # uid -> max_depth_m, mean_depth_m, flooded_cells
    roads: pd.DataFrame  # uid -> max_depth_m, edges, closed_edges, closed_length_m, impassable
    summary: FloodSummary
    closure: Any = None  # twin.network.closures.ClosureResult
    extent: np.ndarray | None = None  # polygons of the cells deeper than impassable_m
    edges: pd.DataFrame | None = None  # the closed edges: road, length_m (by edge index)


def impassable_extent(depth: Raster, impassable_m: float = IMPASSABLE_M) -> np.ndarray:
    """Polygons (shapely, in the grid's CRS) of the cells deeper than ``impassable_m``.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> depth = Raster(np.array([[0.5, 0.1], [0.3, np.nan]]), Affine(1, 0, 0, 0, -1, 2), None)
    >>> [p.area for p in impassable_extent(depth, 0.15)]
    [2.0]
    """
    deep = np.nan_to_num(depth.values, nan=0.0) > impassable_m
    if not deep.any():
        return np.empty(0, dtype=object)
    parts = rasterio.features.shapes(
        deep.astype("uint8"), mask=deep, transform=depth.transform, connectivity=4
    )
    return np.array([shapely.geometry.shape(geom) for geom, _ in parts], dtype=object)


def impassable_edges(net: Any, extent: np.ndarray) -> np.ndarray:
    """Mask of the road network's edges that cross the impassable extent.

    ``net`` is a :class:`twin.network.RoadNetwork`; an edge touching any
    polygon of ``extent`` closes, the other edges of its road stay open.
    """
    mask = np.zeros(net.n_edges, dtype=bool)
    if len(extent) and net.n_edges:
        tree = net.cache.get("edge_tree")
        if tree is None:
            tree = net.cache["edge_tree"] = shapely.STRtree(net.edge_geometry)
        _, edges = tree.query(extent, predicate="intersects")
        mask[edges] = True
    return mask


def flood_impact(
    depth: Raster,
    buildings: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None = None,
    *,
    impassable_m: float = IMPASSABLE_M,
    level_m: float | None = None,
    access: Any = None,
    net: Any = None,
    max_time_s: float | None = None,
) -> FloodImpact:
    """Buildings and road segments under water; with ``access`` (a RoadAccess), who loses access.

    A building is flooded when any cell its footprint touches is wet
    (``max_depth_m`` > 0). A road segment (an edge of the road network:
    ``access.net``, or ``net``) is impassable when it crosses a cell deeper
    than ``impassable_m``; a road is listed impassable when any of its
    segments is, with the number and length of its closed segments. Without a
    network, a road feature crossing such a cell is impassable as a whole.
    """
    wet = np.nan_to_num(depth.values, nan=0.0)
    wet_raster = Raster(wet, depth.transform, depth.crs)
    on_buildings = zonal_stats(
        buildings, wet_raster, stats=("count", "max", "mean"), all_touched=True
    ).rename(columns={"max": "max_depth_m", "mean": "mean_depth_m", "count": "cells"})
    hit = on_buildings["max_depth_m"].fillna(0) > 0
    flooded = on_buildings.loc[hit].sort_values("max_depth_m", ascending=False)
    extent = impassable_extent(depth, impassable_m)
    network = access.net if access is not None else net
    mask = impassable_edges(network, extent) if network is not None else None
    road_table, edge_table = _road_table(wet_raster, roads, extent, network, mask)
    closed = road_table.index[road_table["impassable"].astype(bool)]
    summary = FloodSummary(
        level_m=level_m,
        flooded_cells=int(np.isfinite(depth.values).sum()),
        flooded_area_m2=float(np.isfinite(depth.values).sum() * depth.cell_size_m**2),
        max_depth_m=float(np.nanmax(depth.values)) if np.isfinite(depth.values).any() else 0.0,
        buildings_flooded=int(hit.sum()),
        roads_impassable=len(closed),
        impassable_m=impassable_m,
        edges_impassable=0 if edge_table is None else len(edge_table),
        impassable_length_m=0.0 if edge_table is None else float(edge_table["length_m"].sum()),
    )
    closure = None
    if access is not None and mask is not None and mask.any():
        closure = _closure(access, mask, max_time_s)
        summary.buildings_lost_access = closure.summary.buildings_lost
        summary.buildings_delayed = closure.summary.buildings_delayed
    elif access is not None:
        summary.buildings_lost_access = summary.buildings_delayed = 0
    return FloodImpact(depth, flooded, road_table, summary, closure, extent, edge_table)


def _road_table(
    wet: Raster,
    roads: gpd.GeoDataFrame | None,
    extent: np.ndarray,
    net: Any,
    mask: np.ndarray | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Per road: deepest cell touched, and its closed segments (per edge when ``net``)."""
    if roads is None or not len(roads):
        empty = pd.DataFrame({"max_depth_m": [], "impassable": []})
        return empty, None
    on_roads = zonal_stats(roads, wet, stats=("max",), all_touched=True)
    table = pd.DataFrame({"max_depth_m": on_roads["max"].fillna(0.0)}, index=roads.index)
    if net is None or mask is None:
        geoms = np.asarray(roads.geometry.array)
        crossing = np.zeros(len(roads), dtype=bool)
        if len(extent):
            _, hits = shapely.STRtree(geoms).query(extent, predicate="intersects")
            crossing[hits] = True
        table["impassable"] = crossing
        return table, None
    edge_road = pd.Series(np.asarray(net.edge_uid, dtype=object))
    closed = np.flatnonzero(mask)
    edges = pd.DataFrame(
        {"road": edge_road.to_numpy()[closed], "length_m": np.asarray(net.edge_length_m)[closed]},
        index=pd.Index(closed, name="edge"),
    )
    table["edges"] = edge_road.value_counts().reindex(table.index).fillna(0).astype(int)
    by_road = edges.groupby("road")["length_m"]
    table["closed_edges"] = by_road.size().reindex(table.index).fillna(0).astype(int)
    table["closed_length_m"] = by_road.sum().reindex(table.index).fillna(0.0).round(2)
    table["impassable"] = table["closed_edges"] > 0
    return table, edges


def _closure(access: Any, mask: np.ndarray, max_time_s: float | None) -> Any:
    """The road-closure answer with exactly the edges of ``mask`` closed."""
    from twin.network.closures import closure_result
    from twin.network.routing import base_answer, nearest_facility

    before, fac_before = base_answer(access)
    after, fac_after = nearest_facility(access, mask)
    return closure_result(access, mask, before, fac_before, after, fac_after, max_time_s)
