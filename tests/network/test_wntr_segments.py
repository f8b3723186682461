"""Peer check: our isolation segments are exactly WNTR's ``valve_segments``.

The EPANET networks shipped inside wntr are imported with our importer; WNTR's
own valve layer (``generate_valve_layer``, strategic and random) becomes a
valve layer of points. A WNTR valve "on link L, protecting node N" is, in our
model, a point at node N's coordinates with ``pipe`` = L: it sits on pipe L at
its end N, and closing it cuts L from N (see :mod:`twin.network.pipes`).

WNTR's graph also holds pumps and EPANET control valves as links. Our pipe
network here is built from the pipe layer alone, so the WNTR graph is
restricted to pipes too (non-pipe edges removed, valves on them dropped); the
partitions are compared on pipes and on the nodes pipes touch.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import wntr

import twin
from twin.network import isolation_segments, pipe_network

CRS = "EPSG:32650"


def _wntr_partition(wn: wntr.network.WaterNetworkModel, layer: pd.DataFrame) -> set[frozenset]:
    pipes = set(wn.pipe_name_list)
    graph = wn.to_graph()
    graph.remove_edges_from([(u, v, k) for u, v, k in graph.edges(keys=True) if k not in pipes])
    graph.remove_nodes_from([n for n in list(graph.nodes) if graph.degree(n) == 0])
    layer = layer[layer["link"].isin(pipes)].reset_index(drop=True)
    nodes, links, _ = wntr.metrics.topographic.valve_segments(graph, layer)
    return _partition(nodes.to_dict(), links.to_dict())


def _partition(nodes: dict, links: dict) -> set[frozenset]:
    groups: dict[object, set[tuple[str, str]]] = {}
    for name, seg in nodes.items():
        groups.setdefault(seg, set()).add(("node", str(name)))
    for name, seg in links.items():
        groups.setdefault(seg, set()).add(("pipe", str(name)))
    return {frozenset(g) for g in groups.values()}


def valve_points(
    city: twin.Twin, wn: wntr.network.WaterNetworkModel, layer: pd.DataFrame, folder: Path
) -> None:
    """WNTR's valve layer as a valve layer of the twin: a point at node N, on pipe L."""
    layer = layer[layer["link"].isin(set(wn.pipe_name_list))]
    points = [shapely.Point(wn.get_node(n).coordinates) for n in layer["node"]]
    frame = gpd.GeoDataFrame(
        {
            "valve_id": [f"V{i}" for i in range(len(layer))],
            "status": "open",
            "network": "water",
            "pipe": [f"pipes.{link}" for link in layer["link"]],
        },
        geometry=points,
        crs=CRS,
    )
    path = folder / "valves.gpkg"
    frame.to_file(path, layer="valves")
    # EPANET drawing coordinates, labelled with a UTM zone they are not in (issue 12 guard).
    city.import_layer(path, layer="valves", kind="valve", id="valve_id", local_coords=True)


def _our_partition(city: twin.Twin) -> set[frozenset]:
    net = pipe_network(city, "water", pumps=None)
    valves = city.layer("valves")
    assert net.valves["on_network"].all()
    assert (net.valves["pipe"] == valves["pipe"]).all()  # each valve on the pipe it names
    segs = isolation_segments(net)
    pipes = {str(uid).split(".", 1)[1]: s for uid, s in segs.of_pipe.items()}
    return _partition(segs.of_node.to_dict(), pipes)


def _check(tmp_path: Path, inp: Path, placement: str, seed: int) -> None:
    wn = wntr.network.WaterNetworkModel(str(inp))
    n = 2 if placement == "strategic" else max(1, int(0.4 * wn.num_pipes))
    layer = wntr.network.generate_valve_layer(wn, placement, n, seed=seed)
    city = twin.Twin.create(tmp_path / "net.gpkg", crs=CRS)
    city.import_layer(inp, layer="pipes", kind="pipe", src_crs=CRS)
    valve_points(city, wn, layer, tmp_path)
    ours, theirs = _our_partition(city), _wntr_partition(wn, layer)
    assert len(ours) == len(theirs)
    assert ours == theirs


@pytest.mark.parametrize("placement", ["strategic", "random"])
@pytest.mark.parametrize("name", ["Net1", "Net2", "Net3", "ky4"])
def test_segments_match_wntr(
    tmp_path: Path, wntr_networks: Path, name: str, placement: str
) -> None:
    _check(tmp_path, wntr_networks / f"{name}.inp", placement, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize("placement", ["strategic", "random"])
@pytest.mark.parametrize("name", ["Net6", "ky10"])
def test_segments_match_wntr_large(
    tmp_path: Path, wntr_networks: Path, name: str, placement: str
) -> None:
    _check(tmp_path, wntr_networks / f"{name}.inp", placement, seed=11)
