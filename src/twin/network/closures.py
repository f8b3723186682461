"""Road closures on top of the base network: lost access, detours, criticality.

A scenario closes road segments by uid or every edge crossing an area (a
flood polygon, a buffer around an event). It is applied on top of the base
graph: the closed arcs' weights become infinite in a copy of the weight
array and one multi-source Dijkstra runs again; nothing else is rebuilt.
A building whose access point lies on a closed edge cannot be reached.

Criticality ranks road segments by the harm their closure alone does. A
closure only changes the answer of buildings whose fastest route (in the
shortest-path tree from the facilities) runs over it or whose access point
is on it; the roads carrying the most such buildings are the candidates, and
each candidate's closure is then computed exactly.

Examples
--------
>>> from twin.network import road_access, select_facilities
>>> fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
>>> access = road_access(city.road_network(), city.layer("buildings"), fire)
>>> result = road_closure(access, roads=["roads.DL000002"], max_time_s=300)
>>> result.summary.closed_roads
1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from scipy.sparse.csgraph import dijkstra

from twin.errors import UsageError
from twin.network.access import RoadAccess
from twin.network.incremental import closure_change
from twin.network.roads import BoolArray, FloatArray, IntArray, RoadNetwork
from twin.network.routing import (
    access_graph,
    base_answer,
    base_columns,
    building_times,
    facility_labels,
    labels_of_codes,
)
from twin.results import Ranking, Result, Summary

__all__ = [
    "ClosureResult",
    "ClosureSummary",
    "RoadCriticality",
    "closed_edges",
    "road_closure",
    "road_criticality",
]

DELAY_S = 1.0  # a detour shorter than this is rounding, not a delay


@dataclass(eq=False, repr=False)
class ClosureSummary(Summary):
    """Counts of a closure scenario (``to_dict`` for JSON)."""

    closed_roads: int
    closed_edges: int
    closed_length_m: float
    buildings: int
    buildings_lost: int
    buildings_delayed: int
    max_time_s: float | None
    buildings_beyond_max: int | None
    mean_detour_s: float | None
    max_detour_s: float | None
    population_affected: float | None


@dataclass(repr=False)
class ClosureResult(Result):
    """What a closure does.

    Attributes
    ----------
    buildings : pandas.DataFrame
        Every building (index: uid): ``time_before_s``, ``time_after_s``, ``detour_s``
        (inf when access is lost), ``facility_before``, ``facility_after``, ``lost`` (no
        facility reachable any more), ``beyond_max`` (within ``max_time_s`` before, not after).
    closed : geopandas.GeoDataFrame
        The closed edges: ``road``, ``length_m``.
    summary : ClosureSummary

    Examples
    --------
    >>> c = city.road_closure(["roads.DL000002"], where="poi_type=消防站")
    >>> c.summary.closed_roads, len(c.closed) == c.summary.closed_edges
    (1, True)
    """

    _tables: ClassVar[tuple[str, ...]] = ("closed", "affected_buildings")

    buildings: pd.DataFrame
    closed: gpd.GeoDataFrame
    summary: ClosureSummary
    points: Any = None

    @property
    def affected_buildings(self) -> gpd.GeoDataFrame:
        """Buildings delayed or cut off (the table :meth:`to_file` and :meth:`explore` show)."""
        return self.affected()

    def affected(self) -> gpd.GeoDataFrame:
        """Buildings delayed or cut off, with their access points as geometry."""
        b = self.buildings
        hit = (b["detour_s"] > DELAY_S).to_numpy() | b["lost"].to_numpy()
        return gpd.GeoDataFrame(b.loc[hit], geometry=self.points[hit], crs=self.closed.crs)


def closed_edges(
    net: RoadNetwork,
    *,
    roads: Sequence[str] = (),
    area: shapely.Geometry | None = None,
) -> BoolArray:
    """Mask of the edges closed by road uids and by an area (every edge crossing it).

    Raises
    ------
    UsageError
        For an unknown road uid, or when nothing is closed.
    """
    mask = np.zeros(net.n_edges, dtype=bool)
    if len(roads):
        mask[net.edges_of(list(roads))] = True
    if area is not None:
        tree = net.cache.get("edge_tree")
        if tree is None:
            tree = net.cache["edge_tree"] = shapely.STRtree(net.edge_geometry)
        mask[tree.query(area, predicate="intersects")] = True
    if not mask.any():
        raise UsageError("the closure closes no road: give road uids or an area crossing roads")
    return mask


def road_closure(
    access: RoadAccess,
    *,
    roads: Sequence[str] = (),
    area: shapely.Geometry | None = None,
    max_time_s: float | None = None,
) -> ClosureResult:
    """Close roads (by uid, or every edge crossing ``area``) and measure every building's detour.

    Parameters
    ----------
    access : RoadAccess
    roads : sequence of str, optional
        Road uids to close (all their edges).
    area : shapely geometry, optional
        Close every edge that intersects it (in the network's CRS).
    max_time_s : float, optional
        The emergency access limit: buildings within it before and not after count as
        ``beyond_max``.

    Returns
    -------
    ClosureResult

    Examples
    --------
    >>> from twin.network import road_access, select_facilities
    >>> fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
    >>> access = road_access(city.road_network(), city.layer("buildings"), fire)
    >>> closure = road_closure(access, roads=["roads.DL000002"], max_time_s=180)
    >>> closure.summary.buildings == len(access.buildings)
    True
    """
    net = access.net
    mask = closed_edges(net, roads=roads, area=area)
    before, fac_before = base_answer(access)
    change = closure_change(access, mask)
    return _result(
        access, mask, before, fac_before, change.rows, change.time, change.fac, max_time_s
    )


def closure_result(
    access: RoadAccess,
    mask: BoolArray,
    before: FloatArray,
    fac_before: IntArray,
    after: FloatArray,
    fac_after: IntArray,
    max_time_s: float | None,
) -> ClosureResult:
    """The closure's result from every building's answer before and after it."""
    rows = np.flatnonzero((after != before) | (fac_after != fac_before))
    return _result(access, mask, before, fac_before, rows, after[rows], fac_after[rows], max_time_s)


def _result(
    access: RoadAccess,
    mask: BoolArray,
    before: FloatArray,
    fac_before: IntArray,
    rows: IntArray,
    time: FloatArray,
    fac: IntArray,
    max_time_s: float | None,
) -> ClosureResult:
    """The result from the new answer (``time``, ``fac``) of the buildings at ``rows`` (sorted).

    Every other building keeps its time: no detour. Only the new times are a copy of the
    whole column; the before columns are the cached base answer's (copy on write).
    """
    t0 = before[rows]
    with np.errstate(invalid="ignore"):
        detour_rows = np.where(np.isfinite(t0), time - t0, 0.0)
    lost_rows = np.isfinite(t0) & ~np.isfinite(time)
    time_before, fac_labels = _before_columns(access, before, fac_before)
    after = before.copy()
    after[rows] = time
    codes = fac_labels.cat.codes.to_numpy().copy()
    codes[rows] = fac
    columns: dict[str, Any] = {
        "time_before_s": time_before,
        "time_after_s": after,
        "detour_s": _scattered(len(before), rows, detour_rows),
        "facility_before": fac_labels,
        "facility_after": labels_of_codes(access, codes),
        "lost": _scattered(len(before), rows, lost_rows),
    }
    beyond = None
    if max_time_s is not None:
        beyond_rows = (t0 <= max_time_s) & (time > max_time_s)
        columns["beyond_max"] = _scattered(len(before), rows, beyond_rows)
        beyond = int(beyond_rows.sum())
    # fresh arrays kept as they are (not stacked into one block); the before Series by reference
    frame = pd.DataFrame(columns, index=access.buildings.uid, copy=False)
    closed = _closed_table(access.net, mask)
    summary = _summary(access, closed, len(frame), rows, detour_rows, lost_rows, max_time_s, beyond)
    return ClosureResult(frame, closed, summary, access.buildings.point)


def _scattered(n: int, rows: IntArray, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """An array of ``n`` zeros (False) holding ``values`` at ``rows``."""
    out = np.zeros(n, dtype=values.dtype)
    out[rows] = values
    return out


def _before_columns(
    access: RoadAccess, before: FloatArray, fac_before: IntArray
) -> tuple[pd.Series, pd.Series]:
    """The before columns as Series on the buildings' uids (the base answer's are cached)."""
    base = base_answer(access)
    if before is base[0] and fac_before is base[1]:
        return base_columns(access)
    uid = access.buildings.uid
    return (
        pd.Series(before.copy(), index=uid, copy=False),
        pd.Series(facility_labels(access, fac_before), index=uid, copy=False),
    )


def _closed_table(net: RoadNetwork, mask: BoolArray) -> gpd.GeoDataFrame:
    edges = np.flatnonzero(mask)
    return gpd.GeoDataFrame(
        {"road": net.edge_uid[edges], "length_m": net.edge_length_m[edges]},
        geometry=net.edge_geometry[edges],
        crs=net.crs,
    )


def _summary(
    access: RoadAccess,
    closed: gpd.GeoDataFrame,
    n_buildings: int,
    rows: IntArray,
    detour: FloatArray,
    lost: BoolArray,
    max_time_s: float | None,
    beyond: int | None,
) -> ClosureSummary:
    """Counts over the changed ``rows`` (``detour`` and ``lost`` are theirs)."""
    delayed = (detour > DELAY_S) & np.isfinite(detour)
    population = access.building_population
    return ClosureSummary(
        closed_roads=int(closed["road"].nunique()),
        closed_edges=len(closed),
        closed_length_m=float(closed["length_m"].sum()),
        buildings=n_buildings,
        buildings_lost=int(lost.sum()),
        buildings_delayed=int(delayed.sum()),
        max_time_s=max_time_s,
        buildings_beyond_max=beyond,
        mean_detour_s=float(detour[delayed].mean()) if delayed.any() else None,
        max_detour_s=float(detour[delayed].max()) if delayed.any() else None,
        population_affected=(
            None if population is None else float(population[rows[delayed | lost]].sum())
        ),
    )


# --------------------------------------------------------------------------- criticality


class RoadCriticality(Ranking):
    """The roads ranked by :func:`road_criticality` (a GeoDataFrame sorted by ``rank``).

    ``summary``: roads ranked (``rows``), the most harmful closure (``top``) and the
    buildings it cuts off (``top_buildings``).

    Examples
    --------
    >>> from twin.network import road_access, select_facilities
    >>> fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
    >>> access = road_access(city.road_network(), city.layer("buildings"), fire)
    >>> ranking = road_criticality(access, candidates=3)
    >>> ranking.summary.top == ranking.index[0], list(ranking.tables())
    (True, ['road_criticality'])
    """

    _harm = "buildings_lost"
    _table_name = "road_criticality"


def road_criticality(
    access: RoadAccess,
    *,
    candidates: int | None = 50,
    max_time_s: float | None = None,
) -> RoadCriticality:
    """Rank road segments by the harm their closure alone does.

    Parameters
    ----------
    access : RoadAccess
    candidates : int or None, default 50
        How many roads to close one by one (those whose closure touches the most
        buildings' fastest routes); None: every road that touches any.
    max_time_s : float, optional
        Count buildings pushed beyond this limit.

    Returns
    -------
    RoadCriticality
        A GeoDataFrame, one row per candidate road (index: uid), sorted by ``rank``:
        ``buildings_lost``, ``buildings_beyond_max`` (with ``max_time_s``), ``buildings_delayed``,
        ``total_detour_s``, ``routes_over`` (buildings whose route or access uses it).
        Harm is ordered by the buildings pushed beyond ``max_time_s`` (those cut off
        included; without a limit: those cut off), then by the total detour.

    Examples
    --------
    >>> from twin.network import road_access, select_facilities
    >>> fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
    >>> access = road_access(city.road_network(), city.layer("buildings"), fire)
    >>> ranking = road_criticality(access, candidates=3)
    >>> len(ranking) <= 3 and list(ranking["rank"]) == sorted(ranking["rank"])
    True
    """
    if candidates is not None and candidates < 1:
        raise UsageError(f"candidates must be at least 1, not {candidates}")
    net = access.net
    usage = _road_usage(access)
    order = np.argsort(-usage, kind="stable")
    order = order[usage[order] > 0]
    if candidates is not None:
        order = order[:candidates]
    before, _ = base_answer(access)
    rows = []
    road_edges = pd.Series(np.arange(net.n_edges)).groupby(net.edge_road).apply(np.asarray)
    for road in order:
        mask = np.zeros(net.n_edges, dtype=bool)
        mask[road_edges[road]] = True
        change = closure_change(access, mask)
        t0, t1 = before[change.rows], change.time
        with np.errstate(invalid="ignore"):
            detour = np.where(np.isfinite(t0), t1 - t0, 0.0)
        lost = np.isfinite(t0) & ~np.isfinite(t1)
        beyond = None if max_time_s is None else int(((t0 <= max_time_s) & (t1 > max_time_s)).sum())
        s = _summary(
            access,
            _closed_table(net, mask),
            len(before),
            change.rows,
            detour,
            lost,
            max_time_s,
            beyond,
        )
        finite = np.isfinite(t1) & np.isfinite(t0)
        rows.append(
            {
                "buildings_lost": s.buildings_lost,
                "buildings_beyond_max": s.buildings_beyond_max,
                "buildings_delayed": s.buildings_delayed,
                "total_detour_s": float((t1 - t0)[finite].sum()),
                "routes_over": int(usage[road]),
            }
        )
    table = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=_CRIT_COLUMNS),
        geometry=net.roads.geometry.to_numpy()[order],
        crs=net.crs,
    )
    table.index = pd.Index(net.roads.index[order], name="uid")
    # beyond the limit includes the buildings lost; without a limit, lost ones count
    worst = table["buildings_beyond_max"] if max_time_s is not None else table["buildings_lost"]
    ranked = np.lexsort((-table["total_detour_s"].to_numpy(), -worst.to_numpy()))
    table["rank"] = 0
    table.iloc[ranked, table.columns.get_loc("rank")] = np.arange(1, len(table) + 1)
    if max_time_s is None:
        table = table.drop(columns="buildings_beyond_max")
    return RoadCriticality(table.sort_values("rank"))


_CRIT_COLUMNS = [
    "buildings_lost",
    "buildings_beyond_max",
    "buildings_delayed",
    "total_detour_s",
    "routes_over",
]


def _road_usage(access: RoadAccess) -> IntArray:
    """Per road: buildings whose fastest route runs over it or whose access point is on it."""
    net, b = access.net, access.buildings
    graph = access_graph(access)
    matrix = graph.matrix()
    virtual = np.arange(net.n_nodes, graph.n, dtype=np.int32)
    dist, pred, _ = dijkstra(
        matrix, directed=True, indices=virtual, min_only=True, return_predecessors=True
    )
    time, via_from_end = building_times(access, dist)
    end = np.where(via_from_end, net.edge_from[b.edge], net.edge_to[b.edge])
    weight = np.bincount(end[np.isfinite(time)], minlength=graph.n).astype(float)
    # accumulate down-tree counts from the leaves: farthest nodes first
    reached = np.flatnonzero(np.isfinite(dist))
    for v in reached[np.argsort(-dist[reached], kind="stable")]:
        p = pred[v]
        if p >= 0:
            weight[p] += weight[v]
    # the tree arc into every node: an arc pred[v] -> v whose weight closes the gap
    tails = np.repeat(np.arange(graph.n), np.diff(graph.indptr))
    heads = graph.indices
    tree = (pred[heads] == tails) & np.isclose(dist[tails] + graph.data, dist[heads])
    arc_road = net.edge_road[graph.arc_edge]
    usage = np.zeros(len(net.roads), dtype=float)
    first = np.unique(heads[tree], return_index=True)[1]
    tree_arcs = np.flatnonzero(tree)[first]
    np.add.at(usage, arc_road[tree_arcs], weight[heads[tree_arcs]])
    np.add.at(usage, net.edge_road[b.edge], 1.0)
    return usage.astype(np.int64)
