"""Closures recomputed locally (twin.network.incremental) against networkx and a full Dijkstra.

The fixture is a 12 x 12 street grid with random speeds, some one-way streets,
300 buildings and 4 facilities at random points (fixed seed); every closure
draws 1-12 segments at random. networkx computes every node's time from the
facilities independently (its own multi-source Dijkstra on a DiGraph of the
open arcs); each building then adds its leg along its own edge, as the model
says.
"""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from twin.network import road_access, road_closure, road_network_from_frame
from twin.network.incremental import nearest_facility_closed
from twin.network.routing import access_graph, building_legs, nearest_facility

CRS = "EPSG:4544"
N = 12
STEP = 100.0


def _city(
    seed: int = 7, n_buildings: int = 300, n_facilities: int = 4
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    rng = np.random.default_rng(seed)
    lines, names = [], []
    for i in range(N):
        for j in range(N - 1):
            lines.append(shapely.LineString([(j * STEP, i * STEP), ((j + 1) * STEP, i * STEP)]))
            names.append(f"H{i}_{j}")
            lines.append(shapely.LineString([(i * STEP, j * STEP), (i * STEP, (j + 1) * STEP)]))
            names.append(f"V{i}_{j}")
    n = len(lines)
    roads = gpd.GeoDataFrame(
        {
            "road_class": "支路",
            "speed_kmh": rng.choice([20.0, 30.0, 40.0, 60.0], size=n),
            "oneway": rng.choice([0, 0, 0, 0, 1, -1], size=n),
        },
        geometry=lines,
        index=pd.Index(names, name="uid"),
        crs=CRS,
    )
    extent = (N - 1) * STEP

    def pts(k: int, prefix: str) -> gpd.GeoDataFrame:
        xy = rng.uniform(0, extent, size=(k, 2))
        return gpd.GeoDataFrame(
            geometry=shapely.points(xy),
            index=pd.Index([f"{prefix}{i}" for i in range(k)], name="uid"),
            crs=CRS,
        )

    return roads, pts(n_buildings, "b"), pts(n_facilities, "f")


def _networkx_times(access, closed: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Every building's time from networkx's Dijkstra over the open arcs."""
    graph = access_graph(access)
    n = access.net.n_nodes
    tails = np.repeat(np.arange(graph.n), np.diff(graph.indptr))
    g = nx.DiGraph()
    g.add_nodes_from(range(graph.n))
    for t, h, w, e, ok in zip(
        tails, graph.indices, graph.data, graph.arc_edge, graph.closable, strict=True
    ):
        if closed[e] and ok:
            continue
        if not g.has_edge(int(t), int(h)) or g[int(t)][int(h)]["weight"] > w:
            g.add_edge(int(t), int(h), weight=float(w))
    length = nx.multi_source_dijkstra_path_length(g, set(range(n, graph.n)))
    dist = np.array([length.get(v, np.inf) for v in range(graph.n)])
    legs = building_legs(access, "time")
    via_from = dist[legs.from_node] + legs.cost_from
    via_to = dist[legs.to_node] + legs.cost_to
    on = closed[legs.edge]
    via_from[on & ~legs.at_from] = np.inf
    via_to[on & ~legs.at_to] = np.inf
    time = np.minimum(via_from, via_to)
    # a trip along the one edge a facility and a building share (from the facility)
    net, b, f = access.net, access.buildings, access.facilities
    for k in range(len(f)):
        e = f.edge[k]
        for i in np.flatnonzero((b.edge == e) & ~closed[e]):
            gap = b.position_m[i] - f.position_m[k]
            if gap == 0 or (net.edge_forward[e] if gap > 0 else net.edge_backward[e]):
                time[i] = min(time[i], abs(gap) / net.edge_length_m[e] * net.edge_time_s[e])
    return time


@pytest.fixture(scope="module")
def access():  # type: ignore[no-untyped-def]
    roads, homes, facilities = _city()
    net = road_network_from_frame(roads)
    return road_access(net, homes, facilities)


def test_local_closure_equals_networkx_and_the_full_dijkstra(access) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(11)
    net = access.net
    changed = 0
    for _ in range(25):
        closed = np.zeros(net.n_edges, dtype=bool)
        closed[rng.choice(net.n_edges, size=int(rng.integers(1, 13)), replace=False)] = True
        local, fac = nearest_facility_closed(access, closed)
        full, full_fac = nearest_facility(access, closed)
        expected = _networkx_times(access, closed)
        np.testing.assert_allclose(local, full, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(local, expected, rtol=1e-12, atol=1e-9)
        assert (fac == full_fac).all()
        assert ((fac < 0) == ~np.isfinite(local)).all()
        before = _networkx_times(access, np.zeros(net.n_edges, dtype=bool))
        changed += int((~np.isclose(local, before)).sum())
    assert changed > 100  # the closures did move many buildings: the test compares real detours


def test_local_closure_of_buildings_beside_facilities() -> None:
    """Closures around the facilities' own edges, where trips along those edges decide."""
    roads, homes, facilities = _city(seed=3, n_buildings=3000, n_facilities=12)
    pairs = gpd.GeoDataFrame(  # two facilities on each of two edges: the nearer one wins
        geometry=shapely.points([(410, 300.5), (470, 299.5), (700.4, 520), (699.6, 580)]),
        index=pd.Index([f"pair{i}" for i in range(4)], name="uid"),
        crs=CRS,
    )
    facilities = pd.concat([facilities, pairs])
    access = road_access(road_network_from_frame(roads), homes, facilities)
    net, b, f = access.net, access.buildings, access.facilities
    rng = np.random.default_rng(2)
    near = np.flatnonzero(
        np.isin(net.edge_from, net.edge_from[f.edge]) | np.isin(net.edge_to, net.edge_to[f.edge])
    )
    beside = np.isin(b.edge, f.edge)
    assert beside.sum() > 50  # many buildings share an edge with a facility
    decided = 0
    for _ in range(30):
        closed = np.zeros(net.n_edges, dtype=bool)
        closed[rng.choice(near, size=int(rng.integers(1, 6)), replace=False)] = True
        local, fac = nearest_facility_closed(access, closed)
        full, full_fac = nearest_facility(access, closed)
        np.testing.assert_allclose(local, full, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(local, _networkx_times(access, closed), rtol=1e-12, atol=1e-9)
        assert (fac == full_fac).all()
        # buildings beside an open facility edge, answered by that facility after the closure
        own = beside & (fac >= 0)
        own[own] = f.edge[fac[own]] == b.edge[own]
        decided += int(own.sum())
    assert decided > 100


def test_road_closure_reports_the_full_answer(access) -> None:  # type: ignore[no-untyped-def]
    roads = ["V5_3", "V5_4", "H4_5", "H6_5", "V6_5"]
    result = road_closure(access, roads=roads)
    closed = np.zeros(access.net.n_edges, dtype=bool)
    closed[access.net.edges_of(roads)] = True
    full, _ = nearest_facility(access, closed)
    np.testing.assert_allclose(result.buildings["time_after_s"].to_numpy(), full)
    lost = np.isinf(full) & np.isfinite(result.buildings["time_before_s"].to_numpy())
    assert result.summary.buildings_lost == int(lost.sum())


def test_road_closure_rows_equal_the_full_comparison(access) -> None:  # type: ignore[no-untyped-def]
    """The frame built from the changed rows alone equals one compared over every building."""
    from twin.network.closures import closed_edges, closure_result
    from twin.network.routing import base_answer

    rng = np.random.default_rng(5)
    roads = access.net.roads.index.to_numpy()
    before, fac_before = base_answer(access)
    hit = 0
    for _ in range(10):
        chosen = list(rng.choice(roads, size=int(rng.integers(1, 9)), replace=False))
        result = road_closure(access, roads=chosen, max_time_s=120.0)
        mask = closed_edges(access.net, roads=chosen)
        after, fac_after = nearest_facility(access, mask)  # a full Dijkstra
        full = closure_result(access, mask, before, fac_before, after, fac_after, 120.0)
        pd.testing.assert_frame_equal(result.buildings, full.buildings, rtol=1e-12)
        _assert_tables_of_the_rows(result, full.buildings)
        assert result.summary.to_dict() == pytest.approx(full.summary.to_dict())
        with np.errstate(invalid="ignore"):
            detour = np.where(np.isfinite(before), after - before, 0.0)
        assert result.summary.buildings_delayed == int(((detour > 1.0) & np.isfinite(after)).sum())
        hit += result.summary.buildings_delayed + result.summary.buildings_lost
    assert hit > 50


def _assert_tables_of_the_rows(result, every) -> None:  # type: ignore[no-untyped-def]
    """``touched`` and ``affected()``, built from the changed rows alone, are rows of ``every``."""
    touched = result.touched
    assert touched.index.is_unique and len(touched) == len(result.rows.rows)
    pd.testing.assert_frame_equal(touched, every.loc[touched.index], rtol=1e-12)
    untouched = every.drop(index=touched.index)
    assert (untouched["detour_s"] == 0).all() and not untouched["lost"].any()
    hit = (every["detour_s"] > 1.0).to_numpy() | every["lost"].to_numpy()
    affected = result.affected()
    assert affected.crs == result.closed.crs
    pd.testing.assert_frame_equal(pd.DataFrame(affected.drop(columns="geometry")), every.loc[hit])
    points = result.access.buildings.point[hit]
    assert shapely.equals(affected.geometry.to_numpy(), points).all()


def test_writing_to_a_closure_frame_leaves_the_base_answer(access) -> None:  # type: ignore[no-untyped-def]
    first = road_closure(access, roads=["V5_3"])
    kept = first.buildings["time_before_s"].to_numpy().copy()
    first.buildings.loc[first.buildings.index[:5], "time_before_s"] = -1.0
    first.buildings.loc[first.buildings.index[:5], "facility_before"] = None
    second = road_closure(access, roads=["V5_3"])
    np.testing.assert_array_equal(second.buildings["time_before_s"].to_numpy(), kept)
    assert second.buildings["facility_before"].notna().sum() > 5
    assert (first.buildings["time_before_s"].to_numpy()[:5] == -1.0).all()


def test_uids_read_in_batches_are_joined_once() -> None:
    """Uids read as many Arrow chunks (pyogrio batches) are one chunk on the access points,
    so that a closure's few changed rows are taken without a pass over every uid."""
    import pyarrow as pa

    roads, homes, facilities = _city()
    names = homes.index.to_numpy(dtype=str)
    chunks = pa.chunked_array([pa.array(names[:100]), pa.array(names[100:])])
    homes.index = pd.Index(pd.array(chunks, dtype="str"), name="uid")
    assert homes.index.array.__arrow_array__().num_chunks == 2
    access = road_access(road_network_from_frame(roads), homes, facilities)
    uid = access.buildings.uid
    assert uid.array.__arrow_array__().num_chunks == 1
    assert uid.equals(homes.index) and uid.dtype == homes.index.dtype and uid.name == "uid"
    result = road_closure(access, roads=["V5_3", "H4_5"])
    assert result.touched.index.isin(homes.index).all() and len(result.touched) > 0
