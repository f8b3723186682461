"""A real server accepts keys added with ``twin keys`` and refuses revoked ones (issue 12)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.api.conftest import start_server, stop_server
from tests.conftest import run_cli


def _add(keys: Path, name: str) -> str:
    result = run_cli("keys", "add", str(keys), name, "--role", "restricted", check=True)
    return result.stdout.strip()


def test_a_server_accepts_added_keys_and_refuses_revoked_ones(
    sample_twin_file: Path, tmp_path: Path
) -> None:
    keys = tmp_path / "mine.yaml"
    kept = _add(keys, "pipe-office-2")
    gone = _add(keys, "leaver")
    run_cli("keys", "revoke", str(keys), "leaver", check=True)
    copy = Path(shutil.copy(sample_twin_file, tmp_path / "city.gpkg"))
    server = start_server(copy, tmp_path, "--keys-file", str(keys))
    try:
        url = server.url + "/collections/water_pipes/items"
        assert httpx.get(url, headers={"X-API-Key": kept}, timeout=30).status_code == 200
        assert httpx.get(url, headers={"X-API-Key": gone}, timeout=30).status_code == 401
        assert httpx.get(url, timeout=30).status_code == 404  # hidden without a key
    finally:
        stop_server(server)
