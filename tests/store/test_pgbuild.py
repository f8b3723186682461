"""Rebuilding relations in PostGIS: the bulk path swaps in a new rows table.

The sample twin is built on both backends, then buildings are redelivered
(three heights changed, one building gone) and the twin is built again: the
relations from and to buildings are recomputed (a bulk write: most rows), the
others are kept. The PostGIS twin must then hold exactly the GeoPackage
twin's relation rows, in a new rows table (the first build's rows gone with
the old one), with its indexes and view back in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import yaml

import twin
from tests.conftest import SAMPLES
from twin.store import PostgisStore
from twin.store.pgtest import TempCluster

# A real server and the sample built twice on each backend: over 10 s.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[TempCluster]:
    with TempCluster() as started:
        yield started


def _redelivered(folder: Path) -> Path:
    """Buildings redelivered: the first three 7 m taller, the last one gone."""
    frame = gpd.read_file(SAMPLES / "buildings.geojson").iloc[:-1]
    taller = frame["建筑高度"].to_numpy(copy=True)
    taller[:3] += 7.0
    path = folder / "buildings_v2.geojson"
    frame.assign(建筑高度=taller).to_file(path, driver="GeoJSON")
    return path


def _built_twice(name: str, redelivery: Path) -> tuple[twin.Twin, twin.BuildReport, object]:
    """The sample built, buildings redelivered, built again; and what
    :func:`_rows_table` said after the first build."""
    city = twin.Twin.create(name, crs="auto")
    city.import_mapping(SAMPLES / "mapping.yaml")
    city.build()
    first = _rows_table(city)
    spec = yaml.safe_load((SAMPLES / "mapping.yaml").read_text(encoding="utf-8"))
    fields = spec["layers"]["buildings"]["fields"]
    city.import_layer(redelivery, layer="buildings", kind="building", id="建筑编码", fields=fields)
    return city, city.build(), first


def _rows_table(city: twin.Twin) -> object:
    """The oid of the PostGIS twin's relation rows table (None on a GeoPackage)."""
    if not isinstance(city.store, PostgisStore):
        return None
    return city.store.rows("SELECT 'twin_relations'::regclass::oid")[0][0]


def test_a_rebuild_keeps_and_replaces_the_same_sets_as_the_geopackage(
    cluster: TempCluster, tmp_path: Path
) -> None:
    redelivery = _redelivered(tmp_path)
    ref, ref_report, _ = _built_twice(str(tmp_path / "ref.gpkg"), redelivery)
    city, report, first_table = _built_twice(cluster.url(schema="rebuild"), redelivery)
    assert _rows_table(city) != first_table  # a bulk rewrite: a new table swapped in
    assert report.kept and report.recomputed  # both paths: sets kept and sets replaced
    assert sorted(report.kept) == sorted(ref_report.kept)
    assert report.recomputed == ref_report.recomputed
    mine, theirs = city.relations(), ref.relations()
    assert len(mine) == len(theirs) > 0
    key = ["relation", "from_layer", "to_layer", "from_uid"]
    pd.testing.assert_frame_equal(
        mine.sort_values(key, kind="stable").reset_index(drop=True),
        theirs.sort_values(key, kind="stable").reset_index(drop=True),
        check_exact=False,
        rtol=1e-9,
    )
    store = city.store
    live = store.rows("SELECT count(*) FROM twin_relations")[0][0]
    assert live == len(mine)  # the replaced sets' rows went with the old table
    indexes = {
        r[0]
        for r in store.rows(
            "SELECT indexname FROM pg_indexes WHERE schemaname=%s AND tablename='twin_relations'",
            (store.schema,),
        )
    }
    assert {"twin_relations_pkey", "twin_relations_from", "twin_relations_to"} <= indexes
    assert store.rows("SELECT count(*) FROM twin_relation_rows")[0][0] == len(mine)
    assert city.relations(uid="buildings.JZ0000001")["from_uid"].eq("buildings.JZ0000001").any()
