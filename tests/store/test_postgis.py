"""The PostGIS store against the GeoPackage store: same CLI, same answers.

A throwaway PostgreSQL 15 + PostGIS cluster runs for the module
(:class:`twin.store.pgtest.TempCluster`). The sample delivery is imported and
built into a GeoPackage (the reference) and, through the real ``twin``
command, into PostGIS (a ``postgresql://…?schema=`` URL); buildings are
re-imported once with edits (a change set and history). Each test runs on
both through the ``backend`` parameter and compares the answer with the
GeoPackage twin's: uids, counts, geometries to the coordinate, history,
relations, and the impact of a pipe break.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import yaml

import twin
from tests.conftest import SAMPLES, TWIN_CLI, run_cli
from twin.errors import TwinBusyError
from twin.store import PostgisStore
from twin.store.pgtest import TempCluster
from twin.store.transfer import copy_twin

# A real server, the sample built four ways through the CLI: well over 10 s.
pytestmark = pytest.mark.slow

BACKENDS = ["gpkg", "postgis"]
BROKEN_PIPE = "water_pipes.JS000010"


def _edited_mapping(folder: Path) -> Path:
    """The sample mapping with buildings redelivered: three heights changed, the last one gone."""
    frame = gpd.read_file(SAMPLES / "buildings.geojson")
    frame = frame.iloc[:-1].copy()
    frame.loc[frame.index[:3], "建筑高度"] = frame.loc[frame.index[:3], "建筑高度"] + 7.0
    frame.to_file(folder / "buildings_v2.geojson", driver="GeoJSON")
    spec = yaml.safe_load((SAMPLES / "mapping.yaml").read_text(encoding="utf-8"))
    spec["layers"]["buildings"]["source"] = str(folder / "buildings_v2.geojson")
    path = folder / "mapping_v2.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def twins(pg_cluster: TempCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The sample twin on each backend, with one re-import of buildings (a change set)."""
    folder = tmp_path_factory.mktemp("backends")
    edited = _edited_mapping(folder)
    names = {"gpkg": str(folder / "city.twin.gpkg"), "postgis": pg_cluster.url(schema="city")}
    # the reference through the library, the PostGIS twin through the real `twin` command
    reference = twin.Twin.create(names["gpkg"], crs="auto")
    reference.import_mapping(SAMPLES / "mapping.yaml")
    reference.import_mapping(edited, layers=["buildings"])
    reference.build()
    url = names["postgis"]
    run_cli("init", url, "--crs", "auto", check=True)
    run_cli("import", url, "--mapping", str(SAMPLES / "mapping.yaml"), check=True)
    run_cli("import", url, "--mapping", str(edited), "--layer", "buildings", check=True)
    run_cli("build", url, check=True)
    return names


def _cli_json(*args: str) -> object:
    done = run_cli(*args, "--json", check=True)
    return json.loads(done.stdout)


def test_the_same_layers_features_and_geometries(twins: dict[str, str], backend: str) -> None:
    ref, city = twin.Twin.open(twins["gpkg"]), twin.Twin.open(twins[backend])
    assert city.layers == ref.layers
    for name in ref.layers:
        mine, theirs = city.layer(name), ref.layer(name)
        assert list(mine.index) == list(theirs.index), name
        assert list(mine.columns) == list(theirs.columns), name
        assert shapely.equals_exact(mine.geometry.array, theirs.geometry.array, 0).all(), name
        pd.testing.assert_frame_equal(
            pd.DataFrame(mine.drop(columns="valid_from")),
            pd.DataFrame(theirs.drop(columns="valid_from")),
            obj=name,
        )


def test_the_reimport_change_set_and_history(twins: dict[str, str], backend: str) -> None:
    city = twin.Twin.open(twins[backend])
    imports = city.imports("buildings")
    assert len(imports) == 2
    last = imports.iloc[-1]
    # hand-checked: 3 heights edited, 1 building dropped from the delivery of 3000
    assert (last["n_changed"], last["n_removed"], last["n_added"]) == (3, 1, 0)
    changes = city.changes(int(imports.index[-1]))
    assert sorted(changes["change"].value_counts().items()) == [("changed", 3), ("removed", 1)]
    old = city.history("buildings")
    assert len(old) == 4 and set(old["uid"]) == set(changes["uid"])
    before = city.layer("buildings", as_of=imports.iloc[0]["time"])
    assert len(before) == 3000 and len(city.layer("buildings")) == 2999


def test_cli_info_and_history_agree(twins: dict[str, str], backend: str) -> None:
    ref = twin.Twin.open(twins["gpkg"])
    info = _cli_json("info", twins[backend])
    assert isinstance(info, dict) and info["crs"] == ref.crs_text == "EPSG:4544"
    counts = {e["name"]: (e["kind"], e["feature_count"], e["extent"]) for e in info["layers"]}
    expected = {i.name: (i.kind, i.feature_count, list(i.extent or ())) for i in ref.layer_infos()}
    assert counts == expected and counts["buildings"][1] == 2999
    last = int(ref.imports("buildings").index[-1])
    shown = _cli_json("history", twins[backend], "--import", str(last))
    assert isinstance(shown, dict)
    changes = ref.changes(last)
    assert shown["changes"] == changes.to_dict(orient="records") and len(changes) == 4


def test_the_same_relations(twins: dict[str, str], backend: str) -> None:
    city, ref = twin.Twin.open(twins[backend]), twin.Twin.open(twins["gpkg"])
    mine, theirs = city.relations(), ref.relations()
    assert len(mine) > 10_000
    pd.testing.assert_frame_equal(mine, theirs)
    one = ref.relations(uid="buildings.JZ0000001")
    pd.testing.assert_frame_equal(city.relations(uid="buildings.JZ0000001"), one)
    assert set(one["relation"]) >= {"building_parcel", "feature_grid"}


def test_the_same_pipe_break_impact(twins: dict[str, str], backend: str) -> None:
    mine = _cli_json("analyze", "pipe-break", twins[backend], "--pipe", BROKEN_PIPE)
    ref = _cli_json("analyze", "pipe-break", twins["gpkg"], "--pipe", BROKEN_PIPE)
    assert mine == ref
    assert isinstance(mine, dict) and mine  # a real answer, not an empty one


def test_copy_gpkg_to_postgis_and_back(
    twins: dict[str, str], pg_cluster: TempCluster, tmp_path: Path
) -> None:
    there = pg_cluster.url(schema="copied")
    back = tmp_path / "back.twin.gpkg"
    done = run_cli("copy", twins["gpkg"], there, "--json", check=True)
    assert json.loads(done.stdout)["layers"]["buildings"] == 2999
    copy_twin(there, back)
    for copy in (there, str(back)):
        _assert_same_twin(twin.Twin.open(twins["gpkg"]), twin.Twin.open(copy))


def _assert_same_twin(ref: twin.Twin, city: twin.Twin) -> None:
    assert city.layers == ref.layers and city.meta == ref.meta
    for name in ref.layers:
        pd.testing.assert_frame_equal(pd.DataFrame(city.layer(name)), pd.DataFrame(ref.layer(name)))
        mine, theirs = city.history(name), ref.history(name)
        # an empty history read from a GeoPackage has naive datetimes (GDAL sees no value)
        pd.testing.assert_frame_equal(
            pd.DataFrame(mine), pd.DataFrame(theirs), obj=name, check_dtype=len(theirs) > 0
        )
    pd.testing.assert_frame_equal(city.imports(), ref.imports(), check_dtype=False)
    last = int(ref.imports("buildings").index[-1])
    pd.testing.assert_frame_equal(city.changes(last), ref.changes(last))
    pd.testing.assert_frame_equal(city.relations(), ref.relations())


def test_a_second_writer_waits_then_fails_clearly(pg_cluster: TempCluster) -> None:
    url = pg_cluster.url(schema="locked")
    twin.Twin.create(url, crs="EPSG:4544")
    holder = PostgisStore(url)
    impatient = PostgisStore(url, lock_timeout_s=0.5)
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with holder.session() as session:
            session.set_meta("name", "first")
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    entered.wait(10)
    started = time.monotonic()
    busy = pytest.raises(TwinBusyError, match="being written by another process")
    with busy, impatient.session() as session:
        session.set_meta("name", "second")
    assert time.monotonic() - started >= 0.4
    release.set()
    thread.join()
    assert twin.Twin.open(url).meta["name"] == "first"


def test_a_failed_import_leaves_nothing(pg_cluster: TempCluster) -> None:
    url = pg_cluster.url(schema="failing")
    city = twin.Twin.create(url, crs="EPSG:4544")
    good = gpd.GeoDataFrame(
        {"id": ["a", "b"]}, geometry=[shapely.Point(505700, 3392300)] * 2, crs="EPSG:4544"
    )
    city.import_frame(good, layer="pois", kind="poi", id="id")
    store = PostgisStore(url)
    with pytest.raises(RuntimeError, match="killed"), store.session() as session:
        session.write_table("pois", good.assign(uid=["x", "y"], valid_from=pd.Timestamp.now("UTC")))
        raise RuntimeError("killed mid-import")
    assert list(city.layer("pois").index) == ["pois.a", "pois.b"]
    assert "pois__load" not in store.tables()


def test_hot_queries_use_the_indexes(twins: dict[str, str]) -> None:
    store = PostgisStore(twins["postgis"])

    def plan(sql: str) -> str:
        return "\n".join(row[0] for row in store.rows("EXPLAIN " + sql))

    # one feature by uid: the primary key; a bbox page: the GiST index
    assert "buildings_pkey" in plan("SELECT * FROM buildings WHERE uid = 'buildings.JZ0000001'")
    box = "ST_MakeEnvelope(505600, 3392200, 505700, 3392300, 4544)"
    assert "buildings_geom_idx" in plan(f"SELECT uid FROM buildings WHERE geom && {box}")
    # relations of one uid (either end): both uid indexes; one feature's history: its uid index
    by_uid = plan(
        "SELECT * FROM twin_relations WHERE from_uid = 'buildings.JZ0000001'"
        " OR to_uid = 'buildings.JZ0000001'"
    )
    assert "twin_relations_from" in by_uid and "twin_relations_to" in by_uid
    # four history rows are read faster by a scan: without one, the uid index serves
    with store.connect() as con:
        con.execute("SET enable_seqscan = off")
        rows = con.execute(
            "EXPLAIN SELECT * FROM buildings__history WHERE uid = 'buildings.JZ0000001'"
        ).fetchall()
    assert "buildings__history_uid_idx" in "\n".join(r[0] for r in rows)


def test_an_import_killed_mid_write_leaves_nothing(pg_cluster: TempCluster) -> None:
    url = pg_cluster.url(schema="killed")
    run_cli("init", url, "--crs", "auto", check=True)
    mapping = str(SAMPLES / "mapping.yaml")
    command = [TWIN_CLI, "import", url, "--mapping", mapping, "--layer", "buildings"]
    store = PostgisStore(url)
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # kill it while it holds the twin's writer lock: inside its one transaction
        deadline = time.monotonic() + 60
        while not _writer_holds_lock(store) and time.monotonic() < deadline:
            assert child.poll() is None, "the import ended before it could be killed"
            time.sleep(0.01)
        assert _writer_holds_lock(store)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    city = twin.Twin.open(url)
    assert city.layers == [] and city.imports().empty
    assert not {"buildings", "buildings__load"} & store.tables()
    run_cli("import", url, "--mapping", mapping, "--layer", "buildings", check=True)
    assert len(twin.Twin.open(url).layer("buildings")) == 3000


def _writer_holds_lock(store: PostgisStore) -> bool:
    rows = store.rows("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
    return bool(rows[0][0])
