"""``twin serve``: help, bad input, several workers, and the package layout (``twin_api``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.api.conftest import start_server, stop_server
from tests.conftest import ROOT, run_cli


def test_help_has_an_example() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    assert "Example" in result.stdout and "twin serve" in result.stdout
    for option in ("--host", "--port", "--workers", "--keys-file", "--audit-log", "--cors-origin"):
        assert option in result.stdout


def test_missing_twin_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_cli("serve", str(tmp_path / "nowhere.gpkg"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no twin at" in result.stderr


def test_bad_keys_file_is_a_one_line_error(sample_twin_file: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys:\n  - name: a\n    role: boss\n    sha256: " + "ab" * 32 + "\n")
    twin_cli = str(Path(sys.executable).with_name("twin"))
    result = subprocess.run(
        [twin_cli, "serve", str(sample_twin_file), "--port", "1", "--keys-file", str(keys)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "unknown role 'boss'" in result.stderr


def test_two_workers_serve_the_same_twin(sample_twin_file: Path, tmp_path: Path) -> None:
    server = start_server(sample_twin_file, tmp_path, "--workers", "2")
    try:
        counts = {
            server.get("/collections/parcels/items", limit=1).json()["numberMatched"]
            for _ in range(20)
        }
        assert counts == {739}
        assert server.get("/collections/valves", "restricted").status_code == 200
    finally:
        stop_server(server)


def test_installed_as_twin_api_not_api() -> None:
    spec = importlib.util.find_spec("twin_api")
    assert spec is not None and spec.origin is not None
    assert Path(spec.origin).resolve() == ROOT / "api" / "__init__.py"


@pytest.mark.slow
def test_wheel_holds_twin_api_and_no_top_level_api(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    [wheel] = tmp_path.glob("citytwin-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "twin_api/__init__.py" in names and "twin_api/routers/features.py" in names
    assert "twin/query/index.py" in names and "twin/cli/serve.py" in names
    assert not any(name.startswith("api/") for name in names)
