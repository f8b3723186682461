"""twin build: relations stored in the twin, recomputed for what changed."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

import twin
from tests.conftest import GK105, SAMPLES, X0, Y0, run_cli
from twin.relate import largest_share

COLUMNS = [
    "relation",
    "from_layer",
    "from_uid",
    "to_layer",
    "to_uid",
    "share",
    "distance_m",
    "n_candidates",
]


@pytest.fixture(scope="module")
def built_once(sample_twin: twin.Twin) -> Path:
    """The session's built sample twin (read only: tests write to a copy, ``city``)."""
    return sample_twin.path


@pytest.fixture
def city(built_once: Path, tmp_path: Path) -> twin.Twin:
    copy = tmp_path / "city.gpkg"
    shutil.copy(built_once, copy)
    return twin.Twin.open(copy)


def _sets(city: twin.Twin) -> pd.DataFrame:
    return city.store.query("SELECT * FROM twin_relation_sets").set_index("set_id")


def test_relations_are_stored_for_every_layer(city: twin.Twin) -> None:
    rel = city.relations()
    assert list(rel.columns) == COLUMNS
    keys = set(zip(rel["relation"], rel["from_layer"], rel["to_layer"], strict=True))
    assert ("building_parcel", "buildings", "parcels") in keys
    assert ("sensor_building", "sensors", "buildings") in keys
    assert ("sensor_parcel", "cameras", "parcels") in keys
    assert ("service_water", "buildings", "water_pipes") in keys
    assert ("service_gas", "buildings", "gas_pipes") in keys
    assert ("service_water", "buildings", "gas_pipes") not in keys  # gas pipes hold only gas
    for info in city.layer_infos():
        if info.kind != "district":
            assert ("feature_district", info.name, "districts") in keys
            assert ("feature_grid", info.name, "grids") in keys or info.name == "grids"
    # One row per feature of the from layer in every relation.
    counts = {i.name: i.feature_count for i in city.layer_infos()}
    per_set = rel.groupby(["relation", "from_layer", "to_layer"]).size()
    assert all(n == counts[from_layer] for (_, from_layer, _), n in per_set.items())
    for row in _sets(city).itertuples():
        assert row.n_rows == per_set[row.relation, row.from_layer, row.to_layer]


def test_stored_building_parcel_equals_the_library_function(city: twin.Twin) -> None:
    stored = city.relations("building_parcel").set_index("from_uid")
    direct = largest_share(city.layer("buildings"), city.layer("parcels"))
    assert len(stored) == len(direct) == city.info("buildings").feature_count
    assert stored.index.tolist() == direct.index.tolist()
    assert stored["to_uid"].fillna("-").tolist() == direct["zone"].fillna("-").tolist()
    np.testing.assert_allclose(stored["share"], direct["share"], rtol=0, atol=0)
    assert (stored["n_candidates"] == direct["n_zones"]).all()
    flagged = stored[stored["to_uid"].isna()]
    assert len(flagged) > 0 and (flagged["share"] == 0).all()  # flagged, not dropped
    assert (flagged["n_candidates"] == 0).all()


def test_relations_by_uid_equal_a_filter_of_all_rows(city: twin.Twin) -> None:
    everything = city.relations()
    straddler = city.relations("building_parcel").query("n_candidates > 1")["from_uid"].iloc[0]
    parcel = everything.loc[everything["from_uid"] == straddler, "to_uid"].iloc[0]
    for uid in (straddler, parcel, "grids.no-such-cell"):
        rows = city.relations(uid=uid)
        expected = everything[(everything["from_uid"] == uid) | (everything["to_uid"] == uid)]
        pd.testing.assert_frame_equal(rows, expected.reset_index(drop=True))
    assert {"building_parcel", "feature_district", "feature_grid", "service_water"} <= set(
        city.relations(uid=straddler)["relation"]
    )
    only = city.relations("feature_grid", from_layer="buildings", uid=straddler)
    assert len(only) == 1 and only["to_layer"].iloc[0] == "grids"


def _uses_the_uid_indexes(city: twin.Twin) -> bool:
    with sqlite3.connect(city.path) as con:
        plan = " ".join(
            row[3]
            for row in con.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM twin_relations WHERE from_uid = ? OR to_uid = ?",
                ("a", "a"),
            )
        )
    return "twin_relations_from" in plan and "twin_relations_to" in plan


def test_uid_lookups_use_the_indexes(city: twin.Twin) -> None:
    assert _uses_the_uid_indexes(city)


def test_gdal_and_qgis_see_the_tables(city: twin.Twin) -> None:
    with sqlite3.connect(city.path) as con:
        kinds = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents"))
    for table in ("twin_relation_sets", "twin_relations", "twin_relation_rows", "twin_builds"):
        assert kinds[table] == "attributes"
    listed = {name for name, _ in pyogrio.list_layers(city.path)}
    assert {"twin_relation_sets", "twin_relations", "twin_relation_rows"} <= listed
    # The view, read by GDAL as QGIS does, holds the same rows as Twin.relations().
    view = pyogrio.read_dataframe(city.path, layer="twin_relation_rows", read_geometry=False)
    ours = city.relations()
    assert len(view) == len(ours)
    merged = view.merge(ours, on=["relation", "from_uid", "to_layer"], suffixes=("", "_ours"))
    assert len(merged) == len(ours)
    assert merged["to_uid"].fillna("-").equals(merged["to_uid_ours"].fillna("-"))


def test_rebuild_recomputes_only_what_changed(city: twin.Twin, tmp_path: Path) -> None:
    unchanged = city.build()
    assert unchanged.recomputed == {} and unchanged.dropped == [] and len(unchanged.kept) > 20
    before = _sets(city)
    delivery = gpd.read_file(SAMPLES / "buildings.geojson")
    delivery = delivery.drop(index=delivery.index[:10])
    delivery.to_file(tmp_path / "b2.geojson")
    spec = twin.read_mapping(SAMPLES / "mapping.yaml")["buildings"]
    spec.source = tmp_path / "b2.geojson"
    city.import_spec(spec)
    report = city.build()
    building_keys = {
        "building_parcel:buildings->parcels",
        "sensor_building:sensors->buildings",
        "sensor_building:cameras->buildings",
        "service_water:buildings->water_pipes",
        "service_gas:buildings->gas_pipes",
        "feature_district:buildings->districts",
        "feature_grid:buildings->grids",
    }
    assert set(report.recomputed) == building_keys
    assert report.recomputed["building_parcel:buildings->parcels"] == len(delivery)
    assert len(city.relations("building_parcel")) == len(delivery)
    # Untouched sets keep their rows, set ids and the build that made them.
    after = _sets(city)
    kept = before[
        ~before["relation"]
        .str.cat(before[["from_layer", "to_layer"]], sep=":")
        .isin([k.replace("->", ":") for k in building_keys])
    ]
    pd.testing.assert_frame_equal(after.loc[kept.index], kept)
    gone = "buildings.JZ0000001"
    assert city.relations(uid=gone).empty  # a removed building leaves no row behind
    kept_building = city.relations(uid="buildings.JZ0000011")
    assert set(
        kept_building.loc[kept_building["from_uid"] == "buildings.JZ0000011", "relation"]
    ) == {
        "building_parcel",
        "service_water",
        "service_gas",
        "feature_district",
        "feature_grid",
    }
    assert _uses_the_uid_indexes(city)  # rebuilt after a bulk rewrite
    forced = city.build(force=True)
    assert len(forced.recomputed) == len(unchanged.kept)


def test_options_recompute_only_the_relations_using_them(city: twin.Twin) -> None:
    near = city.build(max_service_m=20)
    assert set(near.recomputed) == {
        "service_water:buildings->water_pipes",
        "service_gas:buildings->gas_pipes",
    }
    water = city.relations("service_water")
    assert (water["distance_m"].dropna() <= 20).all() and water["to_uid"].isna().any()
    sensors = city.build(max_service_m=20, max_distance_m=5)
    assert set(sensors.recomputed) == {
        "sensor_building:sensors->buildings",
        "sensor_building:cameras->buildings",
    }
    assert _uses_the_uid_indexes(city)  # kept up to date through a small rewrite
    near = city.relations("sensor_building", from_layer="sensors")
    assert (near["distance_m"].dropna() <= 5).all()
    assert (
        city.relations(uid=near["from_uid"].iloc[0])["relation"].tolist().count("sensor_building")
        == 1
    )


def test_relations_of_a_network_gone_from_a_layer_are_dropped(
    city: twin.Twin, tmp_path: Path
) -> None:
    spec = twin.read_mapping(SAMPLES / "mapping.yaml")["gas_pipes"]
    spec.set = {"network": "heat"}  # the layer now holds heat pipes
    city.import_spec(spec)
    report = city.build()
    assert report.dropped == ["service_gas:buildings->gas_pipes"]
    assert "service_heat:buildings->gas_pipes" in report.recomputed
    assert city.relations("service_gas").empty
    assert set(_sets(city)["relation"]) >= {"service_heat", "service_water"}


def test_build_cli_json(city: twin.Twin) -> None:
    result = run_cli("build", str(city.path), "--force", "--max-service-m", "40", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["recomputed"]["building_parcel:buildings->parcels"] == 3000
    assert report["unrelated"]["building_parcel:buildings->parcels"] > 0
    assert report["max_service_m"] == 40
    assert report["recomputed"]["service_water:buildings->water_pipes"] == 3000


def test_relations_before_any_build(tmp_path: Path) -> None:
    empty = twin.Twin.create(tmp_path / "e.gpkg", crs="EPSG:4544")
    with pytest.raises(twin.BuildNeededError, match=r"no relations yet: build the twin") as why:
        empty.relations()
    assert why.value.reason == twin.BuildNeeded("no_build", str(empty.path), what="relations")


def test_an_old_single_table_build_is_upgraded(city: twin.Twin) -> None:
    expected = city.relations()
    with sqlite3.connect(city.path) as con:  # the layout citytwin stored before sets
        for table in ("twin_relation_rows", "twin_relations", "twin_relation_sets"):
            kind = "VIEW" if table == "twin_relation_rows" else "TABLE"
            con.execute(f"DROP {kind} {table}")
            con.execute("DELETE FROM gpkg_contents WHERE table_name=?", (table,))
        con.execute(
            "CREATE TABLE twin_relations (relation TEXT NOT NULL, from_layer TEXT NOT NULL,"
            " from_uid TEXT NOT NULL, to_layer TEXT NOT NULL, to_uid TEXT, share REAL,"
            " distance_m REAL, n_candidates INTEGER)"
        )
        con.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier)"
            " VALUES ('twin_relations', 'attributes', 'twin_relations')"
        )
    report = city.build()
    assert len(report.recomputed) == len(expected.groupby(["relation", "from_layer", "to_layer"]))
    pd.testing.assert_frame_equal(city.relations(), expected)


# --------------------------------------------------------------------------- service connections


def test_service_connections_match_sjoin_nearest(city: twin.Twin) -> None:
    buildings, pipes = city.layer("buildings"), city.layer("water_pipes")
    for reach in (50.0, 20.0):
        ours = city.service_connections("water", max_service_m=reach)
        ref = gpd.sjoin_nearest(
            buildings[["geometry"]], pipes[["geometry"]], max_distance=reach, distance_col="d"
        )
        assert set(ours.index) == set(ref.index)
        assert ours.index.tolist() == buildings.index[buildings.index.isin(ours.index)].tolist()
        nearest = ref.groupby(level=0)["d"].min()
        np.testing.assert_allclose(ours["distance_m"], nearest.loc[ours.index], atol=1e-9)
        # The pipe is one of the nearest (sjoin_nearest lists every tie).
        pairs = set(zip(ref.index, ref["uid_right"], strict=True))
        assert all(pair in pairs for pair in zip(ours.index, ours["pipe"], strict=True))
        assert (ours["pipe_layer"] == "water_pipes").all()


@pytest.fixture
def hand_city(tmp_path: Path) -> twin.Twin:
    """Three houses, two water mains in two layers and a gas main, hand-placed."""
    city = twin.Twin.create(tmp_path / "hand.gpkg", crs=GK105)

    def frame(ids: list[str], geoms: list[object], **columns: list[object]) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"id": ids, **columns}, geometry=geoms, crs=GK105)

    houses = [shapely.box(X0 + x, Y0, X0 + x + 10, Y0 + 10) for x in (0, 100, 400)]
    city.import_frame(frame(["h1", "h2", "h3"], houses), layer="houses", kind="building", id="id")
    mains = [shapely.LineString([(X0 - 50, Y0 + 30), (X0 + 150, Y0 + 30)])]  # 20 m north
    city.import_frame(frame(["m1"], mains, network=["water"]), layer="mains", kind="pipe", id="id")
    laterals = [
        shapely.LineString([(X0 + 115, Y0 - 50), (X0 + 115, Y0 + 50)]),  # 5 m east of h2
        shapely.LineString([(X0 - 20, Y0 + 200), (X0 + 20, Y0 + 200)]),  # 190 m from h1
    ]
    city.import_frame(
        frame(["l1", "g1"], laterals, network=["water", "gas"]),
        layer="laterals",
        kind="pipe",
        id="id",
    )
    return city


def test_service_connections_hand_checked(hand_city: twin.Twin) -> None:
    report = hand_city.build()
    assert report.unrelated["service_water:houses->mains"] == 1  # h3, 250 m away
    assert report.unrelated["service_gas:houses->laterals"] == 3  # gas main is out of reach
    water = hand_city.service_connections("water")
    assert water.index.name == "uid" and list(water.columns) == ["pipe_layer", "pipe", "distance_m"]
    assert water.to_dict("index") == {
        "houses.h1": {"pipe_layer": "mains", "pipe": "mains.m1", "distance_m": 20.0},
        "houses.h2": {"pipe_layer": "laterals", "pipe": "laterals.l1", "distance_m": 5.0},
    }
    assert hand_city.service_connections("water", max_service_m=10).index.tolist() == ["houses.h2"]
    assert hand_city.service_connections("gas").empty
    stored = hand_city.relations("service_water", to_layer="mains").set_index("from_uid")
    assert (
        pd.isna(stored.loc["houses.h3", "to_uid"]) and stored.loc["houses.h3", "n_candidates"] == 0
    )


def test_service_connections_say_how_to_fix(hand_city: twin.Twin) -> None:
    with pytest.raises(twin.UsageError, match=r"no service connections yet: build the twin"):
        hand_city.service_connections("water")
    hand_city.build()
    with pytest.raises(twin.BuildNeededError, match=r"with build\(max_service_m=80\)") as far:
        hand_city.service_connections("water", max_service_m=80)
    reason = far.value.reason
    assert (reason.code, reason.parameter, reason.value, reason.built) == (
        "beyond_reach",
        "max_service_m",
        80.0,
        50.0,
    )
    with pytest.raises(twin.UsageError, match=r"no 'heat' pipes.*gas, water"):
        hand_city.service_connections("heat")
    with pytest.raises(twin.UsageError, match=r"'mains' is not a building layer"):
        hand_city.service_connections("water", buildings="mains")
    moved = gpd.GeoDataFrame(
        {"id": ["m1"], "network": ["water"]},
        geometry=[shapely.LineString([(X0, Y0 + 12), (X0 + 10, Y0 + 12)])],
        crs=GK105,
    )
    hand_city.import_frame(moved, layer="mains", kind="pipe", id="id")
    with pytest.raises(
        twin.BuildNeededError, match=r"stale: mains changed.*build the twin"
    ) as stale:
        hand_city.service_connections("water")
    assert stale.value.reason.layers == ("mains",)
    hand_city.build()
    assert hand_city.service_connections("water").loc["houses.h1", "distance_m"] == 2.0


def test_bad_build_options_are_refused(hand_city: twin.Twin) -> None:
    before = hand_city.path.read_bytes()
    with pytest.raises(twin.UsageError, match="max_service_m must be a distance"):
        hand_city.build(max_service_m=-1)
    assert hand_city.path.read_bytes() == before
