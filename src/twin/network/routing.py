"""Routes and service areas on a :class:`~twin.network.roads.RoadNetwork`.

The graph is a SciPy CSR matrix of the road arcs plus one virtual node per
facility, joined to the two ends of the facility's edge at the exact time
of the part of the edge between them (see :mod:`twin.network.access`). A
single multi-source Dijkstra (``min_only=True``) from the virtual nodes gives
every node's time to its nearest facility; each building then adds the part
of its own edge towards whichever end is faster and allowed. Closures only
replace the weights of closed arcs by infinity, so the structure is built
once per network.

Examples
--------
>>> from twin.network import road_access, select_facilities
>>> fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
>>> access = road_access(city.road_network(), city.layer("buildings"), fire)
>>> areas = service_areas(access, max_time_s=300)
>>> 0 < areas.summary.reached <= areas.summary.buildings
True
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from geopandas.array import from_shapely
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from shapely.ops import substring

from twin.errors import UsageError
from twin.network.access import AccessPoints, RoadAccess, access_points
from twin.network.roads import BoolArray, FloatArray, IntArray, RoadNetwork
from twin.results import Result, Summary
from twin.settings import Weight

__all__ = [
    "Route",
    "ServiceAreas",
    "ServiceSummary",
    "nearest_facility",
    "route",
    "service_areas",
]

INF = np.inf
Arcs = tuple[IntArray, IntArray, IntArray, FloatArray]  # edge, tail, head, weight
Codes = npt.NDArray[np.integer[Any]]  # categorical codes (int8 for up to 126 facilities)


# --------------------------------------------------------------------------- the graph


@dataclass
class _Graph:
    """CSR structure of road arcs plus virtual facility arcs; weights are swapped per scenario."""

    n: int  # road nodes; virtual nodes follow
    indptr: npt.NDArray[np.int32]
    indices: npt.NDArray[np.int32]
    data: FloatArray
    arc_edge: IntArray  # edge of every arc (virtual arcs: the facility's edge)
    closable: BoolArray  # False for virtual arcs of no length (a point at a node)

    def matrix(self, closed: BoolArray | None = None) -> sparse.csr_matrix:
        data = self.data
        if closed is not None and closed.any():
            data = np.where(closed[self.arc_edge] & self.closable, INF, data)
        size = len(self.indptr) - 1
        return sparse.csr_matrix((data, self.indices, self.indptr), shape=(size, size))


def _csr(
    size: int,
    tail: IntArray,
    head: IntArray,
    weight: FloatArray,
    edge: IntArray,
    n_virtual: int = 0,
) -> _Graph:
    order = np.argsort(tail, kind="stable")
    indptr = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(np.bincount(tail, minlength=size), out=indptr[1:])
    return _Graph(
        n=size,
        indptr=indptr.astype(np.int32),
        indices=head[order].astype(np.int32),
        data=weight[order].astype(float),
        arc_edge=edge[order],
        closable=(weight[order] > 0) | (edge[order] < 0) | (tail[order] < size - n_virtual),
    )


def _allowed(net: RoadNetwork, edge: IntArray, outward: bool, reverse: bool) -> BoolArray:
    """Direction flags for leaving a point on ``edge`` (outward) or reaching it, per direction."""
    forward, backward = net.edge_forward[edge], net.edge_backward[edge]
    return backward if outward != reverse else forward


def _road_arcs(net: RoadNetwork, reverse: bool, weight: str) -> Arcs:
    edge, tail, head = net.arcs()
    cost = _edge_cost(net, weight)[edge]
    if reverse:
        tail, head = head, tail
    return edge, tail, head, cost


def _edge_cost(net: RoadNetwork, weight: str) -> FloatArray:
    return net.edge_time_s if weight == "time" else net.edge_length_m


def _source_arcs(
    net: RoadNetwork, pts: AccessPoints, first_id: int, reverse: bool, weight: str
) -> Arcs:
    """Arcs from virtual nodes ``first_id + i`` to the ends of each point's edge."""
    e = pts.edge
    share = np.clip(pts.position_m / np.maximum(net.edge_length_m[e], 1e-12), 0.0, 1.0)
    cost = _edge_cost(net, weight)[e]
    v = first_id + np.arange(len(e))
    to_from = _allowed(net, e, True, reverse) | (share == 0)
    to_to = _allowed(net, e, False, reverse) | (share == 1)
    tail = np.concatenate([v[to_from], v[to_to]])
    head = np.concatenate([net.edge_from[e][to_from], net.edge_to[e][to_to]])
    w = np.concatenate([(share * cost)[to_from], ((1 - share) * cost)[to_to]])
    return np.concatenate([e[to_from], e[to_to]]), tail, head, w


def access_graph(access: RoadAccess, weight: str = "time") -> _Graph:
    key = f"graph:{weight}"
    graph = access.cache.get(key)
    if graph is None:
        net = access.net
        reverse = access.direction == "to_facility"
        parts = [
            _road_arcs(net, reverse, weight),
            _source_arcs(net, access.facilities, net.n_nodes, reverse, weight),
        ]
        edge, tail, head, w = (np.concatenate(p) for p in zip(*parts, strict=True))
        n_fac = len(access.facilities)
        graph = access.cache[key] = _csr(net.n_nodes + n_fac, tail, head, w, edge, n_fac)
    return graph


# --------------------------------------------------------------------------- nearest facility


def nearest_facility(
    access: RoadAccess, closed_edges: BoolArray | None = None, weight: str = "time"
) -> tuple[FloatArray, IntArray]:
    """Time to (or from) the nearest facility of every building, and which facility (-1: none).

    Parameters
    ----------
    access : RoadAccess
    closed_edges : ndarray of bool, optional
        Edges closed in this scenario (their arcs, the facilities and buildings on them
        are cut off).
    weight : {"time", "length"}, default "time"

    Returns
    -------
    (ndarray of float, ndarray of int)
        Seconds (metres for ``length``; inf when unreachable) and facility positions.
    """
    net = access.net
    graph = access_graph(access, weight)
    virtual = np.arange(net.n_nodes, graph.n, dtype=np.int32)
    dist, pred, source = dijkstra(
        graph.matrix(closed_edges),
        directed=True,
        indices=virtual,
        min_only=True,
        return_predecessors=True,
    )
    if closed_edges is None or not closed_edges.any():  # the open network's tree: closures grow it
        access.cache.setdefault(f"nodes:{weight}", (dist, pred, source))
    time, via_from_end = building_times(access, dist, closed_edges, weight)
    legs = building_legs(access, weight)
    src = source[np.where(via_from_end, legs.from_node, legs.to_node)]
    fac = np.where(np.isfinite(time), src - net.n_nodes, -1).astype(np.int64)
    return same_edge_trips(access, time, fac, weight, closed_edges)


@dataclass
class _Legs:
    """Per building: the two legs from its edge's ends to its access point (cached)."""

    edge: IntArray
    from_node: IntArray
    to_node: IntArray
    cost_from: FloatArray  # from the edge's from node to the point; inf: not that way
    cost_to: FloatArray
    at_from: BoolArray  # the point is the from node itself (a leg of no length)
    at_to: BoolArray


def building_legs(access: RoadAccess, weight: str) -> _Legs:
    key = f"legs:{weight}"
    legs = access.cache.get(key)
    if legs is None:
        net, e = access.net, access.buildings.edge
        reverse = access.direction == "to_facility"
        share = np.clip(
            access.buildings.position_m / np.maximum(net.edge_length_m[e], 1e-12), 0.0, 1.0
        )
        cost = _edge_cost(net, weight)[e]
        at_from, at_to = share == 0, share == 1
        ok_from = _allowed(net, e, False, reverse) | at_from
        ok_to = _allowed(net, e, True, reverse) | at_to
        legs = access.cache[key] = _Legs(
            edge=e,
            from_node=net.edge_from[e],
            to_node=net.edge_to[e],
            cost_from=np.where(ok_from, share * cost, INF),
            cost_to=np.where(ok_to, (1 - share) * cost, INF),
            at_from=at_from,
            at_to=at_to,
        )
    return legs


def building_times(
    access: RoadAccess, dist: FloatArray, closed: BoolArray | None = None, weight: str = "time"
) -> tuple[FloatArray, BoolArray]:
    """Each building's time given every node's time ``dist``; and whether via the from node.

    On a closed edge only a leg of no length is usable (a building at a node of the edge).
    """
    legs = building_legs(access, weight)
    via_from = dist[legs.from_node] + legs.cost_from
    via_to = dist[legs.to_node] + legs.cost_to
    if closed is not None and closed.any():
        on = np.flatnonzero(closed[legs.edge])  # buildings on closed edges: few
        via_from[on[~legs.at_from[on]]] = INF
        via_to[on[~legs.at_to[on]]] = INF
    return np.minimum(via_from, via_to), via_from <= via_to


def same_edge_trips(
    access: RoadAccess,
    time: FloatArray,
    fac: IntArray,
    weight: str,
    closed: BoolArray | None = None,
    only: int | None = None,
) -> tuple[FloatArray, IntArray]:
    """Trips between a facility and a building on the same edge, along that edge only."""
    trips = same_edge_legs(access, weight)
    edge = access.facilities.edge
    for i in range(len(trips)) if only is None else [only] if only >= 0 else []:
        rows, cost = trips[i]
        if not len(rows) or (closed is not None and closed[edge[i]]):
            continue
        better = cost < time[rows]
        time[rows[better]] = cost[better]
        fac[rows[better]] = i
    return time, fac


def same_edge_legs(access: RoadAccess, weight: str) -> list[tuple[IntArray, FloatArray]]:
    """Per facility: the buildings on its edge and the trip along it (inf: not allowed); cached."""
    key = f"same_edge:{weight}"
    trips = access.cache.get(key)
    if trips is None:
        net, b, f = access.net, access.buildings, access.facilities
        reverse = access.direction == "to_facility"
        trips = []
        for i, e in enumerate(f.edge):
            rows = np.flatnonzero(b.edge == e)
            gap = b.position_m[rows] - f.position_m[i]  # building ahead of the facility: > 0
            ahead = gap >= 0
            ok = np.where(ahead != reverse, net.edge_forward[e], net.edge_backward[e]) | (gap == 0)
            cost = np.abs(gap) / max(net.edge_length_m[e], 1e-12) * _edge_cost(net, weight)[e]
            trips.append((rows, np.where(ok, cost, INF)))
        access.cache[key] = trips
    return trips


# --------------------------------------------------------------------------- service areas


@dataclass(eq=False, repr=False)
class ServiceSummary(Summary):
    """Counts of a service-area analysis (``to_dict`` for JSON)."""

    buildings: int
    facilities: int
    reached: int
    max_time_s: float | None
    within_max_time: int | None
    mean_time_s: float | None
    median_time_s: float | None
    direction: str
    per_facility: dict[str, int] = field(default_factory=dict)


@dataclass(repr=False)
class ServiceAreas(Result):
    """Service areas of the facilities.

    Attributes
    ----------
    buildings : geopandas.GeoDataFrame
        Per building (index: uid): ``facility`` (nearest; None when unreachable),
        ``time_s`` (inf when unreachable), ``access_m`` (building to its access point);
        geometry: the access point.
    facilities : geopandas.GeoDataFrame
        Per facility: its attributes, ``buildings`` nearest to it, ``within`` (buildings it
        reaches within ``max_time_s``, whichever facility is nearest), ``access_m``.
    reach : pandas.DataFrame or None
        With ``max_time_s``: one row per (facility, building) pair within it, with ``time_s``.
    summary : ServiceSummary

    Examples
    --------
    >>> areas = city.service_area(where="poi_type=消防站", max_time_s=300)
    >>> int(areas.facilities["buildings"].sum()) == areas.summary.reached
    True
    """

    buildings: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    _tables: ClassVar[tuple[str, ...]] = ("buildings", "facilities")

    reach: pd.DataFrame | None
    summary: ServiceSummary


def service_areas(access: RoadAccess, *, max_time_s: float | None = None) -> ServiceAreas:
    """The nearest facility of every building and, within ``max_time_s``, each facility's reach.

    Parameters
    ----------
    access : RoadAccess
    max_time_s : float, optional
        The service-area limit in seconds.

    Returns
    -------
    ServiceAreas

    Examples
    --------
    >>> from twin.network import road_access, select_facilities
    >>> fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
    >>> access = road_access(city.road_network(), city.layer("buildings"), fire)
    >>> areas = service_areas(access, max_time_s=300)
    >>> areas.summary.buildings == len(areas.buildings)
    True
    """
    if max_time_s is not None and not max_time_s > 0:
        raise UsageError(f"max_time_s must be positive seconds, not {max_time_s}")
    time, fac = base_answer(access)
    fac_uid = access.facilities.uid.to_numpy(dtype=object)
    buildings = building_frame(access).copy(deep=False)  # copy on write: the cache stays
    buildings.insert(0, "facility", facility_labels(access, fac))
    buildings.insert(1, "time_s", time)
    reach = _reach(access, max_time_s) if max_time_s is not None else None
    facilities = _facility_table(access, fac, reach)
    finite = time[np.isfinite(time)]
    summary = ServiceSummary(
        buildings=len(time),
        facilities=len(fac_uid),
        reached=len(finite),
        max_time_s=max_time_s,
        within_max_time=None if max_time_s is None else int((time <= max_time_s).sum()),
        mean_time_s=float(finite.mean()) if len(finite) else None,
        median_time_s=_median(finite) if len(finite) else None,
        direction=access.direction,
        per_facility={str(u): int(n) for u, n in facilities["buildings"].items()},
    )
    return ServiceAreas(buildings, facilities, reach, summary)


def facility_labels(access: RoadAccess, fac: IntArray) -> pd.Categorical:
    """Facility uids of facility positions (-1: none), as a categorical (cheap for millions)."""
    dtype = _facility_dtype(access)
    codes: Codes = fac.astype(_code_type(dtype), copy=False)
    return pd.Categorical.from_codes(codes, dtype=dtype)


def labels_of_codes(access: RoadAccess, codes: Codes) -> pd.Categorical:
    """Like :func:`facility_labels` for codes already checked (``base_codes`` and its copies)."""
    return pd.Categorical.from_codes(codes, dtype=_facility_dtype(access), validate=False)


def base_codes(access: RoadAccess) -> Codes:
    """The base answer's facilities as categorical codes of the smallest type (cached)."""
    codes: Codes | None = access.cache.get("base_codes")
    if codes is None:
        codes = access.cache["base_codes"] = facility_labels(access, base_answer(access)[1]).codes
    return codes


def base_columns(access: RoadAccess) -> tuple[pd.Series, pd.Series]:
    """The base answer's times and facility labels as Series on the buildings' uids (cached).

    A frame built from them shares their memory until it is written to (pandas' copy on
    write): a closure's before columns cost nothing, and no caller can change the cache.
    """
    columns = access.cache.get("base_columns")
    if columns is None:
        uid = access.buildings.uid
        time = base_answer(access)[0]
        columns = access.cache["base_columns"] = (
            pd.Series(time.copy(), index=uid, copy=False),
            pd.Series(labels_of_codes(access, base_codes(access).copy()), index=uid, copy=False),
        )
    return columns


def _facility_dtype(access: RoadAccess) -> pd.CategoricalDtype:
    dtype = access.cache.get("facility_dtype")
    if dtype is None:
        categories = pd.Index(access.facilities.uid.astype(str))
        dtype = access.cache["facility_dtype"] = pd.CategoricalDtype(categories)
    return dtype


def _code_type(dtype: pd.CategoricalDtype) -> type:
    n = len(dtype.categories)
    return (
        np.int8 if n < 127 else np.int16 if n < 32767 else np.int32 if n < 2**31 - 1 else np.int64
    )


def building_frame(access: RoadAccess) -> gpd.GeoDataFrame:
    """The buildings' access points and ``access_m``, indexed by uid (built once)."""
    frame = access.cache.get("frame")
    if frame is None:
        b = access.buildings
        frame = access.cache["frame"] = gpd.GeoDataFrame(
            {"access_m": b.distance_m},
            geometry=from_shapely(b.point, crs=access.net.crs),
            index=b.uid,
        )
    return frame


def base_answer(access: RoadAccess) -> tuple[FloatArray, IntArray]:
    """Nearest facility and time of every building on the open network (cached)."""
    cached = access.cache.get("base")
    if cached is None:
        cached = access.cache["base"] = nearest_facility(access)
    return cached


def _reach(access: RoadAccess, limit: float) -> pd.DataFrame:
    """Every (facility, building) pair within ``limit`` seconds."""
    net, b = access.net, access.buildings
    graph = access_graph(access)
    frames = []
    matrix = graph.matrix()
    for i in range(len(access.facilities)):
        dist = dijkstra(matrix, directed=True, indices=net.n_nodes + i, limit=limit)
        time, _ = building_times(access, dist)
        time, _ = same_edge_trips(access, time, np.zeros(len(time), dtype=np.int64), "time", only=i)
        rows = np.flatnonzero(time <= limit)
        frames.append(
            pd.DataFrame(
                {
                    "facility": access.facilities.uid[i],
                    "building": b.uid[rows],
                    "time_s": time[rows],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _one(points: AccessPoints, i: int) -> AccessPoints:
    keep = slice(i, i + 1)
    return AccessPoints(
        points.uid[keep],
        points.edge[keep],
        points.position_m[keep],
        points.distance_m[keep],
        points.point[keep],
    )


def _median(values: FloatArray) -> float:
    """Median of a scratch array (partitioned in place: no copy of a million values)."""
    k = len(values) // 2
    values.partition(k)
    if len(values) % 2:
        return float(values[k])
    return float((values[k] + values[:k].max()) / 2)


def _facility_table(
    access: RoadAccess, fac: IntArray, reach: pd.DataFrame | None
) -> gpd.GeoDataFrame:
    f = access.facilities
    table = gpd.GeoDataFrame(
        access.facility_info.reindex(f.uid).reset_index(drop=True),
        geometry=f.point,
        crs=access.net.crs,
    )
    table.index = f.uid
    table["buildings"] = np.bincount(fac + 1, minlength=len(f) + 1)[1:]
    if reach is not None:
        table["within"] = reach.groupby("facility").size().reindex(f.uid, fill_value=0).to_numpy()
    table["access_m"] = f.distance_m
    return table


# --------------------------------------------------------------------------- routes


@dataclass(eq=False, repr=False)
class RouteSummary(Summary):
    """A route in numbers (``to_dict`` for JSON: no infinity, geometry as WKT)."""

    distance_m: float | None
    time_s: float | None
    roads: list[str]
    origin_access_m: float
    destination_access_m: float
    weight: str
    found: bool
    geometry_wkt: str | None


@dataclass(repr=False)
class Route(Result):
    """The best route between two points.

    Attributes
    ----------
    distance_m, time_s : float
        Length and travel time along the route (inf when there is none).
    geometry : shapely LineString or None
        From the origin's access point to the destination's.
    roads : list of str
        Road uids in travel order (repeats collapsed).
    origin_access_m, destination_access_m : float
        Straight-line distance from each point to its access point.
    weight : str
        What was minimised: ``time`` or ``length``.

    Examples
    --------
    >>> r = city.route("facilities.YJ0001", "buildings.JZ0000001")
    >>> r.summary.found, r.summary.weight
    (True, 'time')
    """

    distance_m: float
    time_s: float
    geometry: shapely.LineString | None
    roads: list[str]
    origin_access_m: float
    destination_access_m: float
    weight: str

    _tables: ClassVar[tuple[str, ...]] = ("line",)

    @property
    def found(self) -> bool:
        """Whether the destination can be reached."""
        return self.geometry is not None

    @property
    def summary(self) -> RouteSummary:
        """The route in numbers (:meth:`to_dict` as a :class:`RouteSummary`)."""
        return RouteSummary(**self.to_dict())

    @property
    def line(self) -> gpd.GeoDataFrame:
        """The route as a one-row table (none when not found); its CRS is unknown here."""
        shapes = [self.geometry] if self.geometry is not None else []
        return gpd.GeoDataFrame(
            {"distance_m": [self.distance_m] * len(shapes), "time_s": [self.time_s] * len(shapes)},
            geometry=shapes,
            crs=self.crs,
        )

    crs: Any = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (geometry as WKT)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("geometry", "crs")}
        found = self.geometry is not None
        out["found"] = found
        if not found:  # JSON has no infinity
            out["distance_m"] = out["time_s"] = None
        out["geometry_wkt"] = None if self.geometry is None else self.geometry.wkt
        return out


def route(
    net: RoadNetwork,
    origin: shapely.Geometry,
    destination: shapely.Geometry,
    *,
    weight: Weight = "time",
    closed_roads: list[str] | tuple[str, ...] = (),
) -> Route:
    """The fastest (or shortest) route between two points (or features) on ``net``.

    Parameters
    ----------
    net : RoadNetwork
    origin, destination : shapely geometry
        Points, or features (their representative point), in the network's CRS.
    weight : {"time", "length"}, default "time"
    closed_roads : sequence of str, optional
        Road uids closed for this route.

    Returns
    -------
    Route

    Examples
    --------
    >>> roads = city.road_network()
    >>> start = city.feature("facilities", "facilities.YJ0001").geometry
    >>> end = city.feature("buildings", "buildings.JZ0000001").geometry
    >>> r = route(roads, start, end, weight="length")
    >>> r.distance_m > 0 and r.roads[0].startswith("roads.")
    True
    """
    if weight not in ("time", "length"):
        raise UsageError(f"weight must be time or length, not {weight!r}")
    ends = gpd.GeoDataFrame(geometry=[origin, destination], index=["o", "d"], crs=net.crs)
    pts = access_points(net, ends)
    closed = np.zeros(net.n_edges, dtype=bool)
    if closed_roads:
        closed[net.edges_of(list(closed_roads))] = True
    graph = _with_origin(net, _one(pts, 0), weight)
    dist, pred = dijkstra(
        graph.matrix(closed), directed=True, indices=net.n_nodes, return_predecessors=True
    )
    return _route_result(net, pts, graph, closed, dist, pred, weight)


def _road_graph(net: RoadNetwork, weight: str) -> _Graph:
    """The road arcs alone as CSR (cached on the network)."""
    key = f"road_graph:{weight}"
    graph = net.cache.get(key)
    if graph is None:
        edge, tail, head, w = _road_arcs(net, False, weight)
        graph = net.cache[key] = _csr(net.n_nodes, tail, head, w, edge)
    return graph


def _with_origin(net: RoadNetwork, origin: AccessPoints, weight: str) -> _Graph:
    """The road graph plus one row: the origin's arcs to the ends of its edge."""
    base = _road_graph(net, weight)
    edge, _, head, w = _source_arcs(net, origin, net.n_nodes, False, weight)
    size = net.n_nodes + 1
    return _Graph(
        n=size,
        indptr=np.append(base.indptr, base.indptr[-1] + len(edge)).astype(np.int32),
        indices=np.concatenate([base.indices, head]).astype(np.int32),
        data=np.concatenate([base.data, w]),
        arc_edge=np.concatenate([base.arc_edge, edge]),
        closable=np.concatenate([base.closable, w > 0]),
    )


def _destination(
    net: RoadNetwork, pts: AccessPoints, closed: BoolArray, dist: FloatArray, weight: str
) -> tuple[float, int]:
    """Best cost to the destination, and the node it comes from (-1: along the common edge)."""
    e = int(pts.edge[1])
    length = max(float(net.edge_length_m[e]), 1e-12)
    share = float(pts.position_m[1]) / length
    cost = float(_edge_cost(net, weight)[e])
    options = []
    if (net.edge_forward[e] or share == 0) and not (closed[e] and share > 0):
        options.append((dist[net.edge_from[e]] + share * cost, int(net.edge_from[e])))
    if (net.edge_backward[e] or share == 1) and not (closed[e] and share < 1):
        options.append((dist[net.edge_to[e]] + (1 - share) * cost, int(net.edge_to[e])))
    if pts.edge[0] == e and not closed[e]:
        gap = float(pts.position_m[1] - pts.position_m[0])
        if gap == 0 or (net.edge_forward[e] if gap > 0 else net.edge_backward[e]):
            options.append((abs(gap) / length * cost, -1))
    return min(options, default=(INF, -1))


def _route_result(
    net: RoadNetwork,
    pts: AccessPoints,
    graph: _Graph,
    closed: BoolArray,
    dist: FloatArray,
    pred: npt.NDArray[np.int32],
    weight: str,
) -> Route:
    n = net.n_nodes
    best, last = _destination(net, pts, closed, dist, weight)
    if not np.isfinite(best):
        return Route(INF, INF, None, [], *_access_m(pts), weight=weight, crs=net.crs)
    e_dest = int(pts.edge[1])
    if last < 0:  # straight along the common edge
        pieces = [(e_dest, float(pts.position_m[0]), float(pts.position_m[1]))]
    else:
        path = [last]
        while path[-1] != n:
            path.append(int(pred[path[-1]]))
        path.reverse()
        pieces = [_piece(net, pts, graph, closed, u, v) for u, v in itertools.pairwise(path)]
        start = 0.0 if last == net.edge_from[e_dest] else float(net.edge_length_m[e_dest])
        pieces.append((e_dest, start, float(pts.position_m[1])))
    lines = [substring(net.edge_geometry[e], a, b) for e, a, b in pieces]
    coords = np.vstack([shapely.get_coordinates(line) for line in lines])
    keep = np.r_[True, np.any(np.diff(coords, axis=0) != 0, axis=1)]
    geometry = shapely.linestrings(coords[keep] if keep.sum() > 1 else coords[[0, 0]])
    length = sum(abs(b - a) for _, a, b in pieces)
    time = sum(
        abs(b - a) / max(net.edge_length_m[e], 1e-12) * net.edge_time_s[e] for e, a, b in pieces
    )
    roads = [str(net.edge_uid[e]) for e, a, b in pieces if a != b]
    roads = [r for i, r in enumerate(roads) if i == 0 or roads[i - 1] != r]
    return Route(
        float(length), float(time), geometry, roads, *_access_m(pts), weight=weight, crs=net.crs
    )


def _access_m(pts: AccessPoints) -> tuple[float, float]:
    return float(pts.distance_m[0]), float(pts.distance_m[1])


def _piece(
    net: RoadNetwork,
    pts: AccessPoints,
    graph: _Graph,
    closed: BoolArray,
    u: int,
    v: int,
) -> tuple[int, float, float]:
    """The cheapest open arc from ``u`` to ``v``, as (edge, start, end) positions on the edge."""
    n = net.n_nodes
    lo, hi = graph.indptr[u], graph.indptr[u + 1]
    heads = graph.indices[lo:hi]
    costs = np.where(closed[graph.arc_edge[lo:hi]], INF, graph.data[lo:hi])
    arc = lo + int(np.argmin(np.where(heads == v, costs, INF)))
    e = int(graph.arc_edge[arc])
    length = float(net.edge_length_m[e])
    if u == n:
        return e, float(pts.position_m[0]), 0.0 if v == net.edge_from[e] else length
    return (e, 0.0, length) if u == net.edge_from[e] else (e, length, 0.0)
