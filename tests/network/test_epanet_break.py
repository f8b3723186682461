"""Pipe breaks on Net3 (wntr's copy) against an independent networkx answer.

The isolated part is WNTR's valve segment of the broken pipe; the cut-off part
is every pipe left with no path to a reservoir or tank once that segment is
shut, computed on WNTR's own graph (pumps included) with networkx.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import wntr

import twin
from tests.network.test_wntr_segments import CRS, valve_points
from twin.network import criticality, isolation_segments, pipe_break, pipe_network


def _wntr_segments(
    wn: wntr.network.WaterNetworkModel, layer: pd.DataFrame
) -> tuple[nx.MultiDiGraph, pd.Series, pd.Series]:
    pipes = set(wn.pipe_name_list)
    only_pipes = wn.to_graph()
    only_pipes.remove_edges_from(
        [(u, v, k) for u, v, k in only_pipes.edges(keys=True) if k not in pipes]
    )
    nodes, links, _ = wntr.metrics.topographic.valve_segments(only_pipes, layer)
    return only_pipes, nodes, links


def _expected_cut_off(
    wn: wntr.network.WaterNetworkModel,
    segs: tuple[nx.MultiDiGraph, pd.Series, pd.Series],
    pipe: str,
) -> set[str]:
    pipes = set(wn.pipe_name_list)
    graph = wn.to_graph()
    only_pipes, nodes, links = segs
    seg = links[pipe]
    shut = {("link", k) for k, s in links.items() if s == seg}
    shut |= {("node", n) for n, s in nodes.items() if s == seg and only_pipes.degree(n) > 0}
    bipartite = nx.Graph()
    for u, v, k in graph.edges(keys=True):
        bipartite.add_edge(("node", u), ("link", k))
        bipartite.add_edge(("node", v), ("link", k))
    bipartite.remove_nodes_from(shut)
    sources = {("node", n) for n in wn.reservoir_name_list + wn.tank_name_list}
    cut = set()
    for part in nx.connected_components(bipartite):
        if not part & sources:
            cut |= {name for kind, name in part if kind == "link" and name in pipes}
    return cut


def test_net3_breaks_match_networkx(tmp_path: Path, wntr_networks: Path) -> None:
    inp = wntr_networks / "Net3.inp"
    wn = wntr.network.WaterNetworkModel(str(inp))
    layer = wntr.network.generate_valve_layer(wn, "strategic", 1, seed=3)
    layer = layer[layer["link"].isin(set(wn.pipe_name_list))].reset_index(drop=True)
    city = twin.Twin.create(tmp_path / "net3.gpkg", crs=CRS)
    for name, kind in (("pipes", "pipe"), ("pumps", "pump"), ("sources", "source")):
        city.import_layer(inp, layer=name, kind=kind, src_crs=CRS)
    valve_points(city, wn, layer, tmp_path)
    net = pipe_network(city)
    assert (net.sources["node"] >= 0).all()  # reservoirs by id (reached by pumps), tanks
    assert not net.warnings
    segments = isolation_segments(net).of_pipe
    segs = _wntr_segments(wn, layer)
    ranking = criticality(net)
    rng = np.random.default_rng(5)
    some_cut = False
    for pipe in rng.choice(wn.pipe_name_list, 40, replace=False):
        result = pipe_break(net, f"pipes.{pipe}")
        ours = {u.split(".", 1)[1] for u in result.cut_off_pipes.index}
        assert ours == _expected_cut_off(wn, segs, pipe), pipe
        assert len(ours) == ranking.loc[segments[f"pipes.{pipe}"], "cut_off_pipes"]
        some_cut |= bool(ours)
    assert some_cut
