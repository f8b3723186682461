"""Road topology problems that make access analyses wrong.

Issues found:

- ``dangling_end``: a road end joined to nothing (a dead end; real cul-de-sacs
  are dead ends too, so read these as "check", not "wrong");
- ``near_miss``: a dangling end closer than ``near_miss_m`` to a road at its own
  level that it does not join (an undershoot or overshoot of the digitising);
- ``disconnected_part``: every weakly connected part but the largest (an island
  no trip can reach or leave);
- ``one_way_trap``: a node of the largest part that one-way streets make
  impossible to leave or to reach from the rest.

Examples
--------
>>> from twin.network import road_network
>>> report = check_roads(road_network(city))
>>> sorted(report.counts) == sorted(ROAD_ISSUES)
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
from twin.network.roads import RoadNetwork, road_levels
from twin.results import CheckSummary, Result

__all__ = ["ROAD_ISSUES", "RoadReport", "check_roads"]

ROAD_ISSUES = ("dangling_end", "near_miss", "disconnected_part", "one_way_trap")
_COLUMNS = ["issue", "layer", "uid", "detail", "distance_m", "geometry"]


@dataclass(repr=False)
class RoadReport(Result):
    """The outcome of :func:`check_roads` (same shape as the pipe network report).

    Attributes
    ----------
    stats : dict
        Roads, nodes, edges, parts, one-way roads and total length.
    issues : geopandas.GeoDataFrame
        One row per issue: ``issue``, ``layer`` ("roads"), ``uid``, ``detail``,
        ``distance_m``; geometry where it is.
    warnings : list of str

    Examples
    --------
    >>> report = check_roads(city.road_network())
    >>> report.summary.network, set(report.counts) == set(ROAD_ISSUES)
    ('roads', True)
    """

    _tables: ClassVar[tuple[str, ...]] = ("issues",)

    stats: dict[str, Any]
    issues: gpd.GeoDataFrame
    warnings: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        found = self.issues["issue"].value_counts()
        return {name: int(found.get(name, 0)) for name in ROAD_ISSUES}

    @property
    def summary(self) -> CheckSummary:
        """Stats and issue counts (``report.summary()``, the 0.1 form, returns the same)."""
        return CheckSummary.of("roads", self.stats, self.counts)


def check_roads(net: RoadNetwork, *, near_miss_m: float = settings.NEAR_MISS_M) -> RoadReport:
    """Check the topology of a road network.

    Parameters
    ----------
    net : RoadNetwork
    near_miss_m : float, default 2.0
        A dangling end this close to another road (same level) is a near miss.

    Returns
    -------
    RoadReport

    Examples
    --------
    >>> report = check_roads(city.road_network(), near_miss_m=2.0)
    >>> report.stats["roads"] == len(city.layer("roads"))
    True
    """
    degree = np.bincount(np.concatenate([net.edge_from, net.edge_to]), minlength=net.n_nodes)
    dangling = np.flatnonzero(degree == 1)
    rows = _dangling(net, dangling) + _near_misses(net, dangling, near_miss_m)
    part = net.components()
    rows += _parts(net, part)
    rows += _traps(net, part)
    issues = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=_COLUMNS), geometry="geometry", crs=net.crs
    )
    stats = {
        "roads": len(net.roads),
        "nodes": net.n_nodes,
        "edges": net.n_edges,
        "parts": int(part.max()) + 1 if len(part) else 0,
        "one_way_edges": int((net.edge_forward != net.edge_backward).sum()),
        "length_m": round(float(net.edge_length_m.sum()), 2),
    }
    return RoadReport(stats, issues, list(net.warnings))


def _edge_at(net: RoadNetwork, nodes: np.ndarray) -> np.ndarray:
    """An edge ending at each of ``nodes``."""
    ends = np.concatenate([net.edge_from, net.edge_to])
    edges = np.concatenate([np.arange(net.n_edges)] * 2)
    order = np.argsort(ends, kind="stable")
    return edges[order][np.searchsorted(ends[order], nodes)]


def _dangling(net: RoadNetwork, nodes: np.ndarray) -> list[dict[str, Any]]:
    edges = _edge_at(net, nodes)
    points = shapely.points(net.node_xy[nodes])
    return [
        {
            "issue": "dangling_end",
            "layer": "roads",
            "uid": str(net.edge_uid[e]),
            "detail": "road end joined to nothing",
            "distance_m": None,
            "geometry": p,
        }
        for e, p in zip(edges, points, strict=True)
    ]


def _near_misses(net: RoadNetwork, nodes: np.ndarray, near_m: float) -> list[dict[str, Any]]:
    if not len(nodes) or near_m <= 0:
        return []
    own = _edge_at(net, nodes)
    points = shapely.points(net.node_xy[nodes])
    tree = shapely.STRtree(net.edge_geometry)
    idx, edges = tree.query(points, predicate="dwithin", distance=near_m)
    level = road_levels(net.roads)[net.edge_road]
    keep = (net.edge_road[edges] != net.edge_road[own[idx]]) & (level[edges] == level[own[idx]])
    touching = (net.edge_from[edges] == nodes[idx]) | (net.edge_to[edges] == nodes[idx])
    idx, edges = idx[keep & ~touching], edges[keep & ~touching]
    gap = shapely.distance(points[idx], net.edge_geometry[edges])
    seen: set[int] = set()
    rows = []
    for i, e, d in sorted(zip(idx, edges, gap, strict=True), key=lambda t: t[2]):
        if i in seen:
            continue
        seen.add(int(i))
        rows.append(
            {
                "issue": "near_miss",
                "layer": "roads",
                "uid": str(net.edge_uid[own[i]]),
                "detail": f"ends {d:.2f} m from {net.edge_uid[e]} without joining it",
                "distance_m": float(d),
                "geometry": points[i],
            }
        )
    return rows


def _parts(net: RoadNetwork, part: np.ndarray) -> list[dict[str, Any]]:
    edge_part = part[net.edge_from]
    sizes = np.bincount(edge_part, minlength=int(part.max()) + 1 if len(part) else 0)
    if len(sizes) < 2:
        return []
    main = int(np.argmax(sizes))
    rows = []
    for p in np.flatnonzero(sizes):
        if p == main:
            continue
        edges = np.flatnonzero(edge_part == p)
        uids = sorted(set(net.edge_uid[edges].astype(str)))
        rows.append(
            {
                "issue": "disconnected_part",
                "layer": "roads",
                "uid": uids[0],
                "detail": f"{len(edges)} edge(s) apart from the main network: "
                f"{', '.join(uids[:5])}",
                "distance_m": None,
                "geometry": shapely.union_all(net.edge_geometry[edges]),
            }
        )
    return rows


def _traps(net: RoadNetwork, part: np.ndarray) -> list[dict[str, Any]]:
    edge, tail, head = net.arcs()
    n = net.n_nodes
    adj = sparse.coo_matrix((np.ones(len(edge)), (tail, head)), shape=(n, n)).tocsr()
    _, strong = connected_components(adj, directed=True, connection="strong")
    main_part = np.argmax(np.bincount(part))
    in_main = part == main_part
    main_strong = np.argmax(np.bincount(strong[in_main]))
    trapped = np.flatnonzero(in_main & (strong != main_strong))
    edges = _edge_at(net, trapped)
    return [
        {
            "issue": "one_way_trap",
            "layer": "roads",
            "uid": str(net.edge_uid[e]),
            "detail": "one-way streets cut this point off from the rest in one direction",
            "distance_m": None,
            "geometry": shapely.Point(net.node_xy[v]),
        }
        for v, e in zip(trapped, edges, strict=True)
    ]
