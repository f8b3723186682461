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
from functools import cached_property
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


@dataclass
class ClosureRows:
    """The buildings a closure may change and their answer; every other building keeps its own.

    Attributes
    ----------
    rows : ndarray of int
        Building positions (in ``access.buildings``), each once, in no particular order:
        those whose fastest route or access the closure cuts. Some may find a route as
        fast as before (detour 0).
    time_before, time_after : ndarray of float
        Their seconds to the nearest facility before and after (inf: unreachable).
    fac_before, fac_after : ndarray of int
        Their facility positions before and after (-1: none).
    detour : ndarray of float
        ``time_after - time_before`` (inf when access is lost; 0 when unreachable before).
    lost : ndarray of bool
        Reachable before, not after.
    beyond : ndarray of bool or None
        Within ``max_time_s`` before, not after (None without a limit).
    """

    rows: IntArray
    time_before: FloatArray
    time_after: FloatArray
    fac_before: IntArray
    fac_after: IntArray
    detour: FloatArray
    lost: BoolArray
    beyond: BoolArray | None


@dataclass(eq=False, repr=False)
class ClosureResult(Result):
    """What a closure does.

    Computing it costs what the closure changes: the answer of the buildings whose
    routes it cuts (``rows``) and the counts over them. The tables below are built
    from those rows when first read (and kept); only :attr:`buildings`, which has a
    row for every building, costs in proportion to the city.

    Attributes
    ----------
    summary : ClosureSummary
    rows : ClosureRows
        The buildings the closure may change, and their answer before and after.
    buildings : pandas.DataFrame
        Every building (index: uid): ``time_before_s``, ``time_after_s``, ``detour_s``
        (inf when access is lost), ``facility_before``, ``facility_after``, ``lost`` (no
        facility reachable any more), ``beyond_max`` (within ``max_time_s`` before, not after).
    touched : pandas.DataFrame
        The same columns for the buildings of ``rows`` alone (every other building's
        detour is 0).
    closed : geopandas.GeoDataFrame
        The closed edges: ``road``, ``length_m``.

    Examples
    --------
    >>> c = city.road_closure(["roads.DL000002"], where="poi_type=消防站")
    >>> c.summary.closed_roads, len(c.closed) == c.summary.closed_edges
    (1, True)
    >>> int((c.buildings["detour_s"] > 0).sum()) == int((c.touched["detour_s"] > 0).sum())
    True
    """

    _tables: ClassVar[tuple[str, ...]] = ("closed", "affected_buildings")

    summary: ClosureSummary
    rows: ClosureRows
    access: RoadAccess
    mask: BoolArray  # per edge: closed
    base: tuple[FloatArray, IntArray]  # every building's time and facility before

    @property
    def points(self) -> Any:
        """Every building's access point (shapely Points, in the order of ``buildings``)."""
        return self.access.buildings.point

    @cached_property
    def closed(self) -> gpd.GeoDataFrame:
        """The closed edges: ``road``, ``length_m`` (geometry: the edge)."""
        net, edges = self.access.net, np.flatnonzero(self.mask)
        return gpd.GeoDataFrame(
            {"road": net.edge_uid[edges], "length_m": net.edge_length_m[edges]},
            geometry=net.edge_geometry[edges],
            crs=net.crs,
        )

    @cached_property
    def buildings(self) -> pd.DataFrame:
        """Every building's row (see the class); built on first use from :attr:`rows`."""
        return _every_building(self.access, self.base, self.rows)

    @cached_property
    def touched(self) -> pd.DataFrame:
        """The rows of :attr:`buildings` that the closure may change, alone (in its order)."""
        return _frame_of_rows(self.access, self.rows, self._order)

    @cached_property
    def _order(self) -> IntArray:
        """The order of :attr:`rows` that sorts them as :attr:`buildings` is."""
        return np.argsort(self.rows.rows, kind="stable")

    @property
    def affected_buildings(self) -> gpd.GeoDataFrame:
        """Buildings delayed or cut off (the table :meth:`to_file` and :meth:`explore` show)."""
        return self.affected()

    def affected(self) -> gpd.GeoDataFrame:
        """Buildings delayed or cut off, with their access points as geometry."""
        r, order = self.rows, self._order
        hit = ((r.detour > DELAY_S) | r.lost)[order]
        return gpd.GeoDataFrame(
            self.touched.loc[hit],
            geometry=self.access.buildings.point[r.rows[order][hit]],
            crs=self.access.net.crs,
        )


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

    The cost is that of what the closure changes (the subtrees of the facilities'
    shortest-path tree it cuts, and their buildings), not of the city: see
    :func:`twin.network.incremental.closure_change`. The full table of every building
    (:attr:`ClosureResult.buildings`) is built when first read.

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
        access,
        mask,
        (before, fac_before),
        change.rows,
        change.time,
        change.fac,
        max_time_s,
        edges=change.edges,
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
    return _result(
        access, mask, (before, fac_before), rows, after[rows], fac_after[rows], max_time_s
    )


def _result(
    access: RoadAccess,
    mask: BoolArray,
    base: tuple[FloatArray, IntArray],
    rows: IntArray,
    time: FloatArray,
    fac: IntArray,
    max_time_s: float | None,
    edges: IntArray | None = None,
) -> ClosureResult:
    """The result from the new answer (``time``, ``fac``) of the buildings at ``rows``.

    Every other building keeps its time: no detour. Nothing here is as long as the city.
    """
    t0 = base[0][rows]
    with np.errstate(invalid="ignore"):
        detour = np.where(np.isfinite(t0), time - t0, 0.0)
    beyond = None if max_time_s is None else (t0 <= max_time_s) & (time > max_time_s)
    changed = ClosureRows(
        rows=rows,
        time_before=t0,
        time_after=time,
        fac_before=base[1][rows],
        fac_after=fac,
        detour=detour,
        lost=np.isfinite(t0) & ~np.isfinite(time),
        beyond=beyond,
    )
    edges = np.flatnonzero(mask) if edges is None else edges
    summary = _summary(access, edges, len(base[0]), changed, max_time_s)
    return ClosureResult(summary, changed, access, mask, base)


def _every_building(
    access: RoadAccess, base: tuple[FloatArray, IntArray], r: ClosureRows
) -> pd.DataFrame:
    """Every building's row: the base answer, with the changed ``r.rows`` written over it.

    The before columns are the cached base answer's Series when ``base`` is the cached
    base answer (shared copy-on-write); the detour / lost columns are zero arrays written
    at the changed rows (only their written pages are touched).
    """
    before, fac_before = base
    n = len(before)
    time_before, fac_labels = _before_columns(access, before, fac_before)
    after = before.copy()
    after[r.rows] = r.time_after
    codes = fac_labels.cat.codes.to_numpy().copy()
    codes[r.rows] = r.fac_after
    columns: dict[str, Any] = {
        "time_before_s": time_before,
        "time_after_s": after,
        "detour_s": _scattered(n, r.rows, r.detour),
        "facility_before": fac_labels,
        "facility_after": labels_of_codes(access, codes),
        "lost": _scattered(n, r.rows, r.lost),
    }
    if r.beyond is not None:
        columns["beyond_max"] = _scattered(n, r.rows, r.beyond)
    # fresh arrays kept as they are (not stacked into one block); the before Series by reference
    return pd.DataFrame(columns, index=access.buildings.uid, copy=False)


def _frame_of_rows(access: RoadAccess, r: ClosureRows, order: IntArray) -> pd.DataFrame:
    """The columns of :func:`_every_building` for the changed ``r.rows`` alone, in ``order``."""
    columns: dict[str, Any] = {
        "time_before_s": r.time_before[order],
        "time_after_s": r.time_after[order],
        "detour_s": r.detour[order],
        "facility_before": facility_labels(access, r.fac_before[order]),
        "facility_after": facility_labels(access, r.fac_after[order]),
        "lost": r.lost[order],
    }
    if r.beyond is not None:
        columns["beyond_max"] = r.beyond[order]
    return pd.DataFrame(columns, index=access.buildings.uid[r.rows[order]])


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


def _summary(
    access: RoadAccess,
    edges: IntArray,
    n_buildings: int,
    r: ClosureRows,
    max_time_s: float | None,
) -> ClosureSummary:
    """Counts over the changed rows ``r`` and the closed ``edges``."""
    net = access.net
    detour, lost = r.detour, r.lost
    delayed = (detour > DELAY_S) & np.isfinite(detour)
    population = access.building_population
    return ClosureSummary(
        closed_roads=len(np.unique(net.edge_road[edges])),
        closed_edges=len(edges),
        closed_length_m=float(net.edge_length_m[edges].sum()),
        buildings=n_buildings,
        buildings_lost=int(lost.sum()),
        buildings_delayed=int(delayed.sum()),
        max_time_s=max_time_s,
        buildings_beyond_max=None if r.beyond is None else int(r.beyond.sum()),
        mean_detour_s=float(detour[delayed].mean()) if delayed.any() else None,
        max_detour_s=float(detour[delayed].max()) if delayed.any() else None,
        population_affected=(
            None if population is None else float(population[r.rows[delayed | lost]].sum())
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
    base = base_answer(access)
    rows = []
    road_edges = pd.Series(np.arange(net.n_edges)).groupby(net.edge_road).apply(np.asarray)
    for road in order:
        mask = np.zeros(net.n_edges, dtype=bool)
        mask[road_edges[road]] = True
        change = closure_change(access, mask)
        result = _result(
            access, mask, base, change.rows, change.time, change.fac, max_time_s, change.edges
        )
        s, r = result.summary, result.rows
        finite = np.isfinite(r.time_after) & np.isfinite(r.time_before)
        rows.append(
            {
                "buildings_lost": s.buildings_lost,
                "buildings_beyond_max": s.buildings_beyond_max,
                "buildings_delayed": s.buildings_delayed,
                "total_detour_s": float(r.detour[finite].sum()),
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
