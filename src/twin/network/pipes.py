"""Pipe networks: topology from pipe lines, valves and sources snapped onto it.

A :class:`PipeNetwork` is the bipartite topology of one utility network
(``network`` = water, gas, heat, drainage…): **nodes** (pipe ends snapped
within ``snap_tolerance_m``, and vertices shared by several pipes) and
**pieces** (a pipe between two consecutive nodes; most pipes are one piece, a
pipe passing through a node shared with another pipe is split there).
Non-pipe links (EPANET pumps and control valves) join the topology as pieces
without a pipe.

How a valve is represented
--------------------------
A valve is a point snapped to the nearest pipe within the tolerance (or to
the pipe named in its ``pipe`` attribute). It keeps its position along the
pipe (``position_m``) and sits on one end of its piece: the end nearer along
the pipe. Closing it cuts that piece from that node, as a valve "on link L
protecting node N" does in WNTR. A valve exactly at a node between pipes is
on the pipe it snapped to, at that node. A valve inside a pipe, away from both
ends, counts at the nearer end: the short stub between the valve and the node
stays with the pipe.

Examples
--------
>>> import geopandas as gpd
>>> from shapely import LineString, Point
>>> pipes = gpd.GeoDataFrame(
...     {"network": ["water"] * 2},
...     geometry=[LineString([(0, 0), (100, 0)]), LineString([(100, 0), (200, 0)])],
...     index=pd.Index(["P1", "P2"], name="uid"), crs="EPSG:4544")
>>> valves = gpd.GeoDataFrame({"status": ["open"]}, geometry=[Point(98, 0)],
...                           index=pd.Index(["V1"], name="uid"), crs="EPSG:4544")
>>> net = network_from_frames(pipes, valves)
>>> net.n_nodes, net.n_pieces, net.valves.loc["V1", "pipe"]
(3, 2, 'P1')
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
from scipy.spatial import cKDTree

from twin import settings
from twin.crs import require_projected
from twin.errors import LayerNotFoundError, NetworkError, UsageError

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = ["PipeNetwork", "network_from_frames", "pipe_network"]

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(repr=False)
class PipeNetwork:
    """The topology of one utility network.

    Attributes
    ----------
    network : str
        The ``network`` value (water, gas, drainage…).
    pipes : geopandas.GeoDataFrame
        The network's pipes, indexed by uid, in a projected CRS.
    node_xy : ndarray (n, 2)
        Node coordinates.
    node_ids : ndarray of str
        Node names: EPANET node ids when the pipes carry ``from_node`` /
        ``to_node``, else ``"N<k>"``.
    piece_pipe : ndarray of int
        For every piece, the row of its pipe in ``pipes`` (-1 for a pump or
        EPANET control valve link).
    piece_link : ndarray of str
        The uid of the pipe or link each piece belongs to.
    piece_from, piece_to : ndarray of int
        End nodes of every piece.
    piece_start_m, piece_end_m : ndarray of float
        Where each piece starts and ends along its pipe, in metres.
    valves : geopandas.GeoDataFrame
        Isolation valves, indexed by uid: ``status``, ``pipe`` (uid or None),
        ``piece``, ``node`` (-1 when off the network), ``position_m``,
        ``distance_m`` (from the pipe), ``on_network``.
    sources : geopandas.GeoDataFrame
        Sources, indexed by uid: ``node`` (-1 when off the network),
        ``distance_m``.
    snap_tolerance_m : float
        The tolerance used to snap ends, valves and sources.
    warnings : list of str
        What the build noticed (valves or sources off the network…).
    pipe_layer : str or None
        The twin layer the pipes come from (None when built from frames).

    Examples
    --------
    >>> net = pipe_network(city, "water", pipes="water_pipes")
    >>> net.network, net.n_pieces >= len(net.pipes)
    ('water', True)
    """

    network: str
    pipes: gpd.GeoDataFrame
    node_xy: FloatArray
    node_ids: npt.NDArray[np.str_]
    piece_pipe: IntArray
    piece_link: npt.NDArray[np.object_]
    piece_from: IntArray
    piece_to: IntArray
    piece_start_m: FloatArray
    piece_end_m: FloatArray
    valves: gpd.GeoDataFrame
    sources: gpd.GeoDataFrame
    snap_tolerance_m: float
    warnings: list[str] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict, repr=False)
    pipe_layer: str | None = None

    def __repr__(self) -> str:
        return (
            f"<PipeNetwork {self.network} ({self.pipe_layer or 'frames'}): {len(self.pipes):,} "
            f"pipes, {self.n_nodes:,} nodes, {len(self.valves):,} valves, "
            f"{len(self.sources):,} sources>"
        )

    @property
    def n_nodes(self) -> int:
        return len(self.node_xy)

    @property
    def n_pieces(self) -> int:
        return len(self.piece_from)

    @property
    def crs(self) -> Any:
        return self.pipes.crs

    @property
    def piece_length_m(self) -> FloatArray:
        """Length of every piece: its share of the pipe's length (0 for pumps and valves)."""
        cached = self.cache.get("piece_length_m")
        if cached is None:
            geometric = shapely.length(self.pipes.geometry.to_numpy())
            on_pipe = self.piece_pipe >= 0
            rows = self.piece_pipe[on_pipe]
            share = np.divide(
                (self.piece_end_m - self.piece_start_m)[on_pipe],
                geometric[rows],
                out=np.ones(len(rows)),
                where=geometric[rows] > 0,
            )
            cached = np.zeros(self.n_pieces)
            cached[on_pipe] = self.pipe_length_m[rows] * share
            self.cache["piece_length_m"] = cached
        return cached

    @property
    def pipe_length_m(self) -> FloatArray:
        """Length of every pipe: ``length_m`` as recorded where given, else measured."""
        cached = self.cache.get("pipe_length_m")
        if cached is None:
            cached = shapely.length(self.pipes.geometry.to_numpy())
            if "length_m" in self.pipes.columns:
                recorded = pd.to_numeric(self.pipes["length_m"], errors="coerce").to_numpy(float)
                given = np.isfinite(recorded) & (recorded > 0)
                cached = np.where(given, recorded, cached)
            self.cache["pipe_length_m"] = cached
        return cached

    def pipe_index(self, uid: object) -> int:
        """Row of pipe ``uid`` in :attr:`pipes`; :class:`UsageError` naming it when unknown."""
        try:
            return int(self.pipes.index.get_loc(uid))
        except KeyError:
            pass
        text = str(uid)
        close = [u for u in self.pipes.index.astype(str) if u.split(".", 1)[-1] == text][:3]
        hint = (
            f"; did you mean {' or '.join(close)}?"
            if close
            else f"; pipe uids look like {self.pipes.index[0]!r}"
        )
        raise UsageError(
            f"pipe {uid!r} is not in the {self.network} network ({len(self.pipes):,} pipes){hint}"
        )

    def graph(self) -> sparse.csr_matrix:
        """The node adjacency (every piece an undirected edge) as a scipy CSR matrix."""
        n = self.n_nodes
        data = np.ones(self.n_pieces)
        adj = sparse.coo_matrix((data, (self.piece_from, self.piece_to)), shape=(n, n))
        return (adj + adj.T).tocsr()

    def to_networkx(self) -> Any:
        """The network as a ``networkx.MultiGraph``: nodes by id, one edge per piece."""
        import networkx as nx

        graph = nx.MultiGraph()
        for k, (x, y) in enumerate(self.node_xy):
            graph.add_node(self.node_ids[k], pos=(float(x), float(y)))
        for a, b, link, length in zip(
            self.piece_from, self.piece_to, self.piece_link, self.piece_length_m, strict=True
        ):
            graph.add_edge(self.node_ids[a], self.node_ids[b], key=link, length_m=float(length))
        return graph


def pipe_network(
    twin: Twin,
    network: str = "water",
    *,
    pipes: str = "pipes",
    valves: str | None = "valves",
    sources: str | None = "sources",
    pumps: str | None = "pumps",
    tolerance_m: float = settings.TOLERANCE_M,
    snap_tolerance_m: float | None = None,
) -> PipeNetwork:
    """Build the topology of one network of a twin.

    Parameters
    ----------
    twin : twin.Twin
        The twin.
    network : str, default "water"
        Which pipes (their ``network`` value) form the network.
    pipes, valves, sources, pumps : str
        Layer names; a valve, source or pump layer the twin lacks is skipped
        (``None`` skips it on purpose).
    tolerance_m : float, default :data:`twin.settings.TOLERANCE_M` (0.5)
        Pipe ends, valves and sources closer than this are joined.
    snap_tolerance_m : float, optional
        The 0.1 spelling of ``tolerance_m`` (a thin alias: it wins when given).

    Returns
    -------
    PipeNetwork

    Examples
    --------
    >>> net = pipe_network(city, "gas", pipes="gas_pipes")
    >>> net.network, net.pipe_layer
    ('gas', 'gas_pipes')
    """
    if snap_tolerance_m is not None:
        tolerance_m = snap_tolerance_m
    frames: dict[str, gpd.GeoDataFrame | None] = {}
    for role, name in (("valves", valves), ("sources", sources), ("pumps", pumps)):
        frames[role] = None
        if name is not None:
            try:
                frames[role] = twin.layer(name)
            except LayerNotFoundError:
                if name != {"valves": "valves", "sources": "sources", "pumps": "pumps"}[role]:
                    raise
    net = network_from_frames(
        twin.layer(pipes),
        frames["valves"],
        frames["sources"],
        links=frames["pumps"],
        network=network,
        tolerance_m=tolerance_m,
    )
    net.pipe_layer = pipes
    return net


def network_from_frames(
    pipes: gpd.GeoDataFrame,
    valves: gpd.GeoDataFrame | None = None,
    sources: gpd.GeoDataFrame | None = None,
    *,
    links: gpd.GeoDataFrame | None = None,
    network: str | None = None,
    tolerance_m: float = settings.TOLERANCE_M,
    snap_tolerance_m: float | None = None,
) -> PipeNetwork:
    """Build a :class:`PipeNetwork` from GeoDataFrames indexed by uid.

    Parameters
    ----------
    pipes : geopandas.GeoDataFrame
        Pipe lines. Rows whose ``network`` differs from ``network`` are left
        out. With ``from_node`` / ``to_node`` on every row (EPANET), the nodes
        are those ids; otherwise they come from the geometry.
    valves : geopandas.GeoDataFrame, optional
        Valve points with ``status`` (open / closed / inoperable; missing
        means open) and optionally ``pipe`` (the uid of the pipe it is on).
        Rows with ``from_node`` and ``to_node`` are EPANET control-valve links:
        they join the topology as links, they are not isolation valves.
    sources : geopandas.GeoDataFrame, optional
        Source points, snapped to the nearest node within the tolerance.
    links : geopandas.GeoDataFrame, optional
        Other links with ``from_node`` / ``to_node`` (EPANET pumps).
    network : str, optional
        The network value to keep (default: all rows; the name of the first).
    tolerance_m : float, default :data:`twin.settings.TOLERANCE_M` (0.5)
        Snapping tolerance in metres.
    snap_tolerance_m : float, optional
        The 0.1 spelling of ``tolerance_m`` (a thin alias: it wins when given).

    Returns
    -------
    PipeNetwork

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> pipes = gpd.GeoDataFrame(
    ...     {"network": ["water"] * 2},
    ...     geometry=[shapely.LineString([(0, 0), (100, 0)]),
    ...               shapely.LineString([(100, 0), (100, 80)])],
    ...     index=["p.1", "p.2"], crs="EPSG:4544")
    >>> small = network_from_frames(pipes, network="water")
    >>> small.n_nodes, small.n_pieces
    (3, 2)
    """
    if snap_tolerance_m is not None:
        tolerance_m = snap_tolerance_m
    if tolerance_m < 0:
        raise UsageError(f"tolerance_m must be >= 0, not {tolerance_m}")
    pipes = _select(pipes, network)
    if pipes.empty:
        raise NetworkError(f"no pipes of the {network or 'given'} network")
    require_projected(pipes.crs, "the pipe layer")
    name = network or (str(pipes["network"].iloc[0]) if "network" in pipes else "water")
    geoms = pipes.geometry.to_numpy()
    if pd.isna(geoms).any() or shapely.is_empty(geoms).any():
        bad = list(pipes.index[pd.isna(geoms) | shapely.is_empty(geoms)][:5])
        raise NetworkError(f"pipes without geometry: {bad}")
    warnings: list[str] = []
    valve_frame, control_links = _split_valves(_select(valves, name, optional=True))
    extra = [f for f in (control_links, _select(links, name, optional=True)) if f is not None]
    if _has_node_ids(pipes):
        topo = _topology_from_ids(pipes, extra)
    else:
        if any(len(f) for f in extra):
            warnings.append("pumps and control valves need from_node/to_node on the pipes: skipped")
        topo = _topology_from_lines(geoms, tolerance_m)
        topo["piece_link"] = pipes.index.to_numpy(dtype=object)[topo["piece_pipe"]]
    net = PipeNetwork(
        network=name,
        pipes=pipes,
        valves=gpd.GeoDataFrame(),
        sources=gpd.GeoDataFrame(),
        snap_tolerance_m=float(tolerance_m),
        warnings=warnings,
        **topo,
    )
    net.valves = _snap_valves(net, valve_frame)
    net.sources = _snap_sources(net, _select(sources, name, optional=True))
    _warn_build(net)
    return net


# --------------------------------------------------------------------------- inputs


def _select(
    frame: gpd.GeoDataFrame | None, network: str | None, *, optional: bool = False
) -> gpd.GeoDataFrame:
    """Rows of ``frame`` in ``network`` (rows without a network value are kept when optional)."""
    if frame is None:
        return gpd.GeoDataFrame({"status": []}, geometry=[], crs=None)
    if network is None or "network" not in frame.columns:
        return frame
    values = frame["network"]
    keep = (values == network) | (values.isna() if optional else False)
    return frame[keep.to_numpy(dtype=bool)]


def _has_node_ids(pipes: gpd.GeoDataFrame) -> bool:
    return (
        "from_node" in pipes.columns
        and "to_node" in pipes.columns
        and bool(pipes["from_node"].notna().all() and pipes["to_node"].notna().all())
    )


def _split_valves(
    valves: gpd.GeoDataFrame,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
    """Isolation valves, and EPANET control valves (links between two named nodes)."""
    if "from_node" in valves.columns and "to_node" in valves.columns:
        is_link = (valves["from_node"].notna() & valves["to_node"].notna()).to_numpy(dtype=bool)
        return valves[~is_link], valves[is_link]
    return valves, None


# --------------------------------------------------------------------------- topology


def _topology_from_ids(pipes: gpd.GeoDataFrame, links: list[gpd.GeoDataFrame]) -> dict[str, Any]:
    """Nodes are the ``from_node`` / ``to_node`` ids; every pipe and link is one piece."""
    geoms = pipes.geometry.to_numpy()
    names = [pipes["from_node"].astype(str), pipes["to_node"].astype(str)]
    xy_from = shapely.get_coordinates(shapely.get_point(geoms, 0))
    xy_to = shapely.get_coordinates(shapely.get_point(geoms, -1))
    link_frames = [f for f in links if len(f)]
    for frame in link_frames:
        names += [frame["from_node"].astype(str), frame["to_node"].astype(str)]
    n_pipes = len(pipes)
    ids = np.concatenate([s.to_numpy(dtype=str) for s in names])
    node_ids, inverse = np.unique(ids, return_inverse=True)
    node_xy = np.full((len(node_ids), 2), np.nan)
    node_xy[inverse[:n_pipes]] = xy_from
    node_xy[inverse[n_pipes : 2 * n_pipes]] = xy_to
    starts, ends, link_uids = [inverse[:n_pipes]], [inverse[n_pipes : 2 * n_pipes]], []
    offset = 2 * n_pipes
    for frame in link_frames:
        k = len(frame)
        starts.append(inverse[offset : offset + k])
        ends.append(inverse[offset + k : offset + 2 * k])
        link_uids.append(frame.index.to_numpy(dtype=object))
        missing = np.isnan(node_xy[:, 0])  # nodes only links touch: the link's point
        at = shapely.get_coordinates(frame.geometry.to_numpy())
        for ends_k in (starts[-1], ends[-1]):
            fill = missing[ends_k]
            node_xy[ends_k[fill]] = at[fill]
        offset += 2 * k
    n_links = sum(len(f) for f in link_frames)
    length = shapely.length(geoms)
    return {
        "node_xy": node_xy,
        "node_ids": node_ids.astype(str),
        "piece_pipe": np.concatenate([np.arange(n_pipes), np.full(n_links, -1)]).astype(np.int64),
        "piece_link": np.concatenate([pipes.index.to_numpy(dtype=object), *link_uids]),
        "piece_from": np.concatenate(starts).astype(np.int64),
        "piece_to": np.concatenate(ends).astype(np.int64),
        "piece_start_m": np.zeros(n_pipes + n_links),
        "piece_end_m": np.concatenate([length, np.zeros(n_links)]),
    }


def _topology_from_lines(geoms: npt.NDArray[np.object_], tol: float) -> dict[str, Any]:
    """Nodes from snapped ends and shared vertices; pipes split at shared interior vertices."""
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    n_pipes = len(geoms)
    first = np.searchsorted(owner, np.arange(n_pipes))
    last = np.append(first[1:], len(owner)) - 1
    is_end = np.zeros(len(xy), dtype=bool)
    is_end[first] = True
    is_end[last] = True
    step = np.hypot(*np.diff(xy, axis=0, prepend=xy[:1]).T)
    step[first] = 0.0
    along = np.cumsum(step)
    along -= along[first][owner]
    cluster = snap_clusters(xy, tol)
    # a cluster is a node when it holds a pipe end or vertices of two or more pipes
    pairs = _distinct(cluster.astype(np.int64) * n_pipes + owner)
    pipes_per_cluster = np.bincount(pairs // n_pipes, minlength=cluster.max() + 1)
    ends_per_cluster = np.bincount(cluster, weights=is_end, minlength=cluster.max() + 1)
    node_cluster = (pipes_per_cluster > 1) | (ends_per_cluster > 0)
    vertex_is_node = is_end | node_cluster[cluster]
    nv = np.flatnonzero(vertex_is_node)
    a, b = nv[:-1], nv[1:]
    same = owner[a] == owner[b]
    a, b = a[same], b[same]
    # drop zero-length pieces inside a pipe that has other pieces
    loop = cluster[a] == cluster[b]
    pieces_per_pipe = np.bincount(owner[a], minlength=n_pipes)
    keep = ~loop | (pieces_per_pipe[owner[a]] == 1)
    a, b = a[keep], b[keep]
    used, node_of_cluster = np.unique(cluster[np.concatenate([a, b])], return_inverse=True)
    counts = np.bincount(cluster, minlength=cluster.max() + 1)[used]
    node_xy = np.column_stack(
        [np.bincount(cluster, weights=xy[:, i])[used] / counts for i in (0, 1)]
    )
    k = len(a)
    return {
        "node_xy": node_xy,
        "node_ids": np.char.add("N", np.arange(len(used)).astype(str)),
        "piece_pipe": owner[a].astype(np.int64),
        "piece_link": None,  # the caller names the pieces after their pipes
        "piece_from": node_of_cluster[:k].astype(np.int64),
        "piece_to": node_of_cluster[k:].astype(np.int64),
        "piece_start_m": along[a],
        "piece_end_m": along[b],
    }


def _distinct(values: IntArray) -> IntArray:
    """Sorted distinct values (sorting beats numpy 2's hash-based ``unique`` here)."""
    ordered = np.sort(values)
    keep = np.ones(len(ordered), dtype=bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep]


def snap_clusters(xy: FloatArray, tol: float) -> IntArray:
    """Label points so that points within ``tol`` of each other (transitively) share a label.

    Exact duplicates (shared end points, the common case) are merged by sorting;
    only points with a distinct neighbour in an adjacent ``tol`` grid cell go
    through a KD-tree.
    """
    n = len(xy)
    order = np.lexsort((xy[:, 1], xy[:, 0]))
    ordered = xy[order]
    new = np.ones(n, dtype=bool)
    new[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    label = np.empty(n, dtype=np.int64)
    label[order] = np.cumsum(new) - 1
    points = ordered[new]
    if tol <= 0 or len(points) < 2:
        return label
    near = np.flatnonzero(_crowded(points, tol))
    if not len(near):
        return label
    pairs = near[cKDTree(points[near]).query_pairs(tol, output_type="ndarray")]
    k = len(points)
    adj = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(k, k))
    _, merged = connected_components(adj, directed=False)
    return merged[label].astype(np.int64)


def _crowded(points: FloatArray, tol: float) -> BoolArray:
    """Points with another point in their ``tol`` grid cell or an adjacent one."""
    cells = np.floor(points / tol).astype(np.int64)
    cells -= cells.min(axis=0) - 1
    width = int(cells[:, 1].max()) + 2
    key = cells[:, 0] * width + cells[:, 1]
    order = np.argsort(key)
    ordered = key[order]
    crowded = np.zeros(len(points), dtype=bool)
    for dx in (-1, 0, 1):  # cells (x + dx, y - 1 .. y + 1) are one run of keys
        low = ordered + (dx * width - 1)  # sorted probes: searchsorted runs faster
        count = np.searchsorted(ordered, low + 2, "right") - np.searchsorted(ordered, low)
        crowded |= count > (1 if dx == 0 else 0)
    out = np.empty(len(points), dtype=bool)
    out[order] = crowded
    return out


# --------------------------------------------------------------------------- valves, sources


def _snap_valves(net: PipeNetwork, valves: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Valves with their pipe, piece, node (the nearer piece end) and position along the pipe."""
    n = len(valves)
    status = (
        valves["status"].fillna("open").astype(str).str.lower().to_numpy()
        if "status" in valves.columns
        else np.full(n, "open")
    )
    points = valves.geometry.to_numpy() if n else np.empty(0, dtype=object)
    if n and valves.crs is not None and net.crs is not None and valves.crs != net.crs:
        points = valves.geometry.to_crs(net.crs).to_numpy()
    lines = net.pipes.geometry.to_numpy()
    pipe_row, distance = _nearest_pipe(lines, points, net.snap_tolerance_m)
    if "pipe" in valves.columns:
        named = valves["pipe"].map(index_lookup(net.pipes.index)).to_numpy(dtype=float)
        given = ~np.isnan(named)
        pipe_row[given] = named[given].astype(np.int64)
        distance[given] = shapely.distance(lines[pipe_row[given]], points[given])
    on = pipe_row >= 0
    position = np.full(n, np.nan)
    piece = np.full(n, -1, dtype=np.int64)
    node = np.full(n, -1, dtype=np.int64)
    if on.any():
        position[on] = shapely.line_locate_point(lines[pipe_row[on]], points[on])
        piece[on] = piece_at(net, pipe_row[on], position[on])
        start, end = net.piece_start_m[piece[on]], net.piece_end_m[piece[on]]
        nearer_start = position[on] - start <= end - position[on]
        node[on] = np.where(nearer_start, net.piece_from[piece[on]], net.piece_to[piece[on]])
    pipe_uid = np.full(n, None, dtype=object)
    pipe_uid[on] = net.pipes.index.to_numpy(dtype=object)[pipe_row[on]]
    frame = pd.DataFrame(
        {
            "status": status,
            "pipe": pipe_uid,
            "piece": piece,
            "node": node,
            "position_m": position,
            "distance_m": distance,
            "on_network": on,
        },
        index=valves.index,
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(points, index=valves.index), crs=net.crs)


def index_lookup(index: pd.Index) -> dict[Any, int]:
    return dict(zip(index.tolist(), range(len(index)), strict=True))


def _nearest_pipe(
    lines: npt.NDArray[np.object_], points: npt.NDArray[np.object_], tol: float
) -> tuple[IntArray, FloatArray]:
    """Row of the nearest line within ``tol`` of each point (-1 if none) and its distance."""
    n = len(points)
    row = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.inf)
    if n == 0:
        return row, dist
    tree = shapely.STRtree(lines)
    src, dst = tree.query(points, predicate="dwithin", distance=tol)
    d = shapely.distance(points[src], lines[dst])
    order = np.lexsort((dst, d, src))  # nearest first, then the lowest row
    first = np.ones(len(order), dtype=bool)
    first[1:] = src[order][1:] != src[order][:-1]
    best = order[first]
    row[src[best]] = dst[best]
    dist[src[best]] = d[best]
    far = np.flatnonzero(row < 0)
    if len(far):  # how far off the network they are, for the report
        (at, _), d_far = tree.query_nearest(points[far], all_matches=False, return_distance=True)
        dist[far[at]] = d_far
    return row, dist


def piece_at(net: PipeNetwork, pipe_row: IntArray, position: FloatArray) -> IntArray:
    """The piece of each pipe that holds ``position`` (metres along the pipe)."""
    is_pipe = net.piece_pipe >= 0
    pieces = np.flatnonzero(is_pipe)
    scale = float(net.piece_end_m.max(initial=0.0)) + 1.0
    key = net.piece_pipe[pieces] * scale + net.piece_start_m[pieces]
    order = np.argsort(key, kind="stable")
    found = np.searchsorted(key[order], pipe_row * scale + position, side="right") - 1
    found = np.clip(found, 0, len(order) - 1)
    return pieces[order[found]].astype(np.int64)


def _snap_sources(net: PipeNetwork, sources: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Sources with the node they stand on (by id, else nearest within tolerance)."""
    n = len(sources)
    node = np.full(n, -1, dtype=np.int64)
    distance = np.full(n, np.inf)
    if n:
        points = sources.geometry
        if sources.crs is not None and sources.crs != net.crs:
            points = points.to_crs(net.crs)
        xy = shapely.get_coordinates(points.to_numpy())
        distance, found = cKDTree(np.nan_to_num(net.node_xy, nan=1e300)).query(xy)
        node = np.where(distance <= net.snap_tolerance_m, found, -1).astype(np.int64)
        names = pd.Index(net.node_ids)
        text = sources.index.astype(str)
        for uids in (text, text.str.split(".", n=1).str[-1]):
            by_id = names.get_indexer(uids)  # EPANET: the source is the node of that id
            named = (by_id >= 0) & (node < 0)
            node[named] = by_id[named]
            distance[named] = 0.0
    frame = pd.DataFrame({"node": node, "distance_m": distance}, index=sources.index)
    if "source_type" in sources.columns:
        frame["source_type"] = sources["source_type"].to_numpy()
    return gpd.GeoDataFrame(frame, geometry=sources.geometry.to_numpy(), crs=sources.crs)


def _warn_build(net: PipeNetwork) -> None:
    off = net.valves.index[~net.valves["on_network"].to_numpy(dtype=bool)]
    if len(off):
        net.warnings.append(
            f"{len(off)} valve(s) farther than {net.snap_tolerance_m} m from any "
            f"{net.network} pipe, left out: {few(off)}"
        )
    lost = net.sources.index[net.sources["node"].to_numpy() < 0]
    if len(lost):
        net.warnings.append(
            f"{len(lost)} source(s) not on the {net.network} network, left out: {few(lost)}"
        )
    if not (net.sources["node"].to_numpy() >= 0).any():
        net.warnings.append(
            f"the {net.network} network has no source on it: no pipe can be said to be "
            "cut off from supply"
        )
    for text in net.warnings:
        log.warning(text)


def few(values: Any, k: int = 5) -> str:
    items = [str(v) for v in list(values)[:k]]
    more = len(values) - len(items)
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")
