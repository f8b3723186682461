"""Escalation inside `twin serve`: two real uvicorn workers, short deadlines, one escalation
per event (the live store's lease), the change on the SSE stream, the lease given back on
stop."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.api.conftest import start_server, stop_server
from tests.conftest import TWIN_CLI
from tests.sensing.conftest import sensing_keys_file
from twin.errors import UsageError
from twin.sensing import LiveStore
from twin.sensing.escalation import Escalator, parse_deadlines, take_lease
from twin.sensing.events import get_event, raise_events, transition
from twin.sensing.rules import EPISODE_COLUMNS


def _open(store: LiveStore, sensor: str, grade: str, at: pd.Timestamp) -> int:
    episode = pd.DataFrame(
        [[f"test-{grade}", sensor, "pressure_drop", grade, at, pd.NaT, 0.1]],
        columns=EPISODE_COLUMNS,
    )
    return raise_events(store, episode)[0]


def test_deadlines_are_parsed_and_bad_ones_refused() -> None:
    assert parse_deadlines("一般=1.5,重大=3") == {"一般": 1.5, "重大": 3.0}
    for bad in ("urgent=3", "一般=0", "一般", "一般=soon"):
        with pytest.raises(UsageError, match="GRADE=MINUTES"):
            parse_deadlines(bad)


def test_only_the_lease_holder_escalates(fresh: Path) -> None:
    store = LiveStore.beside(fresh)
    now = pd.Timestamp.now(tz="UTC")
    event = _open(store, "sensors.WP000001", "一般", now - pd.Timedelta(minutes=3))
    first = Escalator(LiveStore.beside(fresh), every_s=1, deadlines_min={"一般": 2.0})
    second = Escalator(LiveStore.beside(fresh), every_s=1, deadlines_min={"一般": 2.0})
    assert take_lease(store, "escalation", first.holder, ttl_s=30)
    assert second.run_once() == []  # the lease is held: nothing done
    assert first.run_once() == [event]
    assert first.run_once() == []  # escalated once only
    first.stop()  # gives the lease back: the other one may take it now
    assert take_lease(store, "escalation", second.holder, ttl_s=30)
    second.stop()
    history = get_event(store, event).history
    assert history["action"].tolist() == ["open", "escalate"]


@pytest.mark.slow
def test_twin_serve_escalates_by_itself_and_streams_it(fresh: Path, tmp_path: Path) -> None:
    deadlines = "一般=0.05,较大=0.05,重大=10"  # 3 s for 一般 and 较大, 10 min for 重大
    server = start_server(
        fresh,
        tmp_path,
        "--keys-file",
        str(sensing_keys_file(tmp_path)),
        "--workers",
        "2",
        "--escalate-every",
        "0.2",
        "--ack-deadlines",
        deadlines,
    )
    store = LiveStore.beside(fresh)
    seen: list[dict[str, Any]] = []
    ready = threading.Event()

    def listen() -> None:
        with httpx.stream(
            "GET", server.url + "/events/stream", headers=server.headers("internal"), timeout=60
        ) as answer:
            for line in answer.iter_lines():
                ready.set()
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if any(item["escalated"] for item in seen):
                        return

    try:
        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert ready.wait(30)
        now = pd.Timestamp.now(tz="UTC")
        late = _open(store, "sensors.WP000001", "一般", now)
        acked = _open(store, "sensors.WP000002", "较大", now)
        transition(store, acked, "ack", "ops-desk-1")
        calm = _open(store, "sensors.WP000003", "重大", now)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not get_event(store, late).escalated:
            time.sleep(0.1)
        time.sleep(1.0)  # both workers have had several more rounds by now
        listener.join(30)
        assert get_event(store, late).escalated
        assert not get_event(store, acked).escalated and not get_event(store, calm).escalated
        history = get_event(store, late).history
        assert history["action"].tolist() == ["open", "escalate"]  # once, by one worker
        assert history["who"].iloc[-1] == "system"
        streamed = [item for item in seen if item["id"] == late]
        assert streamed[0]["escalated"] is False and streamed[-1]["escalated"] is True
        holders = store._query("SELECT holder FROM leases WHERE name = 'escalation'")
        assert len(holders) == 1
        answer = server.get(f"/events/{late}", role="internal").json()
        assert answer["escalated"] is True and answer["history"][-1]["action"] == "escalate"
    finally:
        stop_server(server)
    # both workers stopped cleanly: the holder gave the lease back
    assert store._query("SELECT holder FROM leases").empty


def test_twin_serve_refuses_bad_deadlines_in_one_line(fresh: Path) -> None:
    result = subprocess.run(
        [TWIN_CLI, "serve", str(fresh), "--ack-deadlines", "urgent=3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "GRADE=MINUTES" in result.stderr and len(result.stderr.strip().splitlines()) == 1
