"""Writes over HTTP to a PostGIS twin served by several workers land in the database,
so any worker answers any request (issue 15: observations and event transitions).

One real ``twin serve`` with two workers on a copy of the session's sample twin in
the session's throwaway PostgreSQL cluster. Each answer names its worker
(``X-Twin-Worker``); the stored rows are counted with plain SQL on the live schema,
independently of the library's live store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

import twin
from tests.api.conftest import LiveServer, start_server, stop_server
from tests.sensing.conftest import sensing_keys_file
from twin.store.pgtest import TempCluster
from twin.store.transfer import copy_twin
from twin.webcoords import wgs84_to_gcj02

# A real PostgreSQL and a two-worker server: well over 10 s.
pytestmark = pytest.mark.slow

WORKERS = 2
SCHEMA = "servedlive"
SENSOR = "GL000070"
READINGS = [
    {"sensor": SENSOR, "time": "2026-05-18T15:00:00Z", "value": 1.5},
    {"sensor": SENSOR, "time": "2026-05-18T15:01:00Z", "value": 2.5},
    {"sensor": SENSOR, "time": "2026-05-18T15:02:00Z", "value": 3.5},
    {"sensor": SENSOR, "time": "2026-05-18T15:03:00Z", "value": "not a number"},
]


@pytest.fixture(scope="module")
def pg_url(pg_cluster: TempCluster, sample_twin_file: Path) -> str:
    url = pg_cluster.url(schema=SCHEMA)
    copy_twin(sample_twin_file, url, overwrite=True)
    return url


@pytest.fixture(scope="module")
def server(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("served-live")
    keys = sensing_keys_file(folder)
    running = start_server(pg_url, folder, "--workers", str(WORKERS), "--keys-file", str(keys))  # type: ignore[arg-type]
    yield running
    stop_server(running)


def _post(server: LiveServer, path: str, body: Any) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=server.headers("ops"), timeout=60)


def _from_every_worker(server: LiveServer, path: str, **params: Any) -> dict[int, Any]:
    """The answer of each worker to the same GET (fresh connections until both answered)."""
    answers: dict[int, Any] = {}
    for _ in range(60):
        got = httpx.get(server.url + path, params=params, headers=server.headers("ops"), timeout=30)
        assert got.status_code == 200, got.text
        answers[int(got.headers["x-twin-worker"])] = got.json()
        if len(answers) == WORKERS:
            break
    assert len(answers) == WORKERS, f"only workers {sorted(answers)} answered"
    return answers


def _sql(url: str, query: str) -> list[tuple[Any, ...]]:
    conninfo = url.split("?", 1)[0]
    with psycopg.connect(conninfo) as con:
        return list(con.execute(query).fetchall())


def test_observations_posted_to_one_worker_are_read_by_every_worker(
    server: LiveServer, pg_url: str
) -> None:
    stored = _post(server, "/observations", {"observations": READINGS})
    assert stored.status_code == 200, stored.text
    assert (stored.json()["stored"], stored.json()["rejected"]) == (3, {"non-numeric": 1})
    # in the database, counted with plain SQL
    rows = _sql(
        pg_url,
        f"SELECT o.value FROM {SCHEMA}_live.observations o "
        f"JOIN {SCHEMA}_live.datastreams d ON d.id = o.datastream "
        f"WHERE d.sensor_uid = 'sensors.{SENSOR}' ORDER BY o.phenomenon_ms",
    )
    assert [r[0] for r in rows] == [1.5, 2.5, 3.5]
    # every worker serves them, and the newest as the latest value
    window = {"start": "2026-05-18T14:00:00Z", "end": "2026-05-18T16:00:00Z"}
    reads = _from_every_worker(server, "/observations", sensor=f"sensors.{SENSOR}", **window)
    for answer in reads.values():
        assert [o["value"] for o in answer["observations"]] == [1.5, 2.5, 3.5]
    for answer in _from_every_worker(server, "/latest").values():
        mine = [r for r in answer["latest"] if r["sensor_uid"] == f"sensors.{SENSOR}"]
        assert [r["value"] for r in mine] == [3.5]
    # the same batch again, whichever worker takes it: nothing stored twice
    for _ in range(2 * WORKERS):
        again = _post(server, "/observations", {"observations": READINGS[:3]})
        assert again.json()["stored"] == 0, again.text
    assert _sql(pg_url, f"SELECT count(*) FROM {SCHEMA}_live.observations")[0][0] == 3


def test_an_event_moved_through_one_worker_is_seen_by_every_worker(
    server: LiveServer, pg_url: str
) -> None:
    city = twin.Twin.open(pg_url)
    building = city.layer("buildings").iloc[[10]].to_crs("EPSG:4326")
    point = building.geometry.iloc[0].representative_point()
    lon, lat = (float(v) for v in wgs84_to_gcj02(point.x, point.y))
    report = {
        "ticket": "12345-0042",
        "type": "water_leak",
        "time": "2026-05-18T16:00:00Z",
        "lon": lon,
        "lat": lat,
        "coords": "gcj02",
        "text": "路面冒水",
    }
    made = _post(server, "/reports", report)
    assert made.status_code == 201, made.text
    event = made.json()
    assert event["location"]["building"] == str(building.index[0])
    event_id = event["id"]
    moved = _post(server, f"/events/{event_id}/dispatch", {"assignee": "供水抢修队"})
    assert moved.status_code == 200, moved.text
    for answer in _from_every_worker(server, f"/events/{event_id}").values():
        assert answer["status"] == "dispatched"
        assert answer["history"][-1]["who"] == "ops-desk-1"
        assert answer["assignee"] == "供水抢修队"
    status = _sql(pg_url, f"SELECT status FROM {SCHEMA}_live.events WHERE id = {int(event_id)}")
    assert status == [("dispatched",)]
