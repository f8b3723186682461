"""Road networks: a directed, timed graph from the twin's road centre lines.

How the graph is built
----------------------
- **Nodes** are road ends (snapped together within ``snap_tolerance_m``) and
  vertices shared by several roads. A road passing through a node is split
  there, so every **edge** runs between two nodes along one road.
- **Levels** keep crossings apart: a road's level is its ``level`` (the OSM
  ``layer`` tag), else 1 on a bridge and -1 in a tunnel, else 0. Where roads of
  different levels share a point, each level's roads join among themselves;
  a level with just one road *ending* there (a bridge's end, a ramp) joins the
  nearest level that continues through, and two levels that both continue
  through (a bridge over a street, drawn with a common vertex) stay apart.
  Lines that cross without a common vertex never meet, as in OSM.
- **One-way**: ``oneway`` 1 allows travel in the digitised direction only,
  -1 against it only, 0 both ways (the OSM importer maps ``oneway=yes/1/true``
  and the implied one-way of motorways and roundabouts to 1, ``-1`` to -1).
- **Time**: each edge's length over its road's speed (see
  :mod:`twin.network.speeds`); roads whose class is not drivable are left out.

Examples
--------
>>> import geopandas as gpd, pandas as pd
>>> from shapely import LineString
>>> roads = gpd.GeoDataFrame(
...     {"road_class": ["支路", "支路"], "oneway": [0, 1]},
...     geometry=[LineString([(0, 0), (100, 0), (200, 0)]), LineString([(100, 0), (100, 90)])],
...     index=pd.Index(["R1", "R2"], name="uid"), crs="EPSG:4544")
>>> net = road_network_from_frame(roads)
>>> net.n_nodes, net.n_edges, net.edge_uid.tolist()
(4, 3, ['R1', 'R1', 'R2'])
>>> round(float(net.edge_time_s[2]), 1)  # 90 m at 30 km/h
10.8
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from twin import settings
from twin.crs import require_projected
from twin.errors import NetworkError, UsageError
from twin.network.pipes import snap_clusters
from twin.network.speeds import DEFAULT_SPEEDS, SpeedTable

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = ["RoadNetwork", "road_levels", "road_network", "road_network_from_frame"]

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(repr=False)
class RoadNetwork:
    """The directed road graph of a road layer.

    Attributes
    ----------
    roads : geopandas.GeoDataFrame
        The drivable roads, indexed by uid, in a projected CRS, with ``speed_kmh_used``.
    node_xy : ndarray (n, 2)
        Node coordinates.
    edge_road : ndarray of int
        Row of each edge's road in ``roads``.
    edge_uid : ndarray of object
        Uid of each edge's road.
    edge_from, edge_to : ndarray of int
        End nodes of each edge, in the road's digitised direction.
    edge_start_m, edge_end_m : ndarray of float
        Where each edge starts and ends along its road.
    edge_length_m, edge_time_s : ndarray of float
        Length and travel time of each edge.
    edge_forward, edge_backward : ndarray of bool
        Whether the edge may be travelled from ``edge_from`` to ``edge_to``, and back.
    edge_geometry : ndarray of shapely LineStrings
        Each edge's line, in the digitised direction.
    snap_tolerance_m : float
    warnings : list of str
    cache : dict
        Graphs and base answers computed once per network.

    Examples
    --------
    >>> roads = city.road_network()
    >>> roads.n_edges >= len(city.layer("roads"))
    True
    """

    roads: gpd.GeoDataFrame
    node_xy: FloatArray
    edge_road: IntArray
    edge_uid: npt.NDArray[np.object_]
    edge_from: IntArray
    edge_to: IntArray
    edge_start_m: FloatArray
    edge_end_m: FloatArray
    edge_length_m: FloatArray
    edge_time_s: FloatArray
    edge_forward: BoolArray
    edge_backward: BoolArray
    edge_geometry: npt.NDArray[np.object_]
    snap_tolerance_m: float
    warnings: list[str] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"<RoadNetwork: {self.n_nodes:,} nodes, {self.n_edges:,} edges>"

    @property
    def n_nodes(self) -> int:
        return len(self.node_xy)

    @property
    def n_edges(self) -> int:
        return len(self.edge_road)

    @property
    def crs(self) -> Any:
        return self.roads.crs

    def edges_of(self, uids: list[str] | tuple[str, ...] | npt.NDArray[Any]) -> IntArray:
        """Edges of the roads ``uids``.

        Raises
        ------
        UsageError
            When a uid is not a road of the network.
        """
        lookup = self.cache.get("road_lookup")
        if lookup is None:
            order = np.argsort(self.edge_road, kind="stable")
            starts = np.searchsorted(self.edge_road[order], np.arange(len(self.roads) + 1))
            index = pd.Index(self.roads.index.astype(str))
            lookup = self.cache["road_lookup"] = (index, order, starts)
        index, order, starts = lookup
        rows = index.get_indexer(pd.Index([str(u) for u in uids]))
        if (rows < 0).any():
            missing = [str(u) for u, r in zip(uids, rows, strict=True) if r < 0]
            raise UsageError(
                f"no road {missing[0]!r} in the network ({len(missing)} unknown uid(s)); "
                "give road uids as the road layer's index holds them"
            )
        parts = [order[starts[r] : starts[r + 1]] for r in np.unique(rows)]
        return np.sort(np.concatenate(parts)).astype(np.int64) if parts else order[:0]

    def arcs(self) -> tuple[IntArray, IntArray, IntArray]:
        """Directed arcs: ``(edge, tail, head)`` for every allowed direction of every edge."""
        cached = self.cache.get("arcs")
        if cached is None:
            fwd = np.flatnonzero(self.edge_forward)
            bwd = np.flatnonzero(self.edge_backward)
            edge = np.concatenate([fwd, bwd]).astype(np.int64)
            tail = np.concatenate([self.edge_from[fwd], self.edge_to[bwd]])
            head = np.concatenate([self.edge_to[fwd], self.edge_from[bwd]])
            cached = self.cache["arcs"] = (edge, tail, head)
        return cached

    def components(self) -> IntArray:
        """Weakly connected part of every node."""
        edge, tail, head = self.arcs()
        n = self.n_nodes
        adj = sparse.coo_matrix((np.ones(len(edge)), (tail, head)), shape=(n, n))
        return connected_components(adj, directed=False)[1].astype(np.int64)

    def edges_frame(self) -> gpd.GeoDataFrame:
        """The edges as a GeoDataFrame (road uid, nodes, length, time, directions)."""
        return gpd.GeoDataFrame(
            {
                "road": self.edge_uid,
                "from_node": self.edge_from,
                "to_node": self.edge_to,
                "length_m": self.edge_length_m,
                "time_s": self.edge_time_s,
                "forward": self.edge_forward,
                "backward": self.edge_backward,
            },
            geometry=self.edge_geometry,
            crs=self.crs,
        )


def road_network(
    twin: Twin,
    layer: str = "roads",
    *,
    speeds: SpeedTable = DEFAULT_SPEEDS,
    tolerance_m: float = settings.TOLERANCE_M,
    snap_tolerance_m: float | None = None,
) -> RoadNetwork:
    """Build the road graph of a twin's road layer.

    Parameters
    ----------
    twin : twin.Twin
    layer : str, default "roads"
    speeds : SpeedTable, optional
        Speeds per road class (see :mod:`twin.network.speeds`).
    tolerance_m : float, default :data:`twin.settings.TOLERANCE_M` (0.5)
        Road ends and vertices closer than this are joined.
    snap_tolerance_m : float, optional
        The 0.1 spelling of ``tolerance_m`` (a thin alias: it wins when given).

    Returns
    -------
    RoadNetwork

    Examples
    --------
    >>> roads = road_network(city, "roads")
    >>> roads.crs == city.crs
    True
    """
    if snap_tolerance_m is not None:
        tolerance_m = snap_tolerance_m
    return road_network_from_frame(twin.layer(layer), speeds=speeds, tolerance_m=tolerance_m)


def road_network_from_frame(
    roads: gpd.GeoDataFrame,
    *,
    speeds: SpeedTable = DEFAULT_SPEEDS,
    tolerance_m: float = settings.TOLERANCE_M,
    snap_tolerance_m: float | None = None,
) -> RoadNetwork:
    """Build a :class:`RoadNetwork` from road lines indexed by uid.

    Parameters
    ----------
    roads : geopandas.GeoDataFrame
        Lines in a projected CRS; optional columns ``road_class``, ``oneway``,
        ``speed_kmh``, ``level``, ``bridge``, ``tunnel``. Multi-part lines are
        split into their parts.
    speeds : SpeedTable, optional
    tolerance_m : float, default :data:`twin.settings.TOLERANCE_M` (0.5)
    snap_tolerance_m : float, optional
        The 0.1 spelling of ``tolerance_m`` (a thin alias: it wins when given).

    Returns
    -------
    RoadNetwork

    Raises
    ------
    NetworkError
        When no drivable road with a line geometry is left.
    UsageError
        For a negative tolerance.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> frame = gpd.GeoDataFrame(
    ...     {"road_class": ["primary"]}, geometry=[shapely.LineString([(0, 0), (500, 0)])],
    ...     index=["r.1"], crs="EPSG:4544")
    >>> tiny = road_network_from_frame(frame)
    >>> tiny.n_nodes, tiny.n_edges
    (2, 1)
    """
    if snap_tolerance_m is not None:
        tolerance_m = snap_tolerance_m
    if tolerance_m < 0:
        raise UsageError(f"tolerance_m must be >= 0, not {tolerance_m}")
    require_projected(roads.crs, "the road layer")
    roads, warnings = _drivable(roads, speeds)
    parts = roads.geometry.explode(index_parts=False)
    geoms = parts.to_numpy()
    owner_road = pd.Index(roads.index).get_indexer(parts.index).astype(np.int64)
    topo = _topology(geoms, road_levels(roads)[owner_road], tolerance_m)
    road = owner_road[topo["part"]]
    oneway = _oneway(roads)[road]
    length = topo["end_m"] - topo["start_m"]
    speed = roads["speed_kmh_used"].to_numpy(dtype=float)[road]
    part_offset = _part_offsets(geoms, owner_road)
    net = RoadNetwork(
        roads=roads,
        node_xy=topo["node_xy"],
        edge_road=road,
        edge_uid=roads.index.to_numpy(dtype=object)[road],
        edge_from=topo["from"],
        edge_to=topo["to"],
        edge_start_m=topo["start_m"] + part_offset[topo["part"]],
        edge_end_m=topo["end_m"] + part_offset[topo["part"]],
        edge_length_m=length,
        edge_time_s=length / (speed / 3.6),
        edge_forward=oneway >= 0,
        edge_backward=oneway <= 0,
        edge_geometry=topo["geometry"],
        snap_tolerance_m=float(tolerance_m),
        warnings=warnings,
    )
    log.debug("road network: %d nodes, %d edges", net.n_nodes, net.n_edges)
    return net


def _drivable(roads: gpd.GeoDataFrame, speeds: SpeedTable) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Roads with a usable line and a drivable class, with the speed each will use."""
    geoms = roads.geometry.to_numpy()
    kind = shapely.get_type_id(geoms)
    lines = ~pd.isna(geoms) & ~shapely.is_empty(geoms) & np.isin(kind, (1, 5))
    speed = speeds.speeds(roads.get("road_class"), roads.get("speed_kmh"), len(roads))
    keep = lines & ~np.isnan(speed)
    warnings = []
    if (~lines).any():
        warnings.append(f"{int((~lines).sum())} road(s) without a line geometry left out")
    if (lines & np.isnan(speed)).any():
        classes = sorted(set(roads.loc[lines & np.isnan(speed), "road_class"].astype(str)))
        warnings.append(
            f"{int((lines & np.isnan(speed)).sum())} road(s) not drivable "
            f"({', '.join(classes[:6])}) left out"
        )
    if not keep.any():
        raise NetworkError(
            "no drivable road with a line geometry: check the road layer and the speed table"
        )
    out = roads.loc[keep].copy()
    out["speed_kmh_used"] = speed[keep]
    return out, warnings


def road_levels(roads: pd.DataFrame) -> IntArray:
    """Level of every road: ``level`` if given and non-zero, else 1 on a bridge, -1 in a tunnel.

    Examples
    --------
    >>> road_levels(pd.DataFrame({"level": [0, 2, None, 0], "bridge": [1, 0, 0, 0],
    ...                           "tunnel": [0, 0, 1, 0]})).tolist()
    [1, 2, -1, 0]
    """
    n = len(roads)

    def column(name: str) -> npt.NDArray[np.float64]:
        if name not in roads:
            return np.zeros(n)
        values = pd.to_numeric(roads[name], errors="coerce")
        return values.to_numpy(dtype=float, na_value=0.0)

    level = column("level")
    implied = np.where(column("bridge") != 0, 1, np.where(column("tunnel") != 0, -1, 0))
    return np.where(level != 0, level, implied).astype(np.int64)


def _oneway(roads: pd.DataFrame) -> IntArray:
    if "oneway" not in roads:
        return np.zeros(len(roads), dtype=np.int64)
    values = pd.to_numeric(roads["oneway"], errors="coerce").to_numpy(dtype=float, na_value=0.0)
    return np.sign(values).astype(np.int64)


def _part_offsets(geoms: npt.NDArray[np.object_], owner: IntArray) -> FloatArray:
    """Distance along the whole road where each part of a multi-part road starts."""
    length = shapely.length(geoms)
    total = np.cumsum(length) - length
    first = np.r_[True, owner[1:] != owner[:-1]] if len(owner) else np.zeros(0, dtype=bool)
    start_of_road = np.maximum.accumulate(np.where(first, np.arange(len(owner)), 0))
    return total - total[start_of_road]


# --------------------------------------------------------------------------- topology


def _topology(geoms: npt.NDArray[np.object_], level: IntArray, tol: float) -> dict[str, Any]:
    """Nodes and edges of line parts with levels (see the module docstring)."""
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    n_parts = len(geoms)
    first = np.searchsorted(owner, np.arange(n_parts))
    last = np.append(first[1:], len(owner)) - 1
    is_end = np.zeros(len(xy), dtype=bool)
    is_end[first] = True
    is_end[last] = True
    step = np.hypot(*np.diff(xy, axis=0, prepend=xy[:1]).T)
    step[first] = 0.0
    along = np.cumsum(step)
    along -= along[first][owner]
    cluster = snap_clusters(xy, tol)
    group, node_of_group = _groups(cluster, level[owner], owner, is_end)
    vertex_node = node_of_group[group]
    is_node = vertex_node >= 0
    nv = np.flatnonzero(is_node)
    a, b = nv[:-1], nv[1:]
    same = owner[a] == owner[b]
    a, b = a[same], b[same]
    zero = (vertex_node[a] == vertex_node[b]) & (along[b] - along[a] <= 0)
    a, b = a[~zero], b[~zero]
    used, renumbered = np.unique(vertex_node[np.concatenate([a, b])], return_inverse=True)
    node_xy = _node_xy(xy, vertex_node, used)
    k = len(a)
    return {
        "node_xy": node_xy,
        "part": owner[a].astype(np.int64),
        "from": renumbered[:k].astype(np.int64),
        "to": renumbered[k:].astype(np.int64),
        "start_m": along[a],
        "end_m": along[b],
        "geometry": _edge_lines(xy, a, b),
    }


def _groups(
    cluster: IntArray, level: IntArray, owner: IntArray, is_end: BoolArray
) -> tuple[IntArray, IntArray]:
    """Group every vertex by (place, level); return its group and each group's node (-1: none)."""
    key = np.stack([cluster, level])
    uniq, group = np.unique(key, axis=1, return_inverse=True)
    group = group.ravel()
    g_cluster = uniq[0]
    n_groups = uniq.shape[1]
    n_vertex = np.bincount(group, minlength=n_groups)
    n_end = np.bincount(group, weights=is_end, minlength=n_groups)
    pairs = np.unique(group.astype(np.int64) * (owner.max() + 1) + owner)
    n_lines = np.bincount(pairs // (owner.max() + 1), minlength=n_groups)
    node = np.where((n_end > 0) | (n_lines > 1), np.arange(n_groups), -1)
    ending = (n_vertex == 1) & (n_end == 1)
    _merge_levels(node, g_cluster, uniq[1], ending)
    return group, node


def _merge_levels(
    node: IntArray, g_cluster: IntArray, g_level: IntArray, ending: BoolArray
) -> None:
    """At places with several levels, join ending levels to the nearest level passing through."""
    counts = np.bincount(g_cluster)
    multi = np.flatnonzero(counts[g_cluster] > 1)  # groups are sorted by cluster
    if not len(multi):
        return
    starts = np.flatnonzero(np.r_[True, g_cluster[multi][1:] != g_cluster[multi][:-1]])
    for here in np.split(multi, starts[1:]):
        through = here[~ending[here]]
        ends = here[ending[here]]
        if not len(ends):
            continue
        if not len(through):
            node[here] = here[0]
            continue
        for g in ends:
            gap = np.abs(g_level[through] - g_level[g]) * 2 + (g_level[through] > g_level[g])
            target = through[int(np.argmin(gap))]
            node[target] = target
            node[g] = target


def _node_xy(xy: FloatArray, vertex_node: IntArray, used: IntArray) -> FloatArray:
    """Mean position of the vertices of every used node."""
    on = vertex_node >= 0
    pos = np.searchsorted(used, vertex_node[on])
    hit = (pos < len(used)) & (used[np.minimum(pos, len(used) - 1)] == vertex_node[on])
    idx = pos[hit]
    pts = xy[on][hit]
    count = np.bincount(idx, minlength=len(used)).astype(float)
    return np.column_stack(
        [np.bincount(idx, weights=pts[:, i], minlength=len(used)) / count for i in (0, 1)]
    )


def _edge_lines(xy: FloatArray, a: IntArray, b: IntArray) -> npt.NDArray[np.object_]:
    """Lines through vertices ``a[i]..b[i]`` of the coordinate array."""
    counts = b - a + 1
    edge = np.repeat(np.arange(len(a)), counts)
    offset = np.arange(len(edge)) - np.repeat(np.cumsum(counts) - counts, counts)
    return shapely.linestrings(xy[np.repeat(a, counts) + offset], indices=edge)
