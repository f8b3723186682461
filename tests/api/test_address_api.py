"""/geocode and /reverse over HTTP against a real ``twin serve`` on loopback.

The served twin is the sample delivery plus its standard address layer (public)
and a copy of it imported as internal; expected answers come from the library
on the same file (twin.address) and from eviltransform for GCJ-02.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import eviltransform
import geopandas as gpd
import pytest
import shapely

import twin
from tests.api.conftest import LiveServer, start_server, stop_server
from twin.address import geocoder_for
from twin.sample import generate_city
from twin.sample.addresses import standard_addresses, typed_addresses

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(
    sample_twin_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("address-server")
    path = Path(shutil.copy(sample_twin_file, folder / "chengdu.twin.gpkg"))
    std = standard_addresses(generate_city(3000, seed=42), seed=42)
    city = twin.Twin.open(path)
    city.import_frame(std, layer="addresses", kind="address", id="addr_id")
    city.import_frame(
        std, layer="addresses_internal", kind="address", id="addr_id", classification="internal"
    )
    city.build()
    live = start_server(path, folder)
    yield live
    stop_server(live)


@pytest.fixture(scope="module")
def typed() -> list[str]:
    std = standard_addresses(generate_city(3000, seed=42), seed=42)
    return typed_addresses(std, 40, seed=7)["地址"].tolist()


def test_geocode_answers_as_the_library(server: LiveServer, typed: list[str]):
    city = twin.Twin.open(server.twin)
    coder = geocoder_for(city, layer="addresses")
    roads = 0
    for text in typed:
        body = server.get("/geocode", q=text).json()
        expected = coder.match(text)
        assert body["layer"] == "addresses"
        for key in ("level", "uid", "address", "building", "grid", "district", "reason"):
            assert body[key] == expected[key], (text, key)
        assert body["candidates"] == expected["candidates"]
        assert (body["point"] is None) == (expected["uid"] is None)
        if body["level"] == "road":  # the uid of a road of that name, with a point on it
            layer, _ = body["uid"].split(".", 1)
            assert city.layer(layer).loc[body["uid"], "name"] == body["address"]
            roads += 1
    assert roads >= 1


def test_geocode_point_in_gcj02_and_building(server: LiveServer):
    city = twin.Twin.open(server.twin)
    std = city.layer("addresses")
    row = std[std["level"] == "building"].iloc[0]
    body = server.get("/geocode", q=row["address"], coords="gcj02").json()
    assert body["uid"] == row.name and body["level"] == "building"
    assert body["building"] == f"buildings.{row['building_id']}"
    lon, lat = gpd.GeoSeries([row.geometry], crs=std.crs).to_crs(4326).iloc[0].coords[0]
    glat, glon = eviltransform.wgs2gcj(lat, lon)
    assert abs(body["point"]["lon"] - glon) < 1e-6 and abs(body["point"]["lat"] - glat) < 1e-6
    assert body["parsed"]["road"] and body["parsed"]["district"] == "锦江区"


def test_reverse_from_gcj02(server: LiveServer):
    city = twin.Twin.open(server.twin)
    std = city.layer("addresses")
    row = std[std["level"] == "building"].iloc[5]
    lon, lat = gpd.GeoSeries([row.geometry], crs=std.crs).to_crs(4326).iloc[0].coords[0]
    glat, glon = eviltransform.wgs2gcj(lat, lon)
    body = server.get("/reverse", lon=glon, lat=glat, coords="gcj02").json()
    assert body["uid"] == row.name and body["distance_m"] < 0.5
    buildings = city.layer("buildings")
    assert shapely.contains(buildings.geometry.loc[body["building"]], row.geometry)
    far = server.get("/reverse", lon=lon + 0.2, lat=lat).json()
    assert far["uid"] is None and far["reason"] == "no address within 200 m"


def test_classification_is_respected(server: LiveServer):
    text = "成都市锦江区杉江街1号"
    hidden = server.get("/geocode", q=text, layer="addresses_internal")
    assert hidden.status_code == 404 and hidden.json()["code"] == "NotFound"
    shown = server.get("/geocode", "internal", q=text, layer="addresses_internal")
    assert shown.status_code == 200 and shown.json()["layer"] == "addresses_internal"
    public = server.get("/geocode", q=text).json()
    assert public["layer"] == "addresses"


def test_bad_requests(server: LiveServer):
    empty = server.get("/geocode", q="   ")
    assert empty.status_code == 400 and "q is empty" in empty.json()["description"]
    assert server.get("/geocode").status_code == 400
    assert server.get("/reverse", lon=200, lat=30).status_code == 400
    assert server.get("/reverse", lon=104, lat=30, coords="mars").status_code == 400
