"""``twin serve`` over a PostGIS twin: the same answers as the GeoPackage twin, reloads on
commit (LISTEN/NOTIFY, several workers), and a database restart while serving.

The sample twin of the session (a GeoPackage) is copied into the session's
throwaway PostgreSQL cluster with ``twin copy`` (library :func:`copy_twin`);
one real ``twin serve`` runs on each (uvicorn on a free loopback port, two
workers on PostGIS) and every answer is compared with the GeoPackage server's.
Each answer names its worker (``X-Twin-Worker``) and the snapshot's commit
counter (``X-Twin-Version``), which is how the tests see every worker reload.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import shapely.geometry

import twin
from tests.api.conftest import LiveServer, start_server, stop_server
from tests.api.test_reload import changed_delivery
from tests.conftest import SAMPLES
from twin.store.pgtest import TempCluster
from twin.store.transfer import copy_twin

# A real PostgreSQL, three servers and two imports: well over 10 s.
pytestmark = pytest.mark.slow

BACKENDS = ["gpkg", "postgis"]
PIPE = "water_pipes.JS000010"
WORKERS = 2


@pytest.fixture(scope="module")
def pg_url(pg_cluster: TempCluster, sample_twin_file: Path) -> str:
    url = pg_cluster.url(schema="served")
    copy_twin(sample_twin_file, url, overwrite=True)
    return url


@pytest.fixture(scope="module")
def servers(
    pg_url: str, sample_twin_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, LiveServer]]:
    started: dict[str, LiveServer] = {}
    try:
        folder = tmp_path_factory.mktemp("served-gpkg")
        started["gpkg"] = start_server(sample_twin_file, folder)
        folder = tmp_path_factory.mktemp("served-postgis")
        started["postgis"] = start_server(pg_url, folder, "--workers", str(WORKERS))  # type: ignore[arg-type]
        yield started
    finally:
        for server in started.values():
            stop_server(server)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _json(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _without_links(body: Any) -> Any:
    """An answer without its links (they hold the server's own address)."""
    if isinstance(body, dict):
        return {k: _without_links(v) for k, v in body.items() if k not in ("links", "timeStamp")}
    if isinstance(body, list):
        return [_without_links(v) for v in body]
    return body


def _post(server: LiveServer, path: str, body: dict[str, Any], role: str) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=server.headers(role), timeout=60)


def test_the_same_answers_as_the_geopackage_twin(
    servers: dict[str, LiveServer], backend: str
) -> None:
    ref, mine = servers["gpkg"], servers[backend]
    listing = _json(mine.get("/collections", "restricted"))
    assert sorted(c["id"] for c in listing["collections"]) == sorted(
        c["id"] for c in _json(ref.get("/collections", "restricted"))["collections"]
    )
    # a bbox page of buildings around the sample's middle: hand-checked to hold features
    everything = _json(ref.get("/collections/buildings/items", limit=1000))
    assert everything["numberMatched"] == 3000
    inside = shapely.geometry.shape(everything["features"][500]["geometry"]).representative_point()
    lon, lat = inside.x, inside.y
    bbox = f"{lon - 0.002},{lat - 0.002},{lon + 0.002},{lat + 0.002}"
    page = _json(mine.get("/collections/buildings/items", bbox=bbox, limit=1000))
    expected = _json(ref.get("/collections/buildings/items", bbox=bbox, limit=1000))
    assert 10 < page["numberMatched"] == expected["numberMatched"] < 3000
    assert _without_links(page) == _without_links(expected)
    one = everything["features"][7]["id"]
    assert _json(mine.get(f"/collections/buildings/items/{one}"))["id"] == one
    # identify at a building's corner, and the impact of one pipe break
    ident = _json(mine.get("/identify", "restricted", lon=lon, lat=lat))
    assert ident == _json(ref.get("/identify", "restricted", lon=lon, lat=lat))
    found = {hits["layer"]: hits["count"] for hits in ident["layers"]}
    assert found.get("buildings") == 1, found  # the point is inside that building
    broken = _json(_post(mine, "/impact/pipe-break", {"pipe": PIPE}, "restricted"))
    assert broken == _json(_post(ref, "/impact/pipe-break", {"pipe": PIPE}, "restricted"))
    results = {f["properties"]["result"] for f in broken["features"]}
    assert {"valve_to_close", "isolated_pipe", "building"} <= results, results


def _health_of_workers(
    server: LiveServer, n: int = 40, *, every: bool = False, timeout_s: float = 30
) -> dict[int, httpx.Response]:
    """Each worker's newest ``/health`` answer over ``n`` fresh connections; with
    ``every``, asked on until every worker has answered (``timeout_s`` at most).

    Fresh connections go to whichever worker accepts first: one busy for a moment
    (a reload pauses its requests, see twin_api.preparing.PauseRequests; a swap
    is followed by background preparation) may take none of ``n``.
    """
    deadline = time.monotonic() + timeout_s
    seen: dict[int, httpx.Response] = {}
    asked = 0
    while asked < n or (every and len(seen) < WORKERS and time.monotonic() < deadline):
        answer = httpx.get(server.url + "/health", timeout=10)
        assert answer.status_code == 200
        seen[int(answer.headers["x-twin-worker"])] = answer
        asked += 1
    if every:
        assert len(seen) == WORKERS, f"only workers {sorted(seen)} answered in {timeout_s} s"
    return seen


def _versions(server: LiveServer, n: int = 40) -> dict[int, str]:
    """The newest version each worker answered with, over ``n`` fresh connections."""
    return {w: a.headers["x-twin-version"] for w, a in _health_of_workers(server, n).items()}


def _every_worker(server: LiveServer) -> dict[int, str]:
    """The version each worker answers with, asked until every worker has answered."""
    found = _health_of_workers(server, every=True)
    return {w: a.headers["x-twin-version"] for w, a in found.items()}


def _all_workers_at(server: LiveServer, version: str, timeout_s: float = 30) -> dict[int, str]:
    deadline = time.monotonic() + timeout_s
    seen: dict[int, str] = {}
    while time.monotonic() < deadline:
        seen.update(_versions(server, 10))
        if len(seen) == WORKERS and set(seen.values()) == {version}:
            return seen
    return seen


def _reimport(url: str, folder: Path) -> None:
    source, _, _ = changed_delivery(folder)
    spec = twin.read_mapping(SAMPLES / "mapping.yaml")["buildings"]
    twin.Twin.open(url).import_spec(dataclasses.replace(spec, source=source))


def test_every_worker_reloads_when_an_import_commits(
    servers: dict[str, LiveServer], pg_url: str, tmp_path: Path
) -> None:
    server = servers["postgis"]
    before = _every_worker(server)
    assert len(set(before.values())) == 1
    counter = int(next(iter(before.values())))
    assert counter == _commits(pg_url)
    swaps_before = _swaps(server)
    _reimport(pg_url, tmp_path)
    now = _commits(pg_url)
    assert now > counter
    seen = _all_workers_at(server, str(now))
    assert seen == {pid: str(now) for pid in before}, seen
    # each worker's own account of the reload: heard after the write began, swapped after that
    began = _last_import_time(pg_url)  # the write transaction's start, before its commit
    swaps = _swaps(server)
    assert set(swaps) == set(before), swaps
    for worker, swap in swaps.items():
        assert swap != swaps_before.get(worker)
        assert swap["version"] == str(now)
        assert began <= swap["heard_at"] <= swap["swapped_at"] <= time.time()
        assert swap["update_s"] == round(swap["swapped_at"] - swap["heard_at"], 3)
    # the new data: the changed delivery dropped 100 of the 3000 buildings
    for _ in range(2 * WORKERS):
        assert _json(server.get("/collections/buildings/items", limit=1))["numberMatched"] == 2900
    health = _json(server.get("/health"))
    assert health["listening"] is True and health["reloads"] >= 1


def test_a_database_restart_fails_fast_then_recovers(
    servers: dict[str, LiveServer], pg_cluster: TempCluster, pg_url: str, tmp_path: Path
) -> None:
    server = servers["postgis"]
    before = _every_worker(server)
    counter = int(next(iter(before.values())))
    # an as-of read goes to the database (each instant once: answers are cached)
    instants = iter(f"2001-01-01T00:{m:02d}:00Z" for m in range(60))
    past = next(instants)
    assert server.get("/collections/buildings/items", datetime=past, limit=1).status_code == 200
    pg_cluster.halt()
    try:
        for _ in range(6):
            started = time.monotonic()
            down = server.get("/collections/buildings/items", datetime=next(instants), limit=1)
            assert time.monotonic() - started < 5
            assert down.status_code == 503, down.text
            body = down.json()
            assert body["code"] == "ServiceUnavailable" and "database" in body["description"]
        # what the snapshot in memory answers keeps answering
        assert _json(server.get("/collections/buildings/items", limit=1))["numberMatched"] > 0
    finally:
        pg_cluster.resume()
    deadline = time.monotonic() + 30
    while server.get("/collections/buildings/items", datetime=next(instants)).status_code != 200:
        assert time.monotonic() < deadline, "no recovery within 30 s of the restart"
        time.sleep(0.2)
    # every worker's LISTEN connection came back (a second subscription) and hears commits
    deadline = time.monotonic() + 30
    resubscribed: dict[int, int] = {}
    while len(resubscribed) < WORKERS and time.monotonic() < deadline:
        health = _json(server.get("/health"))
        if health["listening"] and health["subscriptions"] >= 2:
            resubscribed[health["worker"]] = health["subscriptions"]
    assert set(resubscribed) == set(before), resubscribed
    # an import after the restart: the original delivery of buildings again
    twin.Twin.open(pg_url).import_mapping(SAMPLES / "mapping.yaml", layers=["buildings"])
    now = _commits(pg_url)
    assert now > counter
    seen = _all_workers_at(server, str(now))
    assert seen == {pid: str(now) for pid in before}, seen
    assert _json(server.get("/collections/buildings/items", limit=1))["numberMatched"] == 3000


def _swaps(server: LiveServer) -> dict[int, Any]:
    """``/health``'s ``snapshot`` of every worker."""
    return {w: a.json()["snapshot"] for w, a in _health_of_workers(server, every=True).items()}


def _last_import_time(url: str) -> float:
    """When the twin's newest import began writing (``twin_imports.time``), in epoch seconds."""
    imports = twin.Twin.open(url).store.import_rows()
    return float(pd.Timestamp(imports["time"].iloc[-1]).timestamp())


def _commits(url: str) -> int:
    return twin.Twin.open(url).store.version()[-1]
