"""Isolation segments, pipe breaks, valve failures and criticality on the hand-drawn network."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

import twin
from tests.network.small_network import at, make_twin, names, pipes_frame, sources_frame, uid
from twin.errors import NetworkError, UsageError
from twin.network import (
    check_network,
    criticality,
    isolation_segments,
    network_from_frames,
    pipe_break,
    pipe_network,
    service_connections,
)


def _segments_by_pipes(net: twin.network.PipeNetwork) -> set[frozenset[str]]:
    segs = isolation_segments(net).of_pipe
    return {frozenset(names(group.index)) for _, group in segs.groupby(segs)}


def test_topology_and_valve_positions(small: twin.Twin) -> None:
    net = pipe_network(small)
    assert (net.n_nodes, net.n_pieces) == (7, 7)
    valves = net.valves
    assert valves.loc[uid("valves", "V1"), "pipe"] == uid("pipes", "P2")
    assert valves.loc[uid("valves", "V1"), "position_m"] == pytest.approx(2.0)
    assert valves.loc[uid("valves", "V2"), "position_m"] == pytest.approx(98.0)
    assert not valves.loc[uid("valves", "V9"), "on_network"]
    assert valves.loc[uid("valves", "V9"), "distance_m"] == pytest.approx(40.0)
    assert any("V9" in w for w in net.warnings)
    assert net.sources["node"].iloc[0] >= 0


def test_segments_by_hand(small: twin.Twin) -> None:
    net = pipe_network(small)
    assert _segments_by_pipes(net) == {
        frozenset({"P1", "P4", "P5", "P6"}),
        frozenset({"P2"}),
        frozenset({"P3"}),
        frozenset({"P7"}),
    }
    table = isolation_segments(net).table
    main = isolation_segments(net).of_pipe[uid("pipes", "P1")]
    assert names(table.loc[main, "valves"]) == {"V1", "V2", "V4"}
    assert table.loc[main, "length_m"] == pytest.approx(400.0)
    assert table["has_source"].all()


def test_pipe_break_with_buildings(small: twin.Twin) -> None:
    net = pipe_network(small)
    links = service_connections(small, net)
    assert {str(k).split(".")[1]: v.split(".")[1] for k, v in links["pipe"].items()} == {
        "b1": "P7",
        "b2": "P2",
        "b3": "P4",
    }
    result = pipe_break(net, uid("pipes", "P3"), connections=links)
    assert names(result.valves_to_close.index) == {"V3", "V4"}
    assert names(result.isolated_pipes.index) == {"P3"}
    assert names(result.cut_off_pipes.index) == {"P7"}
    assert names(result.buildings.index) == {"b1"}
    assert result.buildings["reason"].astype(str).tolist() == ["cut_off"]
    assert result.summary["population"] == 4
    assert result.summary["cut_off_length_m"] == pytest.approx(100.0)


def test_break_in_the_source_segment_cuts_everything_off(small: twin.Twin) -> None:
    net = pipe_network(small)
    result = pipe_break(net, uid("pipes", "P1"), connections=service_connections(small, net))
    assert names(result.valves_to_close.index) == {"V1", "V2", "V4"}
    assert names(result.cut_off_pipes.index) == {"P2", "P3", "P7"}
    assert result.summary["buildings"] == 3


def test_valve_failure_widens_isolation(small: twin.Twin) -> None:
    net = pipe_network(small)
    links = service_connections(small, net)
    result = pipe_break(
        net, uid("pipes", "P3"), failed_valves=[uid("valves", "V4")], connections=links
    )
    assert names(result.valves_to_close.index) == {"V1", "V2", "V3"}
    assert names(result.extra_valves.index) == {"V1", "V2"}
    assert names(result.isolated_pipes.index) == {"P1", "P3", "P4", "P5", "P6"}
    assert names(result.cut_off_pipes.index) == {"P2", "P7"}
    assert names(result.extra_buildings.index) == {"b2", "b3"}
    assert result.summary["failed_valves"] == [uid("valves", "V4")]


def test_closed_and_inoperable_valves(tmp_path: Path) -> None:
    city = make_twin(tmp_path, valve_status={"V1": "closed", "V3": "inoperable"})
    net = pipe_network(city)
    assert _segments_by_pipes(net) == {
        frozenset({"P1", "P4", "P5", "P6"}),
        frozenset({"P2"}),
        frozenset({"P3", "P7"}),
    }
    result = pipe_break(net, uid("pipes", "P2"))
    roles = {str(k).split(".")[1]: v for k, v in result.valves_to_close["role"].items()}
    assert roles == {"V1": "already closed", "V2": "close"}


def test_unknown_pipe_and_valve(small: twin.Twin) -> None:
    net = pipe_network(small)
    with pytest.raises(
        UsageError, match=re.escape("'NOPE' is not in the water network (7 pipes); pipe uids")
    ):
        pipe_break(net, "NOPE")
    with pytest.raises(UsageError, match=re.escape("did you mean pipes.P3?")):
        pipe_break(net, "P3")  # the source id, not the uid
    with pytest.raises(UsageError, match="VX"):
        pipe_break(net, uid("pipes", "P1"), failed_valves=["VX"])
    result = pipe_break(net, uid("pipes", "P1"), failed_valves=[uid("valves", "V9")])
    assert any("off the network" in w for w in result.warnings)


def test_network_without_source_warns(tmp_path: Path) -> None:
    city = make_twin(tmp_path, with_sources=False)
    net = pipe_network(city)
    result = pipe_break(net, uid("pipes", "P3"))
    assert any("no source" in w for w in result.warnings)
    assert result.cut_off_pipes.empty  # not claimed, and said so
    assert names(result.isolated_pipes.index) == {"P3"}  # the isolation still holds
    report = check_network(net)
    assert report.counts["no_source"] == 1
    assert any("no source" in w for w in report.warnings)
    assert criticality(net)["cut_off_pipes"].sum() == 0


def test_loop_without_valves_is_one_segment(small: twin.Twin) -> None:
    pipes = small.layer("pipes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = network_from_frames(pipes, None, small.layer("sources"), network="water")
    segs = isolation_segments(net)
    assert len(segs.table) == 1
    assert any("one segment" in w for w in segs.warnings)
    assert any("one segment" in w for w in pipe_break(net, uid("pipes", "P6")).warnings)
    assert any("no operable valve" in w for w in check_network(net).warnings)
    assert not any("operable" in w for w in check_network(pipe_network(small)).warnings)


def test_no_pipes_of_network(small: twin.Twin) -> None:
    with pytest.raises(NetworkError, match="gas"):
        pipe_network(small, "gas")


def test_criticality_matches_breaks(small: twin.Twin) -> None:
    net = pipe_network(small)
    links = service_connections(small, net)
    ranking = criticality(net, connections=links)
    segs = isolation_segments(net).of_pipe
    for pipe in segs.index:
        row = ranking.loc[segs[pipe]]
        result = pipe_break(net, pipe, connections=links)
        assert row["total_pipes"] == len(result.isolated_pipes) + len(result.cut_off_pipes)
        assert row["total_buildings"] == result.summary["buildings"]
        assert row["cut_off_length_m"] == pytest.approx(result.summary["cut_off_length_m"])
    top = ranking.sort_values("rank").iloc[0]
    assert top["total_pipes"] == 7 and top["pipes"] == 4
    assert ranking["rank"].tolist() != [] and sorted(ranking["rank"]) == [1, 2, 3, 4]


def test_shared_interior_vertex_splits_pipe(tmp_path: Path) -> None:
    # Q1 runs straight through (100, 0), where Q2 starts: they are connected there
    frame = pipes_frame({"Q1": [(0, 0), (100, 0), (200, 0)], "Q2": [(100, 0.2), (100, 80)]})
    frame = frame.set_index("pipe_id")
    net = network_from_frames(frame, None, sources_frame().set_index("source_id"))
    assert (net.n_nodes, net.n_pieces) == (4, 3)
    assert np.isclose(net.node_xy, at(100, 0.1)).all(axis=1).any()  # snapped to one node


def test_clusters_match_brute_force() -> None:
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial.distance import cdist

    from twin.network.pipes import snap_clusters

    rng = np.random.default_rng(1)
    base = rng.uniform(0, 20, (150, 2))
    xy = np.vstack([base, base[:40], base[:30] + rng.uniform(-0.3, 0.3, (30, 2))])
    labels = snap_clusters(xy, 0.5)
    _, expected = connected_components(cdist(xy, xy) <= 0.5, directed=False)
    same = labels[:, None] == labels[None, :]
    assert (same == (expected[:, None] == expected[None, :])).all()


def test_building_tables_made_when_read(small: twin.Twin) -> None:
    net = pipe_network(small)
    links = service_connections(small, net)
    result = pipe_break(
        net, uid("pipes", "P3"), failed_valves=[uid("valves", "V4")], connections=links
    )
    assert "buildings" not in vars(result) and "extra_buildings" not in vars(result)
    # P7 and P2 cut off, P4 isolated: b1, b2 and b3; the no-failure answer had b1 only
    reasons = result.buildings["reason"].astype(str)
    assert {names([k]).pop(): v for k, v in reasons.items()} == {
        "b1": "cut_off",
        "b2": "cut_off",
        "b3": "isolated",
    }
    assert result.buildings is result.buildings  # made once
    assert names(result.extra_buildings.index) == {"b2", "b3"}
    assert result.summary["buildings"] == 3 and result.summary["extra_buildings"] == 2
    assert result.summary["population"] == links["population"].sum()
    assert result.buildings.crs == net.crs
    footprints = small.layer("buildings").geometry
    carried = gpd.GeoDataFrame(links, geometry=footprints.reindex(links.index).to_numpy())
    carried = carried.set_crs(footprints.crs)
    again = pipe_break(
        net, uid("pipes", "P3"), failed_valves=[uid("valves", "V4")], connections=carried
    )
    assert again.buildings.drop(columns="geometry").equals(
        result.buildings.drop(columns="geometry")
    )
    assert again.buildings.geometry.equals(footprints.loc[again.buildings.index])
    assert again.extra_buildings.geometry.equals(footprints.loc[again.extra_buildings.index])
