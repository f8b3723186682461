"""The bulk ingest path: datastreams cached by sensor, mixed batches, partial resends.

Small registries built in the test (no twin file), each expected answer
computed independently with pandas or written out by hand.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from twin.sensing import LiveStore, SensorRegistry, ingest

NOW = pd.Timestamp("2026-05-19T00:00:00Z")
T0 = pd.Timestamp("2026-05-18T00:00:00Z")


def _registry(n: int, sensor_type: str = "water_pressure", unit: str = "MPa") -> SensorRegistry:
    uids = [f"sensors.S{i:04d}" for i in range(1, n + 1)]
    frame = gpd.GeoDataFrame(
        {"sensor_type": sensor_type, "unit": unit, "property": "pressure"},
        geometry=shapely.points(np.zeros((n, 2))),
        index=pd.Index(uids, name="uid"),
    )
    return SensorRegistry(frame)


def _at(minutes: int) -> str:
    return (T0 + pd.Timedelta(minutes=minutes)).isoformat()


def test_two_stores_fed_through_one_registry_keep_their_own_datastreams(tmp_path: Path) -> None:
    registry = _registry(2)
    first = LiveStore(tmp_path / "a.live.sqlite")
    second = LiveStore(tmp_path / "b.live.sqlite")
    # the two stores meet the sensors in opposite orders: their datastream ids differ
    ingest(first, registry, pd.DataFrame({"sensor": ["S0002"], "time": [_at(0)], "value": [2.0]}))
    ingest(second, registry, pd.DataFrame({"sensor": ["S0001"], "time": [_at(0)], "value": [1.0]}))
    both = pd.DataFrame({"sensor": ["S0001", "S0002"], "time": [_at(5)] * 2, "value": [1.5, 2.5]})
    for store in (first, second):
        report = ingest(store, registry, both, now=NOW)
        assert report.stored == 2 and report.sensors == ["sensors.S0001", "sensors.S0002"]
    ids = {
        name: dict(zip(s.datastreams()["sensor_uid"], s.datastreams().index, strict=True))
        for name, s in (("first", first), ("second", second))
    }
    assert ids == {
        "first": {"sensors.S0002": 1, "sensors.S0001": 2},
        "second": {"sensors.S0001": 1, "sensors.S0002": 2},
    }
    assert first.window("sensors.S0001")["value"].tolist() == [1.5]
    assert first.window("sensors.S0002")["value"].tolist() == [2.0, 2.5]
    assert second.window("sensors.S0001")["value"].tolist() == [1.0, 1.5]
    assert second.window("sensors.S0002")["value"].tolist() == [2.5]


def test_a_batch_mixing_given_and_default_properties_units_and_qualities(tmp_path: Path) -> None:
    registry = _registry(2)
    store = LiveStore(tmp_path / "x.live.sqlite")
    batch = pd.DataFrame(
        {
            "sensor": ["S0001", "S0001", "S0002", "S0001"],
            "time": [_at(0), _at(0), _at(0), _at(5)],
            "property": [None, "temperature", "", "temperature"],
            "unit": [None, "degC", None, "ignored: the datastream exists"],
            "value": [0.3, 18.5, 0.4, 19.0],
            "quality": [None, "estimated", None, None],
        }
    )
    report = ingest(store, registry, batch, now=NOW, keep_rows=True)
    assert report.stored == 4 and not report.rejected
    streams = store.datastreams().sort_values(["sensor_uid", "property"])
    assert streams[["sensor_uid", "property", "unit"]].values.tolist() == [
        ["sensors.S0001", "pressure", "MPa"],
        ["sensors.S0001", "temperature", "degC"],
        ["sensors.S0002", "pressure", "MPa"],
    ]
    temperature = store.window("sensors.S0001", "temperature")
    assert temperature["value"].tolist() == [18.5, 19.0]
    quality = temperature["quality"]
    assert quality.iloc[0] == "estimated" and pd.isna(quality.iloc[1])
    assert store.window("sensors.S0001", "pressure")["value"].tolist() == [0.3]
    rows = report.rows
    assert rows is not None
    assert sorted(zip(rows["uid"], rows["property"], rows["value"], strict=True)) == [
        ("sensors.S0001", "pressure", 0.3),
        ("sensors.S0001", "temperature", 18.5),
        ("sensors.S0001", "temperature", 19.0),
        ("sensors.S0002", "pressure", 0.4),
    ]


def test_a_partly_resent_batch_stores_the_new_readings_and_dead_letters_the_rest(
    tmp_path: Path,
) -> None:
    registry = _registry(3)
    store = LiveStore(tmp_path / "x.live.sqlite")
    sent = pd.DataFrame(
        {"sensor": ["S0001", "S0001", "S0002"], "time": [_at(0), _at(5), _at(0)], "value": 1.0}
    )
    assert ingest(store, registry, sent, now=NOW).stored == 3
    again = pd.DataFrame(
        {
            "sensor": ["S0001", "S0001", "S0003", "S0003", "S9999", "S0002"],
            "time": [_at(5), _at(10), _at(0), _at(0), _at(0), _at(0)],
            "value": [9.0, 2.0, 3.0, 4.0, 5.0, 9.0],
        }
    )
    report = ingest(store, registry, again, source="resend", now=NOW)
    assert report.stored == 2  # S0001 at 10 min, the first S0003 at 0
    assert report.rejected == {"duplicate": 3, "unknown sensor": 1}
    assert store.count_observations() == 5
    assert store.window("sensors.S0001")["value"].tolist() == [1.0, 1.0, 2.0]
    assert store.window("sensors.S0003")["value"].tolist() == [3.0]
    dead = store.dead_letters()
    assert list(zip(dead["sensor"], dead["time"], dead["reason"], strict=True)) == [
        ("S0001", _at(5), "duplicate"),
        ("S0003", _at(0), "duplicate"),
        ("S9999", _at(0), "unknown sensor"),
        ("S0002", _at(0), "duplicate"),
    ]
    latest = store.latest().set_index("sensor_uid")["value"].to_dict()
    assert latest == {"sensors.S0001": 2.0, "sensors.S0002": 1.0, "sensors.S0003": 3.0}


@pytest.mark.parametrize("timed", ["text", "datetime"])
def test_a_time_major_bulk_delivery_matches_an_independent_tally(
    tmp_path: Path, timed: str
) -> None:
    n, steps = 300, 8
    registry = _registry(n)
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "sensor": np.tile([f"S{i:04d}" for i in range(1, n + 1)], steps),
            "time": np.repeat(pd.date_range(T0, periods=steps, freq="5min"), n),
            "value": rng.normal(0.35, 0.01, n * steps),
        }
    )
    if timed == "text":
        frame["time"] = frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    store = LiveStore(tmp_path / "x.live.sqlite")
    shuffled = frame.sample(frac=1.0, random_state=3)  # out of order
    chunks = [shuffled.iloc[i : i + 1000] for i in range(0, len(shuffled), 1000)]
    stored = sum(ingest(store, registry, chunk, now=NOW).stored for chunk in chunks)
    assert stored == n * steps == store.count_observations()
    times = pd.to_datetime(frame["time"], utc=True)
    expected = frame.assign(time=times).sort_values("time").groupby("sensor").tail(1)
    expected = expected.set_index("sensors." + expected["sensor"])
    latest = store.latest().set_index("sensor_uid")
    assert sorted(latest.index) == sorted(expected.index)
    assert (latest["time"] == expected.loc[latest.index, "time"]).all()
    assert np.allclose(latest["value"], expected.loc[latest.index, "value"])
    one = frame[frame["sensor"] == "S0150"]
    window = store.window("sensors.S0150", "pressure")
    assert window["value"].tolist() == one["value"].tolist()  # time order, as delivered
    resent = ingest(store, registry, frame, now=NOW)
    assert resent.stored == 0 and resent.rejected == {"duplicate": n * steps}


def _latest(store: LiveStore) -> dict[str, tuple[str, float]]:
    frame = store.latest()
    return {
        uid: (t.isoformat(), v)
        for uid, t, v in zip(frame["sensor_uid"], frame["time"], frame["value"], strict=True)
    }


def test_a_reader_follows_the_writers_change_log_small_many_and_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import twin.store.live as live

    monkeypatch.setattr(live, "LOG_STREAMS", 2)  # an ingest of 3+ datastreams logs "many"
    monkeypatch.setattr(live, "LOG_BATCHES", 5)
    registry = _registry(4)
    writer = LiveStore(tmp_path / "x.live.sqlite", snapshot_every_s=None)
    reader = LiveStore(tmp_path / "x.live.sqlite", snapshot_every_s=None)

    def send(sensors: list[str], minute: int, value: float) -> None:
        frame = pd.DataFrame({"sensor": sensors, "time": _at(minute), "value": value})
        ingest(writer, registry, frame, now=NOW)

    send(["S0001", "S0002", "S0003", "S0004"], 0, 1.0)
    assert reader.latest()["value"].tolist() == [1.0] * 4
    send(["S0002"], 5, 2.0)  # a small ingest: the reader reads that one row
    send(["S0001", "S0003", "S0004"], 5, 3.0)  # many: the reader reads them all
    send(["S0004"], 1, 9.0)  # older than the latest: no change
    expected = {
        "sensors.S0001": (_at(5), 3.0),
        "sensors.S0002": (_at(5), 2.0),
        "sensors.S0003": (_at(5), 3.0),
        "sensors.S0004": (_at(5), 3.0),
    }
    assert _latest(reader) == expected
    send(["S0001"], 6, 6.0)  # batch 5: pruned from the log before the reader looks again
    for minute in range(10, 10 + 100):  # past a prune: batch 100 drops batches <= 95
        send(["S0003"], minute, float(minute))
    assert writer.scalar("SELECT min(batch) FROM latest_log") == 96
    expected["sensors.S0001"] = (_at(6), 6.0)
    expected["sensors.S0003"] = (_at(109), 109.0)
    assert _latest(reader) == expected  # the reader was behind the pruned log: reads all
    assert _latest(LiveStore(tmp_path / "x.live.sqlite")) == expected


def test_a_store_made_with_the_batch_index_drops_it_and_answers_the_same(tmp_path: Path) -> None:
    registry = _registry(2)
    path = tmp_path / "x.live.sqlite"
    store = LiveStore(path)
    ingest(store, registry, pd.DataFrame({"sensor": ["S0001"], "time": _at(0), "value": 1.0}))
    store.close()  # leaves a snapshot at this batch
    old = LiveStore(path, snapshot_every_s=None)
    old.con.execute("CREATE INDEX latest_batch ON latest (batch)")  # as stores were made
    old.con.execute("DELETE FROM latest_log")  # before the change log existed
    old.con.execute(
        "UPDATE latest SET value = 5.0, phenomenon_ms = phenomenon_ms + 1000, batch = 2"
    )
    old.con.execute("UPDATE counters SET value = 2 WHERE name = 'latest'")
    old.close()
    reopened = LiveStore(path)
    assert reopened.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'latest_batch'") == 0
    assert _latest(reopened) == {"sensors.S0001": ((T0 + pd.Timedelta(seconds=1)).isoformat(), 5.0)}
