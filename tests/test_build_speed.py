"""What makes ``twin build`` fast keeps its answers: WKB decoding, two computing
threads and the relation writer's NULL columns, checked against the relate functions."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

import twin
from twin.relate import geoms_from_wkb, largest_share, nearest_within, single_part_geoms
from twin.store import relations as relstore


def test_one_part_multis_are_decoded_as_their_part() -> None:
    square, other = shapely.box(0, 0, 1, 1), shapely.box(5, 5, 6, 7)
    line = shapely.LineString([(0, 0), (3, 4)])
    geoms = [
        shapely.MultiPolygon([square]),
        shapely.MultiPolygon([square, other]),
        shapely.MultiLineString([line]),
        shapely.MultiPoint([(2, 3)]),
        square,
        shapely.from_wkt("MULTIPOLYGON EMPTY"),
    ]
    wkb = [shapely.to_wkb(g) for g in geoms]
    wkb += [
        shapely.to_wkb(shapely.MultiPolygon([square]), byte_order=0),  # big-endian
        shapely.to_wkb(shapely.force_3d(shapely.MultiPolygon([square]), 2.0)),  # 3D
        None,
    ]
    values = np.array(wkb, dtype=object)
    got = geoms_from_wkb(values)
    types = [None if g is None else g.geom_type for g in got]
    assert types == [
        "Polygon",
        "MultiPolygon",
        "LineString",
        "Point",
        "Polygon",
        "MultiPolygon",
        "Polygon",
        "Polygon",
        None,
    ]
    expected = single_part_geoms(shapely.from_wkb(values))
    assert shapely.equals_identical(got[:-1], expected[:-1]).all()
    assert got[0].equals_exact(square, 0) and got[2].equals_exact(line, 0)
    assert got[7].has_z and shapely.get_coordinates(got[7], include_z=True)[0].tolist() == [
        1.0,
        0.0,
        2.0,
    ]


def _stored(city: twin.Twin, relation: str, from_layer: str, to_layer: str) -> pd.DataFrame:
    rows = city.relations(relation, from_layer=from_layer)
    return rows[rows["to_layer"] == to_layer].set_index("from_uid")


def test_every_stored_set_equals_the_relate_functions(sample_twin: twin.Twin) -> None:
    """Each set the (two-thread) build wrote is the relate functions' answer, row for row,
    with NULL (not 0) where a relation has no share or no distance."""
    city = sample_twin
    sets = city.store.relation_sets().values()
    assert len(sets) >= 20
    layers = {name: city.layer(name) for name in city.layer_names()}
    for s in sets:
        stored = _stored(city, s.relation, s.from_layer, s.to_layer)
        source, target = layers[s.from_layer], layers[s.to_layer]
        assert stored.index.tolist() == source.index.tolist(), s.key
        if s.network is not None or s.relation == "sensor_building":
            if s.network is not None:
                target = target[target["network"] == s.network]
            reach = 50.0 if s.network is not None else 30.0
            direct = nearest_within(source, target, max_distance_m=reach)
            assert stored["to_uid"].fillna("-").tolist() == direct["target"].fillna("-").tolist()
            np.testing.assert_array_equal(stored["distance_m"], direct["distance_m"])
            inside = (direct["how"] == "inside").to_numpy()
            if s.network is not None:
                assert stored["share"].isna().all(), s.key
            else:
                np.testing.assert_array_equal(stored["share"], np.where(inside, 1.0, np.nan))
            found = direct["target"].notna().to_numpy().astype(int)
            assert stored["n_candidates"].tolist() == found.tolist(), s.key
            continue
        direct = largest_share(source, target)
        assert stored["to_uid"].fillna("-").tolist() == direct["zone"].fillna("-").tolist()
        np.testing.assert_array_equal(stored["share"], direct["share"])
        assert stored["distance_m"].isna().all(), s.key
        assert stored["n_candidates"].tolist() == direct["n_zones"].tolist(), s.key
    with_distance = city.store.query(
        "SELECT count(*) AS n FROM twin_relations WHERE distance_m IS NOT NULL"
    )
    assert int(with_distance["n"].iloc[0]) > 0


def test_relation_rows_get_their_sets_fids_either_way(
    sample_twin: twin.Twin, tmp_path: Path
) -> None:
    """The writer lets SQLite number a set's rows after its first when they are the table's
    last, and binds every fid otherwise (a stray row above): the same fids both ways."""
    path = shutil.copy(sample_twin.path, tmp_path / "rows.gpkg")
    rows = relstore.RelationRows(
        from_uid=["a.1", "a.2", "a.3"],
        to_uid=np.array(["z.1", None, "z.2"], dtype=object),
        share=np.array([1.0, 0.0, 0.25]),
        distance_m=np.full(3, np.nan),
        n_candidates=np.array([1, 0, 2]),
    )
    con = sqlite3.connect(path)
    writer = relstore.RelationWriter(con, bulk=False)
    first = writer.put(("feature_grid", "a", "z", None), rows, inputs=[1, 2, None], build_id=9)
    con.execute(
        "INSERT INTO twin_relations (fid, set_id, from_uid) VALUES (?, 0, 'stray')",
        ((first + 5) << 32,),
    )
    second = writer.put(("feature_grid", "b", "z", None), rows, inputs=[1, 2, None], build_id=9)
    for set_id in (first, second):
        got = con.execute(
            "SELECT fid, set_id, from_uid, to_uid, share, distance_m, n_candidates"
            " FROM twin_relations WHERE set_id = ? ORDER BY fid",
            (set_id,),
        ).fetchall()
        base = set_id << 32
        assert got == [
            (base, set_id, "a.1", "z.1", 1.0, None, 1),
            (base + 1, set_id, "a.2", None, 0.0, None, 0),
            (base + 2, set_id, "a.3", "z.2", 0.25, None, 2),
        ]
    con.close()


def _brute_force_shares(
    features: np.ndarray, zones: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Largest share by intersecting every feature with every zone (first zone on a tie)."""
    pieces = shapely.area(shapely.intersection(features[:, None], zones[None, :]))
    best = np.where(pieces.max(axis=1) > 0, pieces.argmax(axis=1), -1)
    share = pieces.max(axis=1) / shapely.area(features)
    return best, share, (pieces > 0).sum(axis=1)


def test_features_in_a_zones_inner_box_get_the_same_shares() -> None:
    """Grid-like zones with many features each take the inner-box shortcut: the shares are
    still those of intersecting every pair, for squares well inside, on a zone's edge,
    across zones, on a sliver zone with no inner box and outside every zone."""
    from twin.relate import largest_share_positions

    # Two slightly skewed cells (not boxes), side by side along x = 100.
    zones = np.array(
        [
            shapely.Polygon([(0, 0), (100, 0), (100, 100), (1, 99), (0, 0)]),
            shapely.Polygon([(100, 0), (200, 1), (200, 100), (100, 100), (100, 0)]),
            # a sliver along a diagonal: no box inside it, its pairs take GEOS's predicate
            shapely.Polygon([(0, 100), (200, 104), (200, 104.5), (0, 100)]),
        ]
    )
    rng = np.random.default_rng(11)
    x, y = rng.uniform(-10, 205, 400), rng.uniform(-5, 106, 400)
    squares = shapely.box(x, y, x + 3, y + 3)
    edge = shapely.box([97, 10, 50, 150], [20, 97, 0.5, 40], [100, 13, 53, 153], [23, 100, 3.5, 43])
    features = np.concatenate([squares, edge])
    best, share, n_zones = largest_share_positions(features, zones)
    want_best, want_share, want_n = _brute_force_shares(features, zones)
    assert len(features) >= 8 * len(zones)  # the shortcut is taken
    assert best.tolist() == want_best.tolist()
    np.testing.assert_allclose(share, want_share, rtol=1e-12)
    assert n_zones.tolist() == want_n.tolist()
    assert (n_zones == 2).sum() > 0 and (n_zones == 0).sum() > 0 and (share == 1.0).sum() > 0


def test_inner_boxes_are_covered_by_their_zones() -> None:
    """Each inner box lies in its zone and is the largest scale that does; a sliver gets none."""
    from twin.relate import INNER_SCALES, inner_boxes

    zones = np.array(
        [
            shapely.Polygon([(0, 0), (10, 0), (10, 10), (0.5, 9.5), (0, 0)]),
            shapely.Polygon([(0, 0), (10, 10), (10, 10.1), (0, 0)]),  # a sliver on a diagonal
            shapely.box(5, 5, 7, 8),
            shapely.from_wkt("POLYGON EMPTY"),
        ]
    )
    inner = inner_boxes(zones)
    assert np.isnan(inner[[1, 3]]).all() and np.isfinite(inner[[0, 2]]).all()
    assert shapely.covers(zones[[0, 2]], shapely.box(*inner[[0, 2]].T)).all()
    np.testing.assert_allclose(inner[2], [5.01, 5.015, 6.99, 7.985])  # a box: the largest, 0.99
    # The first cell: the chosen scale is covered, the next one up is not (checked by hand).
    width = inner[0, 2] - inner[0, 0]
    scale = INNER_SCALES.index(round(width / 10, 2))
    bigger = 5 - 5 * INNER_SCALES[scale + 1], 5 + 5 * INNER_SCALES[scale + 1]
    assert not shapely.covers(zones[0], shapely.box(bigger[0], bigger[0], bigger[1], bigger[1]))


def test_relation_rows_in_whole_statements_and_a_tail(
    sample_twin: twin.Twin, tmp_path: Path
) -> None:
    """Rows written 256 to a statement (two whole statements and a tail here), either fid
    path, are the rows given: fids in order, NaN as NULL, types kept."""
    path = shutil.copy(sample_twin.path, tmp_path / "many.gpkg")
    n = 2 * 256 + 37
    to_uid = np.array([None if i % 7 == 0 else f"z.{i % 5}" for i in range(n)], dtype=object)
    share = np.where(np.arange(n) % 3 == 0, np.nan, np.arange(n) / n)
    rows = relstore.RelationRows(
        from_uid=[f"a.{i}" for i in range(n)],
        to_uid=to_uid,
        share=share,
        distance_m=np.arange(n) * 0.5,
        n_candidates=np.arange(n) % 4,
    )
    con = sqlite3.connect(path)
    writer = relstore.RelationWriter(con, bulk=False)
    first = writer.put(("feature_grid", "a", "z", None), rows, inputs=[], build_id=1)
    con.execute(
        "INSERT INTO twin_relations (fid, set_id, from_uid) VALUES (?, 0, 'stray')",
        ((first + 5) << 32,),
    )
    second = writer.put(("feature_grid", "b", "z", None), rows, inputs=[], build_id=1)
    for set_id in (first, second):
        got = con.execute(
            "SELECT fid, set_id, from_uid, to_uid, share, distance_m, n_candidates"
            " FROM twin_relations WHERE set_id = ? ORDER BY fid",
            (set_id,),
        ).fetchall()
        want = [
            (
                (set_id << 32) + i,
                set_id,
                f"a.{i}",
                to_uid[i],
                None if np.isnan(share[i]) else float(share[i]),
                i * 0.5,
                i % 4,
            )
            for i in range(n)
        ]
        assert got == want
        assert {type(row[6]) for row in got} == {int}
    con.close()


def _assert_same_rows(got: twin.Twin, want: twin.Twin) -> None:
    """Every stored row of ``got`` equals ``want``'s, by relation, layers and row."""
    query = (
        "SELECT s.relation, s.from_layer, s.to_layer, r.fid - (s.set_id << 32) AS row, r.from_uid,"
        " r.to_uid, r.share, r.distance_m, r.n_candidates FROM twin_relations r"
        " JOIN twin_relation_sets s USING (set_id)"
        " ORDER BY s.relation, s.from_layer, s.to_layer, row"
    )
    expected = want.store.query(query)
    assert len(expected) > 1000
    pd.testing.assert_frame_equal(got.store.query(query), expected)


def test_a_layer_decoded_in_two_halves_builds_the_same_rows(
    sample_twin: twin.Twin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every layer of 10 features or more decoded by two threads: the same stored rows."""
    from twin import build

    monkeypatch.setattr(build, "_SPLIT_DECODE", 10)
    copy = twin.Twin.open(shutil.copy(sample_twin.path, tmp_path / "halves.gpkg"))
    copy.build(force=True)
    _assert_same_rows(copy, sample_twin)


def test_indexes_built_before_the_last_set_hold_its_rows(
    sample_twin: twin.Twin, tmp_path: Path
) -> None:
    """A bulk writer that rebuilds its uid indexes before its last set (which then updates
    them) ends with both indexes holding every row: index lookups equal table scans."""
    path = shutil.copy(sample_twin.path, tmp_path / "early.gpkg")
    n = 600
    rows = relstore.RelationRows(
        from_uid=[f"a.{i}" for i in range(n)],
        to_uid=np.array([None if i % 9 == 0 else f"z.{i % 13}" for i in range(n)], dtype=object),
        share=np.full(n, 0.5),
        distance_m=np.full(n, np.nan),
        n_candidates=np.ones(n, dtype=np.int64),
    )
    con = sqlite3.connect(path)
    con.execute("DELETE FROM twin_relations")
    writer = relstore.RelationWriter(con, bulk=True)
    first = writer.put(("feature_grid", "a", "z", None), rows, inputs=[], build_id=1)
    writer.index_now()
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"twin_relations_from", "twin_relations_to"} <= names
    last = writer.put(("feature_district", "a", "z", None), rows, inputs=[], build_id=1)
    writer.index_now()  # nothing left to rebuild: a no-op, as is finish
    writer.finish()
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    for column, index in (("from_uid", "twin_relations_from"), ("to_uid", "twin_relations_to")):
        for uid in ("a.0", "a.599", "z.0", "z.12", "a.600"):
            by_index = con.execute(
                f"SELECT fid FROM twin_relations INDEXED BY {index} WHERE {column} = ?"
                " ORDER BY fid",
                (uid,),
            ).fetchall()
            scanned = con.execute(
                f"SELECT fid FROM twin_relations NOT INDEXED WHERE {column} = ? ORDER BY fid",
                (uid,),
            ).fetchall()
            assert by_index == scanned
            if uid.startswith("a.") and uid != "a.600" and column == "from_uid":
                i = int(uid[2:])
                assert by_index == [((first << 32) + i,), ((last << 32) + i,)]
    (count,) = con.execute(
        "SELECT count(*) FROM twin_relations INDEXED BY twin_relations_to WHERE to_uid = 'z.1'"
    ).fetchone()
    assert count == 2 * sum(1 for i in range(n) if i % 9 and i % 13 == 1)
    con.close()


@pytest.mark.parametrize("early", [0.0, 1.0])
def test_a_build_indexed_early_or_last_stores_the_same_rows(
    sample_twin: twin.Twin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, early: float
) -> None:
    """Indexes rebuilt right after the first set (1.0) or only at the end (0.0), and one
    relation computed ahead at a time: the same rows and the same index entries."""
    from twin import build

    monkeypatch.setattr(build, "_INDEX_BEFORE_LAST", early)
    monkeypatch.setattr(build, "_AHEAD_ROWS", 1)
    calls: list[bool] = []
    index_now = relstore.RelationWriter.index_now

    def spied(self: relstore.RelationWriter) -> None:
        calls.append(self.bulk)
        index_now(self)

    monkeypatch.setattr(relstore.RelationWriter, "index_now", spied)
    copy = twin.Twin.open(shutil.copy(sample_twin.path, tmp_path / "indexed.gpkg"))
    copy.build(force=True)
    assert (calls[:1] == [True]) if early else not calls
    _assert_same_rows(copy, sample_twin)
    for column, index in (("from_uid", "twin_relations_from"), ("to_uid", "twin_relations_to")):
        entries = (
            f"SELECT s.relation, s.from_layer, s.to_layer, r.{column} FROM twin_relations r"
            f" INDEXED BY {index} JOIN twin_relation_sets s USING (set_id)"
            f" WHERE r.{column} IS NOT NULL ORDER BY r.{column}, 1, 2, 3"
        )
        pd.testing.assert_frame_equal(copy.store.query(entries), sample_twin.store.query(entries))
