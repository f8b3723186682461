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
from twin.address.onemap import address_like
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


def test_search_box_finds_a_typed_address_building_first(server: LiveServer):
    """Noisy addresses typed in the one-map search box land on their building first."""
    std = standard_addresses(generate_city(3000, seed=42), seed=42)
    sample = typed_addresses(std, 60, seed=11)
    real = sample[sample["truth_building"].notna()].head(25)
    right = 0
    for text, building, noise in zip(
        real["地址"], real["truth_building"], real["noise"], strict=True
    ):
        body = server.get("/search", q=text, fuzzy="true", limit=5).json()
        assert body["address"] is not None, text
        first = body["hits"][0]
        if first["uid"] == f"buildings.{building}":
            right += 1
            assert first["how"] == "address" and first["layer"] == "buildings"
            assert body["address"]["building"] == first["uid"]
            assert body["address"]["level"] in ("room", "building", "house_number")
            assert body["address"]["grid"].startswith("grids.")
            assert first["feature"]["geometry"]["type"] in ("Polygon", "MultiPolygon")
        else:
            print("missed", text, noise, first["uid"], building)
    assert right >= 24, f"{right} of {len(real)} typed addresses found their building first"


def test_search_box_name_and_nowhere_queries(server: LiveServer):
    city = twin.Twin.open(server.twin)
    names = city.layer("buildings")["name"].dropna()
    name = next(n for n in city.layer("facilities")["name"].dropna() if not address_like(n))
    plain = server.get("/search", q=name).json()
    assert plain["address"] is None and plain["hits"][0]["how"] in ("exact", "contains")
    assert plain["hits"][0]["value"] == name
    named = next(n for n in names if address_like(n))  # 宁芳厂2号厂房: both answers
    both = server.get("/search", q=named, limit=50).json()
    assert both["address"] is not None
    owners = set(names.index[names == named])  # the building(s) of that name: listed once
    listed = [h["uid"] for h in both["hits"] if h["uid"] in owners]
    assert sorted(listed) == sorted(owners)
    nowhere = server.get("/search", q="成都市锦江区杉江街999号").json()
    assert nowhere["address"]["level"] in ("road", "unmatched")
    assert all(h["layer"] != "buildings" or h["how"] != "address" for h in nowhere["hits"])
    internal = server.get(
        "/search", "internal", q="成都市锦江区杉江街1号", layers="addresses_internal"
    )
    assert internal.json()["address"]["layer"] == "addresses_internal"
    public = server.get("/search", q="成都市锦江区杉江街1号", layers="addresses_internal")
    assert public.status_code == 404


def test_page_search_box_selects_the_typed_address_building(server: LiveServer):
    """In Chromium, a noisy address typed in the one-map search box selects its building."""
    from playwright.sync_api import sync_playwright

    from tests.api.test_onemap_page import CHROMIUM, FLAGS, Session

    std = standard_addresses(generate_city(3000, seed=42), seed=42)
    sample = typed_addresses(std, 60, seed=11)
    row = sample[sample["truth_building"].notna() & sample["noise"].str.contains(",")].iloc[0]
    building = f"buildings.{row['truth_building']}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1200, "height": 800}, locale="zh-CN")
        session = Session(context.new_page(), server)
        session.open()
        session.page.fill("#search", row["地址"])
        session.page.press("#search", "Enter")
        session.page.wait_for_selector("#search-list li[data-uid]")
        first = session.page.get_attribute("#search-list li:first-child", "data-uid")
        session.page.wait_for_selector("#profile-uid")
        shown = session.page.inner_text("#profile-uid")
        browser.close()
    assert (first, shown) == (building, building), row["地址"]
    assert session.problems == []
