"""A twin damaged inside: the service keeps its last good snapshot and says why (issue 12)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx

import twin
from tests.api.conftest import LiveServer, start_server, stop_server
from tests.conftest import run_cli
from tests.store.test_damaged_twin import damaged_copies


def _failing(sample: Path, folder: Path, count: int) -> list[Path]:
    """Damaged copies of the sample twin whose buildings no longer read (generated, seeded)."""
    found = []
    for path in damaged_copies(sample, folder, "buildings"):
        try:
            twin.Twin.open(path).layer("buildings")
        except twin.TwinFileError:
            found.append(path)
    assert len(found) >= count, len(found)
    return found[:count]


def test_serving_a_damaged_twin_fails_with_one_line(sample_twin_file: Path, tmp_path: Path) -> None:
    (bad,) = _failing(sample_twin_file, tmp_path, 1)
    result = run_cli("-q", "serve", str(bad), "--port", "1")
    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "is damaged" in errors[0]
    assert "Traceback" not in result.stderr
    # the twin is loaded before it says "serving …"
    assert not any(line.startswith("serving") for line in result.stderr.splitlines())


def test_a_damaged_reimport_keeps_the_last_snapshot(sample_twin_file: Path, tmp_path: Path) -> None:
    live = Path(shutil.copy(sample_twin_file, tmp_path / "live.gpkg"))
    server: LiveServer = start_server(live, tmp_path)
    try:
        for bad in _failing(sample_twin_file, tmp_path, 2):
            swap = tmp_path / "swap.gpkg"
            shutil.copy(bad, swap)
            swap.replace(live)  # a new file version, as a commit makes it
            deadline = time.monotonic() + 30
            health = httpx.get(server.url + "/health", timeout=30).json()
            while "is damaged" not in str(health.get("last_reload_error")):
                assert time.monotonic() < deadline, health
                time.sleep(0.2)
                health = httpx.get(server.url + "/health", timeout=30).json()
            assert "restore it from a backup" in health["last_reload_error"]
            items = httpx.get(server.url + "/collections/buildings/items?limit=2", timeout=30)
            assert items.status_code == 200
            assert items.json()["numberMatched"] == 3000  # the last good snapshot
    finally:
        stop_server(server)
