"""The burst-to-road cascade: a pipe break closes the roads over the isolated pipes.

While the works last, the road edges over the pipes the break isolates are
closed: every edge with at least ``min_overlap_m`` of its length within
``distance_m`` of an isolated pipe (the excavation and the site around it). The impact
report joins both sides: valves to close, pipes isolated, buildings without
service (from :func:`twin.network.pipe_break`), roads closed, and the
buildings whose emergency access is cut or delayed, and by how much (from
:func:`twin.network.road_closure`).

Examples
--------
>>> from twin.network import road_access, select_facilities
>>> fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
>>> access = road_access(city.road_network(), city.layer("buildings"), fire)
>>> broken = city.pipe_break("water_pipes.JS000010")
>>> report = cascade(broken, access, distance_m=15, max_time_s=300)
>>> report.to_dict()["pipe"]
'water_pipes.JS000010'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import geopandas as gpd
import numpy as np
import shapely

from twin.errors import UsageError
from twin.network.access import RoadAccess
from twin.network.closures import ClosureResult, closure_result
from twin.network.isolation import BreakResult
from twin.network.routing import base_answer, nearest_facility
from twin.results import Result, Summary

__all__ = ["CascadeResult", "cascade", "roads_over"]


@dataclass(eq=False, repr=False)
class CascadeSummary(Summary):
    """The joined summary of a cascade (both sides, JSON-ready)."""

    pipe: str
    network: str
    valves_to_close: list[str]
    pipes_isolated: int
    isolated_length_m: float
    pipes_cut_off: int
    buildings_without_service: int | None
    distance_m: float
    min_overlap_m: float
    roads_closed: list[str]
    road_closure: dict[str, Any] | None
    access_affected: list[dict[str, Any]]
    warnings: list[str]


@dataclass(repr=False)
class CascadeResult(Result):
    """One impact report for a pipe break and the road closures it causes.

    Attributes
    ----------
    pipe_break : BreakResult
        Valves, isolated and cut-off pipes, buildings without service.
    closure : ClosureResult or None
        The closure of the roads over the isolated pipes (None when no road is that close).
    distance_m, min_overlap_m : float
        The works' reach from the isolated pipes, and how much of an edge must lie within it.

    Examples
    --------
    >>> c = city.cascade("water_pipes.JS000010", where="poi_type=消防站")
    >>> c.summary.pipe, isinstance(c.summary.roads_closed, list)
    ('water_pipes.JS000010', True)
    """

    _tables: ClassVar[tuple[str, ...]] = (
        "valves_to_close",
        "isolated_pipes",
        "closed_roads",
        "access_affected",
    )

    pipe_break: BreakResult
    closure: ClosureResult | None
    distance_m: float
    min_overlap_m: float = 0.0

    @property
    def valves_to_close(self) -> gpd.GeoDataFrame:
        return self.pipe_break.valves_to_close

    @property
    def isolated_pipes(self) -> gpd.GeoDataFrame:
        return self.pipe_break.isolated_pipes

    @property
    def closed_roads(self) -> gpd.GeoDataFrame | None:
        return None if self.closure is None else self.closure.closed

    @property
    def access_affected(self) -> gpd.GeoDataFrame | None:
        return None if self.closure is None else self.closure.affected()

    @property
    def summary(self) -> CascadeSummary:
        """Both sides in numbers (as :meth:`to_dict`)."""
        return CascadeSummary(**self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The joined summary, JSON-ready."""
        b = self.pipe_break.summary
        c = self.closure.summary if self.closure is not None else None
        return {
            "pipe": b["pipe"],
            "network": b["network"],
            "valves_to_close": [str(v) for v in self.pipe_break.valves_to_close.index],
            "pipes_isolated": int(b["isolated_pipes"]),
            "isolated_length_m": float(b["isolated_length_m"]),
            "pipes_cut_off": int(b["cut_off_pipes"]),
            "buildings_without_service": b["buildings"],
            "distance_m": self.distance_m,
            "min_overlap_m": self.min_overlap_m,
            "roads_closed": sorted(set(self.closure.closed["road"].astype(str)))
            if self.closure is not None
            else [],
            "road_closure": None if c is None else c.to_dict(),
            "access_affected": self._affected(),
            "warnings": list(self.pipe_break.warnings),
        }

    def _affected(self) -> list[dict[str, Any]]:
        """Buildings cut off (first, ``detour_s`` None), then delayed, longest detour first."""
        if self.closure is None:
            return []
        hit = self.closure.affected().sort_values("detour_s", ascending=False, kind="stable")
        return [
            {
                "building": str(uid),
                "lost": bool(lost),
                "detour_s": None if lost else float(detour),
            }
            for uid, lost, detour in zip(hit.index, hit["lost"], hit["detour_s"], strict=True)
        ]


def roads_over(
    access: RoadAccess, pipes: gpd.GeoDataFrame, distance_m: float, min_overlap_m: float = 0.0
) -> np.ndarray:
    """Mask of the road edges with at least ``min_overlap_m`` of their length within
    ``distance_m`` of ``pipes`` (0: every edge within reach)."""
    net = access.net
    mask = np.zeros(net.n_edges, dtype=bool)
    if pipes.empty:
        return mask
    if pipes.crs is not None and net.crs is not None and pipes.crs != net.crs:
        pipes = pipes.to_crs(net.crs)
    tree = net.cache.get("edge_tree")
    if tree is None:
        tree = net.cache["edge_tree"] = shapely.STRtree(net.edge_geometry)
    geoms = pipes.geometry.to_numpy()
    edges = np.unique(tree.query(geoms, predicate="dwithin", distance=distance_m)[1])
    if min_overlap_m > 0 and len(edges):
        works = shapely.union_all(shapely.buffer(geoms, distance_m))
        inside = shapely.length(shapely.intersection(net.edge_geometry[edges], works))
        edges = edges[inside >= min_overlap_m]
    mask[edges] = True
    return mask
    if pipes.crs is not None and net.crs is not None and pipes.crs != net.crs:
        pipes = pipes.to_crs(net.crs)
    tree = net.cache.get("edge_tree")
    if tree is None:
        tree = net.cache["edge_tree"] = shapely.STRtree(net.edge_geometry)
    _, edges = tree.query(pipes.geometry.to_numpy(), predicate="dwithin", distance=distance_m)
    mask[edges] = True
    return mask


def cascade(
    pipe_break: BreakResult,
    access: RoadAccess,
    *,
    distance_m: float = 10.0,
    min_overlap_m: float = 15.0,
    max_time_s: float | None = None,
) -> CascadeResult:
    """Close the roads within ``distance_m`` of the pipes a break isolates; report both sides.

    Parameters
    ----------
    pipe_break : BreakResult
        From :func:`twin.network.pipe_break`.
    access : RoadAccess
        The road network with buildings and facilities.
    distance_m : float, default 10
        The works reach this far from the isolated pipes.
    min_overlap_m : float, default 15
        An edge closes when at least this much of it lies within the works' reach: a
        street over the pipe, or crossing it (2 x ``distance_m`` inside), closes; a street
        merely passing the end of the excavation at a corner stays open. 0 closes every
        edge within reach.
    max_time_s : float, optional
        The emergency access limit (buildings pushed beyond it are counted).

    Returns
    -------
    CascadeResult

    Examples
    --------
    >>> from twin.network import road_access, select_facilities
    >>> fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
    >>> access = road_access(city.road_network(), city.layer("buildings"), fire)
    >>> from twin.network import cascade
    >>> c = cascade(city.pipe_break("water_pipes.JS000010"), access, distance_m=10)
    >>> c.to_dict()["network"]
    'water'
    """
    if distance_m < 0 or min_overlap_m < 0:
        raise UsageError(
            f"distance_m and min_overlap_m must be >= 0, not {distance_m}, {min_overlap_m}"
        )
    mask = roads_over(access, pipe_break.isolated_pipes, distance_m, min_overlap_m)
    if not mask.any():
        return CascadeResult(pipe_break, None, float(distance_m), float(min_overlap_m))
    before, fac_before = base_answer(access)
    after, fac_after = nearest_facility(access, mask)
    closure = closure_result(access, mask, before, fac_before, after, fac_after, max_time_s)
    return CascadeResult(pipe_break, closure, float(distance_m), float(min_overlap_m))
