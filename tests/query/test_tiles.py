"""Vector tiles of the sample twin, read back with an independent decoder (mapbox-vector-tile).

The expected features of each tile are computed here from the layer itself,
taken to Web Mercator by geopandas and clipped to the tile box written out from
the XYZ formula, not through :mod:`twin.tiles`.
"""

from __future__ import annotations

import math

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely

from twin import mercator as twin_mercator
from twin import tiles as twin_tiles
from twin.errors import UsageError
from twin.query.index import CityIndex
from twin.tiles import TileSource

HALF = 20037508.342789244
EXTENT, BUFFER = 4096, 64


def box_of(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = 2 * HALF / 2**z
    return (-HALF + x * size, HALF - (y + 1) * size, -HALF + (x + 1) * size, HALF - y * size)


def tiles_covering(frame: gpd.GeoDataFrame, z: int) -> list[tuple[int, int, int]]:
    west, south, east, north = frame.to_crs("EPSG:4326").total_bounds
    n = 2**z

    def col(lon: float) -> int:
        return int((lon + 180) / 360 * n)

    def row(lat: float) -> int:
        return int(
            (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi)
            / 2
            * n
        )

    return [
        (z, x, y)
        for x in range(col(west), col(east) + 1)
        for y in range(row(north), row(south) + 1)
    ]


def decoded(data: bytes, name: str, z: int, x: int, y: int) -> dict[str, shapely.Geometry]:
    """uid -> geometry in EPSG:3857, from the raw tile coordinates."""
    layer = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})[name]
    assert layer["extent"] == EXTENT
    minx, _, maxx, maxy = box_of(z, x, y)
    size = (maxx - minx) / EXTENT
    out = {}
    for feature in layer["features"]:
        geom = shapely.geometry.shape(feature["geometry"])
        out[feature["properties"]["uid"]] = shapely.transform(
            geom, lambda c, s=size: np.column_stack((minx + c[:, 0] * s, maxy - c[:, 1] * s))
        )
    return out


def expected(mercator: gpd.GeoSeries, z: int, x: int, y: int) -> dict[str, shapely.Geometry]:
    minx, miny, maxx, maxy = box_of(z, x, y)
    pad = (maxx - minx) * BUFFER / EXTENT
    area = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    hit = mercator[mercator.intersects(area)]
    return {uid: geom.intersection(area) for uid, geom in hit.items()}


@pytest.fixture(scope="module")
def mercator(index: CityIndex) -> dict[str, gpd.GeoSeries]:
    return {name: index.layer(name).frame.geometry.to_crs("EPSG:3857") for name in index.layers}


def source(index: CityIndex, name: str) -> TileSource:
    layer = index.layer(name)
    return TileSource.from_frame(name, layer.kind, layer.frame, tree=layer.tree)


@pytest.mark.parametrize(("name", "zoom"), [("buildings", 14), ("buildings", 16), ("roads", 15)])
def test_tiles_hold_the_layers_features_where_they_are(
    index: CityIndex, mercator: dict[str, gpd.GeoSeries], name: str, zoom: int
) -> None:
    tiles = source(index, name)
    covering = tiles_covering(index.layer(name).frame, zoom)
    assert len(covering) >= 2
    seen: set[str] = set()
    for z, x, y in covering[:: max(1, len(covering) // 6)]:
        got = decoded(tiles.tile(z, x, y), name, z, x, y)
        want = expected(mercator[name], z, x, y)
        pixel = (box_of(z, x, y)[2] - box_of(z, x, y)[0]) / EXTENT
        missing = set(want) - set(got)
        assert set(got) <= set(want)
        # only slivers thinner than the tile grid may vanish
        assert all(want[u].area < 2 * pixel**2 and want[u].length < 8 * pixel for u in missing), (
            missing
        )
        assert len(got) >= 0.98 * len(want)
        for uid, geom in got.items():
            assert shapely.hausdorff_distance(geom, want[uid]) < 1.5 * pixel, uid
        seen |= set(got)
    assert len(seen) > 50


def test_polygon_rings_follow_the_mvt_winding_rule(index: CityIndex) -> None:
    tiles = source(index, "buildings")
    z, x, y = tiles_covering(index.layer("buildings").frame, 15)[3]
    layer = mapbox_vector_tile.decode(tiles.tile(z, x, y), default_options={"y_coord_down": True})
    for feature in layer["buildings"]["features"]:
        geometry = feature["geometry"]
        polygons = geometry["coordinates"]
        if geometry["type"] == "Polygon":
            polygons = [polygons]
        for rings in polygons:
            xy = np.asarray(rings[0], dtype=float)
            area2 = np.sum(xy[:-1, 0] * xy[1:, 1] - xy[1:, 0] * xy[:-1, 1])
            assert area2 > 0  # exterior rings: positive area in tile coordinates (y down)


def test_point_and_attribute_values(index: CityIndex, mercator: dict[str, gpd.GeoSeries]) -> None:
    valves = index.layer("valves").frame
    tiles = source(index, "valves")
    z, x, y = tiles_covering(valves, 14)[0]
    got = decoded(tiles.tile(z, x, y), "valves", z, x, y)
    want = expected(mercator["valves"], z, x, y)
    assert set(got) == set(want) and got
    pixel = (box_of(z, x, y)[2] - box_of(z, x, y)[0]) / EXTENT
    for uid, point in got.items():
        assert point.distance(want[uid]) <= pixel
    props = {
        f["properties"]["uid"]: f["properties"]
        for f in mapbox_vector_tile.decode(tiles.tile(z, x, y))["valves"]["features"]
    }
    for uid, item in props.items():
        assert item["status"] == valves.loc[uid, "status"]
    buildings = index.layer("buildings").frame
    b = source(index, "buildings")
    z, x, y = tiles_covering(buildings, 16)[5]
    for feature in mapbox_vector_tile.decode(b.tile(z, x, y))["buildings"]["features"]:
        row = buildings.loc[feature["properties"]["uid"]]
        height = row["floors"] * 3.0 if pd.isna(row["height_m"]) else row["height_m"]
        assert feature["properties"]["height"] == pytest.approx(height, abs=0.05)


def test_empty_and_bad_tiles(index: CityIndex) -> None:
    tiles = source(index, "buildings")
    z, x, y = tiles_covering(index.layer("buildings").frame, 12)[0]
    assert tiles.tile(z, x, y) == b""  # below the layer's minzoom
    assert tiles.tile(16, 0, 0) == b""  # far from the city
    with pytest.raises(UsageError, match="x and y run from 0 to 3"):
        tiles.tile(2, 4, 0)
    with pytest.raises(UsageError, match="zoom"):
        tiles.tile(30, 0, 0)


def every_tile(
    tiles: TileSource, frame: gpd.GeoDataFrame, z: int
) -> dict[tuple[int, int, int], bytes]:
    return {key: tiles.tile(*key) for key in tiles_covering(frame, z)}


def assert_same_source(mine: TileSource, theirs: TileSource) -> None:
    """The same EPSG:3857 geometries to the last bit, bounds and attribute values."""
    assert shapely.equals_exact(mine.mercator, theirs.mercator, tolerance=0).all()
    assert mine.bounds == theirs.bounds
    for ours, expected in zip(mine.columns, theirs.columns, strict=True):
        assert ours.key == expected.key
        assert np.array_equal(ours.codes, expected.codes)
        assert np.array_equal(ours.messages, expected.messages)


@pytest.mark.parametrize("name", ["buildings", "roads"])
def test_a_source_made_in_batches_cuts_the_same_tiles_byte_for_byte(
    index: CityIndex, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = index.layer(name)
    whole = source(index, name)  # one projection call, values written in one go
    assert len(layer) > 300
    monkeypatch.setattr(twin_mercator, "PROJECT_BATCH", 97)
    monkeypatch.setattr(twin_tiles, "MESSAGE_BATCH", 61)
    pauses: list[int] = []
    batched = TileSource.from_frame(
        name, layer.kind, layer.frame, tree=layer.tree, pause=lambda: pauses.append(1)
    )
    assert len(pauses) == math.ceil(len(layer) / 97) - 1  # between two batches, not after
    assert_same_source(batched, whole)
    want = every_tile(whole, layer.frame, 16)
    assert sum(map(len, want.values())) > 10_000
    assert every_tile(batched, layer.frame, 16) == want


def test_string_values_from_arrow_are_the_python_encoded_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = ["", "a", "成都市武侯区", "x" * 200, "天府大道北段1700号", "é\u0301", "🏢"]

    def entry(text: str) -> bytes:  # 0x22, its length, 0x0a, the text's length, the text
        data = text.encode()
        inner = b"\x0a" + varint(len(data)) + data
        return b"\x22" + varint(len(inner)) + inner

    def varint(n: int) -> bytes:
        return bytes([n]) if n < 128 else bytes([0x80 | n & 0x7F, n >> 7])

    frame = gpd.GeoDataFrame(
        {"name": pd.array(texts * 15, dtype="str")},
        geometry=[shapely.box(505600 + i, 3392200, 505600.5 + i, 3392201) for i in range(105)],
        crs="EPSG:4544",
        index=pd.Index([f"buildings.{t}{i}" for i, t in enumerate(texts * 15)], name="uid"),
    )
    assert isinstance(frame["name"].dtype, pd.StringDtype)
    plain = frame.astype({"name": object})  # written with str() one by one
    for batch in (65536, 8):
        monkeypatch.setattr(twin_tiles, "MESSAGE_BATCH", batch)
        arrow = TileSource.from_frame("buildings", "building", frame)
        python = TileSource.from_frame("buildings", "building", plain)
        names = {c.key: c for c in arrow.columns}["name"]
        assert bytes(names.messages) == b"".join(map(entry, texts))
        assert names.lengths.tolist() == [len(entry(t)) for t in texts]
        uids = {c.key: c for c in arrow.columns}["uid"]
        assert bytes(uids.messages) == b"".join(map(entry, frame.index))
        for mine, theirs in zip(arrow.columns, python.columns, strict=True):
            assert np.array_equal(mine.messages, theirs.messages)
            assert np.array_equal(mine.codes, theirs.codes)
