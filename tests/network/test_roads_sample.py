"""The sample city's roads make a usable network, and its facilities are where promised."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from twin.network import check_roads, road_network_from_frame
from twin.sample import generate_city
from twin.sample.facilities import FACILITY_TYPES, facility_count

FIELDS = {
    "道路等级": "road_class",
    "单行": "oneway",
    "桥梁": "bridge",
    "层级": "level",
    "设计时速": "speed_kmh",
}


@pytest.fixture(scope="module")
def generated() -> dict[str, gpd.GeoDataFrame]:
    return generate_city(3000, seed=42)


@pytest.fixture(scope="module")
def roads(generated: dict[str, gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    return generated["roads"].rename(columns=FIELDS).set_index("道路编码")


def test_sample_roads_are_one_connected_network(roads: gpd.GeoDataFrame) -> None:
    net = road_network_from_frame(roads)
    report = check_roads(net)
    assert report.stats["parts"] == 1
    assert report.counts == {
        "dangling_end": 0,
        "near_miss": 0,
        "disconnected_part": 0,
        "one_way_trap": 0,
    }
    one_way = roads["oneway"].to_numpy() == 1
    assert one_way.sum() > 5
    assert int((net.edge_forward & ~net.edge_backward).sum()) == int(one_way.sum())


def test_bridges_are_a_level_up_and_meet_streets_only_at_their_ends(
    generated: dict[str, gpd.GeoDataFrame], roads: gpd.GeoDataFrame
) -> None:
    bridges = roads[roads["bridge"] == 1]
    assert len(bridges) >= 2 and (bridges["level"] == 1).all()
    assert (roads.loc[roads["bridge"] == 0, "level"] == 0).all()
    parcels = generated["parcels"]
    river = shapely.union_all(parcels.loc[parcels["用地性质"] == "E1"].geometry.to_numpy())
    others = roads[roads["bridge"] == 0].geometry.to_numpy()
    ends = shapely.union_all(shapely.boundary(bridges.geometry.to_numpy()))
    low, high = river.bounds[1], river.bounds[3]
    for line in bridges.geometry:
        # over the river: it spans the river's banks, beside river parcels (both sides inside)
        y0, y1 = sorted(shapely.get_coordinates(line)[[0, -1], 1])
        mid = line.interpolate(0.5, normalized=True)
        assert y0 < low and y1 > high
        across = shapely.LineString([(mid.x - 40, mid.y), (mid.x + 40, mid.y)])
        assert across.intersects(river)
        touching = others[shapely.intersects(others, line)]
        # streets touch a bridge only at its two ends, where they join it
        assert shapely.union_all(shapely.intersection(touching, line)).within(ends.buffer(1e-6))
    net = road_network_from_frame(roads)
    bridge_edges = np.flatnonzero(np.isin(net.edge_uid, bridges.index))
    degree = np.bincount(np.concatenate([net.edge_from, net.edge_to]), minlength=net.n_nodes)
    assert (degree[net.edge_from[bridge_edges]] >= 2).all()  # joined to the banks
    assert (degree[net.edge_to[bridge_edges]] >= 2).all()


def test_facilities_spread_over_the_city(generated: dict[str, gpd.GeoDataFrame]) -> None:
    fac = generated["facilities"]
    assert len(fac) == facility_count(3000) == 6
    assert fac["设施类型"].value_counts().to_dict() == dict.fromkeys(FACILITY_TYPES, 2)
    assert fac["设施编码"].is_unique
    buildings = generated["buildings"].geometry.to_numpy()
    hits = shapely.STRtree(buildings).query(fac.geometry.to_numpy(), predicate="within")
    assert sorted(set(hits[0])) == list(range(6))  # each stands inside a building
    gaps = fac.geometry.to_numpy()[:, None].tolist()
    distance = np.array([[a[0].distance(b[0]) for b in gaps] for a in gaps])
    assert distance[~np.eye(6, dtype=bool)].min() > 100  # no two in the same spot
    assert facility_count(1_000_000) == 20
