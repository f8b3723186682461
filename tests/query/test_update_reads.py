"""What bringing a snapshot up to date asks of PostgreSQL: its one connection, settings once.

A reload used to open a connection of its own and read ``twin_meta`` five times;
it now reads through the snapshot's store (the same server backend: its
``pg_backend_pid()``) inside :meth:`PostgisStore.pinned`, and its answer still
equals a full load of the new version, on both backends.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import shapely

import twin
from tests.query.conftest import reimport
from twin.query.index import CityIndex
from twin.query.live import LiveIndex
from twin.store import PostgisStore
from twin.store.pgtest import TempCluster
from twin.store.transfer import copy_twin


def _edited(city: twin.Twin) -> pd.DataFrame:
    """The buildings with two names changed, one removed and one added (a moved copy)."""
    frame = city.layer("buildings")
    frame.loc[frame.index[[3, 8]], "name"] = ["新名 3", "新名 8"]
    added = frame.iloc[[4]].copy()
    added.index = pd.Index(["buildings.NEW-9"], name="uid")
    added["geometry"] = added.geometry.translate(0.0, 5.0)
    return pd.concat([frame.drop(index=frame.index[0]), added])


def _backend(store: PostgisStore) -> int:
    return int(store.rows("SELECT pg_backend_pid()")[0][0])


def test_a_reload_reads_through_the_snapshots_connection_and_equals_a_full_load(
    target: str | Path,
) -> None:
    live = LiveIndex(target)
    before = live.current()
    store = before.twin.store
    backend = _backend(store) if isinstance(store, PostgisStore) else None
    city = twin.Twin.open(target)
    assert reimport(city, _edited(city)).changed == 2
    assert live.refresh()
    after, full = live.current(), CityIndex.load(target)
    assert after.updates["buildings"] == "patched" and after.identity == full.identity
    for name, layer in full.layers.items():
        pd.testing.assert_frame_equal(after.layers[name].frame, layer.frame)
        assert after.layers[name].info == layer.info
        assert shapely.equals_exact(after.layers[name].geometries, layer.geometries).all()
    assert after.layer("buildings").frame.loc["buildings.NEW-9"].name == "buildings.NEW-9"
    if isinstance(store, PostgisStore):  # the same store, still connected to the same backend
        assert after.twin.store is store and _backend(store) == backend
    else:
        assert after.twin.store is not store  # a file is opened anew


def test_pinned_reads_settings_layers_and_columns_once_but_never_the_version(
    pg_cluster: TempCluster, sample_twin: twin.Twin
) -> None:
    url = pg_cluster.url(schema="pinned_reads")
    copy_twin(sample_twin.path, url)
    store, other = PostgisStore(url), PostgisStore(url)
    plain = {name: store.layer_rows(name) for name in ["buildings", "roads", "nowhere"]}
    every, columns = store.layer_rows(), store.column_types("buildings")
    name, (version,) = store.meta()["name"], store.version()[2:]
    with store.pinned():
        assert store.meta()["name"] == name
        for layer, rows in plain.items():  # one layer's rows, taken from the layer list
            pd.testing.assert_frame_equal(store.layer_rows(layer), rows)
        pd.testing.assert_frame_equal(store.layer_rows(), every)
        assert store.column_types("buildings") == columns
        with other.connect() as con:  # another client changes all four meanwhile
            con.execute("UPDATE twin_meta SET value = 'renamed' WHERE key = 'name'")
            con.execute("UPDATE twin_layers SET feature_count = 7 WHERE name = 'roads'")
            con.execute("ALTER TABLE buildings ADD COLUMN extra text")
            con.execute("UPDATE twin_commits SET n = n + 1")
        assert store.meta()["name"] == name  # as first read inside the block
        roads = plain["roads"]["feature_count"].iloc[0]
        assert store.layer_rows("roads")["feature_count"].iloc[0] == roads != 7
        assert store.column_types("buildings") == columns
        assert store.version()[2] == version + 1  # the version is read every time
    assert store.meta()["name"] == "renamed"  # read again once the block ends
    assert int(store.layer_rows("roads")["feature_count"].iloc[0]) == 7
    assert store.column_types("buildings") == [*columns, ("extra", "text")]
    assert other.meta()["name"] == "renamed" and not other.is_pinned()
