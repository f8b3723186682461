"""The one-map page in a real browser: Debian's Chromium (software WebGL) driven by Playwright
against a real ``twin serve`` on loopback.

Screenshots are written to ``out/test-artefacts/onemap/`` (or ``$TWIN_TEST_ARTEFACTS``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import pyproj
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

import twin
from tests.api.conftest import LiveServer
from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow

ARTEFACTS = Path(os.environ.get("TWIN_TEST_ARTEFACTS", ROOT / "out" / "test-artefacts")) / "onemap"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Software WebGL: headless Chromium has no GPU here.
FLAGS = ["--use-angle=swiftshader", "--use-gl=angle", "--enable-unsafe-swiftshader",
         "--ignore-gpu-blocklist", "--no-sandbox"]  # fmt: skip
BUILDING = "buildings.JZ0000101"  # 天阳花园1栋
PIPE = "water_pipes.JS000100"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


class Session:
    """A page on the one-map, with every console message and request it made."""

    def __init__(self, page: Page, server: LiveServer) -> None:
        self.page = page
        self.server = server
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.home: Any = None
        page.on(
            "console", lambda m: m.type in ("error", "warning") and self.problems.append(m.text)
        )
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))

    def open(self) -> None:
        self.page.goto(self.server.url + "/")
        self.page.wait_for_function(
            "window.citytwin && (window.citytwin.settled || document.body.dataset.error)",
            timeout=120_000,
        )
        assert self.page.evaluate("document.body.dataset.error") is None, self.problems

    def idle(self) -> None:
        self.page.evaluate("() => new Promise(r => citytwin.map.once('idle', r))")

    def jump(self, lon: float, lat: float, zoom: float) -> None:
        self.page.evaluate(
            "([lon, lat, zoom]) => new Promise(r => { citytwin.map.once('idle', r); "
            "citytwin.map.jumpTo({center: [lon, lat], zoom, pitch: 0, bearing: 0}); })",
            [lon, lat, zoom],
        )

    def click_at(self, lon: float, lat: float) -> None:
        box = self.page.locator("#map").bounding_box()
        assert box is not None
        point = self.page.evaluate("([lon, lat]) => citytwin.map.project([lon, lat])", [lon, lat])
        self.page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])

    def enter_key(self, key: str) -> None:
        self.page.click("#key-button")
        self.page.fill("#key-input", key)
        self.page.click("#key-form button[type=submit]")
        self.page.wait_for_selector("input[data-layer='water_pipes']")
        self.idle()

    def shot(self, name: str) -> Path:
        path = ARTEFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def assert_clean(self) -> None:
        assert self.problems == []
        outside = [
            u for u in self.requests if not u.startswith(("http://127.0.0.1:", "data:", "blob:"))
        ]
        assert outside == []


@pytest.fixture
def session(browser: Browser, live_server: LiveServer) -> Iterator[Session]:
    """A page of its own, not opened yet."""
    context = browser.new_context(viewport={"width": 1400, "height": 850}, locale="zh-CN")
    opened = Session(context.new_page(), live_server)
    yield opened
    context.close()


@pytest.fixture(scope="module")
def shared_page(browser: Browser, live_server: LiveServer) -> Iterator[Session]:
    context = browser.new_context(viewport={"width": 1400, "height": 850}, locale="zh-CN")
    opened = Session(context.new_page(), live_server)
    opened.open()
    opened.home = opened.page.evaluate(
        "[citytwin.map.getCenter().toArray(), citytwin.map.getZoom()]"
    )
    yield opened
    context.close()


@pytest.fixture
def anonymous(shared_page: Session) -> Session:
    """One page without a key, shared by the tests (a page load costs seconds of
    software rendering): back at its first view, no impact drawn, in Chinese."""
    page = shared_page.page
    if page.is_visible("#impact-clear"):
        page.click("#impact-clear")
    if page.evaluate("document.documentElement.lang") != "zh-CN":
        page.click("#lang-button")
    (lon, lat), zoom = shared_page.home
    page.evaluate(
        "([c, z]) => new Promise(r => { citytwin.map.once('idle', r); "
        "citytwin.map.jumpTo({center: c, zoom: z, pitch: 0, bearing: 0}); })",
        [[lon, lat], zoom],
    )
    return shared_page


def lonlat(
    city: twin.Twin, layer: str, uid: str, *, middle_of_line: bool = False
) -> tuple[float, float]:
    frame = city.layer(layer)
    geometry = frame.geometry.loc[uid]
    point = (
        geometry.interpolate(0.5, normalized=True)
        if middle_of_line
        else geometry.representative_point()
    )
    out = gpd.GeoSeries([point], crs=frame.crs).to_crs("OGC:CRS84").iloc[0]
    return out.x, out.y


def test_page_for_browsers_json_for_clients(live_server: LiveServer) -> None:
    html = httpx.get(live_server.url + "/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert html.headers["content-type"].startswith("text/html") and "/static/app.js" in html.text
    assert httpx.get(live_server.url + "/map", headers={"Accept": "text/html"}).text == html.text
    landing = httpx.get(live_server.url + "/").json()
    assert any(link["href"].endswith("/map") for link in landing["links"])
    assert httpx.get(live_server.url + "/static/../app.py").status_code == 404
    built = httpx.get(live_server.url + "/static/BUILD.json").json()
    assert built["maplibre-gl"].startswith("5.")  # the 6.x line never fires load headless


def test_page_renders_offline_without_errors_and_without_restricted_layers(
    anonymous: Session,
) -> None:
    listed = anonymous.page.eval_on_selector_all(
        "input[data-layer]", "els => els.map(e => e.dataset.layer)"
    )
    assert {"buildings", "roads", "parcels", "districts", "grids"} <= set(listed)
    assert not {"water_pipes", "gas_pipes", "valves", "cameras", "sensors"} & set(listed)
    drawn = anonymous.page.evaluate(
        "citytwin.map.queryRenderedFeatures({layers: ['buildings-3d']}).length"
    )
    assert drawn > 100
    # one composite tile per z/x/y ("/tiles/a,b,c/z/x/y.pbf") of the layers the caller may read
    tiles = [u for u in anonymous.requests if "/tiles/" in u and u.endswith(".pbf")]
    asked = {name for u in tiles for name in u.split("/tiles/")[1].split("/")[0].split(",")}
    assert {"buildings", "roads", "districts", "water"} <= asked
    assert not asked & {"water_pipes", "gas_pipes", "valves", "cameras", "sensors"}
    assert len(tiles) == len({u.split("?")[0] for u in tiles}) <= 8  # first view: a few tiles
    anonymous.page.wait_for_selector("#vitals .vital")
    vitals = anonymous.page.inner_text("#vitals")
    assert "天亭街道" in vitals and "建筑" in vitals
    anonymous.shot("01-first-render-zh")
    anonymous.assert_clean()


def test_layers_toggle(anonymous: Session) -> None:
    count = "citytwin.map.queryRenderedFeatures({layers: ['buildings-3d']}).length"
    assert anonymous.page.evaluate(count) > 100
    anonymous.page.uncheck("input[data-layer='buildings']")
    anonymous.idle()
    assert (
        anonymous.page.evaluate("citytwin.map.getLayoutProperty('buildings-3d', 'visibility')")
        == "none"
    )
    assert anonymous.page.evaluate(count) == 0
    anonymous.page.check("input[data-layer='buildings']")
    anonymous.idle()
    assert anonymous.page.evaluate(count) > 100
    anonymous.assert_clean()


def test_click_on_a_building_shows_its_uid_and_coordinates(
    anonymous: Session, live_server: LiveServer
) -> None:
    city = twin.Twin.open(live_server.twin)
    lon, lat = lonlat(city, "buildings", BUILDING)
    anonymous.jump(lon, lat, 18)
    anonymous.page.select_option("#crs-mode", "projected")
    anonymous.click_at(lon, lat)
    anonymous.page.wait_for_selector(f"#profile-uid:text-is('{BUILDING}')")
    assert BUILDING in anonymous.page.inner_text("#identify-body")
    clicked = anonymous.page.evaluate("citytwin.state.lastPosition")
    x, y = pyproj.Transformer.from_crs("OGC:CRS84", city.crs, always_xy=True).transform(*clicked)
    readout = anonymous.page.inner_text("#coords-readout").split()
    assert readout[0] == city.crs.to_string()
    assert float(readout[2]) == pytest.approx(x, abs=0.05)
    assert float(readout[4]) == pytest.approx(y, abs=0.05)
    anonymous.shot("02-identify-building")
    anonymous.assert_clean()


def test_search_finds_a_chinese_name_with_a_typo(anonymous: Session) -> None:
    anonymous.page.fill("#search", "天杨花园")  # 杨 for 阳
    anonymous.page.press("#search", "Enter")
    anonymous.page.wait_for_selector("#search-list li[data-uid]")
    first = anonymous.page.inner_text("#search-list li:first-child")
    assert "天阳花园" in first
    uid = anonymous.page.get_attribute("#search-list li:first-child", "data-uid")
    anonymous.page.wait_for_selector(f"#profile-uid:text-is('{uid}')")
    anonymous.assert_clean()


@pytest.mark.slow  # the longest test of the suite (a browser waits for a whole pipe break)
def test_pipe_burst_draws_what_the_cli_finds(session: Session, live_server: LiveServer) -> None:
    city = twin.Twin.open(live_server.twin)
    cli = run_cli(
        "analyze", "pipe-break", str(live_server.twin), "--pipes", "water_pipes", "--pipe", PIPE,
        "--json", check=True,
    )  # fmt: skip
    expected: dict[str, Any] = json.loads(cli.stdout)
    assert expected["valves_to_close"] > 0 and expected["buildings"] > 0
    session.open()
    session.enter_key(live_server.keys["restricted"])
    lon, lat = lonlat(city, "water_pipes", PIPE, middle_of_line=True)
    session.jump(lon, lat, 18)
    session.click_at(lon, lat)
    session.page.click(f".hit[data-uid='{PIPE}'] button.burst")
    session.page.wait_for_selector(
        "#impact-summary tr[data-result='valve_to_close']", timeout=60_000
    )
    counts = session.page.evaluate("citytwin.impactCounts")
    assert counts["valve_to_close"] == expected["valves_to_close"]
    assert counts["building"] == expected["buildings"]
    assert counts.get("isolated_pipe", 0) == expected["isolated_pipes"]
    cell = "#impact-summary tr[data-result='building'] .count"
    assert session.page.inner_text(cell) == str(expected["buildings"])
    drawn = session.page.evaluate("citytwin.state.impact.answer.features.length")
    assert drawn >= expected["valves_to_close"] + expected["buildings"]
    session.jump(lon, lat, 15.5)
    session.shot("03-pipe-burst")
    session.assert_clean()


def test_language_switch(anonymous: Session) -> None:
    assert anonymous.page.inner_text("h1") == "城市一张图"
    anonymous.page.click("#lang-button")
    assert anonymous.page.inner_text("h1") == "City one map"
    assert anonymous.page.evaluate("document.documentElement.lang") == "en"
    assert "Spatio-temporal base" in anonymous.page.inner_text("#layer-list")
    assert anonymous.page.get_attribute("#search", "placeholder") == "Name, address or code"
    assert anonymous.page.inner_text("#events-status") == "Event stream connected"
    anonymous.shot("04-english")
    anonymous.page.click("#lang-button")
    assert anonymous.page.inner_text("h1") == "城市一张图"
    assert anonymous.page.inner_text("#events-status") == "事件流已接入"
    anonymous.assert_clean()


def test_road_close_from_the_map_and_the_events_slot(
    anonymous: Session, live_server: LiveServer
) -> None:
    road = "roads.DL000005"
    city = twin.Twin.open(live_server.twin)
    cli = run_cli("analyze", "road-closure", str(live_server.twin), "--close", road, "--json")
    expected = json.loads(cli.stdout)
    assert expected["buildings_lost"] > 0 and expected["buildings_delayed"] > 0
    lon, lat = lonlat(city, "roads", road, middle_of_line=True)
    anonymous.jump(lon, lat, 18)
    anonymous.click_at(lon, lat)
    anonymous.page.click(f".hit[data-uid='{road}'] button.close-road")
    anonymous.page.wait_for_selector(
        "#impact-summary tr[data-result='closed_road']", timeout=60_000
    )
    counts = anonymous.page.evaluate("citytwin.impactCounts")
    assert counts["closed_road"] == expected["closed_edges"]
    assert counts["building_lost"] == expected["buildings_lost"]
    assert counts["building_delayed"] == expected["buildings_delayed"]
    # The detour heat surface: one weighted point per delayed building, a legend in minutes.
    heat = anonymous.page.evaluate("citytwin.map.getSource('detour-heat').serialize().data")
    answer = anonymous.page.evaluate("citytwin.state.impact.answer.features")
    delayed = {
        f["id"]: f["properties"]["detour_s"]
        for f in answer
        if f["properties"]["result"] == "building_delayed"
    }
    assert len(heat["features"]) == expected["buildings_delayed"]
    longest = expected["max_detour_s"] / 60
    assert max(delayed.values()) == pytest.approx(expected["max_detour_s"], abs=0.5)
    for point in heat["features"]:
        minutes = point["properties"]["detour_min"]
        assert minutes == pytest.approx(delayed[point["properties"]["uid"]] / 60)
        assert point["properties"]["weight"] == pytest.approx(minutes / longest, abs=1e-3)
    legend_max = anonymous.page.inner_text("#legend-heat-max")
    assert legend_max == f"{longest:.1f} 分钟"
    assert anonymous.page.is_visible("#legend-heat") and "分钟" in anonymous.page.inner_text(
        "#legend-heat"
    )
    assert anonymous.page.evaluate("citytwin.map.getLayer('detour-heat').type") == "heatmap"
    # The events slot: an event pushed through the page's hook is listed and marked on the map.
    event = {"id": "ev-1", "status": "overdue", "title": "爆管 井盖冒水", "lon": lon, "lat": lat}
    anonymous.page.evaluate("ev => citytwin.events.add(ev)", event)
    item = anonymous.page.locator("#events-list li[data-id='ev-1']")
    assert item.get_attribute("data-status") == "overdue"
    assert item.inner_text() == "[已超时] 爆管 井盖冒水"
    assert anonymous.page.locator(".event-marker").count() == 1
    anonymous.jump(lon, lat, 16.5)
    anonymous.shot("05-road-closure-and-event")
    anonymous.assert_clean()


def test_area_closure_drawn_on_the_map(anonymous: Session, live_server: LiveServer) -> None:
    city = twin.Twin.open(live_server.twin)
    lon, lat = lonlat(city, "roads", "roads.DL000005", middle_of_line=True)
    anonymous.jump(lon, lat, 16)
    d = 0.0015  # a square of about 300 m around the road's middle
    corners = [(lon - d, lat - d), (lon + d, lat - d), (lon + d, lat + d), (lon - d, lat + d)]
    anonymous.page.click("#draw-area")
    for corner in corners:
        anonymous.click_at(*corner)
    drawn = anonymous.page.evaluate("citytwin.state.drawing")
    anonymous.page.click("#finish-area")
    anonymous.page.wait_for_selector(
        "#impact-summary tr[data-result='closed_road']", timeout=60_000
    )
    summary = anonymous.page.evaluate("citytwin.state.impact.answer.summary")
    to_twin = pyproj.Transformer.from_crs("OGC:CRS84", city.crs, always_xy=True)
    ring = [to_twin.transform(*p) for p in [*drawn, drawn[0]]]
    wkt = "POLYGON((" + ", ".join(f"{x} {y}" for x, y in ring) + "))"
    cli = run_cli("analyze", "road-closure", str(live_server.twin), "--area-wkt", wkt, "--json")
    expected = json.loads(cli.stdout)
    assert summary["closed_roads"] == expected["closed_roads"] > 0
    assert summary["buildings_lost"] == expected["buildings_lost"]
    anonymous.shot("06-area-closure")
    anonymous.assert_clean()
