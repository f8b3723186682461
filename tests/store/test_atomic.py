"""Writes are atomic: a failed or killed import leaves the twin byte-identical."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

import twin
from tests.conftest import BUILDING_FIELDS, GK105, TWIN_CLI, X0, Y0, buildings_frame


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _big_source(path: Path, n: int) -> Path:
    i = np.arange(n)
    x, y = X0 + (i % 1000) * 15.0, Y0 + (i // 1000) * 15.0
    frame = gpd.GeoDataFrame(
        {"bid": np.char.add("B", i.astype(str)), "floors": (i % 30) + 1},
        geometry=shapely.box(x, y, x + 10, y + 10),
        crs=GK105,
    )
    pyogrio.write_dataframe(frame, path)
    return path


@pytest.fixture
def seeded(city: twin.Twin, tmp_path: Path) -> twin.Twin:
    src = tmp_path / "b.gpkg"
    buildings_frame(5).to_file(src)
    city.import_layer(
        src, layer="buildings", kind="building", id="建筑编码", fields=BUILDING_FIELDS
    )
    return city


@pytest.mark.parametrize(
    "bad",
    ["missing file", "no crs", "strict rejection", "wrong kind", "corrupt"],
)
def test_failed_import_leaves_twin_byte_identical(
    seeded: twin.Twin, tmp_path: Path, bad: str
) -> None:
    before = _digest(seeded.path)
    src = tmp_path / "x.csv"
    kwargs: dict[str, object] = {"layer": "buildings", "kind": "building", "id": "建筑编码"}
    if bad == "missing file":
        src = tmp_path / "missing.gpkg"
    elif bad == "no crs":
        src.write_text("建筑编码,x,y\nB1,1,2\n", encoding="utf-8")
    elif bad == "strict rejection":
        frame = buildings_frame(3)
        frame.loc[1, "层数"] = -3
        src = tmp_path / "s.gpkg"
        frame.to_file(src)
        kwargs.update(strict=True, fields=BUILDING_FIELDS)
    elif bad == "wrong kind":
        src = tmp_path / "s.gpkg"
        buildings_frame(3).to_file(src)
        kwargs["kind"] = "parcel"
    else:
        src = tmp_path / "c.geojson"
        src.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    with pytest.raises(twin.TwinError):
        seeded.import_layer(src, **kwargs)  # type: ignore[arg-type]
    assert _digest(seeded.path) == before
    assert list(tmp_path.glob(".*.tmp.gpkg")) == []


def test_killed_import_leaves_twin_byte_identical(seeded: twin.Twin, tmp_path: Path) -> None:
    src = _big_source(tmp_path / "big.gpkg", 300_000)
    before = _digest(seeded.path)
    size = seeded.path.stat().st_size
    proc = subprocess.Popen(
        [
            TWIN_CLI,
            "import",
            str(seeded.path),
            str(src),
            "-l",
            "buildings",
            "-k",
            "building",
            "--id",
            "bid",
            "--replace",  # another id field and another dataset: a replacement (issue 12)
            "--allow-removals",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    work = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        copies = list(tmp_path.glob(".city.gpkg.*.tmp.gpkg"))
        if copies and copies[0].stat().st_size > size + 2_000_000:
            work = copies[0]
            break
        time.sleep(0.002)
    assert work is not None, "the import finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _digest(seeded.path) == before  # the twin was never touched
    reopened = twin.Twin.open(seeded.path)
    assert reopened.info("buildings").feature_count == 5
    assert len(reopened.imports()) == 1
    # The next writer removes the dead writer's copy and succeeds.
    report = reopened.import_layer(
        src, layer="buildings", kind="building", id="bid", replace=True, allow_removals=True
    )
    assert report.imported == 300_000 and report.removed == 5
    assert not work.exists()
    assert reopened.info("buildings").feature_count == 300_000


def test_readers_see_old_or_new_never_half(seeded: twin.Twin, tmp_path: Path) -> None:
    src = _big_source(tmp_path / "big.gpkg", 100_000)
    pinned = sqlite3.connect(f"file:{seeded.path}?mode=ro", uri=True)
    pinned.execute("BEGIN")
    assert pinned.execute("SELECT count(*) FROM buildings").fetchone()[0] == 5
    seen: list[int] = []
    stop = threading.Event()

    def read_counts() -> None:
        while not stop.is_set():
            with sqlite3.connect(f"file:{seeded.path}?mode=ro", uri=True) as con:
                layer = con.execute("SELECT count(*) FROM buildings").fetchone()[0]
                meta = con.execute(
                    "SELECT feature_count FROM twin_layers WHERE name='buildings'"
                ).fetchone()[0]
            assert layer == meta  # layer table and metadata always agree
            seen.append(layer)

    reader = threading.Thread(target=read_counts)
    reader.start()
    try:
        seeded.import_layer(
            src, layer="buildings", kind="building", id="bid", replace=True, allow_removals=True
        )
    finally:
        stop.set()
        reader.join()
    assert set(seen) <= {5, 100_000} and 5 in seen
    # A reader that opened before the import keeps its consistent snapshot.
    assert pinned.execute("SELECT count(*) FROM buildings").fetchone()[0] == 5
    pinned.close()
    assert twin.Twin.open(seeded.path).info("buildings").feature_count == 100_000
