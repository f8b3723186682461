"""Road networks on hand-drawn fixtures: every expected number is worked out in the comments.

Speeds: every road is a 支路 (30 km/h), so 100 m take 12 s.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import LineString, Point

from tests.network.small_network import X0, Y0, make_twin
from twin.errors import NetworkError, UsageError
from twin.network import (
    check_roads,
    road_access,
    road_closure,
    road_criticality,
    road_network_from_frame,
    route,
    select_facilities,
    service_areas,
)
from twin.network.speeds import DEFAULT_SPEEDS, read_speeds

CRS = "EPSG:4544"
S_PER_M = 0.12  # 30 km/h


def roads(lines: dict[str, list[tuple[float, float]]], **columns: object) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(
        {"road_class": "支路", **columns},
        geometry=[LineString(p) for p in lines.values()],
        index=pd.Index(list(lines), name="uid"),
        crs=CRS,
    )
    return frame


def points(pts: dict[str, tuple[float, float]], **columns: object) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        dict(columns),
        geometry=[Point(p) for p in pts.values()],
        index=pd.Index(list(pts), name="uid"),
        crs=CRS,
    )


# A 2 x 2 block grid of 100 m blocks. H1 (the middle horizontal) is one-way eastwards.
#
#   (0,200) --H2-- (100,200) --H2-- (200,200)
#     |V0            |V1              |V2
#   (0,100) --H1→- (100,100) --H1→- (200,100)
#     |              |                |
#   (0,0)   --H0-- (100,0)   --H0-- (200,0)
GRID = {
    "H0": [(0, 0), (100, 0), (200, 0)],
    "H1": [(0, 100), (100, 100), (200, 100)],
    "H2": [(0, 200), (100, 200), (200, 200)],
    "V0": [(0, 0), (0, 100), (0, 200)],
    "V1": [(100, 0), (100, 100), (100, 200)],
    "V2": [(200, 0), (200, 100), (200, 200)],
}


@pytest.fixture
def grid() -> gpd.GeoDataFrame:
    return roads(GRID, oneway=[0, 1, 0, 0, 0, 0])


def test_grid_splits_roads_at_shared_vertices(grid: gpd.GeoDataFrame) -> None:
    net = road_network_from_frame(grid)
    assert net.n_nodes == 9  # every crossing is a shared vertex of two roads
    assert net.n_edges == 12  # each road is split once, in the middle
    assert np.allclose(net.edge_length_m, 100.0)
    assert np.allclose(net.edge_time_s, 12.0)
    assert int((net.edge_forward & ~net.edge_backward).sum()) == 2  # H1's two edges


def test_route_honours_the_one_way(grid: gpd.GeoDataFrame) -> None:
    net = road_network_from_frame(grid)
    east = route(net, Point(0, 100), Point(200, 100), weight="length")
    assert east.distance_m == pytest.approx(200.0)  # straight along H1
    assert east.roads == ["H1"]
    # westwards H1 is closed to traffic: down V2 (100), H0 west (200), up V0 (100)
    # or the same round over H2: 400 m either way
    west = route(net, Point(200, 100), Point(0, 100), weight="length")
    assert west.distance_m == pytest.approx(400.0)
    assert west.time_s == pytest.approx(400.0 * S_PER_M)
    assert "H1" not in west.roads
    assert west.geometry.length == pytest.approx(400.0)


def test_route_from_mid_edge_points_is_exact(grid: gpd.GeoDataFrame) -> None:
    net = road_network_from_frame(grid)
    # (30,-4) sits 30 m along H0; (170,204) 70 m along H2's second edge;
    # 30 -> (100,0) is 70 m, up V1 200 m, east 70 m on H2: 340 m (ties with other ways)
    r = route(net, Point(30, -4), Point(170, 204), weight="length")
    assert r.distance_m == pytest.approx(340.0)
    assert r.origin_access_m == pytest.approx(4.0)
    assert r.destination_access_m == pytest.approx(4.0)
    start, end = shapely.get_coordinates(r.geometry)[[0, -1]]
    assert start == pytest.approx([30.0, 0.0])
    assert end == pytest.approx([170.0, 200.0])
    # no way into a one-way dead end against its direction: no route, JSON-safe summary
    lines = dict(GRID, X=[(300, 200), (200, 200)])
    trap = road_network_from_frame(roads(lines, oneway=[0, 1, 0, 0, 0, 0, 1]))
    none = route(trap, Point(200, 0), Point(300, 199))
    assert none.geometry is None and none.distance_m == float("inf")
    assert none.to_dict()["found"] is False and none.to_dict()["time_s"] is None
    # both on the same edge: straight along it
    same = route(net, Point(10, 1), Point(90, -1), weight="length")
    assert same.distance_m == pytest.approx(80.0)


# A bridge B over the street A, drawn with a common vertex at (100,0) as some
# deliveries draw it. C and D lead from the bridge's ends down to A's ends.
#
#            (100,100) --C-- (200,100)
#                |B (bridge)     |C
#   (0,0) ------(100,0)------ (200,0)      A runs (0,0)-(100,0)-(200,0)
#     |D             |B
#   (0,-100) --D-- (100,-100)
BRIDGE = {
    "A": [(0, 0), (100, 0), (200, 0)],
    "B": [(100, -100), (100, 0), (100, 100)],
    "C": [(100, 100), (200, 100), (200, 0)],
    "D": [(100, -100), (0, -100), (0, 0)],
}


def test_bridge_over_a_street_does_not_join_it() -> None:
    net = road_network_from_frame(roads(BRIDGE, bridge=[0, 1, 0, 0]))
    assert net.n_nodes == 4  # A's and B's ends only: (100,0) is no junction
    # from the bridge's south end to (150,0) on A: D then A, 200 + 150 m;
    # over the bridge and C it would be 200 + 100 + 100 + 50 = 450 m
    r = route(net, Point(100, -100), Point(150, 0), weight="length")
    assert r.distance_m == pytest.approx(350.0)
    assert r.roads == ["D", "A"]


def test_same_level_crossing_with_a_common_vertex_is_a_junction() -> None:
    net = road_network_from_frame(roads(BRIDGE, bridge=[0, 0, 0, 0]))
    assert net.n_nodes == 5
    r = route(net, Point(100, -100), Point(150, 0), weight="length")
    assert r.distance_m == pytest.approx(150.0)  # 100 m up B, 50 m along A


def test_lines_crossing_without_a_common_vertex_never_meet() -> None:
    lines = dict(BRIDGE, A=[(0, 0), (200, 0)], B=[(100, -100), (100, 100)])
    net = road_network_from_frame(roads(lines))
    r = route(net, Point(100, -100), Point(150, 0), weight="length")
    assert r.distance_m == pytest.approx(350.0)


def test_level_tag_on_a_tunnel_and_ends_joining_other_levels() -> None:
    # T is a tunnel (level -1) from A's west end to A's east end under the street;
    # its ends meet A's ends (one line ending there): they join A there.
    lines = {"A": [(0, 0), (100, 0), (200, 0)], "T": [(0, 0), (100, 1), (200, 0)]}
    net = road_network_from_frame(roads(lines, level=[0, -1]))
    assert net.n_nodes == 2 and net.n_edges == 2


def test_multi_part_roads_keep_their_parts_and_positions() -> None:
    frame = roads({"M": [(0, 0), (100, 0)], "N": [(100, 0), (100, 50)]})
    frame.loc["M", "geometry"] = shapely.MultiLineString([[(0, 0), (100, 0)], [(100, 0), (200, 0)]])
    net = road_network_from_frame(frame)
    m = net.edges_of(["M"])
    assert len(m) == 2 and net.n_nodes == 4
    assert net.edge_start_m[m].tolist() == [0.0, 100.0]  # along the whole road
    assert net.edge_end_m[m].tolist() == [100.0, 200.0]
    assert route(net, Point(10, 0), Point(100, 40), weight="length").distance_m == 130.0


def test_ends_within_the_tolerance_are_snapped() -> None:
    lines = {"A": [(0, 0), (100, 0)], "B": [(100.3, 0.2), (200, 0)]}
    assert road_network_from_frame(roads(lines), snap_tolerance_m=0.5).n_nodes == 3
    net = road_network_from_frame(roads(lines), snap_tolerance_m=0.1)
    assert net.n_nodes == 4
    report = check_roads(net, near_miss_m=1.0)
    assert report.counts["dangling_end"] == 4
    assert report.counts["near_miss"] == 2  # each loose end is 0.36 m from the other road
    assert report.counts["disconnected_part"] == 1
    near = report.issues[report.issues["issue"] == "near_miss"]
    assert near["distance_m"].to_numpy() == pytest.approx([0.13**0.5] * 2)


def test_check_finds_one_way_traps(grid: gpd.GeoDataFrame) -> None:
    # a one-way dead end: (200,200) reached from (100,200) over H2's east edge only
    lines = dict(GRID, X=[(200, 200), (300, 200)])
    frame = roads(lines, oneway=[0, 0, 0, 0, 0, 0, 1])
    report = check_roads(road_network_from_frame(frame))
    assert report.counts["one_way_trap"] == 1  # (300,200): in but not out
    assert report.counts["dangling_end"] == 1
    assert report.issues.loc[report.issues["issue"] == "one_way_trap", "uid"].tolist() == ["X"]


# --------------------------------------------------------------------------- access


def test_service_areas_exact_times_both_directions(grid: gpd.GeoDataFrame) -> None:
    net = road_network_from_frame(grid)
    fac = points({"F": (-5, 100)})  # on the node (0,100)
    homes = points({"b": (150, 105)})  # 50 m along H1's east edge
    out = service_areas(road_access(net, homes, fac), max_time_s=30)
    # out from the station: east along H1, 150 m
    assert out.buildings.loc["b", "time_s"] == pytest.approx(150 * S_PER_M)
    assert out.buildings.loc["b", "facility"] == "F"
    assert out.reach["building"].tolist() == ["b"]
    # in to the station: H1 runs east only, so 50 m east, down V2 100, H0 west 200,
    # up V0 100 (or the same round by H2): 450 m
    back = service_areas(road_access(net, homes, fac, direction="to_facility"), max_time_s=30)
    assert back.buildings.loc["b", "time_s"] == pytest.approx(450 * S_PER_M)
    assert back.summary.within_max_time == 0
    assert back.reach.empty


def test_nearest_facility_of_every_building(grid: gpd.GeoDataFrame) -> None:
    net = road_network_from_frame(grid)
    fac = points({"W": (0, -5), "E": (205, 200)}, poi_type=["消防站", "医院"])
    homes = points({"b1": (20, 3), "b2": (180, 195), "b3": (100, 150), "b4": (60, 102)})
    areas = service_areas(road_access(net, homes, fac))
    got = areas.buildings[["facility", "time_s"]]
    # b1: 20 m from W. b2: 20 m from E (west along H2). b3: 150 m from either -> whichever;
    # W: (0,0)->(100,0) 100 + up 150 = 250; E: (200,200)->(100,200) 100 + down 50 = 150.
    # b4 on one-way H1: from W up V0 100 + 60 east = 160; from E nothing shorter
    # (E to (100,100) is 200, then H1 runs east only: 200 + ... via (0,100) = 300 + 60).
    assert got.loc["b1"].tolist() == ["W", pytest.approx(20 * S_PER_M)]
    assert got.loc["b2"].tolist() == ["E", pytest.approx(20 * S_PER_M)]
    assert got.loc["b3"].tolist() == ["E", pytest.approx(150 * S_PER_M)]
    assert got.loc["b4"].tolist() == ["W", pytest.approx(160 * S_PER_M)]
    assert areas.facilities["buildings"].to_dict() == {"W": 2, "E": 2}
    assert select_facilities(fac, "poi_type=医院").index.tolist() == ["E"]


def test_closure_detour_of_known_length(grid: gpd.GeoDataFrame) -> None:
    net = road_network_from_frame(grid)
    fac = points({"F": (-7, -7)})  # at the node (0,0)
    homes = points({"b": (150, 205), "c": (100, 50), "d": (200, 50)})
    access = road_access(net, homes, fac)
    # b: 50 m along H2's east edge; before: up V0 200 + east 150 = 350 m (or V1: 100+200+50)
    # closing V0 and V1: east along H0 200, up V2 200, west 50 = 450 m: 100 m more
    result = road_closure(access, roads=["V0", "V1"], max_time_s=45)
    b = result.buildings.loc["b"]
    assert b["time_before_s"] == pytest.approx(350 * S_PER_M)
    assert b["time_after_s"] == pytest.approx(450 * S_PER_M)
    assert b["detour_s"] == pytest.approx(100 * S_PER_M)
    assert bool(b["beyond_max"])  # 42 s before, 54 s after the 45 s limit
    # c stands on the closed V1: cut off; d (on V2) keeps its 250 m route
    assert result.buildings.loc["c", "lost"]
    assert result.buildings.loc["d", "detour_s"] == pytest.approx(0.0)
    s = result.summary
    assert (s.closed_roads, s.closed_edges, s.buildings_lost, s.buildings_delayed) == (2, 4, 1, 1)
    assert s.closed_length_m == pytest.approx(400.0)
    assert sorted(result.affected().index) == ["b", "c"]


def test_closure_by_area(grid: gpd.GeoDataFrame) -> None:
    net = road_network_from_frame(grid)
    access = road_access(net, points({"b": (150, 205)}), points({"F": (-7, -7)}))
    flood = shapely.box(-10, 40, 110, 60)  # across V0 and V1 between y=40 and 60
    area = road_closure(access, area=flood)
    by_uid = road_closure(access, roads=["V0", "V1"])
    # the area closes only the lower edges of V0 and V1, and b's detour is the same
    assert sorted(area.closed["road"]) == ["V0", "V1"]
    assert area.summary.closed_edges == 2
    assert area.buildings.loc["b", "detour_s"] == pytest.approx(
        by_uid.buildings.loc["b", "detour_s"]
    )
    with pytest.raises(UsageError, match="closes no road"):
        road_closure(access, area=shapely.box(1000, 1000, 1001, 1001))
    with pytest.raises(UsageError, match="no road 'Q9'"):
        road_closure(access, roads=["Q9"])


def test_criticality_of_a_tree() -> None:
    # R1 leads from the station to a fork; R2 (three homes) and R3 (one home) branch off.
    lines = {"R1": [(0, 0), (100, 0)], "R2": [(100, 0), (200, 0)], "R3": [(100, 0), (100, 100)]}
    net = road_network_from_frame(roads(lines))
    homes = points({"a": (120, 5), "b": (150, 5), "c": (180, 5), "d": (95, 50)})
    access = road_access(net, homes, points({"F": (-5, 0)}))
    ranking = road_criticality(access, candidates=None)
    assert ranking.index.tolist() == ["R1", "R2", "R3"]
    assert ranking["buildings_lost"].tolist() == [4, 3, 1]
    assert ranking["routes_over"].tolist() == [4, 3, 1]
    assert ranking["rank"].tolist() == [1, 2, 3]
    assert road_criticality(access, candidates=1).index.tolist() == ["R1"]


def test_speed_table_yaml(tmp_path: Path, grid: gpd.GeoDataFrame) -> None:
    path = tmp_path / "speeds.yaml"
    path.write_text("default_kmh: 20\nspeeds_kmh:\n  支路: 60\n  residential: null\n")
    table = read_speeds(path)
    assert table.speed_of("支路") == 60.0 and table.speed_of("unknown") == 20.0
    assert table.speed_of("residential") is None
    net = road_network_from_frame(grid, speeds=table)
    assert net.edge_time_s == pytest.approx(np.full(12, 6.0))
    grid["speed_kmh"] = [15.0, 0.0, np.nan, 15.0, 15.0, 15.0]  # own speed wins when positive
    net = road_network_from_frame(grid)
    assert sorted(set(np.round(net.edge_time_s, 6))) == [12.0, 24.0]
    assert DEFAULT_SPEEDS.speed_of("footway") is None
    footways = roads({"F": [(0, 0), (1, 0)]}, road_class="footway")
    with pytest.raises(NetworkError, match="no drivable road"):
        road_network_from_frame(footways)
    path.write_text("speeds: {}\n")
    with pytest.raises(UsageError, match="may only hold"):
        read_speeds(path)


# --------------------------------------------------------------------------- cascade


def test_cascade_closes_roads_over_the_isolated_pipe(tmp_path: Path) -> None:
    from twin.network import cascade, pipe_break, pipe_network

    city = make_twin(tmp_path)
    # Roads 5 m south of the mains, and R5, a bypass 50 m south; one station west.
    lines = {
        "R1": [(0, -5), (100, -5)],
        "R2": [(100, -5), (200, -5)],
        "R3": [(200, -5), (300, -5)],
        "R7": [(300, -5), (400, -5)],
        "R4": [(100, -5), (100, 105)],
        "R5": [(0, -5), (0, -50), (400, -50), (400, -5)],
    }
    shifted = {k: [(X0 + x, Y0 + y) for x, y in v] for k, v in lines.items()}
    frame = roads(shifted).rename_axis("rid").reset_index()
    city.import_frame(frame, layer="roads", kind="road", id="rid")
    station = points({"F1": (X0 - 10, Y0 - 5)}, poi_type=["消防站"])
    city.import_frame(
        station.rename_axis("code").reset_index(), layer="facilities", kind="poi", id="code"
    )
    from twin.network import road_network

    access = road_access(road_network(city), city.layer("buildings"), city.layer("facilities"))
    broken = pipe_break(pipe_network(city, "water"), "pipes.P2")
    report = cascade(broken, access, distance_m=6.0, min_overlap_m=0)
    # independent: every road within 6 m of the isolated pipe P2
    p2 = shapely.union_all(broken.isolated_pipes.geometry.to_numpy())
    frame = city.layer("roads")
    near = sorted(frame.index[frame.geometry.distance(p2) <= 6.0])
    assert near == ["roads.R1", "roads.R2", "roads.R3", "roads.R4"]
    summary = report.to_dict()
    assert summary["roads_closed"] == near
    assert summary["pipes_isolated"] == 1
    assert sorted(summary["valves_to_close"]) == ["valves.V1", "valves.V2"]
    b = report.closure.buildings
    # b2 stands on R2 and b3 on R4 (both closed): cut off. b1 (on R7, 50 m from its west
    # end): 350 m along y=-5 before; after, the bypass R5 (45 + 400 + 45) and 50 m back
    # west on R7: 540 m, so 190 m more at 30 km/h.
    assert b["lost"].to_dict() == {
        "buildings.b1": False,
        "buildings.b2": True,
        "buildings.b3": True,
    }
    assert b.loc["buildings.b1", "detour_s"] == pytest.approx(190 * S_PER_M)
    assert summary["road_closure"]["buildings_lost"] == 2
    assert summary["access_affected"] == [
        {"building": "buildings.b2", "lost": True, "detour_s": None},
        {"building": "buildings.b3", "lost": True, "detour_s": None},
        {"building": "buildings.b1", "lost": False, "detour_s": pytest.approx(190 * S_PER_M)},
    ]
    # with the default 15 m overlap only R2, over the pipe, closes: R1 and R3 pass P2's ends
    # within 6 m for 3.3 m (sqrt(6^2 - 5^2)), R4 for 11 m (from 5 m south to 6 m north of it)
    default = cascade(broken, access, distance_m=6.0).to_dict()
    assert default["roads_closed"] == ["roads.R2"]
    assert [a["building"] for a in default["access_affected"]] == ["buildings.b2", "buildings.b1"]
    assert cascade(broken, access, distance_m=6.0, min_overlap_m=11.5).to_dict()[
        "roads_closed"
    ] == ["roads.R2"]
    assert (
        "roads.R4"
        in cascade(broken, access, distance_m=6.0, min_overlap_m=10.5).to_dict()["roads_closed"]
    )
    # within 1 m (any overlap) only R4, which passes over P2's west end at (100,0)
    near_1 = cascade(broken, access, distance_m=1.0, min_overlap_m=0).to_dict()
    assert near_1["roads_closed"] == ["roads.R4"]
