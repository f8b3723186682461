"""A patched layer's tile source takes its older layer's projected geometries, and cuts
the same tiles as one made from a full load, on both backends.

The delivery moves features (the first ten last), removes two, renames four, moves
one building's outline and adds two (moved copies); the reloaded snapshot patches
the layer (:meth:`CityIndex.updated`). Its tile source
(:func:`twin_api.routers.tiles.whole_source`) is compared with one made by
:meth:`TileSource.from_frame` from :meth:`CityIndex.load` of the new version:
the same EPSG:3857 geometries to the last bit, the same attribute values and
every tile over the layer byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

import twin
from tests.query.conftest import reimport
from tests.query.test_tiles import assert_same_source, tiles_covering
from twin.query.index import CityIndex
from twin.tiles import TileSource
from twin_api.routers.tiles import whole_source


def _delivery(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    moved = pd.concat([frame.iloc[10:], frame.iloc[:10]])  # the first ten now last
    moved.loc[moved.index[[1, 5, 9, 20]], "name"] = [f"瓦片 {i}" for i in range(4)]
    reshaped = moved.index[30]
    moved.loc[reshaped, "geometry"] = moved.loc[reshaped, "geometry"].buffer(1.5)
    added = moved.iloc[[2, 3]].copy()
    added.index = pd.Index(["buildings.瓦-1", "buildings.瓦-2"], name="uid")
    added["geometry"] = added.geometry.translate(0.0, 3.0)
    kept = moved.drop(index=moved.index[[0, 7]])
    return gpd.GeoDataFrame(pd.concat([kept, added]), crs=frame.crs)


def test_a_patched_layers_tile_source_is_carried_and_cuts_the_same_tiles(
    target: str | Path,
) -> None:
    old = CityIndex.load(target)
    before = whole_source(old.layer("buildings"))
    city = twin.Twin.open(target)
    report = reimport(city, _delivery(city.layer("buildings")))
    assert (report.added, report.changed, report.removed) == (2, 5, 2)
    new = old.updated()
    assert new.updates["buildings"] == "patched"
    assert new.layer("roads") is old.layer("roads")
    assert whole_source(new.layer("roads")) is whole_source(old.layer("roads"))  # kept: as is
    layer = new.layer("buildings")
    carried = whole_source(layer)
    full = CityIndex.load(target).layer("buildings")
    fresh = TileSource.from_frame("buildings", full.kind, full.frame, tree=full.tree)
    assert layer.lineage is not None and len(layer.lineage.read_rows) == 7
    old_objects = {id(g) for g in before.mercator}
    assert sum(id(g) in old_objects for g in carried.mercator) == len(layer) - 7  # taken over
    assert_same_source(carried, fresh)
    for z in (14, 17):
        covering = tiles_covering(full.frame, z)
        tiles = {key: carried.tile(*key) for key in covering}
        assert tiles == {key: fresh.tile(*key) for key in covering}
        assert sum(map(len, tiles.values())) > 10_000
