"""A re-import while the server runs: picked up without a restart and without a failed
request; ``datetime`` then serves the twin as it was before the re-import."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import pandas as pd

import twin
from tests.api.conftest import LiveServer
from tests.conftest import SAMPLES


def changed_delivery(folder: Path) -> tuple[Path, set[str], dict[str, int]]:
    """The sample buildings with 100 removed and 40 given one more floor."""
    frame = gpd.read_file(SAMPLES / "buildings.geojson")
    removed = set(frame["建筑编码"].iloc[:100])
    kept = frame.iloc[100:].copy()
    raised = kept.index[kept["层数"].notna()][:40]
    old_floors = {code: int(n) for code, n in kept.loc[raised, ["建筑编码", "层数"]].to_numpy()}
    kept.loc[raised, "层数"] = kept.loc[raised, "层数"] + 1
    path = folder / "buildings-v2.geojson"
    kept.to_file(path, driver="GeoJSON")
    return path, removed, old_floors


class Hammer(threading.Thread):
    """Requests in a loop until stopped; records every status and every failure."""

    def __init__(self, server: LiveServer, uid: str) -> None:
        super().__init__(daemon=True)
        self.server, self.uid = server, uid
        self.stop = threading.Event()
        self.statuses: list[int] = []
        self.failures: list[str] = []
        self.matched: list[int] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=30) as client:
            while not self.stop.is_set() and len(self.statuses) < 20_000:
                try:
                    page = client.get("/collections/buildings/items", params={"limit": 20})
                    one = client.get(f"/collections/buildings/items/{self.uid}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.statuses += [page.status_code, one.status_code]
                if page.status_code == 200:
                    self.matched.append(page.json()["numberMatched"])


def wait_for(check: Any, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_reimport_is_picked_up_with_no_failed_request(
    fresh_server: LiveServer, tmp_path: Path
) -> None:
    source, removed, old_floors = changed_delivery(tmp_path)
    city = twin.Twin.open(fresh_server.twin)
    kept_uid = f"buildings.{next(iter(old_floors))}"
    hammer = Hammer(fresh_server, kept_uid)
    hammer.start()
    assert wait_for(lambda: len(hammer.matched) >= 20)
    spec = twin.read_mapping(SAMPLES / "mapping.yaml")["buildings"]
    report = city.import_spec(dataclasses.replace(spec, source=source))
    assert (report.removed, report.changed) == (100, 40)
    picked_up = wait_for(
        lambda: (
            fresh_server.get("/collections/buildings/items", limit=1).json()["numberMatched"]
            == 2900
        )
    )
    time.sleep(0.5)
    hammer.stop.set()
    hammer.join(timeout=60)
    assert picked_up
    assert hammer.failures == []
    assert set(hammer.statuses) == {200}
    assert hammer.matched[0] == 3000 and hammer.matched[-1] == 2900  # it ran across the swap
    assert set(hammer.matched) == {3000, 2900}  # never a half-loaded twin
    gone = f"buildings.{next(iter(removed))}"
    assert fresh_server.get(f"/collections/buildings/items/{gone}").status_code == 404


def test_datetime_serves_the_twin_before_a_reimport(
    fresh_server: LiveServer, tmp_path: Path
) -> None:
    source, removed, old_floors = changed_delivery(tmp_path)
    city = twin.Twin.open(fresh_server.twin)
    first = pd.Timestamp(city.imports("buildings")["time"].iloc[-1])
    spec = twin.read_mapping(SAMPLES / "mapping.yaml")["buildings"]
    city.import_spec(dataclasses.replace(spec, source=source))
    second = pd.Timestamp(city.imports("buildings")["time"].iloc[-1])
    assert wait_for(
        lambda: (
            fresh_server.get("/collections/buildings/items", limit=1).json()["numberMatched"]
            == 2900
        )
    )
    between = (first + (second - first) / 2).isoformat().replace("+00:00", "Z")
    then = fresh_server.get("/collections/buildings/items", datetime=between, limit=1000)
    assert then.status_code == 200
    assert then.json()["numberMatched"] == 3000
    pages = [
        fresh_server.get(
            "/collections/buildings/items", datetime=between, limit=1000, offset=offset
        ).json()["features"]
        for offset in (0, 1000, 2000)
    ]
    past = {f["id"]: f["properties"] for page in pages for f in page}
    assert {f"buildings.{code}" for code in removed} <= set(past)
    for code, floors in old_floors.items():
        assert past[f"buildings.{code}"]["floors"] == floors
    now = fresh_server.get("/collections/buildings/items", limit=1000, offset=0).json()
    current = {f["id"]: f["properties"] for f in now["features"]}
    some = [c for c in old_floors if f"buildings.{c}" in current]
    assert some and all(current[f"buildings.{c}"]["floors"] == old_floors[c] + 1 for c in some)
    before_all = fresh_server.get("/collections/buildings/items", datetime="2000-01-01")
    assert before_all.json()["numberMatched"] == 0
