"""The long-lived preparation threads (twin_api.preparing): one thread a kind of work."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from twin_api import geojson
from twin_api.preparing import Worker


def test_a_worker_runs_its_jobs_in_order_on_one_daemon_thread() -> None:
    worker = Worker("twin-test-order")
    seen: list[tuple[int, int, bool]] = []

    def job(i: int) -> None:
        thread = threading.current_thread()
        seen.append((i, thread.ident or 0, thread.daemon))

    jobs = [worker.submit(lambda i=i: job(i)) for i in range(3)]
    jobs[-1].join(30)
    assert [i for i, _, _ in seen] == [0, 1, 2]
    assert len({ident for _, ident, _ in seen}) == 1
    assert all(daemon for _, _, daemon in seen)
    assert not any(j.is_alive() for j in jobs)
    later = worker.submit(lambda: job(3))
    later.join(30)
    assert seen[-1][0] == 3 and seen[-1][1] == seen[0][1]  # the same thread, not a new one


def test_a_failed_job_is_logged_and_the_next_one_still_runs() -> None:
    worker = Worker("twin-test-failure")
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    first = worker.submit(broken)
    second = worker.submit(lambda: ran.append("second"))
    second.join(30)
    assert not first.is_alive() and ran == ["second"]


def test_texts_of_two_snapshots_are_written_by_the_same_thread(
    sample_twin_file: Path, monkeypatch
) -> None:
    from twin.query.index import CityIndex

    threads: list[int] = []
    real = geojson.transform_geometries

    def spying(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(geojson, "transform_geometries", spying)
    for _ in range(2):
        job = geojson.prepare_geometry_texts(CityIndex.load(sample_twin_file))
        assert job is not None
        job.join(120)
    assert len(threads) >= 2 and len(set(threads)) == 1
    assert threads[0] != threading.get_ident()


def test_a_lull_is_a_pause_in_requests_or_the_patience_spent() -> None:
    from twin_api.preparing import Lull

    lull = Lull(quiet_s=0.05, patience_s=0.3)
    assert lull.wait() == 0.0  # no request yet
    lull.request()
    lull.wait()
    assert time.monotonic() - lull.last_request >= 0.05  # returned in a pause
    lull.last_request = time.monotonic() + 60  # requests without a pause
    assert 0.3 <= lull.wait() < 60  # the patience spent, not the minute


def test_texts_are_written_a_batch_per_pause(sample_twin_file: Path, monkeypatch) -> None:
    from twin.query.index import CityIndex
    from twin_api.preparing import Lull

    waits: list[float] = []

    class Counting(Lull):
        def wait(self) -> float:
            waits.append(time.monotonic())
            return 0.0

    monkeypatch.setattr(geojson, "LULL", Counting())
    monkeypatch.setattr(geojson, "TEXT_BATCH", 16)
    index = CityIndex.load(sample_twin_file)
    job = geojson.prepare_geometry_texts(index)
    assert job is not None
    job.join(120)
    assert len(waits) == sum(-(-len(layer) // 16) for layer in index)


def test_every_request_is_noted() -> None:
    from starlette.testclient import TestClient

    from twin_api.preparing import LULL, NoteRequests

    async def answer(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    before = time.monotonic()
    client = TestClient(NoteRequests(answer))  # not entered: no lifespan events
    assert client.get("/").status_code == 204
    assert LULL.last_request >= before


def test_the_service_notes_its_requests(sample_twin_file: Path, tmp_path: Path) -> None:
    from twin_api.app import create_app
    from twin_api.preparing import NoteRequests
    from twin_api.settings import Settings

    app = create_app(Settings(twin=sample_twin_file, audit_log=tmp_path / "audit.jsonl"))
    assert [m.cls for m in app.user_middleware].count(NoteRequests) == 1


def test_tile_sources_are_prepared_a_layer_per_pause(sample_twin_file: Path, monkeypatch) -> None:
    from twin.query.index import CityIndex
    from twin_api.preparing import Lull
    from twin_api.routers import tiles

    patience: list[float | None] = []

    class Counting(Lull):
        def wait(self, patience_s: float | None = None) -> float:
            patience.append(patience_s)
            return 0.0

    index = CityIndex.load(sample_twin_file)
    tiles.warm(index).join(300)  # the thread runs jobs in order: earlier tests' are done
    monkeypatch.setattr(tiles, "LULL", Counting())
    tiles.warm(index).join(300)
    assert patience == [tiles.TILE_PATIENCE_S] * len(index.layers)
    lull = Lull(quiet_s=0.05, patience_s=60)
    lull.last_request = time.monotonic() + 60
    assert 0.2 <= lull.wait(patience_s=0.2) < 60  # a caller's own patience


def test_waits_without_a_pause_grow_per_thread_until_a_pause() -> None:
    from twin_api.preparing import Lull

    lull = Lull(quiet_s=0.02, patience_s=0.05, longest_s=0.3)
    lull.last_request = time.monotonic() + 60  # requests without a pause
    waits = [lull.wait() for _ in range(5)]  # 0.05, 0.1, 0.2, then 0.3 (the longest) twice
    for waited, patience in zip(waits, [0.05, 0.1, 0.2, 0.3, 0.3], strict=True):
        assert waited >= patience
    assert waits[4] < 0.6  # not 0.8: no longer than the longest
    other: list[float] = []
    thread = threading.Thread(target=lambda: other.append(lull.wait()))
    thread.start()
    thread.join(30)
    assert 0.05 <= other[0] < 0.25  # another thread's waits are its own (not 0.3)
    lull.last_request = float("-inf")  # a pause
    assert lull.wait() == 0.0
    lull.last_request = time.monotonic() + 60
    assert 0.05 <= lull.wait() < 0.25  # after a pause, the patience given again
    assert lull.wait(patience_s=0.5) >= 0.5  # asked longer than the longest
    assert lull.wait(patience_s=0.0) < 0.25  # none asked: none grown


def test_a_job_hands_its_quick_turns_back_while_it_waits_for_a_lull() -> None:
    import sys

    from twin.query.urgency import RELOAD_SWITCH_S
    from twin_api.preparing import Lull

    before = sys.getswitchinterval()
    assert before != RELOAD_SWITCH_S  # no other block open: the default interval
    lull = Lull(quiet_s=0.02, patience_s=0.2)
    lull.last_request = time.monotonic() + 60  # requests without a pause
    seen: dict[str, float] = {}

    def looking() -> bool:  # asked while the wait sleeps
        seen.setdefault("waiting", sys.getswitchinterval())
        return False

    def work() -> None:
        seen["working"] = sys.getswitchinterval()
        lull.wait(until=looking)
        seen["after"] = sys.getswitchinterval()

    Worker("twin-test-turns").submit(work).join(30)
    assert seen == {"working": RELOAD_SWITCH_S, "waiting": before, "after": RELOAD_SWITCH_S}
    assert sys.getswitchinterval() == before
