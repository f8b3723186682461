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
sides. Criticality runs this for every segment at once with one depth-first
search (articulation points of the segment graph, rooted at the sources).

Examples
--------
>>> net = pipe_network(twin.Twin.open("city.gpkg"))  # doctest: +SKIP
>>> segs = isolation_segments(net)  # doctest: +SKIP
>>> result = pipe_break(net, "JS000123", failed_valves=["JSF000045"])  # doctest: +SKIP
>>> result.summary["valves_to_close"]  # doctest: +SKIP
4
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
    FloatArray,
    IntArray,
    PipeNetwork,
    _few,
    _index_lookup,
)

__all__ = ["BreakResult", "Segments", "criticality", "isolation_segments", "pipe_break"]

log = logging.getLogger(__name__)

Buildings = pd.DataFrame | pd.Series | Mapping[Any, Any] | None


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
    """

    of_pipe: pd.Series
    of_node: pd.Series
    table: gpd.GeoDataFrame
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Model:
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


def _model(net: PipeNetwork) -> _Model:
    cached = net.cache.get("model")
    if cached is None:
        cached = net.cache["model"] = _build_model(net)
    return cached


def _build_model(net: PipeNetwork) -> _Model:
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
    model = _Model(
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


def _unsupplied(model: _Model, removed: BoolArray) -> BoolArray:
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
    >>> segs = isolation_segments(net)  # doctest: +SKIP
    >>> segs.table[["n_pipes", "length_m", "valves"]].head(1)  # doctest: +SKIP
       n_pipes  length_m             valves
    0        3     412.5  [JSF000001, JSF000007]
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


def _boundary(model: _Model, which: BoolArray) -> list[list[str]]:
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


# --------------------------------------------------------------------------- services


@dataclass
class _Services:
    """Buildings grouped by the pipe that serves them (CSR over pipe rows)."""

    uid: pd.Index  # building uids, sorted by pipe row
    pipe_row: IntArray
    ptr: IntArray  # buildings of pipe row r: uid[ptr[r]:ptr[r + 1]]
    population: FloatArray | None
    unknown: int  # buildings whose pipe is not in the network


def _services(net: PipeNetwork, buildings: Buildings) -> _Services | None:
    if buildings is None:
        return None
    cached = net.cache.get("services")
    if cached is not None and cached[0] is buildings:
        return cached[1]
    if isinstance(buildings, pd.DataFrame):
        pipe = buildings["pipe"]
    elif isinstance(buildings, pd.Series):
        pipe = buildings
    else:
        pipe = pd.Series(dict(buildings))
    row = net.pipes.index.get_indexer(pipe.to_numpy())
    population = None
    if isinstance(buildings, pd.DataFrame):
        for name in ("population", "customers"):
            if name in buildings.columns:
                population = buildings[name].to_numpy(dtype=float)
                break
    known = row >= 0
    order = np.flatnonzero(known)[np.argsort(row[known], kind="stable")]
    prepared = _Services(
        uid=pipe.index.take(order),
        pipe_row=row[order],
        ptr=np.searchsorted(row[order], np.arange(len(net.pipes) + 1)),
        population=None if population is None else np.nan_to_num(population[order]),
        unknown=int((~known).sum()),
    )
    net.cache["services"] = (buildings, prepared)
    return prepared


def _buildings_of(services: _Services, pipe_rows: IntArray) -> IntArray:
    """Positions (in ``services``) of the buildings served by ``pipe_rows``."""
    start, stop = services.ptr[pipe_rows], services.ptr[pipe_rows + 1]
    counts = stop - start
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(start - np.cumsum(counts) + counts, counts)
    return (np.arange(total) + offsets).astype(np.int64)


# --------------------------------------------------------------------------- pipe break


@dataclass
class BreakResult:
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
    buildings : pandas.DataFrame
        Buildings losing service: ``pipe`` and ``reason`` (isolated / cut_off).
    extra_valves : geopandas.GeoDataFrame
        With failed valves: valves to close beyond the no-failure answer.
    extra_buildings : pandas.DataFrame
        With failed valves: buildings affected beyond the no-failure answer.
    summary : dict
        Counts, lengths and population, for reports and ``--json``.
    warnings : list of str
    """

    pipe: str
    valves_to_close: gpd.GeoDataFrame
    isolated_pipes: gpd.GeoDataFrame
    cut_off_pipes: gpd.GeoDataFrame
    buildings: pd.DataFrame
    extra_valves: gpd.GeoDataFrame
    extra_buildings: pd.DataFrame
    summary: dict[str, Any]
    warnings: list[str]


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
    buildings: Buildings = None,
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
    buildings : DataFrame, Series or mapping, optional
        Building uid -> serving pipe uid (``service_connections`` output; a
        ``population`` or ``customers`` column is summed).

    Returns
    -------
    BreakResult

    Raises
    ------
    UsageError
        When the pipe or a failed valve is not in the network.

    Examples
    --------
    >>> links = service_connections(city, net)  # doctest: +SKIP
    >>> r = pipe_break(net, "JS000123", failed_valves=["JSF000045"], buildings=links)
    ...  # doctest: +SKIP
    >>> r.summary["extra_buildings"]  # doctest: +SKIP
    37
    """
    model = _model(net)
    row = net.pipe_index(pipe_uid)
    failed, warnings = _failed(net, model, failed_valves)
    warnings = [*net.warnings, *model.warnings, *warnings]
    if not len(model.source_seg):
        warnings.append("no source on the network: cut-off pipes are not reported")
    services = _services(net, buildings)
    start = np.unique(model.piece_seg[net.piece_pipe == row])
    if len(model.source_seg) and not model.supplied[start].all():
        warnings.append(f"pipe {pipe_uid} had no path to a source even before the break")
    outage = _outage(net, model, start, failed, services)
    base = (
        _outage(net, model, start, np.zeros(0, dtype=np.int64), services) if len(failed) else outage
    )
    result = _result(net, model, str(pipe_uid), outage, base, services, warnings)
    result.summary["failed_valves"] = [str(v) for v in model.valve_uid[failed]]
    return result


def _failed(
    net: PipeNetwork, model: _Model, failed_valves: Iterable[str]
) -> tuple[IntArray, list[str]]:
    """Positions of the failed valves among the cutting valves, and notes on the others."""
    names = [failed_valves] if isinstance(failed_valves, str) else [str(v) for v in failed_valves]
    if not names:
        return np.empty(0, dtype=np.int64), []
    lookup = net.cache.get("valve_rows")
    if lookup is None:
        lookup = net.cache["valve_rows"] = _index_lookup(net.valves.index)
    unknown = [v for v in names if v not in lookup]
    if unknown:
        raise UsageError(f"valve(s) not in the {net.network} network's valves: {_few(unknown)}")
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
    model: _Model,
    start: IntArray,
    failed: IntArray,
    services: _Services | None,
) -> _Outage:
    inside = np.zeros(model.n_seg, dtype=bool)
    inside[start] = True
    fa, fb = model.valve_a[failed], model.valve_b[failed]
    while True:  # a failed valve on the boundary lets the isolation through
        grow = inside[fa] ^ inside[fb]
        if not grow.any():
            break
        inside[fa[grow]] = True
        inside[fb[grow]] = True
    boundary = inside[model.valve_a] ^ inside[model.valve_b]
    cut = _unsupplied(model, inside) & model.supplied
    state = np.zeros(model.n_seg, dtype=np.int64)
    state[cut] = 2
    state[inside] = 1
    piece_state = state[model.piece_seg]
    hit = np.flatnonzero((piece_state > 0) & (net.piece_pipe >= 0))
    rows, inverse = np.unique(net.piece_pipe[hit], return_inverse=True)
    states = np.full(len(rows), 3, dtype=np.int64)
    np.minimum.at(states, inverse.ravel(), piece_state[hit])  # isolated (1) wins over cut off
    if services is None:
        found, bstate = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    else:
        found = _buildings_of(services, rows)
        bstate = np.repeat(states, services.ptr[rows + 1] - services.ptr[rows])
    return _Outage(
        segments=inside,
        cut=cut,
        close=np.flatnonzero(boundary & ~model.valve_closed),
        already=np.flatnonzero(boundary & model.valve_closed),
        pipe_rows=rows,
        pipe_state=states,
        buildings=found,
        building_state=bstate,
    )


def _valve_rows(net: PipeNetwork, model: _Model, close: IntArray, already: IntArray) -> Any:
    rows = model.valve_row[np.concatenate([close, already])]
    frame = net.valves.iloc[rows][["status", "pipe", "position_m", "geometry"]]
    frame.insert(0, "role", ["close"] * len(close) + ["already closed"] * len(already))
    frame.index.name = "uid"
    return frame


_REASONS = pd.Index(["isolated", "cut_off"])


def _building_rows(services: _Services | None, found: IntArray, state: IntArray) -> pd.DataFrame:
    if services is None:
        return pd.DataFrame(
            {"pipe_row": np.empty(0, dtype=np.int64), "reason": pd.Categorical([], _REASONS)},
            index=pd.Index([], name="uid"),
        )
    rows = pd.DataFrame(
        {
            "pipe_row": services.pipe_row[found],
            "reason": pd.Categorical.from_codes(state - 1, categories=_REASONS),
        },
        index=services.uid.take(found).rename("uid"),
    )
    if services.population is not None:
        rows["population"] = services.population[found]
    return rows


def _result(
    net: PipeNetwork,
    model: _Model,
    pipe_uid: str,
    outage: _Outage,
    base: _Outage,
    services: _Services | None,
    warnings: list[str],
) -> BreakResult:
    pipe_uids = net.pipes.index
    valves = _valve_rows(net, model, outage.close, outage.already)
    extra = np.setdiff1d(outage.close, base.close)
    extra_valves = _valve_rows(net, model, extra, np.empty(0, dtype=np.int64))
    affected = _building_rows(services, outage.buildings, outage.building_state)
    new = (
        ~np.isin(outage.buildings, base.buildings)
        if base is not outage
        else np.zeros(len(outage.buildings), dtype=bool)
    )
    extra_buildings = _building_rows(services, outage.buildings[new], outage.building_state[new])
    for frame in (affected, extra_buildings):
        taken = pipe_uids.take(frame.pop("pipe_row").to_numpy(dtype=np.int64))
        frame.insert(0, "pipe", taken.array)
    isolated_rows = outage.pipe_rows[outage.pipe_state == 1]
    cut_rows = outage.pipe_rows[outage.pipe_state == 2]
    isolated, cut_off = net.pipes.iloc[isolated_rows], net.pipes.iloc[cut_rows]
    length = net.pipe_length_m
    summary: dict[str, Any] = {
        "network": net.network,
        "pipe": pipe_uid,
        "segments": [int(s) for s in np.flatnonzero(outage.segments)],
        "valves_to_close": len(outage.close),
        "valves_already_closed": len(outage.already),
        "isolated_pipes": len(isolated),
        "isolated_length_m": round(float(length[isolated_rows].sum()), 2),
        "cut_off_pipes": len(cut_off),
        "cut_off_length_m": round(float(length[cut_rows].sum()), 2),
        "buildings": len(affected) if services is not None else None,
        "extra_valves": len(extra_valves),
        "extra_buildings": len(extra_buildings) if services is not None else None,
    }
    if services is not None and services.population is not None:
        summary["population"] = float(affected["population"].sum())
    summary["warnings"] = warnings
    return BreakResult(
        pipe=pipe_uid,
        valves_to_close=valves,
        isolated_pipes=isolated,
        cut_off_pipes=cut_off,
        buildings=affected,
        extra_valves=extra_valves,
        extra_buildings=extra_buildings,
        summary=summary,
        warnings=warnings,
    )


# --------------------------------------------------------------------------- criticality


def criticality(net: PipeNetwork, *, buildings: Buildings = None) -> gpd.GeoDataFrame:
    """What isolating each segment takes out, ranked: the segment and what it cuts off.

    One depth-first search over the segment graph rooted at the sources finds,
    for every segment, the segments that lose their last path to a source
    when it is isolated (the DFS subtrees it separates as an articulation
    point), so all segments cost about as much as one.

    Parameters
    ----------
    net : PipeNetwork
    buildings : DataFrame, Series or mapping, optional
        Building uid -> serving pipe uid, as for :func:`pipe_break`.

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed by segment: ``pipes``, ``length_m``, ``buildings`` (and
        ``population``) of the segment itself, the same with ``cut_off_``
        for the segments it cuts off, ``total_pipes``, ``total_length_m``,
        ``total_buildings`` and ``rank`` (1 = most critical, by buildings
        then length); geometry the segment's pipes. Export it as a layer.

    Examples
    --------
    >>> ranking = criticality(net, buildings=links)  # doctest: +SKIP
    >>> ranking.sort_values("rank").head(3).to_file("critical.gpkg")  # doctest: +SKIP
    """
    model = _model(net)
    segs = isolation_segments(net)
    weights = _segment_weights(net, model, _services(net, buildings))
    cut = _cut_off_weights(model, weights)
    table = gpd.GeoDataFrame(geometry=segs.table.geometry, crs=net.crs)
    names = list(weights.columns)
    for i, name in enumerate(names):
        table[name] = weights[name].to_numpy()
        table[f"cut_off_{name}"] = cut[:, i]
        table[f"total_{name}"] = weights[name].to_numpy() + cut[:, i]
    table["has_source"] = model.supplied
    order = np.lexsort((-table["total_length_m"].to_numpy(), -table["total_buildings"].to_numpy()))
    rank = np.empty(len(table), dtype=np.int64)
    rank[order] = np.arange(1, len(table) + 1)
    table["rank"] = rank
    return table


def _segment_weights(net: PipeNetwork, model: _Model, services: _Services | None) -> pd.DataFrame:
    k = model.n_seg
    is_pipe = net.piece_pipe >= 0
    columns = {
        "pipes": np.bincount(model.pipe_seg, minlength=k).astype(float),
        "length_m": np.bincount(
            model.piece_seg[is_pipe], weights=net.piece_length_m[is_pipe], minlength=k
        ),
        "buildings": np.zeros(k),
    }
    if services is not None:
        seg = model.pipe_seg[services.pipe_row]
        columns["buildings"] = np.bincount(seg, minlength=k).astype(float)
        if services.population is not None:
            columns["population"] = np.bincount(seg, weights=services.population, minlength=k)
    return pd.DataFrame(columns)


def _cut_off_weights(model: _Model, weights: pd.DataFrame) -> FloatArray:
    """For every segment, the summed weights of the segments its isolation cuts off."""
    k = model.n_seg
    root = k
    to_root = np.full(len(model.source_seg), root)
    src = np.concatenate([model.edge_a, model.edge_b, to_root, model.source_seg])
    dst = np.concatenate([model.edge_b, model.edge_a, model.source_seg, to_root])
    adj = sparse.csr_matrix((np.ones(len(src)), (src, dst)), shape=(k + 1, k + 1))
    adj.sum_duplicates()
    ptr, nbr = adj.indptr, adj.indices
    w = np.vstack([weights.to_numpy(), np.zeros((1, weights.shape[1]))])
    disc, low, subtree, cut = _dfs(ptr, nbr, root, w)
    del disc, low, subtree
    return cut[:k]


def _dfs(
    ptr: IntArray, nbr: IntArray, root: int, w: FloatArray
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Iterative DFS: discovery order, low-links, subtree weights and cut-off weights."""
    n = len(ptr) - 1
    disc = np.full(n, -1, dtype=np.int64)
    low = np.zeros(n, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    subtree = w.copy()
    cut = np.zeros_like(w)
    ptr_l, nbr_l = ptr.tolist(), nbr.tolist()
    disc_l, low_l, parent_l = disc.tolist(), low.tolist(), parent.tolist()
    nxt = ptr_l[:-1].copy()
    finished: list[int] = []
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
        finished.append(v)
        p = parent_l[v]
        if p >= 0 and low_l[v] < low_l[p]:
            low_l[p] = low_l[v]
    parent = np.array(parent_l, dtype=np.int64)
    disc, low = np.array(disc_l, dtype=np.int64), np.array(low_l, dtype=np.int64)
    for v in finished:  # children before parents: accumulate subtree weights
        p = parent_l[v]
        if p >= 0:
            subtree[p] += subtree[v]
    child = np.flatnonzero(parent >= 0)
    sep = child[low[child] >= disc[parent[child]]]
    np.add.at(cut, parent[sep], subtree[sep])
    return disc, low, subtree, cut
