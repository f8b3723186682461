"""``CommitListener``: LISTEN citytwin on a real PostgreSQL, its own twin's commits only,
and a new subscription after the server restarts (the session's throwaway cluster)."""

from __future__ import annotations

import threading
import time

import pytest

import twin
from tests.conftest import boxes, run_cli
from twin.store.pglisten import CommitListener
from twin.store.pgtest import TempCluster, free_port

# A real server, stopped and started again once.
pytestmark = pytest.mark.slow


class Heard:
    def __init__(self) -> None:
        self.times = 0
        self.event = threading.Event()

    def __call__(self) -> None:
        self.times += 1
        self.event.set()

    def wait(self, timeout_s: float = 20) -> bool:
        done = self.event.wait(timeout_s)
        self.event.clear()
        return done


def _import_boxes(url: str, n: int) -> None:
    import geopandas as gpd

    frame = gpd.GeoDataFrame({"code": [f"B{i}" for i in range(n)]}, geometry=boxes(n), crs=4544)
    twin.Twin.open(url).import_frame(frame, layer="buildings", kind="building", id="code")


def test_the_listener_hears_its_twin_and_comes_back_after_a_restart(
    pg_cluster: TempCluster,
) -> None:
    mine, other = pg_cluster.url(schema="heard"), pg_cluster.url(schema="not_heard")
    for url in (mine, other):
        twin.Twin.create(url, crs="EPSG:4544", overwrite=True)
    heard = Heard()
    listener = CommitListener(mine, heard, backoff_s=0.1, max_backoff_s=0.5)
    listener.start()
    try:
        assert listener.wait_subscribed(20)
        _import_boxes(other, 3)  # another twin in the same database: not ours
        assert not heard.wait(1.5) and heard.times == 0
        _import_boxes(mine, 3)
        assert heard.wait() and heard.times == 1 and listener.notifications == 1
        pg_cluster.halt()
        try:
            deadline = time.monotonic() + 20
            while listener.connected and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not listener.connected and listener.last_error
        finally:
            pg_cluster.resume()
        # back: subscribed again, and told once (a commit may have been missed meanwhile)
        assert listener.wait_subscribed(30, count=2)
        assert heard.wait() and heard.times == 2
        _import_boxes(mine, 4)
        assert heard.wait() and heard.times == 3 and listener.notifications == 2
    finally:
        listener.stop()
    assert not listener.connected


def test_serve_on_an_unreachable_database_is_a_one_line_error() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/twin?schema=nowhere"
    done = run_cli("serve", url, "--port", str(free_port()))
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the twin database" in lines[0]
    assert f"database {url} (" in lines[0]  # as typed: not with the timeouts serve adds


def test_a_reload_reads_again_only_the_layers_that_changed(pg_cluster: TempCluster) -> None:
    import geopandas as gpd

    from twin.query.live import LiveIndex

    url = pg_cluster.url(schema="partial_reload")
    twin.Twin.create(url, crs="EPSG:4544", overwrite=True)
    _import_boxes(url, 5)
    parcels = gpd.GeoDataFrame({"code": ["P1", "P2"]}, geometry=boxes(2, size=30.0), crs=4544)
    twin.Twin.open(url).import_frame(parcels, layer="parcels", kind="parcel", id="code")
    live = LiveIndex(url)
    first = live.current()
    assert len(first.layer("buildings")) == 5 and len(first.layer("parcels")) == 2
    _import_boxes(url, 7)  # buildings change, parcels do not
    assert live.refresh()
    second = live.current()
    assert second.identity[-1] == first.identity[-1] + 1
    assert second.layers["parcels"] is first.layers["parcels"]  # taken over, not read again
    assert second.layers["buildings"] is not first.layers["buildings"]
    assert len(second.layer("buildings")) == 7
    assert list(second.layers) == list(first.layers)
    assert not live.refresh()  # nothing new: no reload
