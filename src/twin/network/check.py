"""``network check``: what in a pipe network would make an analysis wrong.

Issues found: dangling ends (a pipe end joined to nothing, sources excepted),
disconnected parts (every part but the largest, and any part without a
source), pipes shorter than the snapping tolerance, valves farther than the
tolerance from every pipe, sources not on the network.

Examples
--------
>>> report = check_network(pipe_network(city, "water"))  # doctest: +SKIP
>>> report.counts  # doctest: +SKIP
{'dangling_end': 12, 'disconnected_part': 1, 'short_pipe': 0, ...}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse.csgraph import connected_components

from twin.network.pipes import PipeNetwork

__all__ = ["ISSUES", "NetworkReport", "check_network"]

ISSUES = (
    "dangling_end",
    "disconnected_part",
    "short_pipe",
    "valve_off_network",
    "source_off_network",
    "no_source",
)


@dataclass
class NetworkReport:
    """The outcome of :func:`check_network`.

    Attributes
    ----------
    network : str
    stats : dict
        Pipes, nodes, valves, sources, parts and total length.
    issues : geopandas.GeoDataFrame
        One row per issue: ``issue`` (one of :data:`ISSUES`), ``layer``,
        ``uid``, ``detail``, ``distance_m``; geometry where it is.
    warnings : list of str
    """

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

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary: network, stats and issue counts."""
        return {"network": self.network, **self.stats, "issues": self.counts}


def check_network(net: PipeNetwork) -> NetworkReport:
    """Check the topology of ``net``.

    Parameters
    ----------
    net : PipeNetwork

    Returns
    -------
    NetworkReport

    Examples
    --------
    >>> report = check_network(net)  # doctest: +SKIP
    >>> report.issues.query("issue == 'short_pipe'").uid.tolist()  # doctest: +SKIP
    ['JS000017']
    """
    _, part = connected_components(net.graph(), directed=False)
    rows: list[dict[str, Any]] = []
    rows += _dangling(net)
    rows += _parts(net, part)
    rows += _short(net)
    rows += _valves_off(net)
    rows += _sources_off(net)
    issues = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=["issue", "layer", "uid", "detail", "distance_m", "geometry"]),
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
    return NetworkReport(net.network, stats, issues, list(net.warnings))


def _dangling(net: PipeNetwork) -> list[dict[str, Any]]:
    ends = np.concatenate([net.piece_from, net.piece_to])
    degree = np.bincount(ends, minlength=net.n_nodes)
    sources = net.sources["node"].to_numpy()
    degree[sources[sources >= 0]] += 1
    lonely = np.flatnonzero(degree == 1)
    piece = np.concatenate([np.arange(net.n_pieces)] * 2)
    at = dict(zip(ends.tolist(), piece.tolist(), strict=True))
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
