"""Areas read straight from WKB (``twin.indicators.wkbarea``) against shapely's.

``wkb_areas`` must give ``shapely.area(shapely.from_wkb(wkb))`` to the last bit
for every polygon and multipolygon it reads itself, and leave anything else to
shapely with the same answer (or the same error). The building indicators
computed from WKB must equal those computed from decoded geometries.
"""

from __future__ import annotations

import struct

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely

import twin
from twin.build import current_zone_set
from twin.errors import UsageError
from twin.indicators import building_indicators, building_indicators_from_wkb
from twin.indicators.wkbarea import wkb_areas
from twin.relate import largest_share
from twin.store.zonerows import read_footprints, read_zone_rows


def shapely_areas(wkb: np.ndarray) -> np.ndarray:
    return np.asarray(shapely.area(shapely.from_wkb(wkb)), dtype=np.float64)


def as_objects(blobs: list[bytes | None]) -> np.ndarray:
    out = np.empty(len(blobs), dtype=object)
    out[:] = blobs
    return out


def ring(points: list[tuple[float, ...]]) -> bytes:
    return struct.pack("<I", len(points)) + b"".join(struct.pack(f"<{len(p)}d", *p) for p in points)


def iso_polygon(code: int, rings: list[list[tuple[float, ...]]]) -> bytes:
    """Little-endian ISO WKB of a polygon with type ``code`` (3, 1003, 2003, 3003)."""
    return struct.pack("<BII", 1, code, len(rings)) + b"".join(ring(r) for r in rings)


SQUARE = [(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0), (0.0, 0.0)]
HOLE = [(1.0, 1.0), (2.0, 1.0), (2.0, 2.0), (1.0, 2.0), (1.0, 1.0)]


def test_hand_checked_areas() -> None:
    """A 4x4 square with a 1x1 hole (either orientation of either ring) is 15; a
    multipolygon of that and a 2x1 box is 17; empties are 0, a missing one NaN."""
    holed = shapely.Polygon(SQUARE, [HOLE])
    reversed_rings = shapely.Polygon(SQUARE[::-1], [HOLE[::-1]])
    multi = shapely.MultiPolygon([holed, shapely.box(10, 10, 12, 11)])
    blobs = [shapely.to_wkb(g) for g in (holed, reversed_rings, multi)]
    blobs += [shapely.to_wkb(shapely.Polygon()), shapely.to_wkb(shapely.MultiPolygon()), None]
    got = wkb_areas(as_objects(blobs))
    np.testing.assert_array_equal(got, [15.0, 15.0, 17.0, 0.0, 0.0, np.nan])


def test_z_m_and_zm_coordinates_are_skipped() -> None:
    """ISO Z, M and ZM polygons (hand-written bytes) have the 2D area: 16 - 1 = 15."""
    rings = {2: [SQUARE, HOLE]}
    for dims, code in ((3, 1003), (3, 2003), (4, 3003)):
        extra = tuple(range(dims - 2))
        rings[dims] = [[(*p, *(7.5 + e for e in extra)) for p in r] for r in rings[2]]
        blob = iso_polygon(code, rings[dims])
        assert wkb_areas(as_objects([blob]))[0] == 15.0
        assert shapely_areas(as_objects([blob]))[0] == 15.0


def random_polygons(rng: np.random.Generator, n: int) -> list[shapely.Geometry]:
    """Footprints far from the origin (as projected ones are), with many ring sizes:
    disc-like polygons with holes, convex hulls of scattered points, multi-parts."""
    out: list[shapely.Geometry] = []
    for i in range(n):
        x, y = 500_000 + rng.uniform(0, 5e4), 3_400_000 + rng.uniform(0, 5e4)
        outer = shapely.buffer(shapely.Point(x, y), rng.uniform(5, 50), quad_segs=int(i % 9) + 1)
        if i % 3 == 0:
            inner = shapely.buffer(shapely.Point(x, y), 2.0, quad_segs=int(i % 5) + 1)
            outer = outer.difference(inner)
        scattered = rng.uniform(0, 30, (8 + i % 20, 2)) + np.array([x, y])
        hull = shapely.convex_hull(shapely.multipoints(scattered))
        far = shapely.affinity.translate(hull, 200)
        out.append(outer if i % 4 else shapely.MultiPolygon([outer, far]))
        out.append(hull)
    return out


@pytest.mark.parametrize("flavor", ["iso-2d", "iso-3d", "extended-srid", "big-endian", "reversed"])
def test_random_footprints_equal_shapely_to_the_last_bit(flavor: str) -> None:
    geoms = np.array(random_polygons(np.random.default_rng(7), 400), dtype=object)
    if flavor == "reversed":
        geoms = shapely.reverse(geoms)
    if flavor == "iso-3d":
        geoms = shapely.force_3d(geoms, z=12.5)
    if flavor == "extended-srid":
        geoms = shapely.set_srid(geoms, 4544)
    blobs = shapely.to_wkb(
        geoms,
        output_dimension=3,
        byte_order=0 if flavor == "big-endian" else 1,
        flavor="extended" if flavor == "extended-srid" else "iso",
        include_srid=flavor == "extended-srid",
    )
    got = wkb_areas(blobs)
    assert np.array_equal(got, np.asarray(shapely.area(geoms)))
    assert np.array_equal(got, shapely_areas(blobs))


def test_arrow_input_equals_object_input() -> None:
    geoms = random_polygons(np.random.default_rng(3), 50)
    blobs = [shapely.to_wkb(g) for g in geoms] + [None]
    objects = as_objects(blobs)
    whole = pa.array(blobs, type=pa.binary())
    expected = shapely_areas(objects)
    np.testing.assert_array_equal(wkb_areas(whole), expected)
    np.testing.assert_array_equal(wkb_areas(whole.slice(7, 30)), expected[7:37])
    chunked = pa.chunked_array([whole.slice(0, 20), whole.slice(20)]).cast(pa.large_binary())
    np.testing.assert_array_equal(wkb_areas(chunked), expected)


def test_other_geometries_are_left_to_shapely() -> None:
    """Points, lines, collections, a polygon of 300 rings (beyond the walk's limit)."""
    many = shapely.Polygon(
        [(0, 0), (1000, 0), (1000, 1000), (0, 1000)],
        [[(x, 1), (x + 1, 1), (x + 1, 2), (x, 2)] for x in range(2, 902, 3)],
    )
    geoms = [
        shapely.Point(1, 2),
        shapely.LineString([(0, 0), (1, 1)]),
        shapely.GeometryCollection([shapely.box(0, 0, 2, 2)]),
        many,
        shapely.box(0, 0, 3, 3),
    ]
    blobs = shapely.to_wkb(np.array(geoms, dtype=object))
    np.testing.assert_array_equal(wkb_areas(blobs), [0.0, 0.0, 4.0, 1_000_000.0 - 300, 9.0])


def test_damaged_wkb_raises_as_shapely_does() -> None:
    blob = shapely.to_wkb(shapely.Polygon(SQUARE, [HOLE]))
    truncated = as_objects([blob[:-8]])
    with pytest.raises(shapely.errors.GEOSException):
        shapely.from_wkb(truncated)
    with pytest.raises(shapely.errors.GEOSException):
        wkb_areas(truncated)


def test_sample_twin_footprints(sample_twin: twin.Twin) -> None:
    """The sample twin's stored footprints (GDAL's WKB, the blob header removed)."""
    wkb, _ = read_footprints(sample_twin.path, "buildings", [])
    frame = sample_twin.layer("buildings", columns=[])
    assert len(wkb) == len(frame) > 100
    expected = np.asarray(frame.geometry.area)
    assert np.array_equal(wkb_areas(wkb), expected)
    assert np.array_equal(wkb_areas(wkb.to_numpy(zero_copy_only=False)), expected)


@pytest.mark.parametrize("by", ["grids", "parcels"])
def test_indicators_from_wkb_equal_those_from_geometries(sample_twin: twin.Twin, by: str) -> None:
    stored = current_zone_set(sample_twin, "buildings", by)
    assert stored is not None
    rows = read_zone_rows(sample_twin.path, stored)
    zone_of = rows[["zone", "share", "n_zones"]]
    fields = set(sample_twin.fields("buildings"))
    columns = [c for c in ("floors", "height_m", "population") if c in fields]
    assert {"floors", "height_m"} <= set(columns)
    wkb, values = read_footprints(sample_twin.path, "buildings", columns)
    zones = sample_twin.layer(by, columns=[])
    fast = building_indicators_from_wkb(zones, wkb, values, zone_of)
    buildings = gpd.GeoDataFrame(
        values, geometry=shapely.from_wkb(wkb.to_numpy(zero_copy_only=False)), crs=zones.crs
    )
    plain = building_indicators(zones, buildings)
    assert int(fast["building_count"].sum()) == len(buildings) - int((rows["zone"].isna()).sum())
    pd.testing.assert_frame_equal(fast, plain, rtol=1e-12)
    with_relation = building_indicators(zones, buildings, zone_of=zone_of)
    pd.testing.assert_frame_equal(fast, with_relation, check_exact=True)


def test_hand_built_indicators_from_wkb_with_population() -> None:
    """Cells a (0..100) and b (100..200). Buildings: 1 a holed 20x20 (hole 10x10) in a,
    2 floors, 100 people; 2 a 30x10 box across the edge (100 m2 in a, 200 in b), 3 floors,
    30 people; 3 two 10x10 parts, one in each cell, no floors but 9 m high, 20 people."""
    cells = gpd.GeoDataFrame(
        geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)],
        index=["a", "b"],
        crs="EPSG:4544",
    )
    geoms = [
        shapely.Polygon(
            [(10, 10), (30, 10), (30, 30), (10, 30)], [[(15, 15), (15, 25), (25, 25), (25, 15)]]
        ),
        shapely.box(90, 50, 120, 60),
        shapely.MultiPolygon([shapely.box(50, 80, 60, 90), shapely.box(150, 80, 160, 90)]),
    ]
    values = pd.DataFrame(
        {"floors": [2, 3, None], "height_m": [None, None, 9.0], "population": [100, 30, 20]}
    )
    buildings = gpd.GeoDataFrame(values, geometry=geoms, crs="EPSG:4544")
    zone_of = largest_share(buildings, cells)
    wkb = shapely.to_wkb(np.array(geoms, dtype=object))
    fast = building_indicators_from_wkb(cells, wkb, values, zone_of.reset_index(drop=True))
    assert fast["building_count"].tolist() == [2, 1]  # 2 in b (larger part), 3 ties: a
    assert fast["footprint_m2"].tolist() == [300.0 + 100 + 100, 200.0 + 100]
    assert fast["gfa_m2"].tolist() == [600.0 + 300 + 300, 600.0 + 300]
    assert fast["population"].tolist() == [100.0 + 10 + 10, 20.0 + 10]
    pd.testing.assert_frame_equal(fast, building_indicators(cells, buildings), check_exact=True)


def test_footprints_values_and_zones_must_match_row_for_row() -> None:
    zones = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 100, 100)], index=["A"], crs="EPSG:4544")
    wkb = shapely.to_wkb([shapely.box(0, 0, 10, 10)])
    known = pd.DataFrame({"zone": ["A"], "share": [1.0], "n_zones": [1]})
    with pytest.raises(UsageError, match="1 footprints, 2 rows of values and 1 rows of zone_of"):
        building_indicators_from_wkb(zones, wkb, pd.DataFrame({"floors": [2, 3]}), known)
