"""Gravity networks (drainage): upstream and downstream traces.

Flow runs from the higher invert to the lower: a pipe whose ``invert_up_m``
(invert at its first vertex) is below ``invert_down_m`` (at its last) flows
against its digitised direction. Without both inverts, a pipe flows in its
digitised direction. Equal inverts keep the digitised direction.

Examples
--------
>>> down = trace_downstream(net, pipe="water_pipes.JS000010")
>>> down.pipes.index[0]
'water_pipes.JS000010'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from twin.errors import UsageError
from twin.network.pipes import BoolArray, IntArray, PipeNetwork, piece_at
from twin.results import Result, Summary

__all__ = ["Trace", "TraceSummary", "flow_direction", "trace_downstream", "trace_upstream"]


@dataclass(eq=False, repr=False)
class TraceSummary(Summary):
    """A trace in numbers (also a dict, as it used to be).

    Examples
    --------
    >>> s = TraceSummary("drainage", "upstream", "drain_pipes.P1", pipes=3, length_m=120.5)
    >>> s.pipes, s["direction"], s.to_dict()["length_m"]
    (3, 'upstream', 120.5)
    """

    network: str
    direction: str
    start_pipe: str | None
    pipes: int = 0
    length_m: float = 0.0


@dataclass(repr=False)
class Trace(Result):
    """The pipes reached by a trace, with the result protocol.

    Attributes
    ----------
    pipes : geopandas.GeoDataFrame
        Pipes reached (the start pipe included), indexed by uid, with
        ``distance_m``: network distance from the start to where the pipe
        begins (along the flow for downstream, against it for upstream).
    summary : TraceSummary
        Network, direction, start, counts and total length (``to_dict()``).
    warnings : list of str

    Examples
    --------
    >>> t = trace_downstream(net, pipe="water_pipes.JS000010")
    >>> t.summary["direction"], "water_pipes.JS000010" in t.pipes.index
    ('downstream', True)
    >>> list(t.tables()), t.summary.to_dict()["pipes"] == len(t.pipes), len(repr(t)) < 200
    (['pipes'], True, True)
    """

    _tables: ClassVar[tuple[str, ...]] = ("pipes",)

    pipes: gpd.GeoDataFrame
    summary: TraceSummary
    warnings: list[str] = field(default_factory=list)


def flow_direction(net: PipeNetwork) -> BoolArray:
    """For every piece, True when water flows from ``piece_from`` to ``piece_to``.

    Examples
    --------
    >>> forward = flow_direction(net)
    >>> len(forward) == net.n_pieces
    True
    """
    forward = np.ones(net.n_pieces, dtype=bool)
    pipes = net.pipes
    if "invert_up_m" in pipes.columns and "invert_down_m" in pipes.columns:
        up = pipes["invert_up_m"].to_numpy(dtype=float)
        down = pipes["invert_down_m"].to_numpy(dtype=float)
        reverse = np.nan_to_num(up, nan=np.inf) < np.nan_to_num(down, nan=-np.inf)
        on_pipe = net.piece_pipe >= 0
        forward[on_pipe] = ~reverse[net.piece_pipe[on_pipe]]
    return forward


def trace_downstream(
    net: PipeNetwork,
    *,
    pipe: str | None = None,
    point: Any = None,
    max_distance_m: float = 50.0,
) -> Trace:
    """Every pipe downstream of a pipe or a point.

    Parameters
    ----------
    net : PipeNetwork
    pipe : str, optional
        Start pipe uid.
    point : shapely Point or (x, y), optional
        Start point (in the network's CRS), on the nearest pipe within
        ``max_distance_m``.
    max_distance_m : float, default 50

    Returns
    -------
    Trace

    Examples
    --------
    >>> t = trace_downstream(net, pipe="water_pipes.JS000010")
    >>> t.summary["pipes"] == len(t.pipes) >= 1
    True
    """
    return _trace(net, pipe, point, max_distance_m, downstream=True)


def trace_upstream(
    net: PipeNetwork,
    *,
    pipe: str | None = None,
    point: Any = None,
    max_distance_m: float = 50.0,
) -> Trace:
    """Every pipe upstream of a pipe or a point (see :func:`trace_downstream`).

    Examples
    --------
    >>> t = trace_upstream(net, pipe="water_pipes.JS000010")
    >>> t.summary["start_pipe"]
    'water_pipes.JS000010'
    """
    return _trace(net, pipe, point, max_distance_m, downstream=False)


def _start_pieces(net: PipeNetwork, pipe: str | None, point: Any, max_m: float) -> IntArray:
    if (pipe is None) == (point is None):
        raise UsageError("give either a pipe uid or a point to trace from")
    if pipe is not None:
        return np.flatnonzero(net.piece_pipe == net.pipe_index(pipe))
    geom = point if isinstance(point, shapely.Point) else shapely.Point(point)
    lines = net.pipes.geometry.to_numpy()
    (_, found), _dist = shapely.STRtree(lines).query_nearest(
        [geom], max_distance=max_m, all_matches=False, return_distance=True
    )
    if not len(found):
        raise UsageError(f"no {net.network} pipe within {max_m} m of the point {geom.wkt}")
    row = np.array([found[0]], dtype=np.int64)
    position = shapely.line_locate_point(lines[row], [geom])
    return piece_at(net, row, np.asarray(position, dtype=float))


def _trace(
    net: PipeNetwork, pipe: str | None, point: Any, max_m: float, *, downstream: bool
) -> Trace:
    start = _start_pieces(net, pipe, point, max_m)
    forward = flow_direction(net)
    up = np.where(forward, net.piece_from, net.piece_to)
    down = np.where(forward, net.piece_to, net.piece_from)
    tail, head = (up, down) if downstream else (down, up)
    n = net.n_nodes
    graph = _shortest_edges(tail, head, net.piece_length_m + 1e-9, n)
    dist = dijkstra(graph, directed=True, indices=np.unique(head[start]), min_only=True)
    reached = np.isfinite(dist[tail]) & (net.piece_pipe >= 0)
    begin = np.where(reached, dist[tail], np.inf)
    begin[start] = 0.0
    pieces = np.flatnonzero(np.isfinite(begin) & (net.piece_pipe >= 0))
    per_pipe = pd.Series(begin[pieces], index=net.piece_pipe[pieces]).groupby(level=0).min()
    result = net.pipes.iloc[per_pipe.index.to_numpy()].copy()
    result["distance_m"] = per_pipe.to_numpy()
    result = result.sort_values("distance_m", kind="stable")
    warnings = []
    if not {"invert_up_m", "invert_down_m"} <= set(net.pipes.columns):
        warnings.append("no invert elevations: flow follows the digitised direction")
    summary = TraceSummary(
        network=net.network,
        direction="downstream" if downstream else "upstream",
        start_pipe=str(net.piece_link[start[0]]) if len(start) else None,
        pipes=len(result),
        length_m=round(float(net.pipe_length_m[per_pipe.index.to_numpy()].sum()), 2),
    )
    return Trace(pipes=result, summary=summary, warnings=warnings)


def _shortest_edges(
    tail: IntArray, head: IntArray, weight: np.ndarray, n: int
) -> sparse.csr_matrix:
    """A CSR graph keeping the lightest of parallel edges (scipy would sum them)."""
    order = np.lexsort((weight, head, tail))
    key = tail[order] * n + head[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    keep = order[first]
    return sparse.csr_matrix((weight[keep], (tail[keep], head[keep])), shape=(n, n))
