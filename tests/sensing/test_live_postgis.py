"""The live store on PostGIS against the SQLite one: same readings, same answers.

A throwaway PostgreSQL + PostGIS cluster runs for the session. The built
sample twin is copied into it (``postgresql://…?schema=livetwin``), so
``OperationsLoop.open(url)`` opens the live store in the database (schema
``livetwin_live``) and ``OperationsLoop.open(file)`` the one beside the
GeoPackage. The same day of readings goes through both loops; every test
runs on both through the ``backend`` parameter and compares the answer with
the SQLite store's (latest values, windows, events and their history, vitals,
dead letters, duplicates). Two stores opened on the same URL, and a second
process (the real ``twin events`` command), see each other's writes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import run_cli
from twin.errors import StorageError
from twin.sensing.escalation import release_lease, take_lease
from twin.sensing.events import event_changes, get_event, list_events, transition
from twin.sensing.loop import OperationsLoop
from twin.sensing.vitals import vitals, vitals_series
from twin.store.live import LiveStore
from twin.store.live_base import LiveStoreProtocol
from twin.store.pglive import PgLiveStore
from twin.store.pgtest import TempCluster
from twin.store.transfer import copy_twin

# A real server and a day of readings through two loops: well over 10 s.
pytestmark = pytest.mark.slow

BACKENDS = ["sqlite", "postgis"]
HOUR = pd.Timedelta(hours=1)
EVENT_KEYS = [
    "id",
    "rule",
    "sensor_uid",
    "event_type",
    "grade",
    "status",
    "is_open",
    "value",
    "repeats",
    "escalated",
    "district",
    "grid",
    "opened",
    "last",
    "cleared",
]


@pytest.fixture(scope="module")
def pg_twin(pg_cluster: TempCluster, built: Path) -> str:
    """The built sample twin copied into PostGIS."""
    url = pg_cluster.url(schema="livetwin")
    copy_twin(built, url)
    return url


@pytest.fixture(scope="module")
def loops(
    built: Path,
    pg_twin: str,
    day: tuple[pd.DataFrame, dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, OperationsLoop]]:
    """One loop per backend, the day ingested hour by hour into each, as a stream would."""
    path = Path(shutil.copy(built, tmp_path_factory.mktemp("live-sqlite") / "chengdu.twin.gpkg"))
    out = {"sqlite": OperationsLoop.open(path), "postgis": OperationsLoop.open(pg_twin)}
    frame, _ = day
    for loop in out.values():
        for _, part in frame.groupby(frame["time"].str[:13]):  # received an hour later
            loop.ingest(part, source="test", now=pd.Timestamp(part["time"].max()) + HOUR)
            loop.check_offline()
    yield out
    for loop in out.values():
        loop.store.close()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _events(store: LiveStoreProtocol) -> pd.DataFrame:
    return list_events(store)[EVENT_KEYS].sort_values("id").reset_index(drop=True)


def test_the_url_opens_the_store_in_the_database(loops: dict[str, OperationsLoop]) -> None:
    assert isinstance(loops["postgis"].store, PgLiveStore)
    assert loops["postgis"].store.schema == "livetwin_live"
    assert type(loops["sqlite"].store) is LiveStore
    for loop in loops.values():
        assert isinstance(loop.store, LiveStoreProtocol)


def test_latest_values_match(loops: dict[str, OperationsLoop], backend: str) -> None:
    reference = loops["sqlite"].store.latest().drop(columns="datastream")
    latest = loops[backend].store.latest().drop(columns="datastream")
    key = ["sensor_uid", "property"]
    got = latest.sort_values(key).reset_index(drop=True)
    want = reference.sort_values(key).reset_index(drop=True)
    assert len(got) > 20
    pd.testing.assert_frame_equal(got, want)
    assert loops[backend].store.clock_ms() == loops["sqlite"].store.clock_ms()
    count = loops[backend].store.count_observations()
    assert count == loops["sqlite"].store.count_observations() > 1000


def test_windows_match(loops: dict[str, OperationsLoop], backend: str) -> None:
    store, reference = loops[backend].store, loops["sqlite"].store
    uid = str(reference.latest()["sensor_uid"].iloc[0])
    end = pd.Timestamp(reference.clock_ms(), unit="ms", tz="UTC")
    start = end - pd.Timedelta(hours=3)
    got = store.window(uid, start=start, end=end)
    pd.testing.assert_frame_equal(got, reference.window(uid, start=start, end=end))
    assert len(got) == 37  # every 5 minutes, both ends included

    def by_key(s: LiveStoreProtocol) -> dict[tuple[str, str], tuple[list[int], list[float]]]:
        streams = s.datastreams()
        found = s.windows(streams.index.tolist(), int(start.value // 10**6), None)
        return {
            (streams.at[i, "sensor_uid"], streams.at[i, "property"]): (t.tolist(), v.tolist())
            for i, (t, v) in found.items()
        }

    assert by_key(store) == by_key(reference)


def test_events_match(loops: dict[str, OperationsLoop], backend: str) -> None:
    got, want = _events(loops[backend].store), _events(loops["sqlite"].store)
    assert {"pressure_drop", "sensor_offline"} <= set(want["event_type"])
    pd.testing.assert_frame_equal(got, want)
    one = int(want["id"].iloc[0])
    a, b = get_event(loops[backend].store, one), get_event(loops["sqlite"].store, one)
    assert (a.location, a.impact, a.rule) == (b.location, b.impact, b.rule)
    pd.testing.assert_frame_equal(a.history, b.history)


def test_vitals_match(loops: dict[str, OperationsLoop], backend: str) -> None:
    loop, reference = loops[backend], loops["sqlite"]
    table = vitals(loop.store, reference.locator, by="district")
    pd.testing.assert_frame_equal(table, vitals(reference.store, reference.locator, by="district"))
    assert table["readings_last_hour"].sum() > 0 and table["open_events"].sum() > 0
    series = vitals_series(loop.store, reference.locator, by="grid")
    pd.testing.assert_frame_equal(
        series, vitals_series(reference.store, reference.locator, by="grid")
    )


def test_observation_pages_match(loops: dict[str, OperationsLoop], backend: str) -> None:
    store, reference = loops[backend].store, loops["sqlite"].store
    uids = sorted(set(reference.latest()["sensor_uid"]))[:3]
    args: dict[str, Any] = {"order": "o.value DESC, o.datastream", "top": 7, "skip": 2}
    conditions = [("(o.value > ?)", [0.2])]
    got, total = store.observation_page(uids, conditions, **args)
    want, want_total = reference.observation_page(uids, conditions, **args)
    keep = ["sensor_uid", "phenomenon_ms", "value"]
    pd.testing.assert_frame_equal(got[keep], want[keep], check_dtype=False)
    assert total == want_total > 7 and set(got["sensor_uid"]) <= set(uids)


def test_transitions_and_history_match(loops: dict[str, OperationsLoop]) -> None:
    store, reference = loops["postgis"].store, loops["sqlite"].store
    event_id = int(list_events(reference, status="new")["id"].min())
    at = pd.Timestamp("2026-05-19T01:00:00Z")
    steps = [("ack", None), ("dispatch", "repair-team-3"), ("start", None), ("resolve", None)]
    for s in (store, reference):
        for i, (action, to) in enumerate(steps):
            transition(s, event_id, action, "desk-1", assignee=to, at=at + pd.Timedelta(minutes=i))
    got, want = get_event(store, event_id), get_event(reference, event_id)
    assert got.status == want.status == "resolved"
    assert got.history["action"].tolist()[-4:] == ["ack", "dispatch", "start", "resolve"]
    pd.testing.assert_frame_equal(got.history, want.history)
    changes = event_changes(store, 0)
    assert changes["id"].tolist() == event_changes(reference, 0)["id"].tolist()
    assert int(changes["seq"].max()) == store.max_seq() == reference.max_seq()
    pd.testing.assert_frame_equal(_events(store), _events(reference))


def test_rejected_and_resent_readings_match(
    loops: dict[str, OperationsLoop], day: tuple[pd.DataFrame, dict[str, Any]]
) -> None:
    frame, _ = day
    first = frame[frame["time"].str[:13] == frame["time"].iloc[0][:13]]
    bad = pd.DataFrame(
        {"sensor": ["NO-SUCH-SENSOR"], "time": [first["time"].iloc[0]], "property": ["x"]}
    ).assign(value=[1.0])
    reports = {}
    for name, loop in loops.items():
        loop.ingest(bad, source="test-bad")
        reports[name], _ = loop.ingest(first, source="resend")
    assert reports["postgis"].stored == reports["sqlite"].stored == 0
    assert reports["postgis"].rejected == reports["sqlite"].rejected == {"duplicate": len(first)}
    got = loops["postgis"].store.dead_letters(reason="unknown sensor")
    want = loops["sqlite"].store.dead_letters(reason="unknown sensor")
    assert got["sensor"].tolist() == want["sensor"].tolist() == ["NO-SUCH-SENSOR"]
    assert got["source"].tolist() == ["test-bad"]


def test_two_stores_on_one_url_see_each_others_writes(
    loops: dict[str, OperationsLoop], pg_twin: str
) -> None:
    first, reference = loops["postgis"], loops["sqlite"]
    second = OperationsLoop.open(pg_twin, with_impact=False)  # its own connection
    try:
        assert second.store is not first.store
        pd.testing.assert_frame_equal(_events(second.store), _events(first.store))
        # an event moved by one is moved for the other
        event_id = int(list_events(first.store, status="new")["id"].max())
        transition(second.store, event_id, "ack", "desk-2", note="seen")
        transition(reference.store, event_id, "ack", "desk-2", note="seen")
        again = get_event(first.store, event_id)
        assert again.status == "acknowledged"
        assert again.history.iloc[-1][["action", "who", "note"]].tolist() == [
            "ack",
            "desk-2",
            "seen",
        ]
        # a reading stored by one is the latest for the other; resent, it is a duplicate
        row = first.store.latest().iloc[0]
        sensor = str(row["sensor_uid"]).split(".", 1)[1]
        when = (row["time"] + pd.Timedelta(minutes=5)).isoformat()
        reading = pd.DataFrame(
            {"sensor": [sensor], "time": [when], "property": [row["property"]], "value": [0.123]}
        )
        now = row["time"] + HOUR
        warm = second.store.latest()  # the second keeps the latest values in memory now
        assert len(warm) == len(first.store.latest())
        assert first.store_batch(reading, source="a", now=now).stored == 1
        assert reference.store_batch(reading, source="a", now=now).stored == 1
        seen = second.store.latest([str(row["sensor_uid"])])
        assert seen.loc[seen["property"] == row["property"], "value"].tolist() == [0.123]
        resent = second.store_batch(reading, source="b", now=now)
        assert (resent.stored, resent.rejected) == (0, {"duplicate": 1})
        # one lease for both
        assert take_lease(first.store, "escalation", "one", ttl_s=30)
        assert not take_lease(second.store, "escalation", "two", ttl_s=30)
        release_lease(first.store, "escalation", "one")
        assert take_lease(second.store, "escalation", "two", ttl_s=30)
        release_lease(second.store, "escalation", "two")
    finally:
        second.store.close()


def test_another_process_moves_an_event_in_the_database(
    loops: dict[str, OperationsLoop], pg_twin: str
) -> None:
    store = loops["postgis"].store
    event_id = int(list_events(store, status="new")["id"].min())
    args = ["dispatch", str(event_id), "--to", "unit-7", "--who", "cli", "--json"]
    done = run_cli("events", args[0], pg_twin, *args[1:])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "dispatched"
    event = get_event(store, event_id)
    assert (event.status, event.assignee) == ("dispatched", "unit-7")
    assert event.history.iloc[-1]["who"] == "cli"
    # the SQLite store of the GeoPackage copy is another store: moved by its own command
    reference = loops["sqlite"].store
    assert get_event(reference, event_id).status == "new"
    assert run_cli("events", args[0], str(loops["sqlite"].twin_path), *args[1:]).returncode == 0
    assert get_event(reference, event_id).status == "dispatched"


def test_the_live_tables_have_their_indexes(pg_cluster: TempCluster, pg_twin: str) -> None:
    import psycopg

    with psycopg.connect(pg_cluster.url(), autocommit=True) as con:
        names = {
            row[0]
            for row in con.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'livetwin_live'"
            ).fetchall()
        }
    assert {
        "observations_pkey",
        "observations_time",
        "events_one_open",
        "events_seq",
        "event_history_event",
        "datastreams_sensor_uid_property_key",
        "latest_pkey",
        "leases_pkey",
    } <= names


def test_quality_texts_and_resends_in_one_batch(loops: dict[str, OperationsLoop]) -> None:
    """Quality texts survive the binary COPY; a batch half stored already stores the other half."""
    answers = {}
    for name, loop in loops.items():
        store = loop.store
        (ds,) = store.datastream_ids([("sensors.QUALITY-1", "pressure", "MPa")])
        with store.batch() as tx:
            first = tx.insert_observations(
                [ds, ds], [1_000, 2_000], [0.5, 0.25], result_ms=3_000, quality=["ok", None]
            )
        with store.batch() as tx:
            again = tx.insert_observations(
                [ds, ds, ds], [3_000, 2_000, 1_000], [0.75, 9.0, 9.0], result_ms=4_000
            )
        window = store.window("sensors.QUALITY-1")
        answers[name] = (first.tolist(), again.tolist(), window)
    for name in ("sqlite", "postgis"):
        first, again, window = answers[name]
        assert (first, again) == ([False, False], [False, True, True])
        assert window["value"].tolist() == [0.5, 0.25, 0.75]  # the stored ones were kept
        assert window["quality"].fillna("-").tolist() == ["ok", "-", "-"]
    pd.testing.assert_frame_equal(answers["postgis"][2], answers["sqlite"][2])


def _drop_connection(cluster: TempCluster, store: PgLiveStore) -> None:
    """End the store's session from the server side (what a server restart does to it)."""
    import psycopg

    pid = store.con.info.backend_pid
    with psycopg.connect(cluster.url(), autocommit=True) as con:
        assert con.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


def test_a_dropped_connection_costs_one_write_at_most(
    pg_cluster: TempCluster, pg_twin: str
) -> None:
    store = PgLiveStore(pg_twin)
    try:
        seq = store.max_seq()
        assert seq > 0
        _drop_connection(pg_cluster, store)
        assert store.max_seq() == seq  # a read connects again by itself
        _drop_connection(pg_cluster, store)
        with pytest.raises(StorageError, match=r"mid-write .*send it again"):
            store.take_lease("dropped", "me", until_ms=2_000, now_ms=1_000)
        assert store.take_lease("dropped", "me", until_ms=2_000, now_ms=1_000)
        assert store.max_seq() == seq
    finally:
        store.close()


def test_a_store_that_cannot_open_is_one_clear_error(tmp_path: Path) -> None:
    from twin.store.pgtest import free_port

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(StorageError, match=r"cannot open the live store .*not-a-folder"):
        LiveStore.beside(blocker / "city.twin.gpkg")
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/twin?schema=nowhere"
    with pytest.raises(StorageError, match=r"cannot reach the live store of nowhere"):
        LiveStore.beside(url)


def test_sensorthings_answers_match(loops: dict[str, OperationsLoop], backend: str) -> None:
    from twin.sensing.sensorthings import Query, SensorThings

    layers = sorted(set(loops["sqlite"].registry.frame["layer"]))
    end = pd.Timestamp(loops["sqlite"].store.clock_ms(), unit="ms", tz="UTC")
    since = (end - HOUR).isoformat().replace("+00:00", "Z")
    asks = [
        (
            "Observations",
            Query(filter=f"result gt 0.1 and phenomenonTime ge {since}", top=9, count=True),
        ),
        ("Observations", Query(orderby="result desc", top=4, skip=3, count=True)),
        ("Datastreams", Query(top=5, count=True)),
    ]
    assert layers == ["cameras", "sensors"]
    for shown in (layers, ["sensors"]):  # every layer, then one (the cameras hidden)
        answers = {}
        for name in {backend, "sqlite"}:
            loop = loops[name]
            view = SensorThings(loop.store, loop.registry, shown, "http://x/sta/v1.1")
            answers[name] = [view.get(path, query) for path, query in asks]
        assert answers[backend] == answers["sqlite"]
        assert len(answers["sqlite"][0]["value"]) == 9
