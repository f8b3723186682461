"""Citizen reports located by address alone: `twin events report` and `POST /reports`.

The twin is the sample delivery with its standard address layer; the typed
addresses come from the sample's noisy generator with the truth beside each
(the building meant), so the expected building is independent of the matcher.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import twin
from tests.api.conftest import KEYS, LiveServer, sha256, start_server, stop_server
from tests.conftest import run_cli
from twin.sample import generate_city
from twin.sample.addresses import standard_addresses, typed_addresses
from twin.sensing import LiveStore

pytestmark = pytest.mark.slow

ROAD_ONLY = "成都市锦江区杉江街999号"  # a real road, a number it does not have
NOWHERE = "火星市奥林匹斯区环形山路8号"


@pytest.fixture(scope="module")
def addressed(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built sample twin plus its standard address layer (copy it before writing)."""
    path = Path(shutil.copy(built, tmp_path_factory.mktemp("addressed") / "chengdu.twin.gpkg"))
    city = twin.Twin.open(path)
    std = standard_addresses(generate_city(3000, seed=42), seed=42)
    city.import_frame(std, layer="addresses", kind="address", id="addr_id")
    city.build()
    return path


@pytest.fixture(scope="module")
def typed() -> pd.DataFrame:
    """Noisy typed addresses that mean a real building, with that building's uid."""
    std = standard_addresses(generate_city(3000, seed=42), seed=42)
    sample = typed_addresses(std, 40, seed=5)
    real = sample[sample["truth_building"].notna()].head(4)
    return real.assign(building="buildings." + real["truth_building"].astype(str))


def _grid_of(path: Path, building: str) -> str:
    return str(twin.Twin.open(path).relations("feature_grid", uid=building)["to_uid"].iloc[0])


def _json(*args: str) -> Any:
    return json.loads(run_cli(*args, "--json", check=True).stdout)


def test_cli_reports_by_address_land_on_the_building_or_become_dead_letters(
    addressed: Path, typed: pd.DataFrame, tmp_path: Path
) -> None:
    path = Path(shutil.copy(addressed, tmp_path / "chengdu.twin.gpkg"))
    tickets = [f"A-{i}" for i in range(len(typed))]
    csv = tmp_path / "reports.csv"
    pd.DataFrame(
        {
            "ticket": [*tickets, "A-road", "A-nowhere"],
            "type": "noise",
            "time": "2026-05-18T01:00:00Z",
            "address": [*typed["地址"], ROAD_ONLY, NOWHERE],
        }
    ).to_csv(csv, index=False)
    made = _json("events", "report", str(path), str(csv))
    assert len(made["events"]) == len(typed)
    assert [r["ticket"] for r in made["rejected"]] == ["A-road", "A-nowhere"]
    assert "matched road" in made["rejected"][0]["reason"]
    assert "matched unmatched" in made["rejected"][1]["reason"]
    for event_id, building, text in zip(
        made["events"], typed["building"], typed["地址"], strict=True
    ):
        event = _json("events", "show", str(path), str(event_id))
        where = event["location"]
        assert where["building"] == building, text
        assert where["grid"] == _grid_of(path, building)
        assert where["address_level"] in ("room", "building", "house_number")
    letters = LiveStore.beside(path).dead_letters()
    assert letters["sensor"].tolist() == ["report:A-road", "report:A-nowhere"]
    assert letters["value"].tolist() == [ROAD_ONLY, NOWHERE]
    assert letters["reason"].str.startswith("address_not_located: (matched ").all()
    assert set(letters["source"]) == {"file:reports.csv"}
    shown = run_cli("events", "report", str(path), str(csv))
    assert "2 report(s) not located, kept as dead letters" in shown.stdout
    assert NOWHERE in shown.stdout


def _keys_file(folder: Path) -> Path:
    path = folder / "writer-keys.yaml"
    lines = ["roles:", "  ops-centre: restricted", "writers: [ops-centre]", "keys:"]
    lines += ["  - name: ops-desk-1", "    role: ops-centre", f"    sha256: {sha256(KEYS['ops'])}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(addressed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("address-reports")
    path = Path(shutil.copy(addressed, folder / "chengdu.twin.gpkg"))
    running = start_server(path, folder, "--keys-file", str(_keys_file(folder)))
    yield running
    stop_server(running)


def _post(server: LiveServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + "/reports", json=body, headers=server.headers("ops"), timeout=60)


def test_post_report_by_address(server: LiveServer, typed: pd.DataFrame) -> None:
    text, building = str(typed["地址"].iloc[0]), str(typed["building"].iloc[0])
    body = {"ticket": "H-1", "type": "water_leak", "time": "2026-05-18T16:00:00Z"}
    answer = _post(server, body | {"address": text, "text": "路面冒水"})
    assert answer.status_code == 201, answer.text
    where = answer.json()["location"]
    assert where["building"] == building and where["grid"] == _grid_of(server.twin, building)
    assert where["address"].startswith("addresses.")
    before = server.get("/events", role="ops").json()["count"]
    for ticket, address in (("H-2", ROAD_ONLY), ("H-3", NOWHERE)):
        refused = _post(server, body | {"ticket": ticket, "address": address})
        assert refused.status_code == 400, refused.text
        assert refused.json()["code"] == "InvalidParameterValue"
        assert f"address {address!r} is not located" in refused.json()["description"]
    assert server.get("/events", role="ops").json()["count"] == before == 1
    nothing = _post(server, body | {"ticket": "H-4"})
    assert nothing.status_code == 400
    assert "give lon/lat, a place or an address" in nothing.json()["description"]
