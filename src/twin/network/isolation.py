"""Isolation segments, pipe breaks, valve failures and segment criticality.

The valves cut a :class:`~twin.network.pipes.PipeNetwork` into **isolation
segments**: the parts bounded by operable valves. Nodes and pieces are the
vertices of one bipartite graph (a piece joins its two end nodes); every
operable or normally closed valve removes the joint between its piece and
its node; the connected components are the segments (the same partition
WNTR's ``valve_segments`` gives). An inoperable valve cuts nothing.

Segments joined by an open valve form the **segment graph**; a break
isolates its segment(s), and the segments left without a path to a source
are cut off. A valve that fails to close merges the segments on its two
sides.

Everything that does not depend on the broken pipe is computed once per
network and cached on it: the segment labels, the incidences pipe ->
segments, segment -> pieces and segment -> valves (CSR arrays), and one
depth-first search of the segment graph from the sources. The segments a
single isolated segment cuts off are then the DFS subtrees it separates (it
is an articulation point above them), read as contiguous runs of the DFS
order; a query costs about the size of its answer. Isolations of several
segments (a failed valve, a pipe split between segments) fall back to
connected components of the segment graph. Criticality
(:mod:`twin.network.criticality`) reads the same search for every segment.

Examples
--------
>>> segs = isolation_segments(net)
>>> r = pipe_break(net, "water_pipes.JS000010")
>>> set(r.summary.segments) <= set(segs.table.index)
True
>>> wider = pipe_break(net, "water_pipes.JS000010", failed_valves=list(r.valves_to_close.index[:1]))
>>> wider.summary.valves_to_close >= r.summary.valves_to_close - 1
True
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from twin.errors import UsageError
from twin.network.pipes import (
    BoolArray,
    IntArray,
    PipeNetwork,
    few,
    index_lookup,
)
from twin.network.services import (
    Connections,
    Services,
    buildings_of,
    connections_argument,
    prepared,
    ranges,
)
from twin.results import Result, Summary, as_geoframe

__all__ = ["BreakResult", "BreakSummary", "Segments", "isolation_segments", "pipe_break"]

log = logging.getLogger(__name__)


@dataclass
class Segments:
    """Isolation segments of a network.

    Attributes
    ----------
    of_pipe : pandas.Series
        Pipe uid -> segment id (a pipe split across segments: its longest piece's).
    of_node : pandas.Series
        Node id -> segment id.
    table : geopandas.GeoDataFrame
        One row per segment: ``n_pipes``, ``pipes`` (uids), ``length_m``, ``n_nodes``,
        ``valves`` (operable valves bounding it), ``closed_valves`` (normally
        closed ones), ``has_source``; geometry the segment's pipes.
    warnings : list of str

    Examples
    --------
    >>> segs = isolation_segments(net)
    >>> int(segs.table["n_pipes"].sum()) >= len(net.pipes)
    True
    """

    of_pipe: pd.Series
    of_node: pd.Series
    table: gpd.GeoDataFrame
    warnings: list[str] = field(default_factory=list)


@dataclass
class SegmentModel:
    """Arrays shared by every analysis of one network (cached on the network)."""

    n_seg: int
    piece_seg: IntArray
    node_seg: IntArray
    pipe_seg: IntArray  # segment of each pipe's longest piece
    valve_uid: npt.NDArray[np.object_]  # valves on the network that cut (operable or closed)
    valve_row: IntArray  # their rows in net.valves
    valve_a: IntArray  # segment on the piece side
    valve_b: IntArray  # segment on the node side
    valve_closed: BoolArray  # normally closed
    edge_a: IntArray  # segment graph: open operable valves between two segments
    edge_b: IntArray
    source_seg: IntArray
    supplied: BoolArray  # segments connected to a source before any break
    warnings: list[str]
    # incidences (CSR): pipe -> its pieces' segments, segment -> pipe pieces, segment -> valves
    pipe_seg_ptr: IntArray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    pipe_seg_idx: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    seg_piece_ptr: IntArray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    seg_piece_idx: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    seg_valve_ptr: IntArray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    seg_valve_idx: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tree: SegmentTree | None = None  # with the incidences, built by the first query


@dataclass
class SegmentTree:
    """A depth-first search of the segment graph from a root joined to every source segment.

    The root is vertex ``n_seg``. A segment's subtree is the run
    ``order[disc[s]:disc[s] + size[s]]``; ``sep[sep_ptr[s]:sep_ptr[s + 1]]``
    are the children of ``s`` whose subtrees lose every path to a source when
    ``s`` is shut (``low[c] >= disc[s]``).
    """

    disc: IntArray  # preorder number (-1: not reached, no path to a source)
    size: IntArray  # subtree sizes
    parent: IntArray
    order: IntArray  # vertices by preorder number
    sep_ptr: IntArray
    sep: IntArray


def _model(net: PipeNetwork) -> SegmentModel:
    cached = net.cache.get("model")
    if cached is None:
        cached = net.cache["model"] = _build_model(net)
    return cached


def _build_model(net: PipeNetwork) -> SegmentModel:
    n, m = net.n_nodes, net.n_pieces
    valves = net.valves
    on = valves["on_network"].to_numpy(dtype=bool)
    status = valves["status"].to_numpy(dtype=str)
    cuts = on & (status != "inoperable")
    piece = valves["piece"].to_numpy()[cuts]
    node = valves["node"].to_numpy()[cuts]
    cut_edge = np.where(node == net.piece_from[piece], piece, m + piece)
    keep = np.ones(2 * m, dtype=bool)
    keep[cut_edge] = False
    pieces = np.concatenate([np.arange(m), np.arange(m)])[keep] + n
    nodes = np.concatenate([net.piece_from, net.piece_to])[keep]
    adj = sparse.coo_matrix((np.ones(len(nodes)), (pieces, nodes)), shape=(n + m, n + m))
    _, labels = connected_components(adj, directed=False)
    labels = _renumber(np.concatenate([labels[n:], labels[:n]]))
    piece_seg, node_seg = labels[:m], labels[m:]
    n_seg = int(labels.max()) + 1 if len(labels) else 0
    closed = status[cuts] == "closed"
    a, b = piece_seg[piece], node_seg[node]
    between = (a != b) & ~closed
    warnings = []
    if not (cuts & (status == "open")).any():
        warnings.append(
            f"the {net.network} network has no operable valve: the whole network is one "
            "segment, a break shuts off everything connected to it"
        )
    source_nodes = net.sources["node"].to_numpy()
    source_seg = np.unique(node_seg[source_nodes[source_nodes >= 0]])
    model = SegmentModel(
        n_seg=n_seg,
        piece_seg=piece_seg,
        node_seg=node_seg,
        pipe_seg=_pipe_segments(net, piece_seg),
        valve_uid=valves.index.to_numpy(dtype=object)[cuts],
        valve_row=np.flatnonzero(cuts).astype(np.int64),
        valve_a=a,
        valve_b=b,
        valve_closed=closed,
        edge_a=a[between],
        edge_b=b[between],
        source_seg=source_seg,
        supplied=np.zeros(n_seg, dtype=bool),
        warnings=warnings,
    )
    model.supplied = ~_unsupplied(model, np.zeros(n_seg, dtype=bool))
    return model


def query_model(net: PipeNetwork) -> tuple[SegmentModel, SegmentTree]:
    """The model with what queries need: the incidences and the tree (built once)."""
    model = _model(net)
    if model.tree is None:
        _add_incidences(net, model)
        model.tree = _segment_tree(model)
    return model, model.tree


def _csr(group: IntArray, values: IntArray, n_groups: int) -> tuple[IntArray, IntArray]:
    """``values`` grouped by ``group`` as CSR: group g holds ``idx[ptr[g]:ptr[g + 1]]``."""
    order = np.argsort(group, kind="stable")
    ptr = np.searchsorted(group[order], np.arange(n_groups + 1)).astype(np.int64)
    return ptr, values[order].astype(np.int64)


def _add_incidences(net: PipeNetwork, model: SegmentModel) -> None:
    """Pipe -> segments, segment -> pipe pieces and segment -> cutting valves, as CSR."""
    k = model.n_seg
    on_pipe = np.flatnonzero(net.piece_pipe >= 0)
    pairs = _distinct_pairs(net.piece_pipe[on_pipe], model.piece_seg[on_pipe], k)
    model.pipe_seg_ptr, model.pipe_seg_idx = _csr(pairs[0], pairs[1], len(net.pipes))
    model.seg_piece_ptr, model.seg_piece_idx = _csr(model.piece_seg[on_pipe], on_pipe, k)
    sides = np.concatenate([model.valve_a, model.valve_b])
    position = np.tile(np.arange(len(model.valve_a)), 2)
    pairs = _distinct_pairs(sides, position, len(model.valve_a))
    model.seg_valve_ptr, model.seg_valve_idx = _csr(pairs[0], pairs[1], k)


def _distinct_pairs(a: IntArray, b: IntArray, n_b: int) -> tuple[IntArray, IntArray]:
    """The distinct pairs ``(a, b)`` (``0 <= b < n_b``), sorted."""
    key = np.unique(a.astype(np.int64) * max(n_b, 1) + b)
    return key // max(n_b, 1), key % max(n_b, 1)


def _segment_tree(model: SegmentModel) -> SegmentTree:
    """One DFS of the segment graph from the sources: subtrees and separated children."""
    k = model.n_seg
    root = k
    to_root = np.full(len(model.source_seg), root)
    src = np.concatenate([model.edge_a, model.edge_b, to_root, model.source_seg])
    dst = np.concatenate([model.edge_b, model.edge_a, model.source_seg, to_root])
    adj = sparse.csr_matrix((np.ones(len(src)), (src, dst)), shape=(k + 1, k + 1))
    adj.sum_duplicates()
    disc, low, parent, post = _dfs(adj.indptr, adj.indices, root)
    size_l = [1] * (k + 1)
    parent_l = parent.tolist()
    for v in post:  # children before parents
        p = parent_l[v]
        if p >= 0:
            size_l[p] += size_l[v]
    size = np.array(size_l, dtype=np.int64)
    reached = np.flatnonzero(disc >= 0)
    order = np.empty(len(reached), dtype=np.int64)
    order[disc[reached]] = reached
    child = np.flatnonzero(parent >= 0)
    sep = child[low[child] >= disc[parent[child]]]
    sep_ptr, sep = _csr(parent[sep], sep, k + 1)
    return SegmentTree(disc=disc, size=size, parent=parent, order=order, sep_ptr=sep_ptr, sep=sep)


def _dfs(ptr: IntArray, nbr: IntArray, root: int) -> tuple[IntArray, IntArray, IntArray, list[int]]:
    """Iterative DFS: preorder numbers, low-links, parents and the post-order."""
    n = len(ptr) - 1
    ptr_l, nbr_l = ptr.tolist(), nbr.tolist()
    disc_l, low_l, parent_l = [-1] * n, [0] * n, [-1] * n
    nxt = ptr_l[:-1].copy()
    post: list[int] = []
    disc_l[root] = low_l[root] = 0
    counter, stack = 1, [root]
    while stack:
        v = stack[-1]
        if nxt[v] < ptr_l[v + 1]:
            u = nbr_l[nxt[v]]
            nxt[v] += 1
            if disc_l[u] < 0:
                parent_l[u], disc_l[u], low_l[u] = v, counter, counter
                counter += 1
                stack.append(u)
            elif u != parent_l[v] and disc_l[u] < low_l[v]:
                low_l[v] = disc_l[u]
            continue
        stack.pop()
        post.append(v)
        p = parent_l[v]
        if p >= 0 and low_l[v] < low_l[p]:
            low_l[p] = low_l[v]
    as_array = [np.array(x, dtype=np.int64) for x in (disc_l, low_l, parent_l)]
    return as_array[0], as_array[1], as_array[2], post


def _tree_cut(tree: SegmentTree, seg: int) -> IntArray:
    """Segments that lose every path to a source when segment ``seg`` alone is shut."""
    children = tree.sep[tree.sep_ptr[seg] : tree.sep_ptr[seg + 1]]
    first = tree.disc[children]
    return np.sort(tree.order[ranges(first, first + tree.size[children])])


def _renumber(labels: IntArray) -> IntArray:
    """Renumber labels 0, 1, … in order of first appearance."""
    uniq, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(uniq))
    return rank[inverse.ravel()]


def _pipe_segments(net: PipeNetwork, piece_seg: IntArray) -> IntArray:
    """Segment of each pipe's longest piece."""
    is_pipe = np.flatnonzero(net.piece_pipe >= 0)
    order = is_pipe[np.lexsort((-net.piece_length_m[is_pipe], net.piece_pipe[is_pipe]))]
    out = np.full(len(net.pipes), -1, dtype=np.int64)
    out[net.piece_pipe[order][::-1]] = piece_seg[order][::-1]
    return out


def _unsupplied(model: SegmentModel, removed: BoolArray) -> BoolArray:
    """Segments (not removed) without a path to a source segment once ``removed`` are shut."""
    keep = ~removed[model.edge_a] & ~removed[model.edge_b]
    k = model.n_seg
    adj = sparse.coo_matrix(
        (np.ones(int(keep.sum())), (model.edge_a[keep], model.edge_b[keep])), shape=(k, k)
    )
    _, comp = connected_components(adj, directed=False)
    live = model.source_seg[~removed[model.source_seg]]
    fed = np.zeros(int(comp.max()) + 1 if k else 0, dtype=bool)
    fed[comp[live]] = True
    return ~fed[comp] & ~removed


def isolation_segments(net: PipeNetwork) -> Segments:
    """The isolation segments of ``net``.

    Parameters
    ----------
    net : PipeNetwork

    Returns
    -------
    Segments
        ``of_pipe`` (pipe uid -> segment id), ``of_node`` and the segment ``table``.

    Examples
    --------
    >>> segs = isolation_segments(net)
    >>> segs.of_pipe.index.equals(net.pipes.index)
    True
    """
    model = _model(net)
    k = model.n_seg
    is_pipe = net.piece_pipe >= 0
    seg_of_piece = model.piece_seg[is_pipe]
    length = np.bincount(seg_of_piece, weights=net.piece_length_m[is_pipe], minlength=k)
    n_pipes = np.bincount(model.pipe_seg, minlength=k)
    n_nodes = np.bincount(model.node_seg, minlength=k)
    lines = net.pipes.geometry.to_numpy()
    geometry = np.full(k, None, dtype=object)
    order = np.argsort(model.pipe_seg, kind="stable")
    present = np.flatnonzero(np.bincount(model.pipe_seg, minlength=k))
    geometry[present] = shapely.multilinestrings(lines[order], indices=model.pipe_seg[order])
    table = gpd.GeoDataFrame(
        {
            "n_pipes": n_pipes,
            "pipes": _grouped(model.pipe_seg, net.pipes.index.to_numpy(dtype=object), k),
            "length_m": length,
            "n_nodes": n_nodes,
            "valves": _boundary(model, ~model.valve_closed),
            "closed_valves": _boundary(model, model.valve_closed),
            "has_source": model.supplied,
        },
        geometry=gpd.GeoSeries(geometry, crs=net.crs),
    )
    table.index.name = "segment"
    return Segments(
        of_pipe=pd.Series(model.pipe_seg, index=net.pipes.index, name="segment"),
        of_node=pd.Series(
            model.node_seg, index=pd.Index(net.node_ids, name="node"), name="segment"
        ),
        table=table,
        warnings=[*net.warnings, *model.warnings],
    )


def _boundary(model: SegmentModel, which: BoolArray) -> list[list[str]]:
    """For each segment, the uids of the ``which`` valves on its boundary."""
    a, b = model.valve_a[which], model.valve_b[which]
    uid = model.valve_uid[which]
    real = a != b
    seg = np.concatenate([a[real], b[real]])
    return _grouped(seg, np.concatenate([uid[real], uid[real]]), model.n_seg)


def _grouped(group: IntArray, values: npt.NDArray[Any], n_groups: int) -> list[list[Any]]:
    """``values`` as one list per group 0 .. n_groups - 1."""
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1)).tolist()
    ordered = values[order].tolist()
    return [ordered[bounds[i] : bounds[i + 1]] for i in range(n_groups)]


# --------------------------------------------------------------------------- pipe break


@dataclass(eq=False, repr=False)
class BreakSummary(Summary):
    """Counts, lengths and population of a pipe break (also a dict, for ``--json``).

    Attributes
    ----------
    network, pipe : str
        The network and the broken pipe.
    segments : list of int
        The isolated segments.
    valves_to_close, valves_already_closed : int
    isolated_pipes, cut_off_pipes : int
    isolated_length_m, cut_off_length_m : float
    buildings, extra_buildings : int or None
        Buildings losing service (None without service connections).
    extra_valves : int
        Valves to close beyond the no-failure answer.
    population : float, optional
        Population losing service, where buildings carry it.
    warnings : list of str
    failed_valves : list of str
    service_connections : str, optional
        Whether the connections were stored by the build or computed.
    """

    _omit_if_none: ClassVar[tuple[str, ...]] = ("population", "service_connections")

    network: str
    pipe: str
    segments: list[int]
    valves_to_close: int
    valves_already_closed: int
    isolated_pipes: int
    isolated_length_m: float
    cut_off_pipes: int
    cut_off_length_m: float
    buildings: int | None
    extra_valves: int
    extra_buildings: int | None
    population: float | None = None
    warnings: list[str] = field(default_factory=list)
    failed_valves: list[str] = field(default_factory=list)
    service_connections: str | None = None


@dataclass(repr=False)
class BreakResult(Result):
    """What a break on one pipe shuts off.

    Attributes
    ----------
    pipe : str
        The broken pipe.
    valves_to_close : geopandas.GeoDataFrame
        Operable valves bounding the isolated segments (``role`` "close"), and
        normally closed valves on that boundary (``role`` "already closed").
    isolated_pipes, cut_off_pipes : geopandas.GeoDataFrame
        Pipes inside the closed valves; further pipes with no path to a source.
    buildings : geopandas.GeoDataFrame
        Buildings losing service: ``pipe`` and ``reason`` (isolated / cut_off),
        with their footprints when the connections carried them (else no geometry).
    extra_valves : geopandas.GeoDataFrame
        With failed valves: valves to close beyond the no-failure answer.
    extra_buildings : geopandas.GeoDataFrame
        With failed valves: buildings affected beyond the no-failure answer.
    summary : BreakSummary
        Counts, lengths and population, for reports and ``--json``.
    warnings : list of str

    Examples
    --------
    >>> r = city.pipe_break("water_pipes.JS000010")
    >>> r.summary.valves_to_close == len(r.valves_to_close[r.valves_to_close.role == "close"])
    True
    >>> r.buildings.crs == r.valves_to_close.crs
    True
    """

    _tables: ClassVar[tuple[str, ...]] = (
        "valves_to_close",
        "isolated_pipes",
        "cut_off_pipes",
        "buildings",
        "extra_valves",
        "extra_buildings",
    )

    pipe: str
    valves_to_close: gpd.GeoDataFrame
    isolated_pipes: gpd.GeoDataFrame
    cut_off_pipes: gpd.GeoDataFrame
    extra_valves: gpd.GeoDataFrame
    summary: BreakSummary
    warnings: list[str]
    # the building tables are made when first read: a GeoDataFrame costs about a
    # millisecond to make, more than the rest of a break's answer
    _affected: _Affected = field(compare=False)
    _beyond: BoolArray = field(compare=False)  # which of them the failed valves add

    @cached_property
    def buildings(self) -> gpd.GeoDataFrame:
        """Buildings losing service (see the class's attributes)."""
        return self._affected.table()

    @cached_property
    def extra_buildings(self) -> gpd.GeoDataFrame:
        """With failed valves: buildings affected beyond the no-failure answer."""
        return self._affected.table(self._beyond)


@dataclass(frozen=True)
class _Affected:
    """The buildings a break shuts off, as positions in the service connections."""

    net: PipeNetwork
    services: Services | None
    found: IntArray
    state: IntArray  # 1 isolated, 2 cut off
    footprints: gpd.GeoDataFrame | None  # connections carrying the buildings' geometry

    def table(self, among: BoolArray | None = None) -> gpd.GeoDataFrame:
        """The buildings (those of ``among`` only, when given) as a table."""
        found, state = (
            (self.found, self.state) if among is None else (self.found[among], self.state[among])
        )
        rows = _building_rows(self.net, self.services, found, state)
        return rows if self.footprints is None else _with_footprints(rows, self.footprints)


@dataclass
class _Outage:
    segments: BoolArray  # isolated segments
    cut: BoolArray  # cut-off segments
    close: IntArray  # positions in model.valve_* of valves to close
    already: IntArray  # normally closed valves on the boundary
    pipe_rows: IntArray  # pipes affected
    pipe_state: IntArray  # 1 isolated, 2 cut off
    buildings: IntArray  # positions in services
    building_state: IntArray


def pipe_break(
    net: PipeNetwork,
    pipe_uid: str,
    *,
    failed_valves: Iterable[str] = (),
    connections: Connections = None,
    buildings: Connections = None,
) -> BreakResult:
    """Valves to close, pipes and buildings shut off by a break on ``pipe_uid``.

    Parameters
    ----------
    net : PipeNetwork
        The network (segments are computed once and cached on it).
    pipe_uid : str
        The broken pipe.
    failed_valves : iterable of str, optional
        Valves that will not close: the isolation grows to the next valves.
    connections : DataFrame, Series or mapping, optional
        The service connections: building uid -> serving pipe uid
        (``building_connections`` or ``service_connections`` output; a
        ``population`` or ``customers`` column is summed; the note in
        ``attrs["service_connections"]``, saying whether the connections were
        stored or computed, goes into the summary).
    buildings : DataFrame, Series or mapping, optional
        Deprecated name of ``connections`` (0.x; warns).

    Returns
    -------
    BreakResult

    Raises
    ------
    UsageError
        When the pipe or a failed valve is not in the network.

    Examples
    --------
    >>> from twin.network import building_connections
    >>> links = building_connections(city, net)
    >>> r = pipe_break(net, "water_pipes.JS000010", connections=links)
    >>> r.summary["buildings"] == len(r.buildings), r.summary.network
    (True, 'water')
    """
    model, tree = query_model(net)
    row = net.pipe_index(pipe_uid)
    failed, warnings = _failed(net, model, failed_valves)
    warnings = [*net.warnings, *model.warnings, *warnings]
    if not len(model.source_seg):
        warnings.append("no source on the network: cut-off pipes are not reported")
    connections = connections_argument(connections, buildings, function="pipe_break")
    services = prepared(net, connections)
    start = model.pipe_seg_idx[model.pipe_seg_ptr[row] : model.pipe_seg_ptr[row + 1]]
    if len(model.source_seg) and not model.supplied[start].all():
        warnings.append(f"pipe {pipe_uid} had no path to a source even before the break")
    outage = _outage(net, model, tree, start, failed, services)
    none = np.zeros(0, dtype=np.int64)
    base = _outage(net, model, tree, start, none, services) if len(failed) else outage
    footprints = connections if isinstance(connections, gpd.GeoDataFrame) else None
    result = _result(net, model, str(pipe_uid), outage, base, services, warnings, footprints)
    result.summary.failed_valves = [str(v) for v in model.valve_uid[failed]]
    if isinstance(connections, pd.DataFrame) and "service_connections" in connections.attrs:
        result.summary.service_connections = connections.attrs["service_connections"]
    return result


def _with_footprints(rows: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The affected buildings with the geometry the connections table carries."""
    shapes = buildings.geometry.reindex(rows.index)
    return gpd.GeoDataFrame(
        rows.drop(columns="geometry"), geometry=shapes.to_numpy(), crs=buildings.crs
    )


def _failed(
    net: PipeNetwork, model: SegmentModel, failed_valves: Iterable[str]
) -> tuple[IntArray, list[str]]:
    """Positions of the failed valves among the cutting valves, and notes on the others."""
    names = [failed_valves] if isinstance(failed_valves, str) else [str(v) for v in failed_valves]
    if not names:
        return np.empty(0, dtype=np.int64), []
    lookup = net.cache.get("valve_rows")
    if lookup is None:
        lookup = net.cache["valve_rows"] = index_lookup(net.valves.index)
    unknown = [v for v in names if v not in lookup]
    if unknown:
        raise UsageError(f"valve(s) not in the {net.network} network's valves: {few(unknown)}")
    cut_position = np.full(len(net.valves), -1, dtype=np.int64)
    cut_position[model.valve_row] = np.arange(len(model.valve_row))
    notes = []
    positions = np.array([cut_position[lookup[v]] for v in names], dtype=np.int64)
    for name, pos in zip(names, positions.tolist(), strict=True):
        row = lookup[name]
        if not net.valves["on_network"].iat[row]:
            notes.append(f"failed valve {name} is off the network: ignored")
        elif net.valves["status"].iat[row] == "inoperable":
            notes.append(f"failed valve {name} is already inoperable: no change")
        elif pos >= 0 and model.valve_closed[pos]:
            notes.append(f"failed valve {name} is normally closed: it stays closed")
    keep = positions[positions >= 0]
    return keep[~model.valve_closed[keep]], notes


def _outage(
    net: PipeNetwork,
    model: SegmentModel,
    tree: SegmentTree,
    start: IntArray,
    failed: IntArray,
    services: Services | None,
) -> _Outage:
    inside = _grow(model, start, failed)
    segs = np.flatnonzero(inside)
    if len(segs) == 1:
        cut_segs = _tree_cut(tree, int(segs[0]))
    else:
        cut_segs = np.flatnonzero(_unsupplied(model, inside) & model.supplied)
    cut = np.zeros(model.n_seg, dtype=bool)
    cut[cut_segs] = True
    near = np.unique(
        model.seg_valve_idx[ranges(model.seg_valve_ptr[segs], model.seg_valve_ptr[segs + 1])]
    )
    near = near[inside[model.valve_a[near]] ^ inside[model.valve_b[near]]]
    closed = model.valve_closed[near]
    rows, states = _affected_pipes(net, model, segs, cut_segs)
    if services is None:
        found, bstate = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    else:
        found = buildings_of(services, rows)
        bstate = np.repeat(states, services.ptr[rows + 1] - services.ptr[rows])
    return _Outage(
        segments=inside,
        cut=cut,
        close=near[~closed],
        already=near[closed],
        pipe_rows=rows,
        pipe_state=states,
        buildings=found,
        building_state=bstate,
    )


def _grow(model: SegmentModel, start: IntArray, failed: IntArray) -> BoolArray:
    """The isolated segments: ``start``, grown through failed valves on the boundary."""
    inside = np.zeros(model.n_seg, dtype=bool)
    inside[start] = True
    fa, fb = model.valve_a[failed], model.valve_b[failed]
    while True:
        grow = inside[fa] ^ inside[fb]
        if not grow.any():
            return inside
        inside[fa[grow]] = True
        inside[fb[grow]] = True


def _affected_pipes(
    net: PipeNetwork, model: SegmentModel, isolated: IntArray, cut: IntArray
) -> tuple[IntArray, IntArray]:
    """Rows of the pipes with a piece in ``isolated`` (state 1) or else in ``cut`` (state 2)."""
    segs = np.concatenate([isolated, cut])
    state = np.concatenate([np.ones(len(isolated)), np.full(len(cut), 2)]).astype(np.int64)
    take = ranges(model.seg_piece_ptr[segs], model.seg_piece_ptr[segs + 1])
    pieces = model.seg_piece_idx[take]
    piece_state = np.repeat(state, model.seg_piece_ptr[segs + 1] - model.seg_piece_ptr[segs])
    rows, inverse = np.unique(net.piece_pipe[pieces], return_inverse=True)
    states = np.full(len(rows), 3, dtype=np.int64)
    np.minimum.at(states, inverse.ravel(), piece_state)  # isolated (1) wins over cut off
    return rows, states


def _valve_rows(net: PipeNetwork, model: SegmentModel, close: IntArray, already: IntArray) -> Any:
    table = net.cache.get("valve_table")
    if table is None:
        table = net.cache["valve_table"] = net.valves[["status", "pipe", "position_m", "geometry"]]
    frame = table.iloc[model.valve_row[np.concatenate([close, already])]]
    frame.insert(0, "role", ["close"] * len(close) + ["already closed"] * len(already))
    frame.index.name = "uid"
    return frame


_REASONS = pd.Index(["isolated", "cut_off"])


def _building_rows(
    net: PipeNetwork, services: Services | None, found: IntArray, state: IntArray
) -> gpd.GeoDataFrame:
    """Buildings at ``found`` (positions in ``services``): ``pipe``, ``reason``, ``population``."""
    if services is None:
        found = state = np.empty(0, dtype=np.int64)
    uids = pd.Index([], name="uid") if services is None else services.uid.take(found)
    rows = pd.DataFrame(
        {
            "pipe": net.pipes.index.take(services.pipe_row[found] if services else found).array,
            "reason": pd.Categorical.from_codes(state - 1, categories=_REASONS),
        },
        index=uids.rename("uid"),
    )
    if services is not None and services.population is not None:
        rows["population"] = services.population[found]
    return as_geoframe(rows, net.crs)


def _result(
    net: PipeNetwork,
    model: SegmentModel,
    pipe_uid: str,
    outage: _Outage,
    base: _Outage,
    services: Services | None,
    warnings: list[str],
    footprints: gpd.GeoDataFrame | None = None,
) -> BreakResult:
    valves = _valve_rows(net, model, outage.close, outage.already)
    extra = np.setdiff1d(outage.close, base.close)
    extra_valves = _valve_rows(net, model, extra, np.empty(0, dtype=np.int64))
    affected = _Affected(net, services, outage.buildings, outage.building_state, footprints)
    new = (
        ~np.isin(outage.buildings, base.buildings)
        if base is not outage
        else np.zeros(len(outage.buildings), dtype=bool)
    )
    isolated_rows = outage.pipe_rows[outage.pipe_state == 1]
    cut_rows = outage.pipe_rows[outage.pipe_state == 2]
    isolated, cut_off = net.pipes.iloc[isolated_rows], net.pipes.iloc[cut_rows]
    length = net.pipe_length_m
    summary = BreakSummary(
        network=net.network,
        pipe=pipe_uid,
        segments=[int(s) for s in np.flatnonzero(outage.segments)],
        valves_to_close=len(outage.close),
        valves_already_closed=len(outage.already),
        isolated_pipes=len(isolated),
        isolated_length_m=round(float(length[isolated_rows].sum()), 2),
        cut_off_pipes=len(cut_off),
        cut_off_length_m=round(float(length[cut_rows].sum()), 2),
        buildings=len(outage.buildings) if services is not None else None,
        extra_valves=len(extra_valves),
        extra_buildings=int(new.sum()) if services is not None else None,
    )
    if services is not None and services.population is not None:
        summary.population = float(pd.Series(services.population[outage.buildings]).sum())
    summary.warnings = warnings
    return BreakResult(
        pipe=pipe_uid,
        valves_to_close=valves,
        isolated_pipes=isolated,
        cut_off_pipes=cut_off,
        extra_valves=extra_valves,
        summary=summary,
        warnings=warnings,
        _affected=affected,
        _beyond=new,
    )
