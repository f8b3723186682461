"""Pipe breaks on the generated city's networks against an independent networkx answer.

The expected answer is built from the layers alone: nodes are the pipes' end
points, a valve protects the end of its nearest pipe that is nearer along it,
and the bipartite node-pipe graph loses the joint of every valve that closes.
The isolated part is the component of the broken pipe (a failed valve keeps
its joint, as an inoperable one does); the cut-off part is every pipe left
without a path to a source once the isolated part is shut, the normally
closed valves still closed. Every pipe of both networks is broken once.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from twin.network import (
    criticality,
    isolation_segments,
    network_from_frames,
    pipe_break,
    service_connections,
)
from twin.sample import generate_city


@pytest.fixture(scope="module")
def generated() -> dict[str, gpd.GeoDataFrame]:
    return generate_city(3000, seed=42)


def _frames(generated: dict[str, gpd.GeoDataFrame], network: str) -> dict[str, gpd.GeoDataFrame]:
    return {
        "pipes": generated[f"{network}_pipes"].set_index("pipe_id"),
        "valves": generated["valves"].query("network == @network").set_index("valve_id"),
        "sources": generated["sources"].query("network == @network").set_index("source_id"),
    }


class Expected:
    """The networkx answer for one network's layers."""

    def __init__(self, frames: dict[str, gpd.GeoDataFrame]) -> None:
        pipes, valves = frames["pipes"], frames["valves"]
        lines = pipes.geometry.to_numpy()
        ends = [np.round(shapely.get_coordinates(shapely.get_point(lines, i)), 3) for i in (0, -1)]
        self.graph = nx.Graph()
        for k, uid in enumerate(pipes.index):
            for end in ends:
                self.graph.add_edge(("link", uid), ("node", tuple(end[k])))
        (src, dst), _ = shapely.STRtree(lines).query_nearest(
            valves.geometry.to_numpy(), all_matches=False, return_distance=True
        )
        along = shapely.line_locate_point(lines[dst], valves.geometry.to_numpy()[src])
        near_start = along <= shapely.length(lines[dst]) / 2
        self.joint = {
            valves.index[v]: (("link", pipes.index[p]), ("node", tuple(ends[0 if s else 1][p])))
            for v, p, s in zip(src, dst, near_start, strict=True)
        }
        self.status = valves["status"].to_dict()
        xy = shapely.get_coordinates(frames["sources"].geometry.to_numpy())
        self.sources = {("node", tuple(np.round(p, 3))) for p in xy}
        self.segmented = self.without({"open", "closed"})  # every valve that can close, closed
        self.closed_only = self.without({"closed"})  # the normally closed ones only
        self.fed_before = set().union(
            *(nx.node_connected_component(self.closed_only, s) for s in self.sources)
        )

    def without(self, statuses: set[str], keep: frozenset[str] = frozenset()) -> nx.Graph:
        graph = self.graph.copy()
        graph.remove_edges_from(
            joint for v, joint in self.joint.items() if self.status[v] in statuses and v not in keep
        )
        return graph

    def answer(self, pipe: str, failed: frozenset[str] = frozenset()) -> dict[str, Any]:
        cut_graph = self.without({"open", "closed"}, keep=failed) if failed else self.segmented
        shut = nx.node_connected_component(cut_graph, ("link", pipe))
        rest = self.closed_only.subgraph(set(self.closed_only) - shut)
        cut = set()
        for part in nx.connected_components(rest):
            if not part & self.sources:
                cut |= {n for kind, n in part if kind == "link" and ("link", n) in self.fed_before}
        boundary = {
            v
            for v, (link, node) in self.joint.items()
            if self.status[v] != "inoperable"
            and v not in failed
            and (link in shut) != (node in shut)
        }
        return {
            "isolated": {name for kind, name in shut if kind == "link"},
            "cut_off": cut,
            "close": {v for v in boundary if self.status[v] == "open"},
            "already": {v for v in boundary if self.status[v] == "closed"},
        }


def _ours(result: Any) -> dict[str, set[str]]:
    roles = result.valves_to_close["role"]
    return {
        "isolated": set(result.isolated_pipes.index),
        "cut_off": set(result.cut_off_pipes.index),
        "close": set(roles.index[roles == "close"]),
        "already": set(roles.index[roles == "already closed"]),
    }


def _shut_more(frames: dict[str, gpd.GeoDataFrame], share: float) -> dict[str, gpd.GeoDataFrame]:
    """The same layers with ``share`` of the open valves closed (pockets fed one way only).

    The valves on the transmission mains (the last pipes, one per source) stay open.
    """
    if not share:
        return frames
    valves = frames["valves"].copy()
    mains = frames["pipes"].geometry.to_numpy()[-len(frames["sources"]) :]
    on_main = shapely.STRtree(mains).query(valves.geometry.to_numpy(), "dwithin", 1e-6)[0]
    status = valves["status"].to_numpy(dtype=object)
    may = np.setdiff1d(np.flatnonzero(status == "open"), on_main)
    status[np.random.default_rng(11).choice(may, int(share * len(may)), replace=False)] = "closed"
    valves["status"] = status
    return {**frames, "valves": valves}


@pytest.mark.parametrize(
    ("network", "closed", "min_cut"),
    [("water", 0, 0), ("gas", 0, 30), ("water", 0.6, 80), ("gas", 0.6, 120)],
)
def test_every_break_matches_networkx(
    generated: dict[str, gpd.GeoDataFrame], network: str, closed: float, min_cut: int
) -> None:
    frames = _shut_more(_frames(generated, network), closed)
    net = network_from_frames(frames["pipes"], frames["valves"], frames["sources"], network=network)
    expected = Expected(frames)
    links = service_connections(generated["buildings"].set_index("建筑编码"), net)
    served = links["pipe"]
    some_cut = 0
    for pipe in net.pipes.index:
        result = pipe_break(net, pipe, connections=links)
        want = expected.answer(pipe)
        assert _ours(result) == want, pipe
        hit = want["isolated"] | want["cut_off"]
        assert set(result.buildings.index) == set(served.index[served.isin(hit)]), pipe
        some_cut += bool(want["cut_off"])
    # water has two sources and no break cuts anything off; gas has one: a break next to
    # where its main joins the grid cuts the town off; closing more valves makes pockets
    assert some_cut >= min_cut, some_cut


@pytest.mark.parametrize(("network", "closed"), [("water", 0), ("gas", 0), ("water", 0.6)])
def test_failed_valves_match_networkx(
    generated: dict[str, gpd.GeoDataFrame], network: str, closed: float
) -> None:
    frames = _shut_more(_frames(generated, network), closed)
    net = network_from_frames(frames["pipes"], frames["valves"], frames["sources"], network=network)
    expected = Expected(frames)
    rng = np.random.default_rng(7)
    some_cut = 0
    for pipe in rng.choice(net.pipes.index.to_numpy(), 40, replace=False):
        base = expected.answer(pipe)
        failed = frozenset(
            rng.choice(sorted(base["close"]), min(2, len(base["close"])), replace=False)
        )
        result = pipe_break(net, pipe, failed_valves=sorted(failed))
        want = expected.answer(pipe, failed)
        assert _ours(result) == want, (pipe, failed)
        assert set(result.extra_valves.index) == want["close"] - base["close"]
        some_cut += bool(want["cut_off"])
    assert some_cut >= (20 if closed else 0), some_cut


def test_segment_sizes_match_networkx(generated: dict[str, gpd.GeoDataFrame]) -> None:
    frames = _frames(generated, "water")
    net = network_from_frames(frames["pipes"], frames["valves"], frames["sources"])
    table = isolation_segments(net).table
    expected = Expected(frames)
    parts = list(nx.connected_components(expected.without({"open", "closed"})))
    sizes = sorted(sum(kind == "link" for kind, _ in p) for p in parts)
    assert sorted(table["n_pipes"]) == sizes


def test_criticality_matches_every_break(generated: dict[str, gpd.GeoDataFrame]) -> None:
    frames = _frames(generated, "water")
    net = network_from_frames(frames["pipes"], frames["valves"], frames["sources"])
    links = service_connections(generated["buildings"].set_index("建筑编码"), net)
    ranking = criticality(net, connections=links)
    of_pipe = isolation_segments(net).of_pipe
    for pipe in of_pipe.index:
        result = pipe_break(net, pipe, connections=links)
        row = ranking.loc[of_pipe[pipe]]
        assert row["total_buildings"] == result.summary["buildings"], pipe
        assert row["cut_off_length_m"] == pytest.approx(
            result.summary["cut_off_length_m"], abs=0.01
        )
    assert pd.Series(ranking["rank"]).is_unique
