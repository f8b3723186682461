"""CRS parsing, automatic zone choice and the projected-CRS guard."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import pytest
from shapely import Point

from twin.crs import auto_crs, auto_crs_for, require_projected, resolve_crs
from twin.errors import CRSError


@pytest.mark.parametrize(
    ("place", "lon", "lat", "epsg", "name"),
    [
        ("Kashgar", 75.99, 39.47, 4534, "CM 75E"),
        ("Urumqi", 87.62, 43.83, 4538, "CM 87E"),
        ("Lhasa", 91.11, 29.65, 4539, "CM 90E"),
        ("Chengdu", 104.06, 30.67, 4544, "CM 105E"),
        ("Xi'an", 108.94, 34.34, 4545, "CM 108E"),
        ("Wuhan", 114.31, 30.59, 4547, "CM 114E"),
        ("Beijing", 116.40, 39.90, 4548, "CM 117E"),
        ("Shanghai", 121.47, 31.23, 4549, "CM 120E"),
        ("Sanya", 109.51, 18.25, 4546, "CM 111E"),
        ("Harbin", 126.53, 45.80, 4551, "CM 126E"),
        ("Fuyuan", 134.29, 48.36, 4554, "CM 135E"),
        ("Pamirs", 73.20, 39.40, 4534, "CM 75E"),
    ],
)
def test_auto_crs_in_china_is_the_cgcs2000_3_degree_zone(place, lon, lat, epsg, name) -> None:
    crs = auto_crs(lon, lat)
    assert crs.to_epsg() == epsg, place
    assert crs.name == f"CGCS2000 / 3-degree Gauss-Kruger {name}"
    assert crs.is_projected
    # The zone's central meridian really is the nearest one (the Pamirs clamp to 75E).
    assert crs.coordinate_operation is not None
    params = {p.name: p.value for p in crs.coordinate_operation.params}
    cm = params["Longitude of natural origin"]
    assert abs(cm - lon) <= 1.5 or lon < 73.5
    assert (
        crs.geodetic_crs is not None
        and crs.geodetic_crs.name == "China Geodetic Coordinate System 2000"
    )


def test_zone_codes_run_from_4534_to_4554() -> None:
    for code in range(4534, 4555):
        cm = 75 + 3 * (code - 4534)
        assert pyproj.CRS.from_epsg(code).name.endswith(f"CM {cm}E")
        assert auto_crs(min(cm + 1.4, 135.05), 35.0).to_epsg() == code
        assert auto_crs(cm - 1.4, 35.0).to_epsg() == code


def test_zone_edges_round_half_up() -> None:
    assert auto_crs(103.5, 30.0).to_epsg() == 4544  # CM 105E, not banker's 102E
    assert auto_crs(106.5, 30.0).to_epsg() == 4545  # CM 108E


@pytest.mark.parametrize(
    ("place", "lon", "lat", "epsg"),
    [
        ("Helsinki", 24.94, 60.17, 32635),
        ("Sydney", 151.21, -33.87, 32756),
        ("Paris", 2.35, 48.86, 32631),
        ("New York", -74.01, 40.71, 32618),
        ("Tokyo", 139.69, 35.69, 32654),
        ("Singapore", 103.82, 1.35, 32648),
        ("Sao Paulo", -46.63, -23.55, 32723),
        ("Bergen", 5.32, 60.39, 32632),  # Norway exception (would be 31)
        ("Longyearbyen", 15.63, 78.22, 32633),  # Svalbard exception
        ("Ny-Alesund", 11.93, 78.92, 32633),
        ("Barentsburg", 14.21, 78.06, 32633),
        ("Kinnvika", 8.0, 80.0, 32631),
        ("North Pole", 0.0, 89.0, 32661),
        ("South Pole", 0.0, -89.0, 32761),
        ("Dateline", 180.0, 10.0, 32660),
    ],
)
def test_auto_crs_elsewhere_is_the_utm_zone(place, lon, lat, epsg) -> None:
    crs = auto_crs(lon, lat)
    assert crs.to_epsg() == epsg, place
    assert crs.is_projected


def test_auto_crs_names_for_helsinki_and_sydney() -> None:
    assert auto_crs(24.94, 60.17).name == "WGS 84 / UTM zone 35N"
    assert auto_crs(151.21, -33.87).name == "WGS 84 / UTM zone 56S"


@pytest.mark.parametrize(("lon", "lat"), [(505_700.0, 3_392_300.0), (116.4, 95.0), (np.nan, 30.0)])
def test_auto_crs_refuses_what_is_not_lon_lat(lon, lat) -> None:
    with pytest.raises(CRSError, match="src_crs="):
        auto_crs(lon, lat)


def test_auto_crs_for_projected_data_uses_the_centre_of_its_extent() -> None:
    # Chengdu in CM 105E; the same numbers in CM 102E lie near 102E.
    bounds = (500_000.0, 3_390_000.0, 510_000.0, 3_395_000.0)
    assert auto_crs_for(bounds, "EPSG:4544").to_epsg() == 4544
    assert auto_crs_for(bounds, "EPSG:4543").to_epsg() == 4543
    frame = gpd.GeoDataFrame(
        geometry=[Point(500_000, 3_390_000), Point(900_000, 3_395_000)], crs="EPSG:4544"
    )
    # Centre x 700 km is ~107E: CM 108E.
    assert auto_crs_for(frame).to_epsg() == 4545
    assert auto_crs_for(frame.geometry, frame.crs).to_epsg() == 4545


def test_auto_crs_for_lon_lat_data() -> None:
    helsinki = gpd.GeoSeries([Point(24.9, 60.1), Point(25.1, 60.3)], crs="EPSG:4326")
    assert auto_crs_for(helsinki).to_epsg() == 32635
    assert auto_crs_for(np.array([116.2, 39.8, 116.6, 40.0]), 4490).to_epsg() == 4548


def test_auto_crs_for_needs_a_crs_and_coordinates() -> None:
    with pytest.raises(CRSError, match="src_crs='EPSG:4490'"):
        auto_crs_for(gpd.GeoSeries([Point(116.4, 39.9)]))
    with pytest.raises(CRSError, match="no coordinates"):
        auto_crs_for(gpd.GeoSeries([], crs="EPSG:4326"))
    with pytest.raises(CRSError, match="src_crs="):
        # Projected metres declared as lon/lat: the centre is no longitude.
        auto_crs_for((500_000.0, 3_390_000.0, 510_000.0, 3_395_000.0), "EPSG:4326")


@pytest.mark.parametrize(
    "value",
    [
        "EPSG:4547",
        4547,
        "epsg:4547",
        pyproj.CRS.from_epsg(4547),
        pyproj.CRS.from_epsg(4547).to_wkt(),
        pyproj.CRS.from_epsg(4547).to_json_dict(),
    ],
)
def test_resolve_crs_accepts_what_pyproj_accepts(value) -> None:
    assert resolve_crs(value).to_epsg() == 4547


def test_resolve_crs_proj_string() -> None:
    crs = resolve_crs("+proj=utm +zone=50 +datum=WGS84 +units=m +no_defs")
    assert crs.is_projected


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("EPSG:999999", "'EPSG:999999'"),
        ("CGCS2000 please", "'CGCS2000 please'"),
        ([4547], "[4547]"),
        ('PROJCS["broken\n', "'PROJCS"),
    ],
)
def test_resolve_crs_errors_say_what_was_given_and_show_an_example(value, shown) -> None:
    with pytest.raises(CRSError) as info:
        resolve_crs(value)
    message = str(info.value)
    assert shown in message
    assert "'EPSG:4547'" in message
    assert "\n" not in message


def test_resolve_crs_long_input_is_shortened() -> None:
    with pytest.raises(CRSError) as info:
        resolve_crs("x" * 500)
    assert len(str(info.value)) < 200


def test_resolve_crs_explains_web_map_conventions_and_none() -> None:
    with pytest.raises(CRSError, match=r"web-map convention.*EPSG:4326.*coords='gcj02'"):
        resolve_crs("GCJ-02")
    with pytest.raises(CRSError, match="no CRS given"):
        resolve_crs(None)
    with pytest.raises(CRSError, match="auto_crs_for"):
        resolve_crs("auto")


def test_crs_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        resolve_crs("nonsense")


def test_require_projected() -> None:
    require_projected("EPSG:4547", "layer 'buildings'")
    require_projected(pyproj.CRS.from_epsg(32635), "layer 'buildings'")
    with pytest.raises(CRSError) as info:
        require_projected("EPSG:4490", "layer 'buildings'")
    assert str(info.value) == (
        "layer 'buildings' is in a geographic CRS (degrees); metric work needs a projected CRS: "
        "reproject with .to_crs(twin.crs) or create the twin with crs='auto'"
    )
    with pytest.raises(CRSError, match="not a projected CRS"):
        require_projected("EPSG:4978", "the sensors")  # geocentric
    with pytest.raises(CRSError, match="has no CRS"):
        require_projected(None, "the sensors")
