"""A server holding every layer compact (``TWIN_COMPACT_ABOVE=0``) answers as a whole one.

Two real ``twin serve`` processes over copies of the same twin: the session's
``live_server`` (every layer whole, the sample being small) and one started with
``TWIN_COMPACT_ABOVE=0``. Bbox pages, filters, offsets, output CRSs, single
items, identify and vector tiles are compared byte for byte (the page's
``timeStamp`` aside).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import orjson
import pyproj
import pytest

from tests.api.conftest import LiveServer, start_server, stop_server
from twin.query.index import CityIndex
from twin.tiles import MercatorView, TileSource
from twin_api.routers import tiles as tile_routes


@pytest.fixture(scope="module")
def compact_server(
    sample_twin_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("compact-server")
    copy = Path(shutil.copy(sample_twin_file, folder / "chengdu.twin.gpkg"))
    with mock.patch.dict(os.environ, {"TWIN_COMPACT_ABOVE": "0"}):
        server = start_server(copy, folder)
    yield server
    stop_server(server)


def _lonlat_box(path: Path, layer: str, fraction: float) -> str:
    """A CRS84 box over the middle ``fraction`` of a layer's extent."""
    index = CityIndex.load(path)
    x0, y0, x1, y1 = index.layer(layer).frame.total_bounds
    cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * fraction, (y1 - y0) * fraction
    lon0, lat0, lon1, lat1 = index.from_twin("OGC:CRS84").transform_bounds(
        cx - hx, cy - hy, cx + hx, cy + hy
    )
    return f"{lon0:.7f},{lat0:.7f},{lon1:.7f},{lat1:.7f}"


def _page(server: LiveServer, path: str, role: str | None, params: dict[str, Any]) -> Any:
    answer = server.get(path, role=role, **params)
    assert answer.status_code == 200, answer.text
    body = orjson.loads(answer.content)
    body.pop("timeStamp", None)
    return body


CASES = [
    ("buildings", None, {"limit": 100}, 0.05),
    ("buildings", None, {"limit": 7, "offset": 5}, 0.1),
    ("buildings", None, {"limit": 50, "crs": "http://www.opengis.net/def/crs/EPSG/0/4490"}, 0.1),
    ("parcels", None, {"limit": 30, "crs": "http://www.opengis.net/def/crs/EPSG/0/4544"}, 0.2),
    ("roads", None, {"limit": 1000}, 0.3),
    ("water_pipes", "restricted", {"limit": 40, "network": "water"}, 0.3),
]


@pytest.mark.slow
@pytest.mark.parametrize(("layer", "role", "params", "fraction"), CASES)
def test_bbox_pages_are_the_same(
    live_server: LiveServer,
    compact_server: LiveServer,
    layer: str,
    role: str | None,
    params: dict[str, Any],
    fraction: float,
) -> None:
    query = {"bbox": _lonlat_box(live_server.twin, layer, fraction), **params}
    path = f"/collections/{layer}/items"
    whole = _page(live_server, path, role, query)
    assert whole["numberReturned"] > 0
    assert _page(compact_server, path, role, query) == {
        **whole,
        "links": [
            {**link, "href": link["href"].replace(live_server.url, compact_server.url)}
            for link in whole["links"]
        ],
    }


@pytest.mark.slow
def test_items_identify_and_tiles_are_the_same(
    live_server: LiveServer, compact_server: LiveServer
) -> None:
    page = _page(live_server, "/collections/buildings/items", None, {"limit": 3, "offset": 40})
    uid = page["features"][1]["id"]
    one = f"/collections/buildings/items/{uid}"
    whole, compact = live_server.get(one), compact_server.get(one)
    assert whole.status_code == 200
    assert orjson.loads(compact.content)["geometry"] == orjson.loads(whole.content)["geometry"]
    lon, lat = page["features"][1]["geometry"]["coordinates"][0][0][0]
    for where in ({"lon": lon, "lat": lat}, {"lon": lon + 1e-5, "lat": lat - 1e-5}):
        answers = [
            s.get("/identify", **where, tolerance_m=25) for s in (live_server, compact_server)
        ]
        assert answers[0].status_code == 200
        assert sum(len(group["features"]) for group in answers[0].json()["layers"]) >= 2
        assert answers[1].content == answers[0].content
    x, y = _tile_of(lon, lat, 16)
    for layer in ("buildings", "parcels", "roads"):
        tiles = [s.get(f"/tiles/{layer}/16/{x}/{y}.pbf") for s in (live_server, compact_server)]
        assert tiles[0].status_code == 200 and len(tiles[0].content) > 100
        assert tiles[1].content == tiles[0].content
        meta = [s.get(f"/tiles/{layer}.json").json() for s in (live_server, compact_server)]
        assert meta[1]["bounds"] == meta[0]["bounds"]


@pytest.mark.parametrize("compact_above", [0, 1000])
def test_province_tile_sources_project_per_tile(
    sample_twin_file: Path, compact_above: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With any compact layer, every layer's tiles are projected per tile: the same tiles."""
    whole = CityIndex.load(sample_twin_file)
    province = CityIndex.load(sample_twin_file, compact_above=compact_above)
    assert any(layer.compact for layer in province)
    built: list[str] = []
    real = TileSource.from_compact

    def counted(name: str, *args: Any, **kwargs: Any) -> TileSource:
        built.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(TileSource, "from_compact", staticmethod(counted))
    warming = tile_routes.warm(province)
    warming.join(30)
    assert built == []  # nothing prepared ahead of a request
    for name in ("buildings", "roads", "sensors"):
        layer = province.layer(name)
        source = tile_routes.tile_source(province, layer)
        assert isinstance(source.mercator, MercatorView)
        reference = TileSource.from_frame(name, layer.kind, whole.layer(name).frame)
        assert (source.geometry_type, source.bounds) == (reference.geometry_type, reference.bounds)
        assert [c.key for c in source.columns] == [c.key for c in reference.columns]
        lon = (source.bounds[0] + source.bounds[2]) / 2
        lat = (source.bounds[1] + source.bounds[3]) / 2
        for z in (15, 17):
            tile = source.tile_of(z, lon, lat)
            assert source.tile(*tile) == reference.tile(*tile)
            assert len(reference.tile(*tile)) > 50
        assert not layer.compact or not layer.materialized
    assert built == ["buildings", "roads", "sensors"]


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    x, y = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:3857", always_xy=True).transform(lon, lat)
    size = 2 * 20037508.342789244 / (1 << z)
    return int((x + 20037508.342789244) // size), int((20037508.342789244 - y) // size)


def test_tile_of_matches_the_source(sample_twin_file: Path) -> None:
    index = CityIndex.load(sample_twin_file)
    source = tile_routes.tile_source(index, index.layer("roads"))
    lon, lat = np.mean(np.reshape(source.bounds, (2, 2)), axis=0)
    assert source.tile_of(16, lon, lat)[1:] == _tile_of(lon, lat, 16)
