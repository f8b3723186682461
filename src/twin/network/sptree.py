"""The open network's shortest-path tree from the facilities, and lookups over it.

What :mod:`twin.network.incremental` grows closures from: per node its time,
tree parent and facility, its children, the arcs into it and the buildings at
either end of their edge; per edge its arcs and its buildings; and every trip
along a facility's own edge. Built once per network with the base answer
(:func:`prepare` builds it at a server's start-up).

Examples
--------
>>> from twin.network import road_access, select_facilities
>>> fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
>>> access = road_access(city.road_network(), city.layer("buildings"), fire)
>>> tree = closure_tree(access)
>>> bool((tree.dist[tree.child] >= tree.dist[tree.pred[tree.child]]).all())
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twin.network.access import RoadAccess
from twin.network.roads import FloatArray, IntArray
from twin.network.routing import (
    access_graph,
    base_answer,
    base_columns,
    building_frame,
    building_legs,
    same_edge_legs,
)

__all__ = ["ClosureTree", "SameEdgeTrips", "closure_tree", "prepare", "ranges", "spans"]


def prepare(access: RoadAccess) -> RoadAccess:
    """Build every per-network structure now (else on first use); return ``access``.

    The graph, the buildings' legs and frame, the trips along the facilities' edges,
    the base answer with its shortest-path tree and lookups (:func:`closure_tree`) and
    its columns. A server calls this once at start-up so that no request pays set-up.

    Examples
    --------
    >>> from twin.network import road_access, select_facilities
    >>> fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
    >>> access = prepare(road_access(city.road_network(), city.layer("buildings"), fire))
    >>> "closure_tree" in access.cache and "base_columns" in access.cache
    True
    """
    access_graph(access)
    building_legs(access, "time")
    building_frame(access)
    same_edge_legs(access, "time")
    closure_tree(access)
    base_columns(access)
    return access


@dataclass
class SameEdgeTrips:
    """Every trip along a facility's own edge to a building on it, sorted by building.

    Ties for one building: the cheaper trip first, then the lower facility position (the
    order in which :func:`same_edge_trips` keeps the first of equal trips).
    """

    building: IntArray  # building position, ascending
    facility: IntArray
    cost: FloatArray  # inf: not allowed that way


def _same_edge_trips(access: RoadAccess) -> SameEdgeTrips:
    trips = same_edge_legs(access, "time")
    fac = np.repeat(np.arange(len(trips), dtype=np.int64), [len(r) for r, _ in trips])
    rows = np.concatenate([r for r, _ in trips] + [np.zeros(0, dtype=np.int64)])
    cost = np.concatenate([c for _, c in trips] + [np.zeros(0)])
    order = np.lexsort((fac, cost, rows))
    return SameEdgeTrips(rows[order].astype(np.int64), fac[order], cost[order])


@dataclass
class ClosureTree:
    """The open network's shortest-path forest from the facilities, and lookups over it."""

    dist: FloatArray  # every node's time (virtual nodes: 0)
    pred: npt.NDArray[np.int32]  # tree parent (-9999: a root or unreached)
    source: npt.NDArray[np.int32]  # the virtual node each node's time comes from
    child_ptr: IntArray  # children of node v: child[child_ptr[v]:child_ptr[v + 1]]
    child: IntArray
    arc_tail: IntArray  # tail of every arc of the CSR graph
    edge_ptr: IntArray  # arcs of edge e: edge_arc[edge_ptr[e]:edge_ptr[e + 1]]
    edge_arc: IntArray
    in_ptr: IntArray  # arcs into node v: in_arc[in_ptr[v]:in_ptr[v + 1]]
    in_arc: IntArray
    from_ptr: IntArray  # buildings whose edge starts at node v: from_at[from_ptr[v]:...]
    from_at: IntArray
    to_ptr: IntArray  # buildings whose edge ends at node v: to_at[to_ptr[v]:to_ptr[v + 1]]
    to_at: IntArray
    on_edge_ptr: IntArray  # buildings on edge e: on_edge[on_edge_ptr[e]:on_edge_ptr[e + 1]]
    on_edge: IntArray
    same_edge: SameEdgeTrips  # trips along a facility's own edge, by building


def _csr_of(keys: IntArray, size: int) -> tuple[IntArray, IntArray]:
    """Positions grouped by key: ``order[ptr[k]:ptr[k + 1]]`` are the positions with key k."""
    order = np.argsort(keys, kind="stable")
    ptr = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=size), out=ptr[1:])
    return ptr, order


def ranges(ptr: IntArray, order: IntArray, keys: IntArray) -> IntArray:
    """Concatenation of ``order[ptr[k]:ptr[k + 1]]`` over ``keys`` (vectorised)."""
    starts, stops = ptr[keys], ptr[keys + 1]
    counts = stops - starts
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.cumsum(counts) + counts, counts)
    return order[np.arange(total) + offsets]


def spans(ptr: npt.NDArray[np.integer], keys: IntArray) -> IntArray:
    """Concatenation of ``arange(ptr[k], ptr[k + 1])`` over ``keys`` (vectorised)."""
    starts = ptr[keys].astype(np.int64)
    counts = ptr[keys + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    return np.arange(total) + np.repeat(starts - np.cumsum(counts) + counts, counts)


def closure_tree(access: RoadAccess) -> ClosureTree:
    """The open network's shortest-path tree and its lookups (cached; :func:`prepare` builds it).

    What :func:`twin.network.incremental.nearest_facility_closed` grows closures from.
    """
    tree = access.cache.get("closure_tree")
    if tree is not None:
        return tree
    net, graph = access.net, access_graph(access)
    base_answer(access)  # the open network's Dijkstra keeps its node times and tree
    dist, pred, source = access.cache["nodes:time"]
    has_parent = np.flatnonzero(pred >= 0)
    child_ptr, order = _csr_of(pred[has_parent], graph.n)
    arc_tail = np.repeat(np.arange(graph.n), np.diff(graph.indptr))
    edge_ptr, edge_arc = _csr_of(graph.arc_edge, net.n_edges)
    in_ptr, in_arc = _csr_of(graph.indices.astype(np.int64), graph.n)
    legs = building_legs(access, "time")
    from_ptr, from_at = _csr_of(legs.from_node, graph.n)
    to_ptr, to_at = _csr_of(legs.to_node, graph.n)
    on_edge_ptr, on_edge = _csr_of(legs.edge, net.n_edges)
    tree = access.cache["closure_tree"] = ClosureTree(
        dist=dist,
        pred=pred,
        source=source,
        child_ptr=child_ptr,
        child=has_parent[order],
        arc_tail=arc_tail,
        edge_ptr=edge_ptr,
        edge_arc=edge_arc,
        in_ptr=in_ptr,
        in_arc=in_arc,
        from_ptr=from_ptr,
        from_at=from_at,
        to_ptr=to_ptr,
        to_at=to_at,
        on_edge_ptr=on_edge_ptr,
        on_edge=on_edge,
        same_edge=_same_edge_trips(access),
    )
    return tree
