"""``network check``: what in a pipe network would make an analysis wrong.

Issues found: dangling ends (a pipe end joined to nothing, sources excepted),
near misses (a dangling end within ``near_miss_m`` of another pipe it is not
joined to: an undershoot, or a T-junction drawn without a shared vertex),
disconnected parts (every part but the largest, and any part without a
source), pipes shorter than the snapping tolerance, valves farther than the
tolerance from every pipe, sources not on the network.

Examples
--------
>>> from twin.network import pipe_network
>>> report = check_network(pipe_network(city, "water", pipes="water_pipes"))
>>> sorted(report.counts) == sorted(ISSUES)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from twin import settings
from twin.errors import UsageError
from twin.network.pipes import PipeNetwork
from twin.results import CheckSummary, Result

__all__ = ["ISSUES", "NetworkReport", "check_network"]

ISSUES = (
    "dangling_end",
    "near_miss",
    "disconnected_part",
    "short_pipe",
    "valve_off_network",
    "source_off_network",
    "no_source",
)

COLUMNS = ("issue", "layer", "uid", "other_uid", "detail", "distance_m")


@dataclass(repr=False)
class NetworkReport(Result):
    """The outcome of :func:`check_network`.

    Attributes
    ----------
    network : str
    stats : dict
        Pipes, nodes, valves, sources, parts and total length.
    issues : geopandas.GeoDataFrame
        One row per issue: ``issue`` (one of :data:`ISSUES`), ``layer``,
        ``uid``, ``other_uid`` (the pipe a near miss nearly meets), ``detail``,
        ``distance_m`` (the gap of a near miss); geometry where it is (the gap
        of a near miss as a line).
    warnings : list of str

    Examples
    --------
    >>> report = check_network(net)
    >>> report.summary.network, set(report.counts) == set(ISSUES)
    ('water', True)
    """

    _tables: ClassVar[tuple[str, ...]] = ("issues",)

    network: str
    stats: dict[str, Any]
    issues: gpd.GeoDataFrame
    warnings: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Number of issues of each kind (every kind listed, zeros included)."""
        found = self.issues["issue"].value_counts()
        return {name: int(found.get(name, 0)) for name in ISSUES}

    @property
    def ok(self) -> bool:
        return self.issues.empty

    @property
    def summary(self) -> CheckSummary:
        """A JSON-ready summary: network, stats and issue counts.

        Calling it, ``report.summary()``, the 0.1 form, returns the same summary.
        """
        return CheckSummary.of(self.network, self.stats, self.counts)


def check_network(net: PipeNetwork, *, near_miss_m: float = settings.NEAR_MISS_M) -> NetworkReport:
    """Check the topology of ``net``.

    Parameters
    ----------
    net : PipeNetwork
    near_miss_m : float, default 2.0
        A dangling end this close to a pipe it is not joined to is a near miss.

    Returns
    -------
    NetworkReport

    Examples
    --------
    >>> report = check_network(net, near_miss_m=2.0)
    >>> report.summary()["pipes"] == len(net.pipes)
    True
    """
    if not near_miss_m >= 0:
        raise UsageError(f"near_miss_m must be a distance >= 0 in metres, not {near_miss_m}")
    _, part = connected_components(net.graph(), directed=False)
    rows: list[dict[str, Any]] = []
    rows += _dangling(net)
    rows += _near_misses(net, near_miss_m)
    rows += _parts(net, part)
    rows += _short(net)
    rows += _valves_off(net)
    rows += _sources_off(net)
    issues = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=[*COLUMNS, "geometry"]),
        geometry="geometry",
        crs=net.crs,
    )
    stats = {
        "pipes": len(net.pipes),
        "nodes": net.n_nodes,
        "valves": len(net.valves),
        "sources": len(net.sources),
        "parts": int(part.max()) + 1 if len(part) else 0,
        "length_m": round(float(net.pipe_length_m.sum()), 2),
    }
    warnings = list(net.warnings)
    operable = net.valves["on_network"].to_numpy(dtype=bool) & (
        net.valves["status"].to_numpy(dtype=str) == "open"
    )
    if not operable.any():
        warnings.append(
            f"the {net.network} network has no operable valve on it: the whole network is one "
            "isolation segment"
        )
    return NetworkReport(net.network, stats, issues, warnings)


def _dangling(net: PipeNetwork) -> list[dict[str, Any]]:
    lonely, at = _lonely_nodes(net)
    return [
        {
            "issue": "dangling_end",
            "layer": "pipes",
            "uid": str(net.piece_link[at[k]]),
            "detail": f"node {net.node_ids[k]} joins nothing else",
            "distance_m": None,
            "geometry": shapely.Point(net.node_xy[k]),
        }
        for k in lonely.tolist()
    ]


def _lonely_nodes(net: PipeNetwork) -> tuple[np.ndarray, dict[int, int]]:
    """Dangling nodes (one piece, no source) and, for every node, one piece ending there."""
    ends = np.concatenate([net.piece_from, net.piece_to])
    degree = np.bincount(ends, minlength=net.n_nodes)
    sources = net.sources["node"].to_numpy()
    degree[sources[sources >= 0]] += 1
    piece = np.concatenate([np.arange(net.n_pieces)] * 2)
    return np.flatnonzero(degree == 1), dict(zip(ends.tolist(), piece.tolist(), strict=True))


def _near_misses(net: PipeNetwork, within: float) -> list[dict[str, Any]]:
    """Dangling ends within ``within`` of a pipe their own pipe is not joined to anywhere."""
    lonely, at = _lonely_nodes(net)
    own = net.piece_pipe[[at[k] for k in lonely.tolist()]]
    lonely, own = lonely[own >= 0], own[own >= 0]  # pump and valve links: not drawn pipes
    if not len(lonely):
        return []
    points = shapely.points(net.node_xy[lonely])
    lines = net.pipes.geometry.to_numpy()
    near, pipe = shapely.STRtree(lines).query(points, predicate="dwithin", distance=within)
    joined = _joined(net)
    keep = np.asarray(joined[own[near], pipe]).ravel() == 0  # itself, or a pipe it meets
    near, pipe = near[keep], pipe[keep]
    gap = shapely.distance(points[near], lines[pipe])
    order = np.lexsort((pipe, gap, near))  # per end: the nearest pipe first
    first = np.ones(len(order), dtype=bool)
    first[1:] = near[order][1:] != near[order][:-1]
    rows = []
    for i in order[first].tolist():
        end, other = int(near[i]), int(pipe[i])
        uid, other_uid = net.pipes.index[own[end]], net.pipes.index[other]
        rows.append(
            {
                "issue": "near_miss",
                "layer": "pipes",
                "uid": str(uid),
                "other_uid": str(other_uid),
                "detail": f"end {net.node_ids[lonely[end]]} of {uid} is {gap[i]:.2f} m from "
                f"{other_uid}, not joined to it",
                "distance_m": float(gap[i]),
                "geometry": shapely.shortest_line(points[end], lines[other]),
            }
        )
    return rows


def _joined(net: PipeNetwork) -> sparse.csr_matrix:
    """Pipes x pipes: non-zero where two pipes share a node (a pipe shares its own)."""
    on = net.piece_pipe >= 0
    rows = np.tile(net.piece_pipe[on], 2)
    cols = np.concatenate([net.piece_from[on], net.piece_to[on]])
    shape = (len(net.pipes), net.n_nodes)
    incidence = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    return (incidence @ incidence.T).tocsr()


def _parts(net: PipeNetwork, part: np.ndarray) -> list[dict[str, Any]]:
    piece_part = part[net.piece_from]
    sizes = np.bincount(piece_part, minlength=int(part.max()) + 1)
    largest = int(np.argmax(sizes))
    sources = net.sources["node"].to_numpy()
    fed = np.zeros(len(sizes), dtype=bool)
    fed[part[sources[sources >= 0]]] = True
    rows = []
    if not fed.any():
        rows.append(
            {
                "issue": "no_source",
                "layer": "sources",
                "uid": None,
                "detail": f"no source on the {net.network} network",
                "distance_m": None,
                "geometry": None,
            }
        )
    lines = net.pipes.geometry.to_numpy()
    for k in np.flatnonzero((sizes > 0) & ((np.arange(len(sizes)) != largest) | ~fed)).tolist():
        pipes = np.unique(net.piece_pipe[(piece_part == k) & (net.piece_pipe >= 0)])
        first = str(net.pipes.index[pipes[0]]) if len(pipes) else None
        what = "the largest part" if k == largest else "a part apart from the largest"
        rows.append(
            {
                "issue": "disconnected_part",
                "layer": "pipes",
                "uid": first,
                "detail": f"{what}: {len(pipes)} pipe(s)" + ("" if fed[k] else ", no source"),
                "distance_m": None,
                "geometry": shapely.multilinestrings(lines[pipes]) if len(pipes) else None,
            }
        )
    return rows


def _short(net: PipeNetwork) -> list[dict[str, Any]]:
    lines = net.pipes.geometry.to_numpy()
    length = shapely.length(lines)
    short = np.flatnonzero(length < net.snap_tolerance_m)
    return [
        {
            "issue": "short_pipe",
            "layer": "pipes",
            "uid": str(net.pipes.index[i]),
            "detail": f"{length[i]:.3f} m long, under the {net.snap_tolerance_m} m tolerance",
            "distance_m": float(length[i]),
            "geometry": lines[i],
        }
        for i in short.tolist()
    ]


def _valves_off(net: PipeNetwork) -> list[dict[str, Any]]:
    off = net.valves[~net.valves["on_network"].to_numpy(dtype=bool)]
    return [
        {
            "issue": "valve_off_network",
            "layer": "valves",
            "uid": str(uid),
            "detail": f"{row.distance_m:.2f} m from the nearest {net.network} pipe",
            "distance_m": float(row.distance_m),
            "geometry": row.geometry,
        }
        for uid, row in zip(off.index, off.itertuples(), strict=True)
    ]


def _sources_off(net: PipeNetwork) -> list[dict[str, Any]]:
    off = net.sources[net.sources["node"].to_numpy() < 0]
    return [
        {
            "issue": "source_off_network",
            "layer": "sources",
            "uid": str(uid),
            "detail": f"{row.distance_m:.2f} m from the nearest {net.network} pipe end",
            "distance_m": float(row.distance_m),
            "geometry": row.geometry,
        }
        for uid, row in zip(off.index, off.itertuples(), strict=True)
    ]
