"""Vector tile routes and the GeoPackage export on a live ``twin serve``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import mapbox_vector_tile
import pyogrio
import pytest

import twin
from tests.api.conftest import LiveServer


def _tile_of(server: LiveServer, layer: str, z: int, role: str | None = None) -> tuple[int, int]:
    """A tile at zoom z holding the layer's first feature (from its TileJSON bounds)."""
    import math

    west, south, east, north = server.get(f"/tiles/{layer}.json", role).json()["bounds"]
    lon, lat = (west + east) / 2, (south + north) / 2
    n = 2**z
    return int((lon + 180) / 360 * n), int(
        (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    )


def test_tilesets_follow_the_callers_classification(live_server: LiveServer) -> None:
    anonymous = {t["layer"] for t in live_server.get("/tiles").json()["tilesets"]}
    restricted = {t["layer"] for t in live_server.get("/tiles", "restricted").json()["tilesets"]}
    assert {"buildings", "roads", "districts"} <= anonymous
    assert not {"water_pipes", "valves", "cameras", "sensors"} & anonymous
    assert {"water_pipes", "valves", "cameras", "sensors"} <= restricted
    assert live_server.get("/tiles/valves.json").status_code == 404
    assert live_server.get("/tiles/valves/14/0/0.pbf").status_code == 404
    info = live_server.get("/tiles/buildings.json").json()
    assert info["tilejson"] == "3.0.0" and info["minzoom"] == 13 and info["maxzoom"] == 16
    assert info["tiles"][0].endswith("/tiles/buildings/{z}/{x}/{y}.pbf")
    assert "height" in info["vector_layers"][0]["fields"]


def test_tiles_over_http_hold_the_layer(live_server: LiveServer) -> None:
    x, y = _tile_of(live_server, "buildings", 15)
    answer = live_server.get(f"/tiles/buildings/15/{x}/{y}.pbf")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    decoded = mapbox_vector_tile.decode(answer.content)["buildings"]["features"]
    city = twin.Twin.open(live_server.twin)
    uids = set(city.layer("buildings").index)
    assert len(decoded) > 20 and {f["properties"]["uid"] for f in decoded} <= uids
    same = live_server.get(f"/collections/buildings/tiles/WebMercatorQuad/15/{y}/{x}")
    assert same.content == answer.content
    assert live_server.get("/tiles/buildings/16/0/0.pbf").status_code == 204  # nothing there
    bad = live_server.get("/tiles/buildings/2/9/0.pbf")
    assert bad.status_code == 400 and "x and y run from 0 to 3" in bad.json()["description"]


def test_restricted_tiles_are_audited(live_server: LiveServer) -> None:
    x, y = _tile_of(live_server, "valves", 14, "restricted")
    before = len(live_server.audit_lines())
    answer = live_server.get(f"/tiles/valves/14/{x}/{y}.pbf", "restricted")
    assert answer.status_code == 200
    statuses = {
        f["properties"]["status"]
        for f in mapbox_vector_tile.decode(answer.content)["valves"]["features"]
    }
    assert statuses <= {"open", "closed", "inoperable"}
    lines = [json.loads(line) for line in live_server.audit_lines()[before:]]
    assert any(line["layers"] == ["valves"] and "/tiles/valves/" in line["path"] for line in lines)


def test_impact_answer_downloads_as_a_geopackage(live_server: LiveServer, tmp_path: Path) -> None:
    headers = live_server.headers("restricted")
    answer = httpx.post(
        live_server.url + "/impact/pipe-break",
        json={"pipe": "water_pipes.JS000100", "pipes": "water_pipes"},
        headers=headers,
        timeout=60,
    ).json()
    body = {"type": "FeatureCollection", "features": answer["features"]}
    gpkg = httpx.post(live_server.url + "/export/geopackage", json=body, timeout=60)
    assert gpkg.status_code == 200
    assert gpkg.headers["content-type"] == "application/geopackage+sqlite3"
    path = tmp_path / "impact.gpkg"
    path.write_bytes(gpkg.content)
    layers = {name: kind for name, kind in pyogrio.list_layers(path)}
    counted = sum(pyogrio.read_info(path, layer=name)["features"] for name in layers)
    assert counted == len(answer["features"])
    points = pyogrio.read_dataframe(path, layer="impact_point")
    valves = [f for f in answer["features"] if f["properties"]["result"] == "valve_to_close"]
    assert (
        (points["result"] == "valve_to_close").sum()
        == len(valves)
        == answer["summary"]["valves_to_close"]
    )
    assert points.crs.to_epsg() == twin.Twin.open(live_server.twin).crs.to_epsg()
    empty = httpx.post(
        live_server.url + "/export/geopackage", json={"type": "FeatureCollection", "features": []}
    )
    assert empty.status_code == 400 and "no feature" in empty.json()["description"]


OGC_TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"


def test_web_mercator_quad_matches_the_ogc_definition(live_server: LiveServer) -> None:
    listing = live_server.get("/tileMatrixSets").json()["tileMatrixSets"]
    assert [t["id"] for t in listing] == ["WebMercatorQuad"]
    assert listing[0]["links"][0]["href"].endswith("/tileMatrixSets/WebMercatorQuad")
    tms = live_server.get("/tileMatrixSets/WebMercatorQuad").json()
    assert tms["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert tms["uri"] == "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
    matrices = tms["tileMatrices"]
    assert [m["id"] for m in matrices] == [str(z) for z in range(25)]
    # OGC 17-083r4 annex D.1: zoom 0 scale 559082264.0287178, cell 156543.0339280410 m,
    # origin (-20037508.3427892, 20037508.3427892); each zoom halves both.
    for z, m in enumerate(matrices):
        assert m["scaleDenominator"] == pytest.approx(559082264.0287178 / 2**z, rel=1e-12)
        assert m["cellSize"] == pytest.approx(156543.0339280410 / 2**z, rel=1e-12)
        assert m["pointOfOrigin"] == pytest.approx([-20037508.3427892, 20037508.3427892])
        assert m["matrixWidth"] == m["matrixHeight"] == 2**z
        assert m["tileWidth"] == m["tileHeight"] == 256
        assert m["cornerOfOrigin"] == "topLeft"
    assert live_server.get("/tileMatrixSets/WorldCRS84Quad").status_code == 404
    conforms = live_server.get("/conformance").json()["conformsTo"]
    assert {OGC_TILES + c for c in ("core", "tileset", "tilesets-list", "mvt")} <= set(conforms)
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conforms


def test_collection_tileset_metadata_leads_to_its_tiles(live_server: LiveServer) -> None:
    sets = live_server.get("/collections/buildings/tiles").json()["tilesets"]
    assert len(sets) == 1 and sets[0]["dataType"] == "vector"
    self_href = next(link["href"] for link in sets[0]["links"] if link["rel"] == "self")
    meta = httpx.get(self_href).json()
    assert meta["tileMatrixSetURI"].endswith("/WebMercatorQuad")
    assert [lim["tileMatrix"] for lim in meta["tileMatrixSetLimits"]] == ["13", "14", "15", "16"]
    template = next(link["href"] for link in meta["links"] if link["rel"] == "item")
    x, y = _tile_of(live_server, "buildings", 15)
    limit = meta["tileMatrixSetLimits"][2]
    assert limit["minTileCol"] <= x <= limit["maxTileCol"]
    assert limit["minTileRow"] <= y <= limit["maxTileRow"]
    url = template.format(tileMatrix=15, tileRow=y, tileCol=x)
    decoded = mapbox_vector_tile.decode(httpx.get(url).content)["buildings"]["features"]
    assert len(decoded) > 20
    # every building lies within the limits: the tile just outside them holds nothing
    outside = template.format(tileMatrix=15, tileRow=y, tileCol=limit["maxTileCol"] + 1)
    assert httpx.get(outside).status_code == 204
    west, south, east, north = live_server.get("/tiles/buildings.json").json()["bounds"]
    box = meta["boundingBox"]
    assert box["lowerLeft"] == [west, south] and box["upperRight"] == [east, north]
    assert meta["layers"][0]["geometryDimension"] == 2
    assert live_server.get("/collections/valves/tiles").status_code == 404
    assert live_server.get("/collections/valves/tiles", "restricted").status_code == 200


def test_tile_sources_prepare_once_in_the_background(
    sample_twin_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from twin.query.index import CityIndex
    from twin.tiles import TileSource
    from twin_api.routers import tiles as tile_routes

    built: list[str] = []
    real = TileSource.from_frame

    def counted(name: str, *args: object, **kwargs: object) -> TileSource:
        built.append(name)
        if name == "buildings":
            time.sleep(0.3)  # slow enough that the requests below arrive mid-build
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(TileSource, "from_frame", staticmethod(counted))
    index = CityIndex.load(sample_twin_file)
    buildings = index.layer("buildings")
    answers: list[TileSource] = []
    go = threading.Barrier(6)

    def first_request() -> None:
        go.wait()
        answers.append(tile_routes.tile_source(index, buildings))

    requests = [threading.Thread(target=first_request) for _ in range(5)]
    for thread in requests:
        thread.start()
    go.wait()
    warming = tile_routes.warm(index)  # as a snapshot loads, racing the requests
    for thread in [*requests, warming]:
        thread.join(60)
    assert sorted(built) == sorted(index.layers)  # every layer once, buildings included
    assert len(answers) == 5 and all(a is answers[0] for a in answers)
    assert answers[0].tile(*answers[0].tile_of(15, *_inside_first(buildings)))  # a real tile


def _inside_first(layer: object) -> tuple[float, float]:
    from pyproj import Transformer

    frame = layer.frame  # type: ignore[attr-defined]
    point = frame.geometry.iloc[0].representative_point()  # inside the first feature
    to_lonlat = Transformer.from_crs(frame.crs, "OGC:CRS84", always_xy=True)
    lon, lat = to_lonlat.transform(point.x, point.y)
    return float(lon), float(lat)


def test_a_newer_snapshot_stops_the_older_ones_preparation(
    sample_twin_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from twin.query.index import CityIndex
    from twin.tiles import TileSource
    from twin_api.routers import tiles as tile_routes

    old, new = CityIndex.load(sample_twin_file), CityIndex.load(sample_twin_file)
    built: list[tuple[int, str]] = []
    real = TileSource.from_frame
    first_started = threading.Event()

    def counted(name: str, kind: str, frame: object, **kwargs: object) -> TileSource:
        snapshot = next(i for i in (old, new) if i.layers[name].frame is frame)
        built.append((id(snapshot), name))
        if snapshot is old:
            first_started.set()
            time.sleep(0.5)  # the reload arrives while the old snapshot's first layer builds
        return real(name, kind, frame, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(TileSource, "from_frame", staticmethod(counted))
    older = tile_routes.warm(old)
    assert first_started.wait(30)
    newer = tile_routes.warm(new)
    older.join(60)
    newer.join(60)
    first = next(iter(old.layers))
    assert [name for i, name in built if i == id(old)] == [first]  # stopped after one layer
    assert sorted(name for i, name in built if i == id(new)) == sorted(new.layers)


def test_a_tile_request_ends_the_pauses_of_its_layers_preparation_ahead(
    sample_twin_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a load with no pause, a layer prepared ahead waits between batches; the
    first tile request of that layer must not wait out those pauses behind it."""
    import threading
    import time

    from twin import mercator
    from twin.query.index import CityIndex
    from twin.tiles import TileSource
    from twin_api.preparing import Lull
    from twin_api.routers import tiles as tile_routes

    tile_routes.warm(CityIndex.load(sample_twin_file)).join(300)  # earlier tests' jobs done
    batching = threading.Event()
    real = TileSource.from_frame

    def counted(name: str, kind: str, frame: object, **kwargs: object) -> TileSource:
        if kwargs.get("pause") is not None:
            batching.set()  # prepared ahead, with pauses
        return real(name, kind, frame, **kwargs)  # type: ignore[arg-type]

    class Busy(Lull):  # requests all the time, except before the first layer
        calls = 0

        def wait(self, patience_s: float | None = None, **kwargs: object) -> float:
            self.calls += 1
            return 0.0 if self.calls == 1 else super().wait(patience_s, **kwargs)  # type: ignore[arg-type]

    busy = Busy(quiet_s=0.01)
    busy.last_request = time.monotonic() + 3600
    monkeypatch.setattr(tile_routes, "LULL", busy)
    monkeypatch.setattr(tile_routes, "BATCH_PATIENCE_S", 3600.0)
    monkeypatch.setattr(mercator, "PROJECT_BATCH", 5)
    monkeypatch.setattr(TileSource, "from_frame", staticmethod(counted))
    index = CityIndex.load(sample_twin_file)
    first = index.layer(next(iter(index.layers)))  # the layer warm() prepares first
    assert len(first.frame) > 10 * mercator.PROJECT_BATCH
    monkeypatch.setattr(tile_routes, "TILE_PATIENCE_S", 0.0)  # no wait before each layer
    ahead = tile_routes.warm(index)
    assert batching.wait(60)
    answers: list[TileSource] = []
    request = threading.Thread(target=lambda: answers.append(tile_routes.tile_source(index, first)))
    request.start()
    request.join(120)  # an hour per pause if they were not ended
    try:
        assert not request.is_alive() and len(answers) == 1
        assert tile_routes.tile_source(index, first) is answers[0]  # the one preparation
        assert busy.calls >= 2  # it did pause before the request came
    finally:
        busy.last_request = float("-inf")  # quiet: the rest goes at once
        ahead.join(300)
    assert not ahead.is_alive()


def test_composite_tile_holds_one_layer_per_name(live_server: LiveServer) -> None:
    """/tiles/a,b/z/x/y.pbf is the layers' own tiles in one MVT, decoded independently."""
    z = 15
    x, y = _tile_of(live_server, "buildings", z)
    single = {
        name: live_server.get(f"/tiles/{name}/{z}/{x}/{y}.pbf") for name in ("roads", "buildings")
    }
    assert all(r.status_code == 200 for r in single.values())
    both = live_server.get(f"/tiles/roads,buildings/{z}/{x}/{y}.pbf")
    assert both.status_code == 200
    assert both.content == single["roads"].content + single["buildings"].content
    decoded = mapbox_vector_tile.decode(both.content)
    for name, answer in single.items():
        alone = mapbox_vector_tile.decode(answer.content)[name]["features"]
        assert len(decoded[name]["features"]) == len(alone) > 0
    # a layer below its minzoom (buildings from 13) adds nothing; a hidden one is a 404
    lx, ly = _tile_of(live_server, "districts", 12)
    low = live_server.get(f"/tiles/districts,buildings/12/{lx}/{ly}.pbf")
    assert set(mapbox_vector_tile.decode(low.content)) == {"districts"}
    assert live_server.get(f"/tiles/roads,water_pipes/{z}/{x}/{y}.pbf").status_code == 404
    with_key = live_server.get(f"/tiles/roads,water_pipes/{z}/{x}/{y}.pbf", role="restricted")
    assert with_key.headers["cache-control"].startswith("private")
