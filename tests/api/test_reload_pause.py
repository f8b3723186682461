"""A worker stops taking requests while it updates its snapshot (twin_api.preparing.PauseRequests).

Unit tests on a real event loop in a thread, then the service itself: a real
uvicorn server in this process over a copy of the sample twin, whose reload is
held at a gate (the service's own ``prepare``, wrapped) so that a request can
be sent while the update is under way. That request must wait, and be answered
from the new snapshot once it is in force; ``/health`` says how long the
worker paused and what the reload did to each layer.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import twin
from tests.api.conftest import free_port
from twin_api import Settings, create_app
from twin_api.preparing import Lull, PauseRequests


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.call_soon_threadsafe(running.stop)
        thread.join(5)
        running.close()


def _ran_within(loop: asyncio.AbstractEventLoop, seconds: float) -> float | None:
    """Seconds the loop took to run a callback scheduled now (None: not within ``seconds``)."""
    ran = threading.Event()
    asked = time.monotonic()
    loop.call_soon_threadsafe(ran.set)
    return time.monotonic() - asked if ran.wait(seconds) else None


def test_the_loop_runs_nothing_until_the_block_ends(loop: asyncio.AbstractEventLoop) -> None:
    pause = PauseRequests(loop, longest_s=10)
    ran: list[float] = []
    with pause():
        loop.call_soon_threadsafe(lambda: ran.append(time.monotonic()))
        time.sleep(0.3)
        assert ran == []
        ended = time.monotonic()
    assert _ran_within(loop, 5) is not None
    assert len(ran) == 1 and ran[0] >= ended
    assert pause.last_s is not None and 0.25 <= pause.last_s < 5


def test_a_pause_lasts_at_most_longest_s(loop: asyncio.AbstractEventLoop) -> None:
    pause = PauseRequests(loop, longest_s=0.2)
    with pause():
        time.sleep(0.05)
        waited = _ran_within(loop, 1.5)  # taken once the pause ran out, block or not
        assert waited is not None and waited < 1.0
    assert pause.last_s is not None and 0.15 <= pause.last_s < 1.0


def test_zero_never_pauses(loop: asyncio.AbstractEventLoop) -> None:
    pause = PauseRequests(loop, longest_s=0)
    with pause():
        waited = _ran_within(loop, 1.0)
    assert waited is not None and waited < 0.5
    assert pause.last_s is None


def test_background_work_takes_no_lull_from_a_pause(loop: asyncio.AbstractEventLoop) -> None:
    lull = Lull(quiet_s=0.01, patience_s=0.3)
    assert lull.wait() == 0.0  # no request for long: a lull at once
    with PauseRequests(loop, longest_s=10, lull=lull)():
        waited = lull.wait()  # no request either, but the pause is no lull
    assert 0.25 <= waited < 2
    assert lull.wait() == 0.0


# -- the service --------------------------------------------------------------
class Served:
    """A uvicorn server in this process, its reload held at a gate."""

    def __init__(self, path: Path, pause_s: float) -> None:
        self.app = create_app(Settings(twin=path, poll_s=0.05, reload_pause_s=pause_s))
        self.updating, self.go = threading.Event(), threading.Event()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started
        live = self.app.state.live
        prepare = live.prepare

        def gated(index: Any) -> None:
            prepare(index)
            self.updating.set()
            assert self.go.wait(30)

        live.prepare = gated
        return self

    def __exit__(self, *exc: object) -> None:
        self.go.set()
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def twin_file(sample_twin: twin.Twin, tmp_path: Path) -> Path:
    path = tmp_path / "twin.gpkg"
    shutil.copy(sample_twin.path, path)
    return path


def _rename(path: Path, row: int, name: str) -> str:
    """Re-import the twin's buildings with building ``row`` renamed; its uid."""
    city = twin.Twin.open(path)
    frame = city.layer("buildings")
    uid = str(frame.index[row])
    frame.loc[uid, "name"] = name
    city.import_frame(
        frame.reset_index(),
        layer="buildings",
        kind="building",
        source="renamed",
        classification=city.info("buildings").classification,
        replace=True,
        local_coords=True,
    )
    return uid


def _get_in_thread(url: str) -> tuple[threading.Thread, dict[str, Any]]:
    got: dict[str, Any] = {}

    def get() -> None:
        answer = httpx.get(url, timeout=30)
        got.update(at=time.monotonic(), answer=answer)

    thread = threading.Thread(target=get, daemon=True)
    thread.start()
    return thread, got


def test_a_request_during_the_update_waits_and_gets_the_new_snapshot(twin_file: Path) -> None:
    path = twin_file
    with Served(path, pause_s=20) as served:
        before = httpx.get(served.url + "/health").json()
        assert before["snapshot"] is None and before["reloads"] == 0
        uid = _rename(path, 5, "暂停时改名")
        assert served.updating.wait(30)
        thread, got = _get_in_thread(f"{served.url}/collections/buildings/items/{uid}")
        time.sleep(0.5)
        assert got == {}  # paused: not answered while the update runs
        released = time.monotonic()
        served.go.set()
        thread.join(30)
        answer = got["answer"]
        assert answer.status_code == 200 and got["at"] >= released
        assert answer.json()["properties"]["name"] == "暂停时改名"
        health = httpx.get(served.url + "/health").json()
    assert answer.headers["x-twin-version"] == health["version"] != before["version"]
    snapshot = health["snapshot"]
    assert 0.5 <= snapshot["paused_s"] < 20
    city = twin.Twin.open(path)  # no key: the public layers only, the others do not exist
    public = [name for name in city.layers if city.info(name).classification == "public"]
    assert "water_pipes" not in public and "buildings" in public
    assert snapshot["updates"] == {
        name: "patched" if name == "buildings" else "kept" for name in public
    }


def test_past_its_longest_pause_the_worker_answers_from_the_old_snapshot(
    twin_file: Path,
) -> None:
    with Served(twin_file, pause_s=0.2) as served:
        uid = _rename(twin_file, 6, "超时改名")
        assert served.updating.wait(30)
        time.sleep(0.3)  # the pause has run out; the update is still held at the gate
        answer = httpx.get(f"{served.url}/collections/buildings/items/{uid}", timeout=10)
        assert answer.status_code == 200
        assert answer.json()["properties"]["name"] != "超时改名"
        served.go.set()
        deadline = time.monotonic() + 30
        while httpx.get(served.url + "/health").json()["reloads"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        again = httpx.get(f"{served.url}/collections/buildings/items/{uid}", timeout=10)
        paused = httpx.get(served.url + "/health").json()["snapshot"]["paused_s"]
    assert again.json()["properties"]["name"] == "超时改名"
    assert 0.15 <= paused < 0.3 + 0.5
