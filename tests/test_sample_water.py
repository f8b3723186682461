"""The sample's water layer (水系): the river in the DEM's valley, imported as kind water."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio
import rasterio
import rasterio.features
import shapely

import twin
from tests.conftest import SAMPLES
from twin.kinds import Category, get_kind
from twin.sample import LAYERS, generate_city
from twin.sample.water import water_frame


def test_river_polygon_covers_the_river_parcels_and_no_building() -> None:
    water = pyogrio.read_dataframe(SAMPLES / "water.gpkg", layer="water")
    parcels = pyogrio.read_dataframe(SAMPLES / "parcels.shp", encoding="GBK")
    buildings = pyogrio.read_dataframe(SAMPLES / "buildings.geojson").to_crs(water.crs)
    assert water.crs.to_epsg() == 4544 and LAYERS[-1] == "water"
    assert water["水体编码"].tolist() == ["SX0001"] and water["水体类型"].tolist() == ["河流"]
    river = parcels[parcels["用地性质"] == "E1"]
    assert len(river) == 13 and water["水体名称"].iloc[0] == river["地块名称"].iloc[0] == "紫岸河"
    polygon = water.geometry.iloc[0]
    covered = shapely.union_all(river.geometry.to_numpy())
    # every river parcel is water; the rest of the polygon is the street gaps under the bridges
    assert covered.difference(polygon).area < 1e-4 * covered.area  # slivers of 1 cm rounding
    extra = polygon.difference(covered).area
    assert 0 < extra < 0.15 * covered.area
    assert not buildings.intersects(polygon).any()
    bridges = pyogrio.read_dataframe(SAMPLES / "roads.gdb", layer="roads")
    bridges = bridges[bridges["桥梁"] == 1]
    assert len(bridges) and bridges.intersects(polygon).all()  # the river runs under each


def test_river_lies_in_the_valley_floor() -> None:
    water = pyogrio.read_dataframe(SAMPLES / "water.gpkg", layer="water")
    with rasterio.open(SAMPLES / "dem.tif") as dem:
        ground = dem.read(1, masked=True)
        inside = rasterio.features.geometry_mask(
            water.geometry, ground.shape, dem.transform, invert=True
        )
        banks = rasterio.features.geometry_mask(
            water.geometry.buffer(60).difference(water.geometry.iloc[0]),
            ground.shape,
            dem.transform,
            invert=True,
        )
    assert np.ma.median(ground[inside]) < np.ma.median(ground[banks]) - 1.5


def test_water_is_deterministic_and_a_base_layer_of_the_twin(tmp_path: Path) -> None:
    city = generate_city(400, seed=3)
    again = water_frame(city["parcels"])
    assert city["water"].geometry.geom_equals_exact(again.geometry, 0).all()
    kind = get_kind("water")
    assert (kind.geometry, kind.category, kind.classification.value) == (
        "polygon",
        Category.SPATIO_TEMPORAL_BASE,
        "public",
    )
    made = twin.Twin.create(tmp_path / "w.gpkg", crs="EPSG:4544")
    made.import_layer(
        SAMPLES / "water.gpkg", layer="water", kind="water", source_layer="water", id="水体编码",
        fields={"水体名称": "name", "水体类型": "water_type"},
    )  # fmt: skip
    layer = made.layer("water")
    assert layer.index.tolist() == ["water.SX0001"]
    assert layer["name"].iloc[0] == "紫岸河" and layer["water_type"].iloc[0] == "河流"
