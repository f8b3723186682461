"""Tests of twin.io.epanet: hand-checked files, and wntr's reading of the networks it ships."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import wntr
from shapely.geometry import LineString, Point

from twin.errors import SourceError, UsageError
from twin.io.epanet import EPANET_KINDS, read_epanet
from twin.kinds import get_kind

NETWORKS = os.path.join(os.path.dirname(wntr.__file__), "library", "networks")
# Net1-3, ky4 and ky10 use GPM (US units: feet, inches, hp); ky10 has PRVs and POWER pumps.
SHIPPED = ("Net1.inp", "Net2.inp", "Net3.inp", "Net6.inp", "ky4.inp", "ky10.inp")

TINY = """\
[TITLE]
Tiny network, values checked by hand ; not a comment in EPANET's eyes, but ignored

[junctions]
;ID\tElev\tDemand\tPattern
 J1\t10\t36\t\t;36 m3/h = 10 L/s
 J2\t12.5\t18
 J3\t8

[Reservoirs]
 R1\t50

[TANKS]
;ID Elev InitLvl MinLvl MaxLvl Diam MinVol
 T1   30   2   0.5   6   12   0

[PIPES]
;ID N1 N2 Length Diam Rough Minor Status
 P1\tR1\tJ1\t1000\t300\t100\t0\tOpen
 P2\tJ1\tJ2\t500\t200\t100\t0\tClosed
 P3\tJ2\tT1\t250.5\t150\t120
 P4\tJ1\tJ3\t100\t100\t100\tCV

[PUMPS]
 PU1\tJ3\tJ2\tPOWER 15 SPEED 1

[VALVES]
 V1\tJ2\tJ3\t150\tprv\t30\t0
 V2\tJ1\tJ3\t100\tTCV\t5\t0

[STATUS]
 V2\tClosed

[OPTIONS]
 Units\tCMH
 Headloss\tH-W

[COORDINATES]
;Node X Y
 J1\t0\t0
 J2\t100\t0
 J3\t100\t100
 R1\t-100\t0
 T1\t200\t0

[VERTICES]
 P1\t-50\t10
 P1\t-25\t10

[END]
"""


def _write(tmp_path: Path, text: str, name: str = "tiny.inp", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return _write(tmp_path, TINY)


# --------------------------------------------------------------------------- hand-checked file


def test_tiny_pipes(tiny: Path) -> None:
    pipes = read_epanet(tiny, "pipe").set_index("id")
    assert pipes.crs is None
    assert list(pipes.index) == ["P1", "P2", "P3", "P4"]
    assert pipes.loc["P1", "geometry"].equals(LineString([(-100, 0), (-50, 10), (-25, 10), (0, 0)]))
    assert pipes.loc["P3", "geometry"].equals(LineString([(100, 0), (200, 0)]))
    assert pipes["status"].tolist() == ["open", "closed", "open", "cv"]
    assert pipes["diameter_mm"].tolist() == [300, 200, 150, 100]
    assert pipes["length_m"].tolist() == [1000, 500, 250.5, 100]
    assert pipes["roughness"].tolist() == [100, 100, 120, 100]
    assert pipes["minor_loss"].tolist() == [0, 0, 0, 0]
    assert (pipes["from_node"] + ">" + pipes["to_node"]).tolist() == [
        "R1>J1",
        "J1>J2",
        "J2>T1",
        "J1>J3",
    ]
    assert set(pipes["network"]) == {"water"}


def test_tiny_nodes_and_sources(tiny: Path) -> None:
    junctions = read_epanet(tiny, "junction").set_index("id")
    assert junctions["elevation_m"].tolist() == [10, 12.5, 8]
    # CMH: 36 m3/h = 10 L/s, 18 m3/h = 5 L/s; no demand given = 0
    assert junctions["base_demand_lps"].tolist() == pytest.approx([10, 5, 0])
    assert junctions.loc["J3", "geometry"].equals(Point(100, 100))
    sources = read_epanet(tiny, "source").set_index("id")
    assert sources["source_type"].to_dict() == {"R1": "reservoir", "T1": "tank"}
    assert sources["elevation_m"].to_dict() == {"R1": 50, "T1": 30}
    assert sources.loc[
        "T1", ["init_level_m", "min_level_m", "max_level_m", "tank_diameter_m"]
    ].tolist() == [2, 0.5, 6, 12]
    assert sources.loc["T1", "geometry"].equals(Point(200, 0))


def test_tiny_valves_and_pumps(tiny: Path) -> None:
    valves = read_epanet(tiny, "valve").set_index("id")
    assert valves["valve_type"].to_dict() == {"V1": "PRV", "V2": "TCV"}
    assert valves["status"].to_dict() == {"V1": "open", "V2": "closed"}
    assert valves["diameter_mm"].to_dict() == {"V1": 150, "V2": 100}
    assert valves.loc["V1", "geometry"].equals(Point(100, 50))  # midpoint of J2-J3
    assert valves.loc["V2", "geometry"].equals(Point(50, 50))  # midpoint of J1-J3
    pumps = read_epanet(tiny, "pump").set_index("id")
    assert pumps.loc["PU1", ["from_node", "to_node", "power_kw", "status"]].tolist() == [
        "J3",
        "J2",
        15,
        "open",
    ]
    assert pumps.loc["PU1", "geometry"].equals(Point(100, 50))


def test_demands_section_replaces_junction_demand(tmp_path: Path) -> None:
    # EPANET (and wntr): a junction listed in [DEMANDS] takes its demands from
    # there, the first being the base demand; 72 m3/h = 20 L/s, 7.2 m3/h = 2 L/s.
    demands = "[DEMANDS]\n J1\t72\t\t;domestic\n J1\t3.6\n J3\t7.2\n\n"
    text = TINY.replace("[STATUS]", demands + "[STATUS]")
    junctions = read_epanet(_write(tmp_path, text), "junction").set_index("id")
    assert junctions["base_demand_lps"].tolist() == pytest.approx([20, 5, 2])


def test_us_units_are_converted(tmp_path: Path) -> None:
    path = _write(tmp_path, TINY.replace("Units\tCMH", "Units\tGPM"))
    pipes = read_epanet(path, "pipe").set_index("id")
    assert pipes.loc["P1", "length_m"] == pytest.approx(304.8)  # 1000 ft
    assert pipes.loc["P1", "diameter_mm"] == pytest.approx(7620)  # 300 in
    junctions = read_epanet(path, "junction").set_index("id")
    assert junctions.loc["J1", "elevation_m"] == pytest.approx(3.048)
    assert junctions.loc["J1", "base_demand_lps"] == pytest.approx(36 * 0.0630901964)
    assert read_epanet(path, "pump")["power_kw"].iloc[0] == pytest.approx(15 * 0.745699872)
    assert read_epanet(path, "valve")["diameter_mm"].tolist() == pytest.approx([3810, 2540])


def test_status_section_closes_pumps_and_pipes(tmp_path: Path) -> None:
    text = TINY.replace(" V2\tClosed", " V2\tClosed\n PU1\t0\n P1\tCLOSED\n P4\tClosed")
    path = _write(tmp_path, text)
    assert read_epanet(path, "pump")["status"].tolist() == ["closed"]  # speed 0
    status = read_epanet(path, "pipe").set_index("id")["status"]
    assert status["P1"] == "closed"
    assert status["P4"] == "cv"  # a check valve keeps its type


@pytest.mark.parametrize(("encoding", "name"), [("latin-1", "Vä1"), ("utf-8", "阀门1")])
def test_encodings(tmp_path: Path, encoding: str, name: str) -> None:
    path = _write(tmp_path, TINY.replace("V1", name), encoding=encoding)
    assert read_epanet(path, "valve")["id"].tolist() == [name, "V2"]


def test_columns_cover_the_kinds(tiny: Path) -> None:
    for kind in EPANET_KINDS:
        frame = read_epanet(tiny, kind)
        spec = get_kind(kind)
        assert set(spec.required_fields) <= set(frame.columns), kind
        assert frame.geometry.name == "geometry"
        for column in frame.columns:
            field = spec.field(column)
            if field is not None and field.dtype == "float":
                assert frame[column].dtype == "float64", (kind, column)


def test_empty_section_gives_typed_empty_frame(tmp_path: Path) -> None:
    text = TINY.replace(" V1\tJ2\tJ3\t150\tprv\t30\t0\n V2\tJ1\tJ3\t100\tTCV\t5\t0\n", "")
    text = text.replace(" V2\tClosed", "")
    valves = read_epanet(_write(tmp_path, text), "valve")
    assert len(valves) == 0
    assert "valve_type" in valves.columns and valves["diameter_mm"].dtype == "float64"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("old", "new", "fragment", "kind", "message"),
    [
        ("250.5", "25O.5", "P3\t", "pipe", "length '25O.5' is not a number"),
        ("\t120\n", "\n", "P3\t", "pipe", "needs at least 6 fields"),
        ("J3\t8", "J3\teight", "J3\teight", "junction", "elevation 'eight' is not a number"),
        ("P4\tJ1\tJ3", "P4\tJ1\tJ9", "P4\t", "pipe", "undefined node 'J9'"),
        ("T1\t200\t0", "T1\t200\tzero", "T1\t200", "pipe", "Y coordinate 'zero' is not a number"),
        ("Units\tCMH", "Units\tFURLONGS", "FURLONGS", "pipe", "unknown flow units 'FURLONGS'"),
        ("prv", "XYZ", "XYZ", "valve", "valve type 'XYZ'"),
        ("POWER 15 SPEED 1", "POWER 15 SPEED", "PU1", "pump", "keyword 'SPEED' has no value"),
        ("POWER 15", "TORQUE 15", "PU1", "pump", "unknown keyword 'TORQUE'"),
        (" J3\t8\n", " J3\t8\n J1\t9\n", " J1\t9", "pipe", "node id 'J1' is defined twice"),
        (" V2\tClosed", " V9\tClosed", "V9", "pipe", "[STATUS] undefined link 'V9'"),
        (
            "[STATUS]",
            "[DEMANDS]\n R1\t6.5\n[STATUS]",
            " R1\t6.5",
            "junction",
            "[DEMANDS] undefined junction 'R1'",
        ),
    ],
)
def test_malformed_line_names_file_and_line(
    tmp_path: Path, old: str, new: str, fragment: str, kind: str, message: str
) -> None:
    assert old in TINY
    text = TINY.replace(old, new, 1)
    path = _write(tmp_path, text)
    with pytest.raises(SourceError) as info:
        read_epanet(path, kind)
    assert str(info.value).startswith(f"{path}:{_line_of(text, fragment)}: ")
    assert message in str(info.value)


def test_missing_coordinates_are_named_on_one_line(tmp_path: Path) -> None:
    text = TINY.replace(" J3\t100\t100\n", "").replace(" T1\t200\t0\n", "")
    path = _write(tmp_path, text)
    with pytest.raises(SourceError, match=r"2 node\(s\) have no \[COORDINATES\]: J3, T1$") as info:
        read_epanet(path, "pipe")
    assert "\n" not in str(info.value)
    with pytest.raises(SourceError, match=r": J3$"):
        read_epanet(path, "junction")


def test_missing_coordinates_only_matter_for_the_kind_read(tmp_path: Path) -> None:
    path = _write(tmp_path, TINY.replace(" T1\t200\t0\n", ""))
    assert len(read_epanet(path, "junction")) == 3
    with pytest.raises(SourceError, match=r"no \[COORDINATES\]: T1"):
        read_epanet(path, "source")


def test_unknown_kind_lists_the_kinds(tiny: Path) -> None:
    with pytest.raises(UsageError, match="pipe, junction, valve, pump, source"):
        read_epanet(tiny, "building")


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read EPANET file"):
        read_epanet(tmp_path / "nope.inp", "pipe")
    with pytest.raises(SourceError, match="not an EPANET INP file"):
        read_epanet(_write(tmp_path, "id,x,y\n1,2,3\n", "a.inp"), "pipe")


# --------------------------------------------------------------------------- against wntr


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request: pytest.FixtureRequest) -> tuple[str, wntr.network.WaterNetworkModel]:
    path = os.path.join(NETWORKS, request.param)
    return path, wntr.network.WaterNetworkModel(path)


def test_counts_match_wntr(shipped: tuple[str, wntr.network.WaterNetworkModel]) -> None:
    path, wn = shipped
    assert len(read_epanet(path, "pipe")) == wn.num_pipes
    assert len(read_epanet(path, "junction")) == wn.num_junctions
    assert len(read_epanet(path, "valve")) == wn.num_valves
    assert len(read_epanet(path, "pump")) == wn.num_pumps
    types = read_epanet(path, "source")["source_type"].value_counts()
    assert types.get("reservoir", 0) == wn.num_reservoirs
    assert types.get("tank", 0) == wn.num_tanks


def _xy(point: Point) -> tuple[float, float]:
    return point.x, point.y


def test_pipes_match_wntr(shipped: tuple[str, wntr.network.WaterNetworkModel]) -> None:
    path, wn = shipped
    pipes = read_epanet(path, "pipe").set_index("id")
    assert sorted(pipes.index) == sorted(wn.pipe_name_list)
    for name, pipe in wn.pipes():
        row = pipes.loc[name]
        assert (row.from_node, row.to_node) == (pipe.start_node_name, pipe.end_node_name)
        assert row.length_m == pytest.approx(pipe.length, rel=1e-9)
        assert row.diameter_mm == pytest.approx(pipe.diameter * 1000, rel=1e-9)
        assert (row.status == "cv") == pipe.check_valve
        closed = pipe.initial_status == wntr.network.LinkStatus.Closed
        assert (row.status == "closed") == (closed and not pipe.check_valve)
        expected = [pipe.start_node.coordinates, *pipe.vertices, pipe.end_node.coordinates]
        got = [xy for point in row.geometry.coords for xy in point]
        assert got == pytest.approx([xy for point in expected for xy in point])


def test_nodes_match_wntr(shipped: tuple[str, wntr.network.WaterNetworkModel]) -> None:
    path, wn = shipped
    junctions = read_epanet(path, "junction").set_index("id")
    for name, junction in wn.junctions():
        row = junctions.loc[name]
        assert _xy(row.geometry) == pytest.approx(junction.coordinates)
        assert row.elevation_m == pytest.approx(junction.elevation, rel=1e-9, abs=1e-12)
        # wntr: m3/s; ours: L/s
        assert row.base_demand_lps == pytest.approx(junction.base_demand * 1000, rel=1e-9)
    sources = read_epanet(path, "source").set_index("id")
    for name, reservoir in wn.reservoirs():
        assert sources.loc[name, "elevation_m"] == pytest.approx(reservoir.base_head, rel=1e-9)
        assert _xy(sources.loc[name, "geometry"]) == pytest.approx(reservoir.coordinates)
    for name, tank in wn.tanks():
        row = sources.loc[name]
        assert row.elevation_m == pytest.approx(tank.elevation, rel=1e-9, abs=1e-12)
        assert [row.min_level_m, row.max_level_m, row.tank_diameter_m] == pytest.approx(
            [tank.min_level, tank.max_level, tank.diameter], rel=1e-9, abs=1e-12
        )


def test_valves_and_pumps_match_wntr(shipped: tuple[str, wntr.network.WaterNetworkModel]) -> None:
    path, wn = shipped
    valves = read_epanet(path, "valve").set_index("id")
    for name, valve in wn.valves():
        row = valves.loc[name]
        assert row.valve_type == valve.valve_type
        assert row.diameter_mm == pytest.approx(valve.diameter * 1000, rel=1e-9)
        assert (row.from_node, row.to_node) == (valve.start_node_name, valve.end_node_name)
        if not valve.vertices:
            (x0, y0), (x1, y1) = valve.start_node.coordinates, valve.end_node.coordinates
            assert _xy(row.geometry) == pytest.approx(((x0 + x1) / 2, (y0 + y1) / 2))
    pumps = read_epanet(path, "pump").set_index("id")
    for name, pump in wn.pumps():
        row = pumps.loc[name]
        assert (row.from_node, row.to_node) == (pump.start_node_name, pump.end_node_name)
        if pump.pump_type == "POWER":
            assert row.power_kw == pytest.approx(pump.power / 1000, rel=1e-6)  # wntr: W
        else:
            assert math.isnan(row.power_kw)
        closed = pump.initial_status == wntr.network.LinkStatus.Closed
        assert (row.status == "closed") == closed


def test_shipped_power_pumps_are_checked() -> None:
    """ky10 (GPM) has 13 POWER pumps and 5 PRVs: the conversions above are exercised."""
    path = os.path.join(NETWORKS, "ky10.inp")
    pumps = read_epanet(path, "pump")
    assert pumps["power_kw"].notna().sum() == 13
    assert pumps["power_kw"].min() == pytest.approx(5 * 0.745699872)
    assert set(read_epanet(path, "valve")["valve_type"]) == {"PRV"}
