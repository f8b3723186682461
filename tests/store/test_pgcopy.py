"""Binary COPY into a real PostgreSQL + PostGIS (a throwaway cluster for the module).

Every value is read back with SQL and compared with what was sent: NULLs,
NaN (stored as NULL, as the CSV path stores it), text with quotes, commas,
new lines and Chinese, times to the millisecond, and geometries to the
coordinate with the column's SRID.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely

import twin
from twin.store import pgcopy
from twin.store.pgtest import TempCluster

TYPES = [
    "bigint",
    "smallint",
    "double precision",
    "boolean",
    "text",
    "timestamp with time zone",
    "timestamp without time zone",
    "bigint",
    "geometry",
]
TEXTS = ['a "quoted", comma', "line\nbreak", "", None, "建筑 \\ 楼"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[TempCluster]:
    with TempCluster() as started:
        yield started


@pytest.fixture
def con(cluster: TempCluster) -> Iterator[Any]:
    with psycopg.connect(cluster.url()) as connection:
        connection.execute(
            "CREATE TEMP TABLE t (n bigint, s smallint, f double precision, b boolean, txt text,"
            " tz timestamptz, naive timestamp, maybe bigint, geom geometry(Geometry, 4544))"
        )
        yield connection


def _frame() -> pd.DataFrame:
    times = pd.to_datetime(
        [
            "2024-01-02T03:04:05.678Z",
            "1999-12-31T23:59:59.001Z",
            None,
            "2000-01-01T00:00:00.000Z",
            "2030-06-01T00:00:00.000Z",
        ]
    )
    return pd.DataFrame(
        {
            "n": np.array([1, -2, 2**40, 0, 7], dtype=np.int64),
            "s": np.array([1, -3, 300, 0, 9], dtype=np.int16),
            "f": [1.5, np.nan, -0.25, 1e300, 0.0],
            "b": [True, False, True, True, False],
            "txt": TEXTS,
            "tz": times.astype(pd.DatetimeTZDtype(unit="ms", tz="UTC")),
            "naive": times.tz_localize(None),
            "maybe": pd.array([1, None, 3, None, 5], dtype="Int64"),
            "geom": [
                shapely.Point(505_000.5, 3_390_000.25),
                shapely.Polygon([(0, 0), (1, 0), (1, 1), (0, 0)]),
                None,
                shapely.MultiLineString([[(0, 0), (2, 2)], [(3, 3), (4, 5)]]),
                shapely.Point(1, 2),
            ],
        }
    )


def _load(con: Any, frame: pd.DataFrame, *, rows: int = pgcopy.BATCH_ROWS) -> None:
    columns = ", ".join(frame.columns)
    statement = f"COPY t ({columns}) FROM STDIN (FORMAT binary)"
    with con.cursor() as cursor:
        pgcopy.copy_binary(cursor, statement, pgcopy.binary_batches(frame, TYPES, rows=rows))


def test_every_type_round_trips(con: Any) -> None:
    frame = _frame()
    _load(con, frame)
    got = con.execute(
        "SELECT n, s, f, b, txt, tz, naive, maybe, ST_AsText(geom), ST_SRID(geom) FROM t ORDER BY n"
    ).fetchall()
    expected = frame.sort_values("n")
    assert [r[0] for r in got] == sorted([1, -2, 2**40, 0, 7])
    assert [r[1] for r in got] == list(expected["s"])
    assert [r[2] for r in got] == [None if np.isnan(v) else v for v in expected["f"]]
    assert [r[3] for r in got] == list(expected["b"])
    assert [r[4] for r in got] == [None if pd.isna(v) else v for v in expected["txt"]]
    utc = dt.UTC
    stamps = {
        -2: dt.datetime(1999, 12, 31, 23, 59, 59, 1000, tzinfo=utc),
        0: dt.datetime(2000, 1, 1, tzinfo=utc),  # PostgreSQL's epoch: zero on the wire
        2**40: None,
        1: dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=utc),
    }
    for row in got:
        if row[0] in stamps:
            assert row[5] == stamps[row[0]]
            naive = stamps[row[0]]
            assert row[6] == (None if naive is None else naive.replace(tzinfo=None))
    assert [r[7] for r in got] == [None, None, 1, 5, 3]  # n = -2, 0, 1, 7, 2**40
    for row, geom in zip(got, expected["geom"], strict=True):
        if geom is None:
            assert row[8] is None and row[9] is None
        else:
            assert shapely.equals_exact(shapely.from_wkt(row[8]), geom, 0)
            assert row[9] == 4544  # WKB without SRID takes the column's


def test_batches_join_into_one_stream_in_order(con: Any) -> None:
    frame = pd.concat([_frame()] * 3, ignore_index=True)
    frame["n"] = np.arange(len(frame), dtype=np.int64)
    _load(con, frame, rows=4)  # 15 rows in batches of 4: the last one short
    got = con.execute("SELECT n, txt FROM t ORDER BY ctid").fetchall()
    assert [r[0] for r in got] == list(range(15))
    assert [r[1] for r in got] == TEXTS * 3


def test_a_failure_while_encoding_aborts_the_copy(con: Any) -> None:
    def failing() -> Iterator[Any]:
        yield pgcopy.SIGNATURE
        yield from list(pgcopy.binary_batches(_frame(), TYPES))[1:-1]
        raise ValueError("the source went away")

    with pytest.raises(ValueError, match="went away"), con.cursor() as cursor:
        pgcopy.copy_binary(cursor, "COPY t FROM STDIN (FORMAT binary)", failing())
    con.rollback()
    assert con.execute("SELECT to_regclass('pg_temp.t')").fetchone()[0] is None  # rolled back


def test_a_row_the_server_refuses_fails_the_whole_copy(con: Any) -> None:
    con.execute("ALTER TABLE t ADD PRIMARY KEY (n)")
    frame = pd.concat([_frame()] * 40, ignore_index=True)  # n repeats from row 5 on
    with pytest.raises(psycopg.errors.UniqueViolation):
        _load(con, frame, rows=2)  # 100 small batches: the encoder is far ahead of the server
    con.rollback()
    con.execute(
        "CREATE TEMP TABLE t (n bigint, s smallint, f double precision, b boolean, txt text,"
        " tz timestamptz, naive timestamp, maybe bigint, geom geometry(Geometry, 4544))"
    )
    _load(con, _frame())  # the connection is usable again
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 5


def test_columns_that_do_not_fit_their_type_are_refused() -> None:
    frame = pd.DataFrame({"x": [1.5, 2.0]})
    assert not pgcopy.encodable(frame, ["bigint"])
    assert pgcopy.encodable(frame, ["double precision"])
    assert pgcopy.encodable(frame.assign(x=[1.0, None]), ["bigint"])  # whole numbers and NULL
    assert not pgcopy.encodable(pd.DataFrame({"x": [70_000]}), ["smallint"])
    assert not pgcopy.encodable(pd.DataFrame({"x": ["2024-01-01"]}), ["timestamp with time zone"])
    assert pgcopy.encodable(pd.DataFrame({"x": [True, False]}), ["text"])
    with pytest.raises(pgcopy.Unsupported, match="'x'"):
        list(pgcopy.binary_batches(frame, ["bigint"]))


def test_a_layer_imported_into_postgis_reads_back_the_same(
    cluster: TempCluster, tmp_path: Path
) -> None:
    """Through the library: the frame read back equals the frame imported (binary COPY),
    and the build's WKB read gives what the GeoPackage store gives."""
    points = gpd.GeoDataFrame(
        {
            "id": [f"p{i}" for i in range(250)],
            "name": [None if i % 7 == 0 else f'名 {i}, "{i}"' for i in range(250)],
            "floors": np.arange(250, dtype=np.int64) % 9,
            "height_m": np.where(np.arange(250) % 5 == 0, np.nan, np.arange(250) * 0.5),
        },
        geometry=shapely.points(505_000 + np.arange(250), 3_390_000 + np.arange(250) * 0.125),
        crs="EPSG:4544",
    )
    city = twin.Twin.create(cluster.url(schema="pgcopy"), crs="EPSG:4544")
    report = city.import_frame(points, layer="pois", kind="poi", id="id")
    assert report.imported == 250
    stored = city.layer("pois")
    assert list(stored["name"].fillna("<null>")) == list(points["name"].fillna("<null>"))
    np.testing.assert_array_equal(stored["floors"], points["floors"])
    np.testing.assert_array_equal(stored["height_m"], points["height_m"])
    assert shapely.equals_exact(stored.geometry.array, points.geometry.array, 0).all()
    reference = twin.Twin.create(tmp_path / "ref.gpkg", crs="EPSG:4544")
    reference.import_frame(points, layer="pois", kind="poi", id="id")
    wkb, columns = city.store.read_wkb("pois", ["uid", "name"])
    ref_wkb, ref_columns = reference.store.read_wkb("pois", ["uid", "name"])
    assert list(columns["uid"]) == list(ref_columns["uid"])
    assert list(columns["name"]) == list(ref_columns["name"])  # None where NULL, both
    assert columns["name"][0] is None
    assert shapely.equals_exact(shapely.from_wkb(wkb), shapely.from_wkb(ref_wkb), 0).all()
