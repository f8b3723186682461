"""The very next request after a worker's swap answers from the new snapshot, on every route.

``twin serve`` with two workers on a PostGIS twin (the session's throwaway
cluster); one kept-alive client per worker. Before the re-import each client
asks for everything that shows a renamed building (warming the old snapshot's
caches: GeoJSON texts, tile sources). After the commit each client polls its
own worker's ``/health`` until that worker reports the new version; the very
next requests on that connection — the feature by id, the items page holding
it, a bbox page around it, a property filter on its new name, identify at its
point and the vector tile under it — must all hold the new name (a worker
answering from a cache of the old snapshot after its swap would be a silent
wrong answer).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import mapbox_vector_tile
import pytest
import shapely.geometry

import twin
from tests.api.conftest import LiveServer, start_server, stop_server
from tests.conftest import SAMPLES
from twin.store.pgtest import TempCluster
from twin.store.transfer import copy_twin

pytestmark = pytest.mark.slow  # a real PostgreSQL, a 2-worker server, an import

WORKERS = 2
PICKS = [3, 150, 700, -1]  # which of the named buildings of the sample get a new name


@pytest.fixture
def served(
    pg_cluster: TempCluster, sample_twin_file: Path, tmp_path: Path
) -> Iterator[tuple[LiveServer, str]]:
    url = pg_cluster.url(schema="next_request")
    copy_twin(sample_twin_file, url, overwrite=True)
    server = start_server(url, tmp_path, "--workers", str(WORKERS))  # type: ignore[arg-type]
    try:
        yield server, url
    finally:
        stop_server(server)


def _pinned(server: LiveServer) -> dict[int, httpx.Client]:
    """One kept-alive client per worker (connections landing on a taken worker are closed)."""
    clients: dict[int, httpx.Client] = {}
    spare: list[httpx.Client] = []
    deadline = time.monotonic() + 60
    while len(clients) < WORKERS and time.monotonic() < deadline:
        client = httpx.Client(base_url=server.url, timeout=30)
        worker = int(client.get("/health").headers["x-twin-worker"])
        if worker in clients:
            spare.append(client)
        else:
            clients[worker] = client
    for client in spare:
        client.close()
    assert len(clients) == WORKERS
    return clients


def _renamed_delivery(folder: Path) -> tuple[Path, dict[str, str]]:
    """The sample buildings with a few given new names (uid -> new name)."""
    frame = gpd.read_file(SAMPLES / "buildings.geojson")
    rows = frame.index[frame["建筑名称"].notna()][PICKS]
    names = {f"buildings.{frame.loc[row, '建筑编码']}": f"新名称 {row}" for row in rows}
    frame.loc[rows, "建筑名称"] = list(names.values())
    path = folder / "buildings-renamed.geojson"
    frame.to_file(path, driver="GeoJSON")
    return path, names


def _answers(client: httpx.Client, uid: str, offset: int, name: str | None) -> dict[str, Any]:
    """What each route says of building ``uid`` (its name there), on one connection."""
    seen: dict[str, Any] = {}

    def get(path: str, **params: Any) -> Any:
        answer = client.get(path, params=params)
        assert answer.status_code == 200, answer.text
        seen.setdefault("versions", set()).add(answer.headers["x-twin-version"])
        return answer

    item = get(f"/collections/buildings/items/{uid}").json()
    seen["item"] = item["properties"]["name"]
    page = get("/collections/buildings/items", limit=100, offset=offset).json()
    seen["page"] = {f["id"]: f["properties"]["name"] for f in page["features"]}.get(uid)
    point = shapely.geometry.shape(item["geometry"]).representative_point()
    box = f"{point.x - 0.0005},{point.y - 0.0005},{point.x + 0.0005},{point.y + 0.0005}"
    near = get("/collections/buildings/items", bbox=box, limit=1000).json()
    seen["bbox"] = {f["id"]: f["properties"]["name"] for f in near["features"]}.get(uid)
    if name is not None:
        filtered = get("/collections/buildings/items", name=name, limit=10).json()
        seen["filter"] = [f["id"] for f in filtered["features"]]
    found = get("/identify", lon=point.x, lat=point.y).json()
    seen["identify"] = _named(found, uid)
    z, x, y = _tile_at(point.x, point.y, 16)
    tile = mapbox_vector_tile.decode(get(f"/tiles/buildings/{z}/{x}/{y}.pbf").content)
    features = tile["buildings"]["features"]
    seen["tile"] = {f["properties"]["uid"]: f["properties"].get("name") for f in features}.get(uid)
    return seen


def _tile_at(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """The XYZ tile holding a point (Web Mercator, rows from the north)."""
    n = 2**z
    row = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n), int(row)


def _named(found: Any, uid: str) -> Any:
    """The name identify gives ``uid`` (wherever in its answer the feature is)."""
    if isinstance(found, dict):
        if found.get("id") == uid:
            return (found.get("properties") or {}).get("name")
        values = found.values()
    elif isinstance(found, list):
        values = found
    else:
        return None
    for value in values:
        name = _named(value, uid)
        if name is not None:
            return name
    return None


def _offset(url: str, uid: str) -> int:
    """The first row of the 100-row items page holding ``uid`` (the stored order)."""
    order = list(twin.Twin.open(url).layer("buildings").index)
    return order.index(uid) // 100 * 100


def _version_of(client: httpx.Client) -> str:
    return str(client.get("/health").headers["x-twin-version"])


def test_the_next_request_after_each_workers_swap_answers_the_new_names(
    served: tuple[LiveServer, str], tmp_path: Path
) -> None:
    server, url = served
    clients = _pinned(server)
    delivery, names = _renamed_delivery(tmp_path)
    offsets = {uid: _offset(url, uid) for uid in names}
    old = {}
    for client in clients.values():  # the old snapshot answered (and its caches made) first
        for uid in names:
            old[uid] = _answers(client, uid, offsets[uid], None)
            assert old[uid]["item"] not in (None, names[uid])
            assert {old[uid][k] for k in ("page", "bbox", "identify", "tile")} == {old[uid]["item"]}
    before = twin.Twin.open(url).store.version()[-1]
    spec = twin.read_mapping(SAMPLES / "mapping.yaml")["buildings"]
    report = twin.Twin.open(url).import_spec(dataclasses.replace(spec, source=delivery))
    assert (report.changed, report.added, report.removed) == (len(names), 0, 0)
    now = str(twin.Twin.open(url).store.version()[-1])
    assert int(now) > before
    for worker, client in clients.items():
        deadline = time.monotonic() + 60
        while _version_of(client) != now:  # this worker has not swapped yet
            assert time.monotonic() < deadline, f"worker {worker} never swapped"
            time.sleep(0.01)
        for uid, name in names.items():
            seen = _answers(client, uid, offsets[uid], name)
            assert seen["versions"] == {now}, (worker, seen)
            assert {seen[k] for k in ("item", "page", "bbox", "identify", "tile")} == {name}, (
                worker,
                uid,
                seen,
            )
            assert seen["filter"] == [uid]
        city = twin.Twin.open(url)  # what this worker's reload did, to the layers one may see
        expected = {n: "patched" if n == "buildings" else "kept" for n in city.layers}
        public = {n for n in city.layers if city.info(n).classification == "public"}
        assert "water_pipes" not in public
        full = client.get("/health", headers=server.headers("restricted")).json()["snapshot"]
        assert full["updates"] == expected
        anonymous = client.get("/health").json()["snapshot"]
        assert anonymous["updates"] == {n: how for n, how in expected.items() if n in public}
        assert 0 < anonymous["paused_s"] <= 1.0 + 0.5  # the default longest pause, 1 s
    for client in clients.values():
        client.close()
