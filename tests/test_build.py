"""twin build: relations stored in the twin, recomputed for what changed."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import geopandas as gpd
import pytest

import twin
from tests.conftest import SAMPLES, run_cli
from twin.relate import largest_share


@pytest.fixture(scope="module")
def built_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("b") / "sample.gpkg"
    city = twin.Twin.create(path, crs="auto")
    city.import_mapping(SAMPLES / "mapping.yaml")
    city.build()
    return path


@pytest.fixture
def city(built_once: Path, tmp_path: Path) -> twin.Twin:
    copy = tmp_path / "city.gpkg"
    shutil.copy(built_once, copy)
    return twin.Twin.open(copy)


def test_relations_are_stored_for_every_layer(city: twin.Twin) -> None:
    rel = city.relations()
    keys = set(zip(rel["relation"], rel["from_layer"], rel["to_layer"], strict=True))
    assert ("building_parcel", "buildings", "parcels") in keys
    assert ("sensor_building", "sensors", "buildings") in keys
    assert ("sensor_parcel", "cameras", "parcels") in keys
    for info in city.layer_infos():
        if info.kind != "district":
            assert ("feature_district", info.name, "districts") in keys
            assert ("feature_grid", info.name, "grids") in keys or info.name == "grids"
    per_layer = rel[rel["relation"] == "feature_grid"].groupby("from_layer").size()
    counts = {i.name: i.feature_count for i in city.layer_infos()}
    assert all(per_layer[name] == counts[name] for name in per_layer.index)


def test_stored_building_parcel_equals_the_library_function(city: twin.Twin) -> None:
    stored = city.relations("building_parcel").set_index("from_uid")
    direct = largest_share(city.layer("buildings"), city.layer("parcels"))
    assert len(stored) == len(direct) == city.info("buildings").feature_count
    assert stored["to_uid"].fillna("-").equals(direct["zone"].fillna("-").rename("to_uid"))
    flagged = stored[stored["to_uid"].isna()]
    assert len(flagged) > 0 and (flagged["share"] == 0).all()  # flagged, not dropped


def test_relations_by_uid_and_in_sqlite(city: twin.Twin) -> None:
    uid = city.relations("building_parcel").dropna(subset=["to_uid"])["from_uid"].iloc[0]
    rows = city.relations(uid=uid)
    assert {"building_parcel", "feature_district", "feature_grid"} <= set(rows["relation"])
    with sqlite3.connect(city.path) as con:  # a plain SQL client (or QGIS) can join on uid
        kinds = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents"))
    assert kinds["twin_relations"] == kinds["twin_builds"] == "attributes"


def test_rebuild_recomputes_only_what_changed(city: twin.Twin, tmp_path: Path) -> None:
    unchanged = city.build()
    assert unchanged.recomputed == {} and len(unchanged.kept) > 20
    delivery = gpd.read_file(SAMPLES / "buildings.geojson")
    delivery = delivery.drop(index=delivery.index[:10])
    delivery.to_file(tmp_path / "b2.geojson")
    spec = twin.read_mapping(SAMPLES / "mapping.yaml")["buildings"]
    spec.source = tmp_path / "b2.geojson"
    city.import_spec(spec)
    report = city.build()
    assert set(report.recomputed) == {
        "building_parcel:buildings->parcels",
        "sensor_building:sensors->buildings",
        "sensor_building:cameras->buildings",
        "feature_district:buildings->districts",
        "feature_grid:buildings->grids",
    }
    assert report.recomputed["building_parcel:buildings->parcels"] == len(delivery)
    assert len(city.relations("building_parcel")) == len(delivery)
    forced = city.build(force=True)
    assert len(forced.recomputed) == len(unchanged.kept)


def test_build_cli_json(city: twin.Twin) -> None:
    result = run_cli("build", str(city.path), "--force", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["recomputed"]["building_parcel:buildings->parcels"] == 3000
    assert report["unrelated"]["building_parcel:buildings->parcels"] > 0


def test_relations_before_any_build(tmp_path: Path) -> None:
    empty = twin.Twin.create(tmp_path / "e.gpkg", crs="EPSG:4544")
    with pytest.raises(twin.UsageError, match="twin build"):
        empty.relations()
