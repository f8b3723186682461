"""Standard addresses: parser failure cases, the noisy sample held to the issue's bar,
the twin geocoder's links, reverse geocoding from web-map coordinates, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import twin
from tests.conftest import run_cli
from twin.address import (
    AddressIndex,
    geocode,
    geocoder_for,
    geocoder_from_frame,
    level_report,
    normalise,
    parse_address,
    parse_addresses,
    reverse,
)
from twin.sample import generate_city
from twin.sample.addresses import standard_addresses, typed_addresses
from twin.webcoords import wgs84_to_bd09, wgs84_to_gcj02

N_BUILDINGS, SEED = 3000, 42


# --------------------------------------------------------------------------- parser


@pytest.mark.parametrize(
    ("text", "province", "city", "district", "road"),
    [
        ("上海广东路100号", "上海市", "上海市", None, "广东路"),
        ("上海市黄浦区广东路100号", "上海市", "上海市", "黄浦区", "广东路"),
        ("广东路100号", None, None, None, "广东路"),
        ("成都市锦江路3号", "四川省", "成都市", None, "锦江路"),
        ("四川成都锦江区春熙路1号", "四川省", "成都市", "锦江区", "春熙路"),
    ],
)
def test_place_names_inside_road_names_are_roads(text, province, city, district, road):
    p = parse_address(text)
    assert (p.province, p.city, p.district, p.road) == (province, city, district, road)


@pytest.mark.parametrize(
    ("text", "city", "street", "road", "number"),
    [
        ("东莞市虎门镇连升路8号", "东莞市", "虎门镇", "连升路", "8"),
        ("广东东莞长安镇振安中路200号", "东莞市", "长安镇", "振安中路", "200"),
        ("东莞南城街道鸿福路88号", "东莞市", "南城街道", "鸿福路", "88"),
        ("中山市小榄镇民安南路30号", "中山市", "小榄镇", "民安南路", "30"),
        ("中山古镇镇曹三路2号", "中山市", "古镇镇", "曹三路", "2"),
    ],
)
def test_towns_of_cities_without_counties(text, city, street, road, number):
    p = parse_address(text)
    assert (p.province, p.city, p.district) == ("广东省", city, None)
    assert (p.street, p.road, p.number) == (street, road, number)


@pytest.mark.parametrize(
    ("text", "district"),
    [
        ("上海市闸北区共和新路1200号", "静安区"),
        ("闸北区共和新路1200号", "静安区"),
        ("上海卢湾区淮海中路1号", "黄浦区"),
        ("上海市南汇区惠南镇", "浦东新区"),
        ("成都市郫县犀浦镇", "郫都区"),
        ("崇明县城桥镇", "崇明区"),
    ],
)
def test_renamed_divisions(text, district):
    assert parse_address(text).district == district


@pytest.mark.parametrize(
    ("text", "province", "district"),
    [
        ("北川县曲山镇", "四川省", "北川羌族自治县"),
        ("四川北川曲山镇", "四川省", "北川羌族自治县"),
        ("乳源县城", "广东省", "乳源瑶族自治县"),
        ("清远连山县吉田镇", "广东省", "连山壮族瑶族自治县"),
        ("乐山市峨边县沙坪镇", "四川省", "峨边彝族自治县"),
        ("河北大厂县", "河北省", "大厂回族自治县"),
    ],
)
def test_autonomous_county_short_names(text, province, district):
    p = parse_address(text)
    assert (p.province, p.district) == (province, district)


def test_normalise_width_traditional_and_numerals():
    assert normalise("錦江區 望嶺西路一段 ２５號 十二棟 二單元 一〇三室") == (
        "锦江区望岭西路1段25号12栋2单元103室"
    )
    assert normalise("一环路南二段二百零五号") == "一环路南2段205号"  # 一环 is a name


def test_lower_levels_and_extra_words():
    p = parse_address("成都锦江天亭街道新江社区望岭西路一段25号院芙湖新村3栋2单元301室门口")
    got = (p.street, p.community, p.road, p.number, p.name, p.building, p.unit, p.room, p.near)
    assert got == ("天亭街道", "新江社区", "望岭西路1段", "25", "芙湖新村", "3", "2", "301", "门口")


def test_parse_addresses_is_aligned_to_a_series():
    series = pd.Series(["中山市小榄镇民安路1号", None], index=[7, 9])
    frame = parse_addresses(series)
    assert frame.index.tolist() == [7, 9]
    assert frame.loc[7, "street"] == "小榄镇" and frame.loc[9, "road"] is None


def test_administrative_levels_agree_with_cpca_where_it_is_right():
    """cpca (an independent parser with its own table) on full, current names."""
    cpca = pytest.importorskip("cpca")
    texts = [
        "四川省成都市锦江区春熙路1号",
        "成都市青羊区西御街3号",
        "上海市黄浦区南京东路1号",
        "上海市静安区共和新路1200号",
        "广东省深圳市南山区科技园",
        "广州市天河区体育西路",
        "四川省绵阳市北川羌族自治县曲山镇",
    ]
    theirs = cpca.transform(texts)
    ours = parse_addresses(texts)
    assert ours["province"].tolist() == theirs["省"].tolist()
    assert ours["district"].tolist() == theirs["区"].tolist()
    non_municipal = theirs["市"] != "市辖区"
    assert ours["city"][non_municipal].tolist() == theirs["市"][non_municipal].tolist()


def test_administrative_levels_agree_with_jionlp():
    """jionlp (another independent parser and division table): the same province, city and
    county wherever it finds a county; on abolished names it finds none and we give the
    successor (hand-checked: 闸北区 → 静安区 in 2015, 卢湾区 → 黄浦区 in 2011, 郫县 → 郫都区
    in 2016)."""
    import jionlp

    current = [
        "四川省成都市锦江区春熙路1号",
        "四川成都锦江区春熙路1号",
        "成都市青羊区西御街3号",
        "上海市黄浦区南京东路1号",
        "广东省深圳市南山区科技园",
        "广州市天河区体育西路",
        "四川省绵阳市北川羌族自治县曲山镇",
        "北川县曲山镇",
        "崇明县城桥镇",
        "锦江区杉江街3号",
    ]
    abolished = {
        "上海市闸北区共和新路1200号": "静安区",
        "上海卢湾区淮海中路1号": "黄浦区",
        "成都市郫县犀浦镇": "郫都区",
    }
    ours = parse_addresses([*current, *abolished])
    theirs = pd.DataFrame(
        [jionlp.parse_location(t) for t in [*current, *abolished]], index=ours.index
    )
    assert ours["province"].tolist() == theirs["province"].tolist()
    assert ours["city"].tolist() == theirs["city"].tolist()
    n = len(current)
    assert ours["district"][:n].tolist() == theirs["county"][:n].tolist()
    assert theirs["county"][n:].isna().all()
    assert ours["district"][n:].tolist() == list(abolished.values())


# --------------------------------------------------------------------------- the sample twin


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The sample city's buildings, districts, grids and standard addresses in a built twin,
    and 3,000 typed addresses with their truth."""
    folder = tmp_path_factory.mktemp("addresses")
    city_layers = generate_city(N_BUILDINGS, seed=SEED)
    std = standard_addresses(city_layers, seed=SEED)
    typed = typed_addresses(std, 3000, seed=SEED)
    city = twin.Twin.create(folder / "city.gpkg", crs="EPSG:4544")
    city.import_frame(
        city_layers["buildings"],
        layer="buildings",
        kind="building",
        id="建筑编码",
        fields={"层数": "floors", "建筑名称": "name"},
    )
    city.import_frame(
        city_layers["districts"],
        layer="districts",
        kind="district",
        id="街道代码",
        fields={"街道名称": "name"},
    )
    city.import_frame(city_layers["grids"], layer="grids", kind="grid", id="网格编码")
    city.import_frame(
        city_layers["roads"], layer="roads", kind="road", id="道路编码", fields={"道路名称": "name"}
    )
    city.import_frame(std, layer="addresses", kind="address", id="addr_id")
    city.build()
    csv = folder / "typed.csv"
    typed.to_csv(csv, index=False)
    return {"city": city, "std": std, "typed": typed, "csv": csv, "folder": folder}


@pytest.fixture(scope="module")
def located(sample: dict) -> pd.DataFrame:
    coder = geocoder_for(sample["city"])
    return geocode(coder, sample["typed"]["地址"])


def test_noisy_sample_meets_the_bar(sample: dict, located: pd.DataFrame, capsys):
    typed = sample["typed"]
    truth_building = "buildings." + typed["truth_building"].astype(str)
    real = typed["truth_level"] != "nowhere"
    claims = located["level"].isin(["room", "building"])
    right_building = claims & (located["building"] == truth_building)
    table = pd.crosstab(typed["truth_level"], located["level"], margins=True)
    with capsys.disabled():
        print("\naddresses by true level (rows) and matched level (columns):\n", table)
    assert real.sum() > 2700 and (~real).sum() == 240
    share_found = right_building[real].mean()
    assert share_found >= 0.98, f"only {share_found:.2%} matched to their building"
    nowhere_ok = located["level"][~real].isin(["unmatched", "road", "community"]).mean()
    assert nowhere_ok >= 0.99
    wrong = (claims & ~right_building).mean()
    assert wrong <= 0.005, f"{wrong:.2%} wrong room/building claims"
    # room-level answers name the very room typed
    rooms = real & (typed["truth_level"] == "room") & (located["level"] == "room")
    assert (located["uid"][rooms] == "addresses." + typed["truth_id"][rooms]).mean() >= 0.99
    assert rooms.sum() > 1000


def test_answers_carry_building_grid_and_district(sample: dict, located: pd.DataFrame):
    """Building from the footprint holding the point; grid and district from twin build."""
    city = sample["city"]
    found = located[located["level"].isin(["room", "building"])]
    buildings = city.layer("buildings")
    points = gpd.GeoSeries(found.geometry.to_numpy(), crs=located.crs)
    inside = shapely.contains(buildings.geometry.loc[found["building"]].to_numpy(), points)
    assert inside.all()
    grids = city.layer("grids")
    in_cell = shapely.contains(grids.geometry.loc[found["grid"]].to_numpy(), points)
    assert in_cell.mean() > 0.99  # a point on a cell edge may go to the neighbour
    assert found["district"].str.startswith("districts.").all()
    report = level_report(located)
    assert int(report["count"].sum()) == len(located) == 3000


def test_unmatched_answers_say_why(located: pd.DataFrame, sample: dict):
    typed = sample["typed"]
    other_city = typed["地址"].str.contains("上海|東莞|东莞|北京|中山")
    assert other_city.sum() > 20
    reasons = located["reason"][other_city & (located["level"] == "unmatched")]
    assert reasons.str.startswith("outside the layer").mean() > 0.9
    past_end = located[(typed["truth_level"] == "nowhere") & (located["level"] == "road")]
    assert past_end["reason"].str.contains(r"^no number \d+ on ").all() and len(past_end) > 20


def test_reverse_from_web_map_coordinates(sample: dict):
    coder = geocoder_for(sample["city"])
    std = sample["city"].layer("addresses")
    row = std[std["level"] == "building"].iloc[10]
    point = shapely.point_on_surface(row.geometry)
    lon, lat = gpd.GeoSeries([point], crs=std.crs).to_crs(4326).iloc[0].coords[0]
    for convention, convert in (("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)):
        x, y = convert(np.array([lon]), np.array([lat]))
        found = reverse(coder, float(x[0]), float(y[0]), crs=convention)
        assert found["uid"] == row.name and found["distance_m"] < 0.5
        assert found["building"] == f"buildings.{row['building_id']}"
    plain = reverse(coder, lon, lat, crs="EPSG:4326")
    assert plain["uid"] == row.name
    assert reverse(coder, lon + 0.05, lat, crs="EPSG:4326") == {}


def test_index_on_a_hand_made_layer():
    layer = pd.DataFrame(
        {
            "road": ["杉江街", "杉江街", "杉江街", "望岭西路一段"],
            "number": ["3", "3", "5", "25"],
            "building": ["1", "2", None, None],
            "unit": [None, None, None, None],
            "room": [None, None, None, None],
        },
        index=["a.1", "a.2", "a.3", "a.4"],
    )
    index = AddressIndex(layer)
    assert index.match("杉江街3号").level == "house_number"  # two buildings: no claim
    assert index.match("杉江街3号").row is None
    assert index.match("杉江街3号9栋").level == "house_number"  # no building 9
    assert index.match("杉江街7号").level == "road"
    assert index.match("望嶺西路一段二十五號").uid == "a.4"
    assert index.match("  ").reason == "empty address"


def _two_communities() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """杉江街 twice (two segments 1 km apart, one per community), two grid cells by name."""
    layer = gpd.GeoDataFrame(
        {
            "community": ["新江社区", "新江社区", "东湖社区", "东湖社区"],
            "road": ["杉江街", "杉江街", "杉江街", "杉江街"],
            "number": ["3", "3", "3", "5"],
            "building": ["1", "2", "1", None],
        },
        geometry=[shapely.Point(0, 10), shapely.Point(20, 10), shapely.Point(1000, 10),
                  shapely.Point(1040, 10)],
        index=["a.1", "a.2", "a.3", "a.4"], crs="EPSG:4544",
    )  # fmt: skip
    roads = gpd.GeoDataFrame(
        {"name": ["杉江街", "杉江街", "望岭路"]},
        geometry=[shapely.LineString([(-50, 0), (100, 0)]),
                  shapely.LineString([(950, 0), (1100, 0)]),
                  shapely.LineString([(0, 0), (0, 500)])],
        index=["roads.west", "roads.east", "roads.other"], crs="EPSG:4544",
    )  # fmt: skip
    grids = gpd.GeoDataFrame(
        {"name": ["新江社区", "東湖社區"]},
        geometry=[shapely.box(-100, -100, 500, 100), shapely.box(500, -100, 1200, 100)],
        index=["grids.g1", "grids.g2"], crs="EPSG:4544",
    )  # fmt: skip
    return layer, roads, grids


def test_road_and_community_answers_carry_the_road_and_grid_uid():
    layer, roads, grids = _two_communities()
    coder = geocoder_from_frame(layer, roads=roads, grids=grids)
    found = geocode(coder, ["新江社区杉江街9号", "东湖社区杉江街9号", "杉江街9号", "东湖社区"])
    assert found["level"].tolist() == ["road", "road", "road", "community"]
    assert found["uid"].tolist() == ["roads.west", "roads.east", "roads.west", "grids.g2"]
    # the road's point nearest the community's addresses: centres (10, 10) and (1020, 10)
    assert found.geometry.iloc[0].equals(shapely.Point(10, 0))
    assert found.geometry.iloc[1].equals(shapely.Point(1020, 0))
    # no community typed (row 2): the centre of the road's addresses, (515, 10), is 415 m
    # from the west segment and 435 m from the east one
    assert found["grid"].iloc[3] == "grids.g2" and found.geometry.iloc[3].within(
        grids.geometry.iloc[1]
    )
    without = geocode(geocoder_from_frame(layer), ["新江社区杉江街9号", "东湖社区"])
    assert without["uid"].isna().all() and without.geometry.isna().all()


def test_a_number_holding_several_buildings_says_how_many():
    layer, roads, grids = _two_communities()
    coder = geocoder_from_frame(layer, roads=roads, grids=grids)
    found = geocode(coder, ["新江社区杉江街3号", "新江社区杉江街3号9栋", "新江社区杉江街3号2栋",
                            "东湖社区杉江街5号"])  # fmt: skip
    assert found["level"].tolist() == ["house_number", "house_number", "building", "building"]
    assert found["candidates"].tolist() == [2, 2, 0, 0]
    assert found["building"].iloc[0] is None
    assert found["reason"].iloc[0] == "no building number typed: 2 buildings at 杉江街 3"
    assert found["reason"].iloc[1] == "no building 9: 2 buildings at 杉江街 3"


def test_road_answers_on_the_sample_twin_name_a_road_of_that_name(
    sample: dict, located: pd.DataFrame
):
    roads = sample["city"].layer("roads")
    at_road = located[(located["level"] == "road")]
    assert len(at_road) > 20
    assert at_road["uid"].str.startswith("roads.").all()
    assert (roads.loc[at_road["uid"], "name"].to_numpy() == at_road["address"].to_numpy()).all()
    # the point is on that road
    lines = roads.geometry.loc[at_road["uid"]].to_numpy()
    assert (shapely.distance(lines, at_road.geometry.to_numpy()) < 1e-6).all()
    several = located[located["level"] == "house_number"]
    assert (several["candidates"] >= 2).all() and several["building"].isna().all()


# --------------------------------------------------------------------------- CLI


def test_cli_geocode_writes_every_row_and_reports_levels(sample: dict, located: pd.DataFrame):
    out = sample["folder"] / "located.gpkg"
    result = run_cli(
        "geocode", str(sample["folder"] / "city.gpkg"), str(sample["csv"]),
        "--address-field", "地址", "--out", str(out), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected = located["level"].value_counts().to_dict()
    assert {k: v for k, v in report["levels"].items() if v} == expected
    written = gpd.read_file(out)
    assert len(written) == 3000 and (written["truth_id"] != "").sum() == 2760
    assert written["uid"].fillna("").tolist() == located["uid"].fillna("").tolist()


@pytest.mark.slow  # three CLI start-ups
def test_cli_geocode_bad_input(sample: dict, tmp_path: Path):
    gpkg = str(sample["folder"] / "city.gpkg")
    wrong_field = run_cli("geocode", gpkg, str(sample["csv"]), "--address-field", "addr")
    assert wrong_field.returncode == 2 and "no column 'addr'" in wrong_field.stderr
    missing = run_cli("geocode", gpkg, str(tmp_path / "none.csv"))
    assert missing.returncode == 3 and "does not exist" in missing.stderr
    bad_out = run_cli("geocode", gpkg, str(sample["csv"]), "--out", str(tmp_path / "x.shp"))
    assert bad_out.returncode == 2 and "--out must end in" in bad_out.stderr
    assert not (tmp_path / "x.shp").exists()


# --------------------------------------------------------------------------- benchmark


@pytest.mark.slow
def test_geocode_benchmark_runs_and_is_at_least_as_accurate_as_the_peer():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--buildings", "3000", "--only", "geocode", "--json"],
        capture_output=True, text=True, cwd=root, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    ours, peer = row["ours"]["facts"], row["peer_result"]["facts"]
    assert ours["addresses"] == peer["addresses"] == 3000 and ours["typed"] == 3000
    assert ours["sample"]["found"] >= peer["sample"]["found"]
    assert ours["sample"]["wrong_claims"] <= peer["sample"]["wrong_claims"]
    assert ours["all"]["found"] >= 0.98 and ours["all"]["wrong_claims"] <= 0.005


def test_a_layer_of_full_address_texts_only_is_matched_on_its_parsed_levels():
    layer = pd.DataFrame(
        {
            "address": [
                "四川省成都市锦江区天亭街道杉江街3号芙湖新村1栋",
                "四川省成都市锦江区天亭街道杉江街3号芙湖新村2栋",
                "四川省成都市锦江区天亭街道杉江街3号芙湖新村2栋1单元302室",
                "四川省成都市锦江区天亭街道望岭西路一段25号",
            ]
        },
        index=["a.1", "a.2", "a.3", "a.4"],
    )
    index = AddressIndex(layer)
    assert index.match("锦江杉江街三号2栋").uid == "a.2"
    assert index.match("锦江杉江街三号2栋1单元302").uid == "a.3"
    assert index.match("芙湖新村1栋").uid == "a.1"
    assert index.match("成都望岭西路1段25号院门口").uid == "a.4"


def test_twin_sample_writes_the_address_layer_and_the_typed_file(tmp_path: Path):
    made = json.loads(
        run_cli(
            "sample", str(tmp_path / "d"), "--buildings", "300", "--addresses", "--json",
            check=True,
        ).stdout
    )  # fmt: skip
    standard = gpd.read_file(made["files"]["addresses_standard"])
    typed = pd.read_csv(made["files"]["addresses_typed"])
    buildings = standard[standard["level"] != "room"]
    assert len(buildings) == 300 and buildings["building_id"].is_unique
    assert standard["address"].is_unique and standard.crs.to_epsg() == 4544
    assert len(typed) == 3000 and (typed["truth_level"] == "nowhere").sum() == 240
    assert set(typed["truth_building"].dropna()) <= set(buildings["building_id"])
