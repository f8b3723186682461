"""Packed tile parts (twin.store.parts.pack_parts / put_packed): a tile's rows travel as one
SQLite image and land in their set, at their positions, with the values a direct insert gives."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from twin import Twin
from twin.build import plan_relations
from twin.partition import compute_packed, tile_jobs
from twin.store import parts, schema
from twin.store.relations import RelationRows

_ROWS = "SELECT fid, set_id, from_uid, to_uid, share, distance_m, n_candidates FROM twin_relations"


def _rows(uids: list[str], to: list[str | None], share: list[float]) -> RelationRows:
    n = len(uids)
    return RelationRows(
        from_uid=uids,
        to_uid=np.array(to, dtype=object),
        share=np.array(share, dtype=float),
        distance_m=np.full(n, np.nan),
        n_candidates=np.arange(n, dtype=np.int64),
    )


def _relations_db(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE twin_relations (fid INTEGER PRIMARY KEY, set_id INTEGER NOT NULL,"
        " from_uid TEXT NOT NULL, to_uid TEXT, share REAL, distance_m REAL, n_candidates INTEGER)"
    )
    return con


def test_packed_parts_land_in_their_sets_like_direct_inserts(tmp_path: Path) -> None:
    first = _rows(["b.3", "b.7"], ["p.1", None], [0.75, np.nan])
    second = _rows(["b.3", "b.7"], [None, "g.2"], [np.nan, 1.0])
    positions = np.array([2, 6], dtype=np.int64)
    packed, direct = _relations_db(tmp_path / "a.db"), _relations_db(tmp_path / "b.db")
    # two images in a row, as a build stores two tiles: the schema is attached once
    parts.put_packed(packed, parts.pack_parts([(0, positions, first)]), {0: 5})
    parts.put_packed(packed, parts.pack_parts([(1, positions, second)]), {1: 9})
    parts.release_packed(packed)
    parts.put_part(direct, 5, positions, first)
    parts.put_part(direct, 9, positions, second)
    got = packed.execute(_ROWS + " ORDER BY fid").fetchall()
    assert got == direct.execute(_ROWS + " ORDER BY fid").fetchall()
    five, nine = 5 << schema.SET_SHIFT, 9 << schema.SET_SHIFT
    assert got == [
        (five + 2, 5, "b.3", "p.1", 0.75, None, 0),
        (five + 6, 5, "b.7", None, None, None, 1),  # NaN is stored as NULL
        (nine + 2, 9, "b.3", None, None, None, 0),
        (nine + 6, 9, "b.7", "g.2", 1.0, None, 1),
    ]
    packed.commit()  # the attached image does not block the commit


def test_a_packed_tile_needs_positions_and_every_owned_feature(sample_twin: Twin) -> None:
    city = sample_twin
    plans = [p for p in plan_relations(city.layer_infos()) if p.relation == "building_parcel"]
    job = next(
        tile_jobs(
            city.path,
            plans,
            city.layer_infos(),
            tile_features=10**9,
            max_distance_m=30,
            max_service_m=50,
        )
    )
    with pytest.raises(ValueError, match="positions"):
        compute_packed(job)
    owned = job.owned["buildings"]
    ghost = replace(
        job,
        owned={"buildings": np.append(owned, owned.max() + 10**6)},
        positions={"buildings": np.arange(len(owned) + 1, dtype=np.int64)},
    )
    with pytest.raises(RuntimeError, match=f"read {len(owned)} of its {len(owned) + 1} buildings"):
        compute_packed(ghost)


def test_parts_larger_than_one_statement_keep_every_row_and_value(tmp_path: Path) -> None:
    """2,503 rows (two full packing statements and a remainder), a distance column with
    values, a share column without any (written as NULL), and an empty part."""
    n = 2 * parts._PACK_ROWS + 503
    rng = np.random.default_rng(7)
    distance = rng.random(n) * 50
    distance[::10] = np.nan
    rows = RelationRows(
        from_uid=[f"b.{i}" for i in range(n)],
        to_uid=np.array([None if i % 7 == 0 else f"w.{i % 97}" for i in range(n)], dtype=object),
        share=np.full(n, np.nan),
        distance_m=distance,
        n_candidates=(np.arange(n) % 3).astype(np.int64),
    )
    positions = np.sort(rng.choice(10 * n, size=n, replace=False)).astype(np.int64)
    empty = _rows([], [], [])
    packed, direct = _relations_db(tmp_path / "a.db"), _relations_db(tmp_path / "b.db")
    parts.put_packed(
        packed, parts.pack_parts([(0, positions, rows), (1, positions[:0], empty)]), {0: 3, 1: 4}
    )
    parts.put_part(direct, 3, positions, rows)
    got = packed.execute(_ROWS + " ORDER BY fid").fetchall()
    assert got == direct.execute(_ROWS + " ORDER BY fid").fetchall()
    assert len(got) == n
    i = 1234
    expected_distance = None if np.isnan(distance[i]) else float(distance[i])
    assert got[i] == (
        (3 << schema.SET_SHIFT) + int(positions[i]),
        3,
        f"b.{i}",
        None if i % 7 == 0 else f"w.{i % 97}",
        None,
        expected_distance,
        i % 3,
    )
