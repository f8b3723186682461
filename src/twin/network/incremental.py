"""Closures recomputed where they change something: the shortest-path tree's cut subtrees.

Closing edges only lengthens paths. A node whose fastest path from the
facilities (its branch of the shortest-path tree of the open network) uses no
closed arc keeps its time and its facility; only the subtrees hanging below
the closed tree arcs can change. Those nodes are seeded from their open
in-arcs whose tails kept their time, and one Dijkstra over the cut subtrees
alone (a small CSR graph, one virtual node per seeding facility) gives their
new times exactly. Buildings are then re-timed only where an end of their
edge moved or their edge is closed.

So a closure costs in proportion to the part of the network whose fastest
routes it cuts, not to the city: the tree, its children and the in-arcs are
built once per network with the base answer.

Examples
--------
>>> from twin.network import road_access, select_facilities
>>> from twin.network.closures import closed_edges
>>> fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
>>> access = road_access(city.road_network(), city.layer("buildings"), fire)
>>> mask = closed_edges(access.net, roads=["roads.DL000002"])
>>> time, fac = nearest_facility_closed(access, mask)
>>> from twin.network.routing import nearest_facility
>>> full, _ = nearest_facility(access, mask)
>>> bool(np.allclose(time, full, equal_nan=True))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from twin.network.access import RoadAccess
from twin.network.roads import BoolArray, FloatArray, IntArray
from twin.network.routing import access_graph, base_answer, building_legs
from twin.network.sptree import ClosureTree, SameEdgeTrips, closure_tree, ranges, spans

__all__ = ["ClosureChange", "closure_change", "nearest_facility_closed"]

INF = np.inf


def _cut_nodes(tree: ClosureTree, closed_arcs: IntArray, heads: IntArray) -> IntArray:
    """Every node below a closed tree arc (the roots of the cut subtrees and their descendants)."""
    roots = heads[tree.pred[heads] == tree.arc_tail[closed_arcs]]
    seen = np.zeros(len(tree.dist), dtype=bool)
    frontier = np.unique(roots)
    parts = []
    while len(frontier):
        frontier = frontier[~seen[frontier]]
        seen[frontier] = True
        parts.append(frontier)
        frontier = ranges(tree.child_ptr, tree.child, frontier)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _regrow(
    access: RoadAccess, tree: ClosureTree, cut: IntArray, local_1: IntArray, closed_arc: BoolArray
) -> tuple[FloatArray, IntArray]:
    """New times and sources of the cut nodes: one Dijkstra over them, seeded from the rest.

    ``local_1``: every node's position in ``cut`` plus one (0: not cut).
    """
    graph = access_graph(access)
    n_cut = len(cut)

    def local(nodes: npt.NDArray[np.integer[Any]]) -> IntArray:
        return local_1[nodes] - 1

    # seeds: open arcs into the cut from nodes that kept their time, per seeding facility
    arcs = ranges(tree.in_ptr, tree.in_arc, cut)
    tails = tree.arc_tail[arcs]
    seed = (local(tails) < 0) & ~closed_arc[arcs] & np.isfinite(tree.dist[tails])
    arcs, tails = arcs[seed], tails[seed]
    facs, fac_slot = np.unique(tree.source[tails], return_inverse=True)
    if not len(facs):  # nothing open leads into the cut any more
        return np.full(n_cut, INF), np.full(n_cut, -9999, dtype=np.int32)
    seed_tail = n_cut + fac_slot
    seed_head = local(graph.indices[arcs])
    seed_w = tree.dist[tails] + graph.data[arcs]
    # arcs inside the cut
    inner = spans(graph.indptr, cut)
    heads = local(graph.indices[inner])
    inner = inner[(heads >= 0) & ~closed_arc[inner]]
    size = n_cut + len(facs)
    tail = np.concatenate([local(tree.arc_tail[inner]), seed_tail])
    head = np.concatenate([local(graph.indices[inner]), seed_head])
    weight = np.concatenate([graph.data[inner], seed_w])
    order = np.argsort(tail, kind="stable")
    indptr = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(np.bincount(tail, minlength=size), out=indptr[1:])
    # built as CSR directly: parallel arcs stay apart (COO would add them up), zeros stay arcs
    matrix = sparse.csr_matrix((weight[order], head[order], indptr), shape=(size, size))
    dist, _, src = dijkstra(
        matrix,
        directed=True,
        indices=np.arange(n_cut, size),
        min_only=True,
        return_predecessors=True,
    )
    new_source = np.where(src[:n_cut] >= 0, facs[np.maximum(src[:n_cut] - n_cut, 0)], -9999)
    return dist[:n_cut], new_source


@dataclass
class ClosureChange:
    """The buildings a closure may change, and their new answer (the rest keep the base one).

    Attributes
    ----------
    rows : ndarray of int
        Building positions, each once, in no particular order: those with an end of their
        edge in a cut subtree and those on a closed edge.
    time : ndarray of float
        Their new seconds to the nearest facility (inf: unreachable).
    fac : ndarray of int
        Their new facility position (-1: none).
    edges : ndarray of int
        The closed edges (ascending).
    """

    rows: IntArray
    time: FloatArray
    fac: IntArray
    edges: IntArray


def closure_change(access: RoadAccess, closed: BoolArray) -> ClosureChange:
    """The answer of the buildings ``closed`` can change; cost: the cut subtrees, not the city.

    Every step works on the cut nodes and their buildings alone (lookups built once per
    network by :func:`~twin.network.sptree.closure_tree`): no pass over every node or
    building, no sort.

    Parameters
    ----------
    access : RoadAccess
    closed : ndarray of bool
        Per edge of ``access.net``: closed in this scenario.

    Returns
    -------
    ClosureChange

    Examples
    --------
    >>> from twin.network import road_access, select_facilities
    >>> from twin.network.closures import closed_edges
    >>> fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
    >>> access = road_access(city.road_network(), city.layer("buildings"), fire)
    >>> change = closure_change(access, closed_edges(access.net, roads=["roads.DL000002"]))
    >>> 0 < len(change.rows) < len(access.buildings)
    True
    """
    tree = closure_tree(access)
    graph = access_graph(access)
    edges = np.flatnonzero(closed)
    arcs = ranges(tree.edge_ptr, tree.edge_arc, edges)
    arcs = arcs[graph.closable[arcs]]
    closed_arc = np.zeros(len(graph.indices), dtype=bool)
    closed_arc[arcs] = True
    cut = _cut_nodes(tree, arcs, graph.indices[arcs].astype(np.int64))
    # position in the cut + 1 (0: outside); zeros are allocated lazily, only looked-up
    # pages are touched: no pass over every node
    local_1 = np.zeros(graph.n, dtype=np.int64)
    local_1[cut] = np.arange(1, len(cut) + 1)
    new = _regrow(access, tree, cut, local_1, closed_arc) if len(cut) else None

    def at(values: npt.NDArray[Any], i: int, nodes: IntArray) -> Any:
        out = values[nodes]
        if new is not None:
            pos = local_1[nodes] - 1
            hit = pos >= 0
            out[hit] = new[i][pos[hit]]
        return out

    legs = building_legs(access, "time")
    rows = _touched(tree, legs, cut, edges, local_1)
    from_node, to_node = legs.from_node[rows], legs.to_node[rows]
    via_from = at(tree.dist, 0, from_node) + legs.cost_from[rows]
    via_to = at(tree.dist, 0, to_node) + legs.cost_to[rows]
    on = closed[legs.edge[rows]]
    via_from[on & ~legs.at_from[rows]] = INF
    via_to[on & ~legs.at_to[rows]] = INF
    time = np.minimum(via_from, via_to)
    src = at(tree.source, 1, np.where(via_from <= via_to, from_node, to_node))
    fac = np.where(np.isfinite(time), src - access.net.n_nodes, -1).astype(np.int64)
    _same_edge(access, tree.same_edge, closed, rows, time, fac)
    return ClosureChange(rows, time, fac, edges)


def _touched(
    tree: ClosureTree, legs: Any, cut: IntArray, edges: IntArray, local_1: IntArray
) -> IntArray:
    """Buildings with an end of their edge in ``cut`` or on a closed edge, each once."""
    starts = ranges(tree.from_ptr, tree.from_at, cut)
    ends = ranges(tree.to_ptr, tree.to_at, cut)
    ends = ends[local_1[legs.from_node[ends]] == 0]  # those starting in the cut are in starts
    on = ranges(tree.on_edge_ptr, tree.on_edge, edges)
    on = on[(local_1[legs.from_node[on]] == 0) & (local_1[legs.to_node[on]] == 0)]
    return np.concatenate([starts, ends, on])


def _same_edge(
    access: RoadAccess,
    trips: SameEdgeTrips,
    closed: BoolArray,
    rows: IntArray,
    time: FloatArray,
    fac: IntArray,
) -> None:
    """Trips along a facility's own edge, for the changed ``rows`` among its buildings.

    Looked up per changed building (a search in the trips sorted by building), so the
    cost does not grow with the number of facilities.
    """
    if not len(rows) or not len(trips.building):
        return
    lo = np.searchsorted(trips.building, rows, side="left")
    hi = np.searchsorted(trips.building, rows, side="right")
    has = np.flatnonzero(hi > lo)
    if not len(has):
        return
    # every trip of those buildings, open ones only; the first per building is the best
    counts = hi[has] - lo[has]
    trip = np.arange(int(counts.sum())) + np.repeat(lo[has] - np.cumsum(counts) + counts, counts)
    at = np.repeat(has, counts)  # position in rows
    keep = ~closed[access.facilities.edge[trips.facility[trip]]]
    trip, at = trip[keep], at[keep]
    first = np.r_[True, at[1:] != at[:-1]] if len(at) else np.zeros(0, dtype=bool)
    trip, at = trip[first], at[first]
    better = trips.cost[trip] < time[at]
    time[at[better]] = trips.cost[trip[better]]
    fac[at[better]] = trips.facility[trip[better]]


def nearest_facility_closed(access: RoadAccess, closed: BoolArray) -> tuple[FloatArray, IntArray]:
    """:func:`~twin.network.routing.nearest_facility` with ``closed`` edges, recomputed locally.

    The same times as a full Dijkstra over the network with those edges closed
    (and the same facility, unless two facilities are exactly as near), at a cost
    proportional to the subtrees of the shortest-path tree that the closure cuts
    (plus a copy of the base answer: see :func:`closure_change` for the change alone).

    Parameters
    ----------
    access : RoadAccess
    closed : ndarray of bool
        Per edge of ``access.net``: closed in this scenario.

    Returns
    -------
    (ndarray of float, ndarray of int)
        Seconds to the nearest facility per building (inf: unreachable) and its position
        (-1: none).
    """
    before, fac_before = base_answer(access)
    change = closure_change(access, closed)
    time, fac = before.copy(), fac_before.copy()
    time[change.rows] = change.time
    fac[change.rows] = change.fac
    return time, fac
