"""Web-map coordinates (GCJ-02, BD-09) against independent implementations from PyPI.

``coordTransform`` (PyPI ``coordtransform``) implements the same published
formulas with the Krasovsky ellipsoid; ``eviltransform`` uses the WGS 84
semi-major axis instead (6378137 m vs 6378245 m), which changes the offset by
1.7e-5 of itself, about a centimetre: it is checked with a looser tolerance.
Their inverses are the one-step approximations; ours iterate, so round trips
are checked by feeding our inverse to their forward.
"""

from __future__ import annotations

import logging

import coordTransform as ct
import eviltransform as evil
import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from shapely import LineString, MultiPolygon, Point, Polygon

from twin.errors import CRSError, UsageError
from twin.webcoords import (
    CHINA_BOX,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    geometries_to_wgs84,
    in_china,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

GEOD = pyproj.Geod(ellps="WGS84")
# Inside both our box and coordTransform's (73.66-135.05E, 3.86-53.55N), with
# a margin larger than any offset so converted points stay inside too.
SAMPLE_BOX = (73.8, 4.0, 134.9, 53.4)
OUTSIDE = np.array(
    [
        (2.3522, 48.8566),  # Paris
        (-74.006, 40.7128),  # New York
        (151.2093, -33.8688),  # Sydney
        (139.6917, 35.6895),  # Tokyo
        (24.9384, 60.1699),  # Helsinki
        (103.8198, 1.3521),  # Singapore
    ]
)


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distances in metres on WGS 84."""
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


@pytest.fixture(scope="module")
def china_points() -> tuple[np.ndarray, np.ndarray]:
    """A 100 x 100 grid plus 10,000 random points across China's box."""
    lon_min, lat_min, lon_max, lat_max = SAMPLE_BOX
    grid_lon, grid_lat = np.meshgrid(
        np.linspace(lon_min, lon_max, 100), np.linspace(lat_min, lat_max, 100)
    )
    rng = np.random.default_rng(20240501)
    lon = np.concatenate([grid_lon.ravel(), rng.uniform(lon_min, lon_max, 10_000)])
    lat = np.concatenate([grid_lat.ravel(), rng.uniform(lat_min, lat_max, 10_000)])
    return lon, lat


def reference(func, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply coordTransform's scalar (pure Python) function point by point."""
    out = np.array([func(float(x), float(y)) for x, y in zip(lon, lat, strict=True)])
    return out[:, 0], out[:, 1]


def test_wgs84_to_gcj02_matches_coordtransform(china_points) -> None:
    lon, lat = china_points
    ours = wgs84_to_gcj02(lon, lat)
    theirs = reference(ct.wgs84_to_gcj02, lon, lat)
    offset = metres(lon, lat, *theirs)
    assert offset.min() > 1.0  # the conversion really moved every point
    assert metres(*ours, *theirs).max() < 0.01


def test_wgs84_to_gcj02_matches_eviltransform_to_its_ellipsoid_difference(china_points) -> None:
    lon, lat = china_points
    ours = wgs84_to_gcj02(lon, lat)
    theirs = np.array([evil.wgs2gcj(y, x) for x, y in zip(lon, lat, strict=True)])
    offset = metres(lon, lat, theirs[:, 1], theirs[:, 0])
    gap = metres(*ours, theirs[:, 1], theirs[:, 0])
    assert gap.max() < 0.05
    assert (gap <= offset * 2e-5 + 1e-6).all()  # only the semi-major axis differs


def test_gcj02_to_wgs84_round_trips_through_coordtransform(china_points) -> None:
    lon, lat = china_points
    wgs = gcj02_to_wgs84(lon, lat)
    back = reference(ct.wgs84_to_gcj02, *wgs)
    error = metres(lon, lat, *back)
    print(f"GCJ-02 round trip via coordTransform: max {error.max():.2e} m")
    assert error.max() < 0.5
    assert error.max() < 1e-3  # iterated, not the one-step approximation


def test_one_step_inverse_is_what_we_improve_on(china_points) -> None:
    """coordTransform's own inverse misses by metres: the round-trip test can fail."""
    lon, lat = china_points
    back = reference(ct.wgs84_to_gcj02, *reference(ct.gcj02_to_wgs84, lon, lat))
    assert metres(lon, lat, *back).max() > 0.5


def test_wgs84_to_bd09_matches_coordtransform(china_points) -> None:
    lon, lat = china_points
    ours = wgs84_to_bd09(lon, lat)
    theirs = reference(ct.wgs84_to_bd09, lon, lat)
    assert metres(*ours, *theirs).max() < 0.01
    gcj = wgs84_to_gcj02(lon, lat)
    assert metres(*gcj02_to_bd09(*gcj), *reference(ct.gcj02_to_bd09, *gcj)).max() < 0.01


def test_bd09_round_trips_through_coordtransform(china_points) -> None:
    lon, lat = china_points
    back = reference(ct.wgs84_to_bd09, *bd09_to_wgs84(lon, lat))
    error = metres(lon, lat, *back)
    print(f"BD-09 round trip via coordTransform: max {error.max():.2e} m")
    assert error.max() < 1e-3
    gcj_back = reference(ct.gcj02_to_bd09, *bd09_to_gcj02(lon, lat))
    assert metres(lon, lat, *gcj_back).max() < 1e-3
    one_step = reference(ct.gcj02_to_bd09, *reference(ct.bd09_to_gcj02, lon, lat))
    assert metres(lon, lat, *one_step).max() > 0.1  # the usual inverse is worse


def test_inverses_invert_our_forward_to_the_tolerance(china_points) -> None:
    lon, lat = china_points
    for forward, inverse in ((wgs84_to_gcj02, gcj02_to_wgs84), (gcj02_to_bd09, bd09_to_gcj02)):
        x, y = forward(*inverse(lon, lat))
        assert np.abs(x - lon).max() < 1e-9
        assert np.abs(y - lat).max() < 1e-9


@pytest.mark.parametrize(
    "func",
    [wgs84_to_gcj02, gcj02_to_wgs84],
)
def test_gcj02_leaves_points_outside_china_unchanged(func) -> None:
    lon, lat = OUTSIDE.T
    out_lon, out_lat = func(lon, lat)
    np.testing.assert_array_equal(out_lon, lon)
    np.testing.assert_array_equal(out_lat, lat)
    assert not in_china(lon, lat).any()


def test_bd09_outside_china_is_only_baidus_shift() -> None:
    lon, lat = OUTSIDE.T
    ours = wgs84_to_bd09(lon, lat)
    theirs = reference(ct.wgs84_to_bd09, lon, lat)
    assert metres(*ours, *theirs).max() < 0.01
    np.testing.assert_allclose(bd09_to_wgs84(*ours), (lon, lat), atol=1e-10)
    np.testing.assert_array_equal(bd09_to_wgs84(*ours), bd09_to_gcj02(*ours))


def test_china_box_is_the_documented_one() -> None:
    assert CHINA_BOX == (73.0, 3.5, 135.1, 53.6)
    # China's extreme points are inside: Pamirs, Heixiazi island, Mohe, Zengmu Ansha.
    assert in_china([73.5, 135.08, 122.35, 112.28], [39.4, 48.4, 53.56, 3.97]).all()
    assert not in_china([np.nan, 72.9, 135.2], [30.0, 30.0, 30.0]).any()


def test_scalars_shapes_and_missing_values() -> None:
    lon, lat = wgs84_to_gcj02(116.391, 39.907)
    assert lon.shape == () and lat.shape == ()
    grid = np.array([[116.391, 104.06], [121.47, np.nan]])
    out_lon, out_lat = gcj02_to_wgs84(grid, 30.0)
    assert out_lon.shape == out_lat.shape == (2, 2)
    assert np.isnan(out_lon[1, 1]) and np.isfinite(out_lon[0]).all()
    assert np.isnan(bd09_to_wgs84([np.nan], [np.inf])[0]).all()
    assert wgs84_to_gcj02([], [])[0].shape == (0,)


def test_input_arrays_are_not_modified() -> None:
    lon, lat = np.array([116.391, 104.06]), np.array([39.907, 30.67])
    copy = lon.copy(), lat.copy()
    for func in (wgs84_to_gcj02, gcj02_to_wgs84, bd09_to_gcj02, gcj02_to_bd09):
        func(lon, lat)
    np.testing.assert_array_equal(lon, copy[0])
    np.testing.assert_array_equal(lat, copy[1])


def test_large_inputs_are_converted_like_small_ones() -> None:
    """Chunked, threaded conversion gives exactly the unchunked result."""
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(74, 134, 200_001), rng.uniform(4, 53, 200_001)
    lon[::1000] = 2.35  # some outside China
    whole = gcj02_to_wgs84(lon, lat)
    parts = [gcj02_to_wgs84(lon[i : i + 1000], lat[i : i + 1000]) for i in (0, 123_000)]
    np.testing.assert_array_equal(whole[0][:1000], parts[0][0])
    np.testing.assert_array_equal(whole[1][123_000:124_000], parts[1][1])
    assert (whole[0][::1000] == 2.35).all()


def test_geometries_to_wgs84_converts_every_vertex() -> None:
    square = Polygon([(116.39, 39.90), (116.40, 39.90), (116.40, 39.91), (116.39, 39.91)])
    geoms = np.array(
        [
            Point(116.397241, 39.908401),
            LineString([(104.06, 30.67), (104.07, 30.68)]),
            MultiPolygon([square]),
            Point(121.47, 31.23, 12.5),
            None,
            Point(),
        ],
        dtype=object,
    )
    out = geometries_to_wgs84(geoms, "GCJ-02")
    assert isinstance(out, np.ndarray) and out.shape == (6,)
    assert out[5].is_empty and out[5].geom_type == "Point"
    coords = shapely.get_coordinates(geoms[:4])
    expected = np.column_stack(gcj02_to_wgs84(coords[:, 0], coords[:, 1]))
    np.testing.assert_allclose(shapely.get_coordinates(out[:4]), expected, rtol=0, atol=1e-12)
    assert out[1].geom_type == "LineString" and out[2].geom_type == "MultiPolygon"
    assert out[3].has_z and out[3].z == 12.5 and not out[0].has_z
    assert out[4] is None
    assert metres(out[0].x, out[0].y, 116.391, 39.907) < 0.1


def test_geometries_to_wgs84_keeps_a_geoseries_index_name_and_crs() -> None:
    series = gpd.GeoSeries(
        [Point(116.403614, 39.914744), Point(2.35, 48.85)],
        index=["a", "b"],
        name="where",
        crs="EPSG:4326",
    )
    out = geometries_to_wgs84(series, "bd09")
    assert isinstance(out, gpd.GeoSeries)
    assert list(out.index) == ["a", "b"] and out.name == "where"
    assert out.crs == series.crs
    assert metres(out["a"].x, out["a"].y, 116.391, 39.907) < 0.1
    assert series["a"].x == 116.403614  # input untouched


def test_geometries_to_wgs84_rejects_unknown_conventions() -> None:
    with pytest.raises(UsageError, match=r"'wgs84'.*'gcj02'.*'bd09'"):
        geometries_to_wgs84(np.array([Point(116.4, 39.9)]), "wgs84")


def test_geometries_to_wgs84_refuses_projected_data() -> None:
    projected = gpd.GeoSeries([Point(500_000, 3_400_000)], crs="EPSG:4544")
    with pytest.raises(CRSError, match="EPSG:4326"):
        geometries_to_wgs84(projected, "gcj02")
    with pytest.raises(CRSError, match="swapped"):
        geometries_to_wgs84(np.array([Point(500_000, 3_400_000)]), "gcj02")


def test_geometries_to_wgs84_lets_single_bad_features_through(caplog) -> None:
    geoms = np.array([Point(116.4, 39.9), Point(1160.0, 39.9)])
    out = geometries_to_wgs84(geoms, "gcj02")
    assert out[1].equals(geoms[1]) and not out[0].equals(geoms[0])
    with pytest.raises(CRSError, match="swapped"):
        geometries_to_wgs84(np.array([Point(39.9, 116.4)]), "gcj02")  # lat > 90
    with caplog.at_level(logging.WARNING, logger="twin.webcoords"):
        geometries_to_wgs84(np.array([Point(2.35, 48.85)]), "gcj02")
    assert "no feature lies in China" in caplog.text


def test_geometries_to_wgs84_keeps_z_on_lines() -> None:
    line = LineString([(104.06, 30.67, 5.0), (104.07, 30.68, 6.0)])
    out = geometries_to_wgs84(np.array([line, Point(104.06, 30.67)]), "bd09")
    assert out[0].has_z and shapely.get_coordinates(out[0], include_z=True)[:, 2].tolist() == [
        5.0,
        6.0,
    ]
    expected = np.column_stack(bd09_to_wgs84([104.06, 104.07], [30.67, 30.68]))
    np.testing.assert_allclose(shapely.get_coordinates(out[0]), expected, rtol=0, atol=1e-12)
    assert not out[1].has_z
