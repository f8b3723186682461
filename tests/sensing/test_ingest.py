"""The live store and the one validated ingest path."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import twin
from tests.conftest import SAMPLES
from twin.sensing import LiveStore, SensorRegistry, ingest, live_path
from twin.sensing.store import to_ms

NOW = pd.Timestamp("2026-05-19T00:00:00Z")


def test_bad_readings_are_kept_with_their_reason_and_resends_store_nothing_twice(
    fresh: Path,
) -> None:
    registry = SensorRegistry.from_twin(twin.Twin.open(fresh))
    store = LiveStore.beside(fresh)
    batch = pd.DataFrame(
        {
            "sensor": [
                "WP000001",
                "sensors.WP000001",
                "NOPE1",
                "GL000002",
                "GL000002",
                "SM000003",
                "WP000002",
                "WP000002",
            ],
            "time": [
                "2026-05-18T01:00:00Z",
                "2026-05-18T01:05:00+08:00",
                "2026-05-18T01:00:00Z",
                "yesterday",
                "2026-05-18T01:00:00Z",
                "2026-06-01T00:00:00Z",
                "2026-05-18T02:00:00Z",
                "2026-05-18T02:00:00Z",
            ],
            "value": ["0.31", "0.30", "1", "2", "high", "0.1", "0.29", "0.28"],
        }
    )
    report = ingest(store, registry, batch, source="test", now=NOW)
    assert report.stored == 3  # WP1 twice (two times), WP2 once
    assert report.rejected == {
        "unknown sensor": 1,
        "bad time": 1,
        "non-numeric": 1,
        "future time": 1,
        "duplicate": 1,
    }
    again = ingest(store, registry, batch, source="test", now=NOW)
    assert again.stored == 0 and again.rejected["duplicate"] == 4
    assert store.count_observations() == 3
    dead = store.dead_letters()
    assert len(dead) == 5 + 8
    assert set(dead.loc[dead["sensor"] == "NOPE1", "reason"]) == {"unknown sensor"}
    window = store.window("sensors.WP000001", "pressure")
    assert window["time"].tolist() == [
        pd.Timestamp("2026-05-17T17:05:00Z"),
        pd.Timestamp("2026-05-18T01:00:00Z"),
    ]
    assert window["value"].tolist() == [0.30, 0.31]
    assert live_path(fresh).exists() and live_path(fresh).parent == fresh.parent


def test_latest_and_windows_match_the_readings(
    fresh: Path, day: tuple[pd.DataFrame, dict[str, Any]]
) -> None:
    frame, _ = day
    registry = SensorRegistry.from_twin(twin.Twin.open(fresh))
    store = LiveStore.beside(fresh)
    report = ingest(store, registry, frame, source="day")
    assert report.stored == len(frame) and not report.rejected
    latest = store.latest().set_index("sensor_uid")
    expected = frame.sort_values("time").groupby("sensor").tail(1).set_index("sensor")
    assert len(latest) == frame["sensor"].nunique()
    for short, row in expected.iterrows():
        got = latest.loc[f"sensors.{short}"]
        assert got["value"] == pytest.approx(row["value"])
        assert got["time"] == pd.Timestamp(row["time"])
    one = frame[frame["sensor"] == "GL000010"]
    start, end = pd.Timestamp("2026-05-18T03:00Z"), pd.Timestamp("2026-05-18T09:00Z")
    window = store.window("sensors.GL000010", start=start, end=end)
    times = pd.to_datetime(one["time"], utc=True)
    inside = one[(times >= start) & (times <= end)]
    assert window["value"].tolist() == pytest.approx(inside["value"].tolist())
    assert len(window) == 73


def test_readings_streamed_during_a_reimport_are_all_kept(fresh: Path, tmp_path: Path) -> None:
    city = twin.Twin.open(fresh)
    registry = SensorRegistry.from_twin(city)
    store = LiveStore.beside(fresh)
    sent: list[int] = []
    done = threading.Event()

    def stream() -> None:
        t = pd.Timestamp("2026-05-18T00:00Z")
        i = 0
        while not done.is_set() or i < 40:
            rows = pd.DataFrame(
                {
                    "sensor": ["WP000001", "GL000001"],
                    "time": [t.isoformat()] * 2,
                    "value": [0.3, 1.0],
                }
            )
            sent.append(ingest(store, registry, rows, source="stream").stored)
            t += pd.Timedelta(seconds=10)
            i += 1

    worker = threading.Thread(target=stream)
    worker.start()
    try:
        # a re-import of the sensors (the twin file is replaced atomically)
        city.import_mapping(SAMPLES / "mapping.yaml", layers=["sensors"])
    finally:
        done.set()
        worker.join()
    assert len(sent) >= 40 and all(n == 2 for n in sent)
    reopened = LiveStore.beside(fresh)
    assert reopened.count_observations() == 2 * len(sent)
    assert twin.Twin.open(fresh).imports("sensors").shape[0] == 2
    assert to_ms(reopened.latest()["time"]).max() == to_ms(
        pd.Timestamp("2026-05-18T00:00Z") + pd.Timedelta(seconds=10 * (len(sent) - 1))
    )
