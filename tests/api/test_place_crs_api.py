"""Impact answers say which CRS their places (or area) were read in (issue 12)."""

from __future__ import annotations

from typing import Any

import httpx
import pyproj
import pytest
import shapely

from tests.api.conftest import LiveServer
from twin.webcoords import wgs84_to_bd09, wgs84_to_gcj02


@pytest.fixture(scope="module")
def lonlat(live_server: LiveServer) -> tuple[float, float]:
    """A building's representative point in WGS 84 (near roads, in the sample district)."""
    import twin

    city = twin.Twin.open(live_server.twin)
    point = city.layer("buildings").geometry.iloc[5].representative_point()
    to_wgs = pyproj.Transformer.from_crs(city.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_wgs.transform(point.x, point.y)
    return float(lon), float(lat)


def _post(server: LiveServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=120)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "OGC:CRS84"),
        ({"crs": "EPSG:4326"}, "EPSG:4326"),
        ({"crs": "http://www.opengis.net/def/crs/EPSG/0/4490"}, "EPSG:4490"),
        ({"coords": "gcj02"}, "GCJ-02 lon/lat"),
        ({"coords": "bd09"}, "BD-09 lon/lat"),
    ],
)
def test_route_answer_names_the_crs_of_its_places(
    live_server: LiveServer, lonlat: tuple[float, float], options: dict[str, str], expected: str
) -> None:
    lon, lat = lonlat
    if options.get("coords") == "gcj02":
        lon, lat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    elif options.get("coords") == "bd09":
        lon, lat = (float(v) for v in wgs84_to_bd09(lon, lat))
    body = {
        "origin": {"lon": lon, "lat": lat},
        "destination": {"layer": "facilities", "uid": "facilities.YJ0001"},
        "geometry": False,
        **options,
    }
    answer = _post(live_server, "/impact/route", body)
    assert answer.status_code == 200, answer.text
    summary = answer.json()["summary"]
    assert summary["point_crs"] == expected
    # the same place in every convention: the same access distance (to a few cm)
    plain = {"lon": lonlat[0], "lat": lonlat[1]}
    base_body = {**body, "origin": plain, "crs": "CRS84", "coords": "wgs84"}
    base = _post(live_server, "/impact/route", base_body).json()
    assert summary["origin_access_m"] == pytest.approx(base["summary"]["origin_access_m"], abs=0.5)


def test_road_closure_answer_names_the_crs_of_its_area(
    live_server: LiveServer, lonlat: tuple[float, float]
) -> None:
    lon, lat = lonlat
    area = shapely.geometry.mapping(shapely.Point(lon, lat).buffer(0.002))
    body: dict[str, Any] = {"area": area, "geometry": False}
    answer = _post(live_server, "/impact/road-closure", body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["summary"]["area_crs"] == "OGC:CRS84"
    glon, glat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    gcj = {**body, "area": shapely.geometry.mapping(shapely.Point(glon, glat).buffer(0.002))}
    answer = _post(live_server, "/impact/road-closure", {**gcj, "coords": "gcj02"})
    assert answer.json()["summary"]["area_crs"] == "GCJ-02 lon/lat"
    closed = _post(live_server, "/impact/road-closure", {"roads_closed": ["roads.DL000012"]})
    assert closed.status_code == 200, closed.text
    assert closed.json()["summary"]["area_crs"] is None
