"""A patched layer's frame is made column by column and equals a full read.

:func:`twin.query.delta.taken_frame` replaces ``pd.concat([frame, rows]).take``:
it must give the same frame (values, dtypes, index) for any row positions
(removed, changed in place, added, reordered rows), for Arrow columns held in
one chunk or several, and for columns whose dtype differs between the old frame
and the rows read (an integer column read as ``float64`` because of a null, a
boolean one read as ``object``). On both backends, a chain of re-imports past
:data:`~twin.query.delta.MAX_LOOKUP_DEPTH`, with null-bearing integer and boolean
columns whose nulls come and go, gives at each step a snapshot equal to a full load.
The order predicted from one import's change set (one pass over the uids) is
the order and row sources worked out uid by uid.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely

import twin
from tests.query.conftest import reimport
from twin.query.delta import MAX_LOOKUP_DEPTH, predicted, taken_frame
from twin.query.index import CityIndex
from twin.store.order import order_value


def _strings(values: list[str | None], chunks: int) -> pd.arrays.ArrowStringArray:
    array = pa.array(values, pa.large_string())
    cut = len(values) // 2
    held = pa.chunked_array([array[:cut], array[cut:]]) if chunks == 2 else array
    return pd.array(held, dtype="str")


def _frame(n: int, start: int, chunks: int, *, nulls: bool) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(start)
    uids = [f"b.{start + i}" for i in range(n)]
    names = [None if i % 4 == 1 else f"名{start + i}" for i in range(n)]
    floors = rng.integers(1, 30, n).astype(float)
    flags = (rng.random(n) > 0.5).astype(object)
    if nulls and n:
        floors[0] = np.nan
        flags[0] = None
    return gpd.GeoDataFrame(
        {
            "name": _strings(names, chunks),
            "floors": floors if nulls else floors.astype(np.int64),
            "flag": flags if nulls else flags.astype(bool),
            "height_m": rng.uniform(3, 90, n),
            "valid_from": pd.to_datetime(rng.integers(0, 10**12, n), unit="ms", utc=True),
        },
        geometry=shapely.points(rng.uniform(0, 100, (n, 2))),
        index=pd.Index(_strings(uids, chunks), name="uid"),
        crs="EPSG:4544",
    )


@pytest.mark.parametrize("chunks", [1, 2])
@pytest.mark.parametrize("nulls", ["none", "old", "read"])
@pytest.mark.parametrize("how", ["in place", "reordered", "nothing read"])
def test_taken_frame_equals_concat_and_take(chunks: int, nulls: str, how: str) -> None:
    old = _frame(40, 0, chunks, nulls=nulls == "old")
    rows = _frame(0 if how == "nothing read" else 6, 100, chunks, nulls=nulls == "read")
    positions = np.delete(np.arange(len(old)), [0, 7, 8])  # three removed
    if len(rows):
        positions[[2, 11, 30]] = len(old) + np.array([4, 0, 2])  # three changed in place
        positions = np.concatenate([positions, len(old) + np.array([1, 5, 3])])  # three added
    if how == "reordered":
        positions = np.random.default_rng(3).permutation(positions)
    expected = (pd.concat([old, rows]) if len(rows) else old).take(positions)
    taken = taken_frame(old, rows, positions)
    pd.testing.assert_frame_equal(taken, expected, check_exact=True)
    assert isinstance(taken, gpd.GeoDataFrame) and taken.crs == old.crs
    assert taken.geometry.name == old.geometry.name
    assert shapely.equals_exact(taken.geometry.array, expected.geometry.array).all()
    assert taken.index.tolist() == [([*old.index, *rows.index])[p] for p in positions]
    mixed = nulls == "read" and len(rows)  # int64 and float64: pandas' common dtype
    assert taken["floors"].dtype == (np.float64 if nulls == "old" or mixed else np.int64)
    if len(rows):  # Arrow columns come out in one chunk, however they went in
        assert not isinstance(pa.array(taken["name"].array), pa.ChunkedArray)
        assert not isinstance(pa.array(taken.index.array), pa.ChunkedArray)


def _step(frame: gpd.GeoDataFrame, step: int) -> gpd.GeoDataFrame:
    """One delivery: 3 rows changed (one gets a null, one loses it), 1 removed, 2 added."""
    frame = frame.copy()
    frame["storeys"] = frame["storeys"].astype(float)  # room for the nulls set below
    n = len(frame)
    nulled, filled, renamed = frame.index[[(5 * step + 3) % n, (7 * step + 1) % n, step + 10]]
    frame.loc[nulled, ["storeys", "listed"]] = [None, None]
    frame.loc[filled, "storeys"] = step + 1
    frame.loc[filled, "listed"] = frame["listed"].dropna().iloc[step % 2]  # as the store holds it
    frame.loc[renamed, "name"] = f"第{step}次"
    added = frame.iloc[[step + 20, step + 21]].copy()
    added.index = pd.Index([f"buildings.S{step}-{i}" for i in range(2)], name="uid")
    added["geometry"] = added.geometry.translate(1.0, 2.0)
    added["storeys"] = [None, step + 4] if step % 2 else [step + 3, step + 4]
    kept = frame.drop(index=frame.index[(3 * step + 2) % n])
    return gpd.GeoDataFrame(pd.concat([kept, added]), crs=frame.crs)


def test_patch_after_patch_equals_a_full_load_with_null_bearing_ints_and_bools(
    target: str | Path,
) -> None:
    city = twin.Twin.open(target)
    first = city.layer("buildings")
    first["storeys"] = np.arange(len(first)) % 7  # no null yet: int64
    first["listed"] = pd.array(np.arange(len(first)) % 3 == 0, dtype=object)
    first.loc[first.index[::70], "listed"] = None  # booleans with nulls from the start
    reimport(city, gpd.GeoDataFrame(first, crs=first.crs))
    snapshot = CityIndex.load(target)
    seen_dtypes = {str(snapshot.layer("buildings").frame["storeys"].dtype)}
    assert seen_dtypes == {"int64"}
    for step in range(MAX_LOOKUP_DEPTH + 2):
        report = reimport(city, _step(city.layer("buildings"), step))
        assert (report.added, report.removed) == (2, 1) and report.changed >= 2
        snapshot = snapshot.updated()
        full = CityIndex.load(target)
        assert snapshot.updates["buildings"] == "patched"
        ours, theirs = snapshot.layer("buildings"), full.layer("buildings")
        pd.testing.assert_frame_equal(ours.frame, theirs.frame, check_exact=True)
        assert shapely.equals_exact(ours.geometries, theirs.geometries).all()
        seen_dtypes.add(str(ours.frame["storeys"].dtype))
        assert ours.frame["listed"].isna().any()
        uids = theirs.uids
        probes = [*uids[:3], *uids[-3:], uids[len(uids) // 2]]
        assert [ours.position(u) for u in probes] == [theirs.position(u) for u in probes]
        assert ours.lookup is not None and ours.lookup.depth <= MAX_LOOKUP_DEPTH
    assert seen_dtypes == {"int64", "float64"}  # int64, then float64 once nulls came


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_imports_predicted_order_is_the_one_worked_out_uid_by_uid(seed: int) -> None:
    rng = np.random.default_rng(seed)
    old = [f"b.{i}" for i in range(500)]
    picked = rng.permutation(500)
    removed, changed = [old[i] for i in picked[:30]], [old[i] for i in picked[30:70]]
    added = [f"b.new{i}" for i in range(25)]
    listed = [*removed, *changed, *added]
    kinds = ["removed"] * 30 + ["changed"] * 40 + ["added"] * 25
    changes = pd.DataFrame({"import_id": 7, "uid": listed, "change": kinds}).sample(
        frac=1.0, random_state=seed
    )  # the change set lists them in any order; the added ones keep theirs
    added = changes.loc[changes["change"] == "added", "uid"].tolist()
    rows = pd.Index(rng.permutation([*changed, *added]).tolist(), name="uid")
    expected = [u for u in old if u not in set(removed)] + added
    sources = {u: i for i, u in enumerate(old)} | {u: 500 + rows.get_loc(u) for u in rows}
    index = pd.Index(pd.array(pa.array(old, pa.large_string()), dtype="str"), name="uid")
    guess = predicted(index, changes, rows, order_value(7, expected), 7)
    assert guess is not None
    order, positions = guess
    assert order.tolist() == expected and order.name == "uid" and str(order.dtype) == "str"
    assert positions.tolist() == [sources[u] for u in expected]
    assert predicted(index, changes, rows, order_value(7, expected[::-1]), 7) is None
    unread = rows.drop(added[0])  # an added feature not read: nothing to place there
    assert predicted(index, changes, unread, order_value(7, expected), 7) is None
