"""A real ``twin serve`` (uvicorn) on a free loopback port, over a twin of the sample delivery.

Fixtures
--------
sample_twin_file
    The path of the session's built sample twin (``sample_twin`` of the root
    ``conftest.py``, shared read-only by every test: servers get copies).
live_server
    Session server over a copy of it: ``url``, ``twin``, ``keys`` (role -> key:
    ``internal``, ``restricted``, ``ops``), ``audit_log``, ``get(path, role=None, **params)``.
fresh_server
    Function-scoped server over its own copy of the twin (for tests that re-import).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import twin
from tests.conftest import TWIN_CLI

KEYS = {
    "internal": "k-internal-5f1c9a0e7b2d4c38a1e6",
    "restricted": "k-restricted-93b7e2c4d8a14f60b5c2",
    "ops": "k-ops-centre-2a8d6e1f0c9b4a7e3d55",
}
KEY_NAMES = {"internal": "planner-1", "restricted": "pipe-office", "ops": "ops-desk-1"}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A running ``twin serve`` process."""

    url: str
    twin: Path
    audit_log: Path
    process: subprocess.Popen[bytes]
    keys: dict[str, str] = field(default_factory=lambda: dict(KEYS))

    def headers(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"X-API-Key": self.keys[role]}

    def get(self, path: str, role: str | None = None, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params, headers=self.headers(role), timeout=60)

    def audit_lines(self) -> list[str]:
        if not self.audit_log.exists():
            return []
        return self.audit_log.read_text(encoding="utf-8").splitlines()


def write_keys_file(path: Path) -> Path:
    lines = ["roles:", "  ops-centre: restricted", "keys:"]
    for role, key in KEYS.items():
        lines += [
            f"  - name: {KEY_NAMES[role]}",
            f"    role: {'ops-centre' if role == 'ops' else role}",
            f"    sha256: {sha256(key)}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_server(twin_path: Path, folder: Path, *extra: str) -> LiveServer:
    """Start ``twin serve`` on a free port and wait until it answers."""
    port = free_port()
    keys = write_keys_file(folder / "keys.yaml")
    audit = folder / "audit.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_API_")}
    env["TWIN_API_POLL_S"] = "0.2"
    command = [TWIN_CLI, "-q", "serve", str(twin_path), "--port", str(port)]
    command += ["--keys-file", str(keys), "--audit-log", str(audit), "--max-limit", "1000", *extra]
    log = open(folder / f"server-{port}.log", "wb")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = LiveServer(f"http://127.0.0.1:{port}", twin_path, audit, process)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.close()
            raise RuntimeError((folder / f"server-{port}.log").read_text())
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                return server
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"twin serve did not answer within 90 s: {command}")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def sample_twin_file(sample_twin: twin.Twin) -> Path:
    return sample_twin.path


@pytest.fixture(scope="session")
def live_server(
    sample_twin_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("live-server")
    copy = shutil.copy(sample_twin_file, folder / "chengdu.twin.gpkg")
    server = start_server(Path(copy), folder)
    yield server
    stop_server(server)


@pytest.fixture
def fresh_server(sample_twin_file: Path, tmp_path: Path) -> Iterator[LiveServer]:
    copy = shutil.copy(sample_twin_file, tmp_path / "chengdu.twin.gpkg")
    server = start_server(Path(copy), tmp_path)
    yield server
    stop_server(server)
