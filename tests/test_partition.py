"""Partitioned builds (twin.partition) store the same rows as a whole-layer build, row for row.

Two twins: the sample district (every relation kind: parcels, sensors, two pipe
networks, districts, grid cells) and a hand-made block where every footprint
straddles parcel edges and tile edges, sensors stand exactly on shared parcel
corners (ties) and the pipes lie just across tile edges. Each is built whole
and tile by tile (in this process, then on a dask cluster of two workers), and
the relation tables are compared in full.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

import twin
from tests.conftest import GK105, X0, Y0, run_cli
from twin.errors import UsageError
from twin.partition import build_partitioned, tile_jobs


def _tables(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    with sqlite3.connect(path) as con:
        rows = pd.read_sql(
            "SELECT fid, set_id, from_uid, to_uid, share, distance_m, n_candidates"
            " FROM twin_relations ORDER BY fid",
            con,
        )
        sets = pd.read_sql(
            "SELECT set_id, relation, from_layer, to_layer, network, inputs, n_rows, n_unrelated"
            " FROM twin_relation_sets ORDER BY set_id",
            con,
        )
    return rows, sets


def _copies(source: Path, tmp_path: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        shutil.copyfile(source, tmp_path / f"copy{i}.gpkg")
        out.append(tmp_path / f"copy{i}.gpkg")
    return out


def _assert_same(whole: Path, tiled: Path) -> None:
    (rows_a, sets_a), (rows_b, sets_b) = _tables(whole), _tables(tiled)
    pd.testing.assert_frame_equal(sets_a, sets_b)
    pd.testing.assert_frame_equal(rows_a, rows_b)


@pytest.fixture(scope="module")
def block(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 100 m parcels; 40 footprints of 30 x 30 m on a 25 m pitch (each straddles
    its neighbours' tiles); sensors on the parcels' shared corner and edges; pipes."""
    path = tmp_path_factory.mktemp("block") / "block.gpkg"
    city = twin.Twin.create(path, crs=GK105)

    def frame(ids: list[str], geoms: list[object], **cols: list[object]) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"id": ids, **cols}, geometry=geoms, crs=GK105)

    parcels = [
        shapely.box(X0 + x, Y0 + y, X0 + x + 100, Y0 + y + 100) for x in (0, 100) for y in (0, 100)
    ]
    city.import_frame(
        frame([f"p{i}" for i in range(4)], parcels), layer="parcels", kind="parcel", id="id"
    )
    houses = [
        shapely.box(X0 + 5 + 25 * i, Y0 + 5 + 40 * j, X0 + 35 + 25 * i, Y0 + 35 + 40 * j)
        for i in range(8)
        for j in range(5)
    ]
    city.import_frame(
        frame([f"h{i:02d}" for i in range(len(houses))], houses),
        layer="houses",
        kind="building",
        id="id",
    )
    spots = [(100, 100), (100, 50), (50, 100), (150, 100), (100, 150), (230, 20), (260, 260)]
    sensors = [shapely.Point(X0 + x, Y0 + y) for x, y in spots]
    city.import_frame(
        frame(
            [f"s{i}" for i in range(len(sensors))], sensors, sensor_type=["noise"] * len(sensors)
        ),
        layer="sensors",
        kind="sensor",
        id="id",
    )
    mains = [
        shapely.LineString([(X0 - 20, Y0 + 100), (X0 + 220, Y0 + 100)]),
        shapely.LineString([(X0 + 100, Y0 - 20), (X0 + 100, Y0 + 220)]),
        shapely.LineString([(X0 + 240, Y0), (X0 + 240, Y0 + 200)]),
    ]
    city.import_frame(
        frame(["m1", "m2", "g1"], mains, network=["water", "water", "gas"]),
        layer="mains",
        kind="pipe",
        id="id",
    )
    return path


def test_block_tiled_equals_whole_row_for_row(block: Path, tmp_path: Path) -> None:
    whole, tiled = _copies(block, tmp_path, 2)
    report = twin.Twin.open(whole).build(force=True)
    tiled_report = build_partitioned(twin.Twin.open(tiled), tile_features=3, force=True)
    assert tiled_report.recomputed == report.recomputed
    assert tiled_report.unrelated == report.unrelated
    _assert_same(whole, tiled)
    again = build_partitioned(twin.Twin.open(tiled), tile_features=3)  # nothing changed
    assert again.recomputed == {} and len(again.kept) == len(report.recomputed)
    _assert_same(whole, tiled)
    # the tiles really cut through footprints: owned boxes of different tiles overlap
    city = twin.Twin.open(tiled)
    plans = [p for p in _plans(city) if p.from_layer == "houses"]
    jobs = list(
        tile_jobs(
            city.path,
            plans,
            city.layer_infos(),
            tile_features=3,
            max_distance_m=30,
            max_service_m=50,
        )
    )
    boxes = [shapely.box(*j.boxes["houses"]) for j in jobs if j.boxes["houses"] is not None]
    assert len(boxes) >= 10
    overlaps = sum(a.intersection(b).area > 0 for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert overlaps >= 5
    # hand-checked rows (house i*5 + j at x 5 + 25 i, y 5 + 40 j; parcel p0 at 0-100 / 0-100,
    # p1 above it, p2 east of it): h15 (x 80-110, y 5-35) straddles p0 (2/3) and p2 (1/3);
    # s0 stands on the corner of all four parcels: the first one (p0) wins the tie
    rows, _ = _tables(tiled)
    parcel_rows = rows[rows["to_uid"].fillna("").str.startswith("parcels.")]
    h15 = parcel_rows[parcel_rows["from_uid"] == "houses.h15"].iloc[0]
    assert (h15["to_uid"], h15["n_candidates"]) == ("parcels.p0", 2)
    assert h15["share"] == pytest.approx(2 / 3)
    s0 = rows[
        (rows["from_uid"] == "sensors.s0") & rows["to_uid"].fillna("").str.startswith("parcels.")
    ]
    assert s0["to_uid"].tolist() == ["parcels.p0"]


def _plans(city: twin.Twin) -> list:  # type: ignore[type-arg]
    from twin.build import plan_relations

    return plan_relations(city.layer_infos(), {"mains": ["gas", "water"]})


def test_sample_tiled_equals_whole(sample_twin: twin.Twin, tmp_path: Path) -> None:
    whole, tiled = _copies(sample_twin.path, tmp_path, 2)
    twin.Twin.open(whole).build(force=True)
    twin.Twin.open(tiled).build(force=True, tile_features=400)
    _assert_same(whole, tiled)


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_dask_cluster_gives_the_same_rows(block: Path, tmp_path: Path, processes: bool) -> None:
    """Any scheduler's address: worker processes get each tile's job pickled, and send back
    its rows pickled; the rows stored are the whole-layer build's."""
    from dask.distributed import LocalCluster

    whole, on_dask = _copies(block, tmp_path, 2)
    twin.Twin.open(whole).build(force=True)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=None
    ) as cluster:
        report = twin.Twin.open(on_dask).build(
            force=True, tile_features=4, engine="dask", scheduler=cluster.scheduler_address
        )
    assert report.recomputed["building_parcel:houses->parcels"] == 40
    _assert_same(whole, on_dask)


def test_dask_without_a_scheduler_starts_its_local_cluster(block: Path, tmp_path: Path) -> None:
    whole, on_dask = _copies(block, tmp_path, 2)
    twin.Twin.open(whole).build(force=True)
    report = twin.Twin.open(on_dask).build(force=True, tile_features=4, engine="dask")
    assert report.recomputed["building_parcel:houses->parcels"] == 40
    _assert_same(whole, on_dask)


@pytest.mark.slow
def test_cli_tiles_and_refuses_bad_options(block: Path, tmp_path: Path) -> None:
    (path,) = _copies(block, tmp_path, 1)
    done = run_cli("build", str(path), "--tile-features", "5", "--json", check=True)
    assert '"building_parcel:houses->parcels": 40' in done.stdout
    lonely = run_cli("build", str(path), "--scheduler", "tcp://127.0.0.1:1")
    assert lonely.returncode == 2 and "needs --engine dask" in lonely.stderr
    with pytest.raises(UsageError, match="finite max_service_m"):
        build_partitioned(twin.Twin.open(path), max_service_m=float("inf"))
