"""A server that patched its snapshot from two chained re-imports answers as a fresh one.

Two deliveries of the sample buildings (GeoJSON files, as a surveyor sends them):
the first removes 100 buildings and raises 40, the second renames 5 and adds 3
at the end. ``twin serve`` reloads after each (patching its snapshot from the
change sets, the stored order predicted and checked against the digest the
imports record); a second server started on the twin afterwards reads it
whole. Both must give the same pages (every offset), bbox pages, property
filters, features by id (a removed one 404s on both), identify answers and
vector tiles.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely.geometry

import twin
from tests.api.conftest import LiveServer, start_server, stop_server
from tests.api.test_impact import wait_for_reload
from tests.api.test_reload import changed_delivery

SAMPLES = Path("data/samples")


@pytest.fixture
def servers(sample_twin_file: Path, tmp_path: Path) -> Iterator[tuple[LiveServer, Path]]:
    copy = Path(shutil.copy(sample_twin_file, tmp_path / "chengdu.twin.gpkg"))
    server = start_server(copy, tmp_path)
    yield server, tmp_path
    stop_server(server)


def _second_delivery(first: Path, folder: Path) -> tuple[Path, list[str]]:
    """The first delivery with 5 buildings renamed and 3 new ones (moved copies) at the end."""
    frame = gpd.read_file(first)
    renamed = frame.index[[3, 50, 51, 52, 900]]
    frame.loc[renamed, "建筑名称"] = [f"新名 {i}" for i in range(5)]
    added = frame.iloc[[10, 11, 12]].copy()
    added["建筑编码"] = [f"NEW{i}" for i in range(3)]
    added["geometry"] = added.geometry.translate(0.0, 0.00003)
    path = folder / "buildings-v3.geojson"
    both = gpd.GeoDataFrame(pd.concat([frame, added], ignore_index=True), crs=frame.crs)
    both.to_file(path, driver="GeoJSON")
    return path, [f"buildings.{code}" for code in frame.loc[renamed, "建筑编码"]]


def _body(answer: Any) -> Any:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    for key in ("timeStamp", "links"):  # when and on which port: not the data
        body.pop(key, None)
    return body


def _tile(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


@pytest.mark.slow
def test_a_server_patched_twice_answers_as_a_fresh_one(
    servers: tuple[LiveServer, Path],
) -> None:
    patched, folder = servers
    spec = twin.read_mapping(SAMPLES / "mapping.yaml")["buildings"]
    city = twin.Twin.open(patched.twin)
    first, removed, _ = changed_delivery(folder)
    report = city.import_spec(dataclasses.replace(spec, source=first, allow_removals=True))
    assert (report.removed, report.changed) == (100, 40)
    wait_for_reload(patched, 1)
    second, renamed = _second_delivery(first, folder)
    report = city.import_spec(dataclasses.replace(spec, source=second))
    assert (report.added, report.changed, report.removed) == (3, 5, 0)
    wait_for_reload(patched, 2)
    (folder / "fresh").mkdir()
    fresh = start_server(patched.twin, folder / "fresh")
    try:
        _same_answers(patched, fresh, removed, renamed)
    finally:
        stop_server(fresh)


def _same_answers(
    patched: LiveServer, fresh: LiveServer, removed: set[str], renamed: list[str]
) -> None:
    count = twin.Twin.open(patched.twin).info("buildings").feature_count
    pages = [
        _body(patched.get("/collections/buildings/items", limit=1000, offset=offset))
        for offset in range(0, count, 1000)
    ]
    ids = [f["id"] for page in pages for f in page["features"]]
    assert len(ids) == count == len(set(ids))
    assert ids[-3:] == [f"buildings.NEW{i}" for i in (0, 1, 2)]
    for offset, page in zip(range(0, count, 1000), pages, strict=True):
        theirs = fresh.get("/collections/buildings/items", limit=1000, offset=offset)
        assert page == _body(theirs)
    item = _body(patched.get(f"/collections/buildings/items/{renamed[0]}"))
    assert item == _body(fresh.get(f"/collections/buildings/items/{renamed[0]}"))
    assert item["properties"]["name"] == "新名 0"
    inside = shapely.geometry.shape(item["geometry"]).representative_point()
    lon, lat = inside.x, inside.y
    gone = f"buildings.{sorted(removed)[0]}"
    for server in (patched, fresh):
        assert server.get(f"/collections/buildings/items/{gone}").status_code == 404
    box = f"{lon - 0.003},{lat - 0.003},{lon + 0.003},{lat + 0.003}"
    near = _body(patched.get("/collections/buildings/items", bbox=box, limit=1000))
    assert near["numberMatched"] > 10 and renamed[0] in [f["id"] for f in near["features"]]
    assert near == _body(fresh.get("/collections/buildings/items", bbox=box, limit=1000))
    use = item["properties"]["use"]
    filtered = _body(patched.get("/collections/buildings/items", use=use, limit=1000))
    assert 0 < filtered["numberMatched"] < count
    assert filtered == _body(fresh.get("/collections/buildings/items", use=use, limit=1000))
    here = {"lon": lon, "lat": lat}
    assert _body(patched.get("/identify", **here)) == _body(fresh.get("/identify", **here))
    z, x, y = _tile(lon, lat, 16)
    ours = patched.get(f"/tiles/buildings/{z}/{x}/{y}.pbf")
    theirs = fresh.get(f"/tiles/buildings/{z}/{x}/{y}.pbf")
    assert ours.status_code == theirs.status_code == 200
    assert ours.content == theirs.content and len(ours.content) > 100
