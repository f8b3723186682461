"""The synthetic sample city keeps its promises (twin.sample).

Every property is checked by an independent computation on the generated
layers or on the delivery files read back, not by trusting the generator's
own bookkeeping.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
import yaml
from pyproj import Transformer

from twin.errors import UsageError
from twin.mapping import read_mapping
from twin.sample import LAYERS, generate_city, write_delivery
from twin.sample.__main__ import main
from twin.webcoords import gcj02_to_wgs84

N = 3000
SEED = 42
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
REACH_M = 50.0


@pytest.fixture(scope="module")
def generated() -> dict[str, gpd.GeoDataFrame]:
    return generate_city(N, seed=SEED)


@pytest.fixture(scope="module")
def delivery(
    generated: dict[str, gpd.GeoDataFrame], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("delivery")
    write_delivery(generated, out)
    return out


def _endpoint_graph(lines: gpd.GeoSeries, decimals: int = 3) -> nx.Graph:
    """Graph whose nodes are line end points rounded to ``decimals``."""
    graph = nx.Graph()
    for geom in lines:
        xy = np.round(shapely.get_coordinates(geom), decimals)
        graph.add_edge(tuple(xy[0]), tuple(xy[-1]))
    return graph


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


# --- determinism and scaling -------------------------------------------------------------


def test_same_seed_gives_identical_layers_and_files(
    generated: dict[str, gpd.GeoDataFrame], delivery: Path, tmp_path: Path
) -> None:
    again = generate_city(N, seed=SEED)
    assert list(again) == list(LAYERS)
    for name in LAYERS:
        a, b = generated[name], again[name]
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
        wkb_a, wkb_b = shapely.to_wkb(a.geometry.to_numpy()), shapely.to_wkb(b.geometry.to_numpy())
        assert (wkb_a == wkb_b).all()
    write_delivery(again, tmp_path)
    assert _files(tmp_path) == _files(delivery)


def test_different_seed_gives_a_different_city(generated: dict[str, gpd.GeoDataFrame]) -> None:
    other = generate_city(N, seed=SEED + 1)
    assert len(other["buildings"]) == N
    a = shapely.to_wkb(generated["buildings"].geometry.to_numpy()[:100])
    b = shapely.to_wkb(other["buildings"].geometry.to_numpy()[:100])
    assert not np.array_equal(a, b)
    a = shapely.to_wkb(generated["roads"].geometry.to_numpy()[:50])
    b = shapely.to_wkb(other["roads"].geometry.to_numpy()[:50])
    assert not np.array_equal(a, b)


def _counts(c: dict[str, gpd.GeoDataFrame]) -> dict[str, int]:
    return {name: len(frame) for name, frame in c.items()}


def test_counts_follow_the_number_of_buildings(generated: dict[str, gpd.GeoDataFrame]) -> None:
    counts = _counts(generated)
    assert counts["buildings"] == N
    assert N / 6 <= counts["parcels"] <= N / 3.5  # ~1 parcel per 5 buildings
    assert N / 12 <= counts["roads"] <= N / 7  # ~1 segment per 10 buildings
    assert N / 12 <= counts["water_pipes"] <= N / 7
    assert counts["sensors"] == N // 10
    assert 0.28 <= counts["valves"] / (counts["water_pipes"] + counts["gas_pipes"]) <= 0.38
    assert 3 <= counts["districts"] <= 6
    assert len(generated["sources"].query("network == 'water'")) in (1, 2)
    assert len(generated["sources"].query("network == 'gas'")) >= 1
    small = _counts(generate_city(1000, seed=SEED))
    assert small["buildings"] == 1000
    for name in ("parcels", "roads", "water_pipes", "gas_pipes", "sensors"):
        assert 2.3 <= counts[name] / small[name] <= 3.7, name


@pytest.mark.slow
def test_counts_scale_to_100_000_buildings(generated: dict[str, gpd.GeoDataFrame]) -> None:
    big = generate_city(100_000, seed=SEED)
    counts, base = _counts(big), _counts(generated)
    assert counts["buildings"] == 100_000
    scale = 100_000 / N
    for name in ("parcels", "roads", "water_pipes", "gas_pipes", "valves", "sensors"):
        assert 0.75 * scale <= counts[name] / base[name] <= 1.25 * scale, name
    # cameras follow the arterial crossings, a larger share of a small town's streets
    assert 0.6 * scale <= counts["cameras"] / base["cameras"] <= 1.25 * scale
    assert 3 <= counts["districts"] <= 6
    assert counts["grids"] > 10 * base["grids"]
    assert nx.number_connected_components(_endpoint_graph(big["roads"].geometry)) == 1
    roads = shapely.STRtree(big["roads"].geometry.to_numpy())
    _, dist = roads.query_nearest(big["buildings"].geometry.to_numpy(), return_distance=True)
    assert dist.max() <= REACH_M


def test_rejects_bad_arguments(generated: dict[str, gpd.GeoDataFrame], tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        generate_city(10)
    with pytest.raises(UsageError):
        generate_city(1000, seed=-1)
    with pytest.raises(UsageError):
        write_delivery(generated, tmp_path, formats="zip")


# --- networks ------------------------------------------------------------------------------


def test_road_network_is_one_component(delivery: Path) -> None:
    roads = pyogrio.read_dataframe(delivery / "roads.gdb", layer="roads")
    graph = _endpoint_graph(roads.geometry)
    assert nx.number_connected_components(graph) == 1
    assert graph.number_of_edges() == len(roads)  # no duplicate segments
    assert set(roads["道路等级"]) == {"快速路", "主干路", "次干路", "支路"}
    oneway = roads[roads["单行"] == 1]
    assert 0 < len(oneway) < 0.2 * len(roads)
    assert set(oneway["道路等级"]) == {"支路"}
    assert roads["道路编码"].is_unique


@pytest.mark.parametrize("network", ["water", "gas"])
def test_pipe_network_is_connected_with_sources_on_pipe_ends(delivery: Path, network: str) -> None:
    path = delivery / "networks.gpkg"
    pipes = pyogrio.read_dataframe(path, layer=f"{network}_pipes")
    sources = pyogrio.read_dataframe(path, layer="sources").query("network == @network")
    graph = _endpoint_graph(pipes.geometry)
    assert nx.number_connected_components(graph) == 1
    assert len(sources) >= 1
    ends = np.concatenate(
        [shapely.get_coordinates(shapely.get_point(pipes.geometry.to_numpy(), k)) for k in (0, -1)]
    )
    for point in sources.geometry:
        gap = np.hypot(*(ends - np.array([point.x, point.y])).T).min()
        assert gap < 1e-6
        assert graph.degree(tuple(np.round([point.x, point.y], 3))) == 1  # the end of its main
    assert set(pipes["network"]) == {network}
    assert pipes["pipe_id"].is_unique


def test_valves_lie_on_pipes(delivery: Path) -> None:
    path = delivery / "networks.gpkg"
    valves = pyogrio.read_dataframe(path, layer="valves")
    for network in ("water", "gas"):
        pipes = pyogrio.read_dataframe(path, layer=f"{network}_pipes")
        mine = valves[valves["network"] == network]
        tree = shapely.STRtree(pipes.geometry.to_numpy())
        (_, nearest), dist = tree.query_nearest(
            mine.geometry.to_numpy(), all_matches=False, return_distance=True
        )
        assert dist.max() < 1e-6
        # on the vertex 8 m from the pipe's start, the intersection on the valve line
        along = shapely.line_locate_point(pipes.geometry.to_numpy()[nearest], mine.geometry)
        assert np.allclose(along, 8.0)
        assert len(np.unique(nearest)) == len(mine)  # one valve per valved main
    assert valves["valve_id"].is_unique


def _segment_sizes(pipes: gpd.GeoDataFrame, valves: gpd.GeoDataFrame) -> list[int]:
    """Pipes per isolation segment: node-pipe graph, cut where an operable valve sits.

    Valves stand 8 m from the start of their pipe, so each cuts its pipe from the start
    node; inoperable valves cut nothing.
    """
    lines = pipes.geometry.to_numpy()
    graph = nx.Graph()
    starts = np.round(shapely.get_coordinates(shapely.get_point(lines, 0)), 3)
    ends = np.round(shapely.get_coordinates(shapely.get_point(lines, -1)), 3)
    for k in range(len(lines)):
        graph.add_edge(("pipe", k), tuple(starts[k]))
        graph.add_edge(("pipe", k), tuple(ends[k]))
    cutting = valves[valves["status"] != "inoperable"].geometry.to_numpy()
    (_, valved), _ = shapely.STRtree(lines).query_nearest(
        cutting, all_matches=False, return_distance=True
    )
    graph.remove_edges_from((("pipe", k), tuple(starts[k])) for k in valved)
    parts = nx.connected_components(graph)
    return sorted(sum(isinstance(v[0], str) for v in part) for part in parts)


@pytest.mark.parametrize("network", ["water", "gas"])
def test_valves_cut_the_network_into_blocks_of_a_few_streets(delivery: Path, network: str) -> None:
    """A valve line every third street each way: segments of about 3 x 3 blocks.

    A full 3 x 3 group of blocks holds 9 horizontal and 9 vertical mains (18 pipes);
    groups on the town's edge are smaller, missing local streets make them smaller,
    an inoperable valve merges two groups; no segment is a large share of the town
    (a random third of the pipes with a valve left 96 % of them in one segment).
    """
    path = delivery / "networks.gpkg"
    pipes = pyogrio.read_dataframe(path, layer=f"{network}_pipes")
    valves = pyogrio.read_dataframe(path, layer="valves").query("network == @network")
    sizes = np.array(_segment_sizes(pipes, valves))
    sizes = sizes[sizes > 0]  # a node every valve cuts off is a segment without pipes
    assert sizes.max() <= 0.15 * len(pipes)
    assert 12 <= np.median(sizes) <= 20
    assert (sizes <= 18).mean() >= 0.75
    assert 0.28 <= len(valves) / len(pipes) <= 0.38  # a valve on a third of the mains


@pytest.mark.parametrize("layer", ["roads", "water_pipes", "gas_pipes"])
def test_every_building_within_50_m(generated: dict[str, gpd.GeoDataFrame], layer: str) -> None:
    joined = gpd.sjoin_nearest(
        generated["buildings"][["geometry"]], generated[layer][["geometry"]], distance_col="dist"
    )
    per_building = joined.groupby(level=0)["dist"].min()
    assert len(per_building) == N
    assert per_building.max() <= REACH_M


# --- delivery files ------------------------------------------------------------------------


def test_parcels_shapefile_is_gbk(generated: dict[str, gpd.GeoDataFrame], delivery: Path) -> None:
    assert (delivery / "parcels.cpg").read_text().strip().upper() == "GBK"
    parcels = pyogrio.read_dataframe(delivery / "parcels.shp")
    expected = generated["parcels"]
    assert list(parcels.columns) == list(expected.columns)
    for field in ("地块编码", "地块名称", "用地性质"):
        assert parcels[field].tolist() == expected[field].tolist()
    assert pyogrio.read_info(delivery / "parcels.shp")["crs"] == "EPSG:4544"
    for field in expected.columns.drop("geometry"):
        assert len(field.encode("gbk")) <= 10, field
    raw = (delivery / "parcels.dbf").read_bytes()
    header = int.from_bytes(raw[8:10], "little")
    raw[header:].decode("gbk")  # the records decode as GBK …
    assert "容积率上限".encode("gbk") in raw[:header]
    assert expected["地块名称"].iloc[0].encode("gbk") in raw
    assert "地块编码".encode() not in raw  # … and are not UTF-8


def test_buildings_geojson_is_cgcs2000_geographic(
    generated: dict[str, gpd.GeoDataFrame], delivery: Path
) -> None:
    path = delivery / "buildings.geojson"
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::4490"
    assert "层数" in doc["features"][0]["properties"]
    back = pyogrio.read_dataframe(path)
    assert back.crs.to_epsg() == 4490
    lon, lat = back.geometry.union_all().centroid.coords[0]
    assert abs(lon - 104.06) < 0.2 and abs(lat - 30.66) < 0.2
    moved = shapely.distance(
        back.to_crs(4544).geometry.centroid.to_numpy(),
        generated["buildings"].geometry.centroid.to_numpy(),
    )
    assert moved.max() < 0.01
    assert back["建筑编码"].tolist() == generated["buildings"]["建筑编码"].tolist()


@pytest.mark.parametrize("name", ["sensors", "cameras"])
def test_csv_coordinates_are_gcj02(
    generated: dict[str, gpd.GeoDataFrame], delivery: Path, name: str
) -> None:
    path = delivery / f"{name}.csv"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(path, encoding="utf-8-sig", dtype={"设备编号": str})
    assert list(table.columns) == [
        "设备编号",
        "类型",
        "经度",
        "纬度",
        "阈值下限",
        "阈值上限",
        "单位",
        "感知半径",
        "名称",
    ]
    frame = generated[name]
    assert table["设备编号"].tolist() == frame["设备编号"].tolist()
    to_wgs84 = Transformer.from_crs("EPSG:4544", "EPSG:4326", always_xy=True)
    to_twin = Transformer.from_crs("EPSG:4326", "EPSG:4544", always_xy=True)
    truth = shapely.get_coordinates(frame.geometry.to_numpy())
    lon, lat = gcj02_to_wgs84(table["经度"].to_numpy(), table["纬度"].to_numpy())
    x, y = to_twin.transform(lon, lat)
    assert np.hypot(x - truth[:, 0], y - truth[:, 1]).max() < 0.5
    raw_x, raw_y = to_twin.transform(table["经度"].to_numpy(), table["纬度"].to_numpy())
    assert np.hypot(raw_x - truth[:, 0], raw_y - truth[:, 1]).min() > 100  # really offset
    wgs_lon, _ = to_wgs84.transform(truth[:, 0], truth[:, 1])
    assert abs(np.mean(wgs_lon) - 104.06) < 0.2


def test_mapping_file_describes_the_delivery(delivery: Path) -> None:
    doc = yaml.safe_load((delivery / "mapping.yaml").read_text(encoding="utf-8"))
    assert list(doc["layers"]) == list(LAYERS)
    specs = read_mapping(delivery / "mapping.yaml")
    kinds = {name: spec.kind for name, spec in specs.items()}
    assert kinds["parcels"] == "parcel" and kinds["cameras"] == "sensor"
    for name, spec in specs.items():
        assert spec.source.exists(), name
        if spec.source.suffix == ".csv":
            columns = pd.read_csv(spec.source, encoding="utf-8-sig", nrows=0).columns
        else:
            columns = pyogrio.read_info(spec.source, layer=spec.source_layer)["fields"]
        assert set(spec.fields) <= set(columns), name
        assert spec.id is None or spec.id in columns, name
    sensors = specs["sensors"]
    assert (sensors.src_crs, sensors.coords, sensors.x, sensors.y) == (
        "EPSG:4326",
        "gcj02",
        "经度",
        "纬度",
    )
    assert specs["buildings"].fields["层数"] == "floors"
    assert specs["grids"].fields["所属街道"] == "district_code"


def test_single_geopackage_format(generated: dict[str, gpd.GeoDataFrame], tmp_path: Path) -> None:
    paths = write_delivery(generated, tmp_path, formats="gpkg")
    layers = {row[0] for row in pyogrio.list_layers(tmp_path / "city.gpkg")}
    assert layers == set(LAYERS)
    specs = read_mapping(paths["mapping"])
    assert all(spec.source == (tmp_path / "city.gpkg").resolve() for spec in specs.values())
    back = pyogrio.read_dataframe(tmp_path / "city.gpkg", layer="buildings")
    assert back.crs.to_epsg() == 4544 and len(back) == N


def test_command_line_writes_a_delivery(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path), "--buildings", "300", "--seed", "5"]) == 0
    assert "buildings" in capsys.readouterr().out
    for file in (
        "parcels.shp",
        "buildings.geojson",
        "roads.gdb",
        "networks.gpkg",
        "sensors.csv",
        "cameras.csv",
        "boundaries.gpkg",
        "mapping.yaml",
    ):
        assert (tmp_path / file).exists(), file
    assert len(pyogrio.read_dataframe(tmp_path / "buildings.geojson")) == 300


def test_committed_sample_is_the_seed_42_city(delivery: Path) -> None:
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    assert "synthetic" in readme
    assert "python -m twin.sample data/samples --buildings 3000 --seed 42" in readme
    for file in (
        "parcels.shp",
        "parcels.dbf",
        "parcels.cpg",
        "buildings.geojson",
        "sensors.csv",
        "cameras.csv",
        "mapping.yaml",
    ):
        assert (SAMPLES / file).read_bytes() == (delivery / file).read_bytes(), file
    for file, layer in (
        ("roads.gdb", "roads"),
        ("networks.gpkg", "valves"),
        ("networks.gpkg", "water_pipes"),
        ("boundaries.gpkg", "grids"),
    ):
        committed = pyogrio.read_dataframe(SAMPLES / file, layer=layer)
        fresh = pyogrio.read_dataframe(delivery / file, layer=layer)
        pd.testing.assert_frame_equal(
            committed.drop(columns="geometry"), fresh.drop(columns="geometry")
        )
        assert committed.geometry.geom_equals_exact(fresh.geometry, 1e-9).all()
    size = sum(p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file())
    assert size < 10 * 2**20


# --- attributes and deliberate defects -----------------------------------------------------


def test_promised_shares(generated: dict[str, gpd.GeoDataFrame]) -> None:
    valves = generated["valves"]
    share = valves["status"].value_counts(normalize=True)
    assert 0.015 <= share["closed"] <= 0.045
    assert 0.01 <= share["inoperable"] <= 0.03
    assert share["open"] >= 0.9
    b = generated["buildings"]
    assert b["层数"].isna().mean() == pytest.approx(0.10, abs=0.02)
    assert b["建筑高度"].notna().mean() == pytest.approx(0.60, abs=0.03)
    assert not (b["层数"].isna() & b["建筑高度"].isna()).any()
    both = b.dropna(subset=["层数", "建筑高度"])
    storey = both["建筑高度"] / both["层数"].astype(float)
    assert storey.between(2.7, 7.0).all()
    assert storey.median() == pytest.approx(3.0, abs=0.3)
    assert b["建筑名称"].notna().mean() == pytest.approx(0.3, abs=0.05)
    assert b["建筑编码"].is_unique and generated["parcels"]["地块编码"].is_unique


def test_land_use_shares_and_empty_parcels(generated: dict[str, gpd.GeoDataFrame]) -> None:
    parcels = generated["parcels"]
    share = parcels["用地性质"].value_counts(normalize=True)
    assert share.index[0] == "R2"
    assert share[["R1", "R2", "R3"]].sum() > 0.3
    assert {"B1", "A3", "M1", "G1", "S4", "U1"} <= set(share.index)
    hits = gpd.sjoin(parcels, generated["buildings"][["geometry"]], predicate="intersects")
    empty = parcels.loc[~parcels.index.isin(hits.index), "用地性质"]
    assert {"G1", "S4"} <= set(empty)
    assert parcels["密度上限"].between(0, 1).all()


def _largest_overlap(generated: dict[str, gpd.GeoDataFrame]) -> tuple[pd.Series, pd.Series]:
    """Parcel of each building by largest overlap, and how many parcels each touches."""
    b = generated["buildings"][["geometry"]].reset_index(names="b")
    p = generated["parcels"][["geometry"]].reset_index(names="p")
    pieces = gpd.overlay(b, p, how="intersection", keep_geom_type=True)
    pieces["area"] = pieces.area
    pieces = pieces[pieces["area"] > 1.0]
    best = pieces.sort_values("area").groupby("b")["p"].last()
    return best, pieces.groupby("b").size()


def test_compliance_checks_have_cases(generated: dict[str, gpd.GeoDataFrame]) -> None:
    b, parcels = generated["buildings"], generated["parcels"]
    best, touched = _largest_overlap(generated)
    assert (touched >= 2).sum() >= 1  # straddles a parcel boundary
    assert len(b) - len(best) >= 1  # stands on no parcel
    floors = b["层数"].astype(float).fillna(b["建筑高度"] / 3.0)
    gfa = (b.geometry.area * floors).groupby(best).sum()
    far = gfa / parcels.geometry.area.reindex(gfa.index)
    over_far = far > parcels["容积率上限"].reindex(far.index) + 1e-9
    assert 1 <= over_far.sum() <= 0.05 * len(far)
    limit = parcels["限高"].reindex(best.to_numpy()).to_numpy()
    height = b["建筑高度"].reindex(best.index).to_numpy()
    over_height = height > limit
    assert 1 <= over_height.sum() <= 0.02 * len(b)
    geoms = b.geometry.to_numpy()
    assert (shapely.get_num_interior_rings(geoms) > 0).sum() >= 1
    assert (shapely.get_type_id(geoms) == shapely.GeometryType.MULTIPOLYGON).sum() >= 1
    assert shapely.is_valid(geoms).all()


def test_sensors_stand_where_promised(generated: dict[str, gpd.GeoDataFrame]) -> None:
    s = generated["sensors"]
    assert set(s["类型"]) == {"smoke", "water_pressure", "gas_leak", "water_level"}
    assert s["设备编号"].is_unique

    def nearest(points: gpd.GeoDataFrame, layer: str) -> np.ndarray:
        tree = shapely.STRtree(generated[layer].geometry.to_numpy())
        return tree.query_nearest(points.geometry.to_numpy(), return_distance=True)[1]

    assert nearest(s[s["类型"] == "water_pressure"], "water_pipes").max() < 1e-6
    assert nearest(s[s["类型"] == "gas_leak"], "gas_pipes").max() <= 3.0
    assert nearest(s[s["类型"] == "smoke"], "buildings").max() == 0.0
    assert (s.loc[s["类型"] == "water_level", "单位"] == "m").all()
    assert (s["阈值上限"] > s["阈值下限"].fillna(-np.inf)).all()
    cams = generated["cameras"]
    assert (cams["类型"] == "camera").all() and len(cams) > 0
    assert nearest(cams, "roads").max() < 15.0


def test_districts_tile_the_city_and_grids_nest(generated: dict[str, gpd.GeoDataFrame]) -> None:
    d, g = generated["districts"], generated["grids"]
    assert d.geometry.is_valid.all() and g.geometry.is_valid.all()
    union = d.union_all()
    assert d.area.sum() == pytest.approx(union.area, rel=1e-9)  # no overlaps
    for layer in ("buildings", "roads", "parcels", "sensors", "cameras"):
        assert generated[layer].geometry.within(union).all(), layer
    assert g.area.sum() == pytest.approx(union.area, rel=1e-9)
    inside = gpd.sjoin(g.set_geometry(g.representative_point()), d, predicate="within")
    assert (inside["所属街道"] == inside["街道代码"]).all() and len(inside) == len(g)
    assert g["网格编码"].is_unique
    cell_size = np.sqrt(g.area.median())
    assert 300 < cell_size < 900
    assert d["人口"].min() > 0
