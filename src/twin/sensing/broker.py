"""A throwaway Mosquitto broker on a free loopback port, for notebooks, demos and tests.

The broker runs with :func:`twin.sensing.mqtt.mosquitto_config` (no queue or
in-flight caps, loopback only) in a folder of its own, and is stopped by
:meth:`Broker.stop` or on leaving the ``with`` block. Mosquitto comes from
Debian (``apt-get install mosquitto``; ``scripts/setup.sh`` installs it).

Examples
--------
>>> with start_mosquitto() as broker:  # doctest: +SKIP
...     replay(readings, broker.host, broker.port, speed=0)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from twin.errors import UsageError
from twin.sensing.mqtt import mosquitto_config

__all__ = ["Broker", "free_port", "mosquitto_binary", "start_mosquitto"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now.

    Examples
    --------
    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str:
    """Where the ``mosquitto`` program is; :class:`UsageError` saying how to install it."""
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if found is None:
        raise UsageError("mosquitto is not installed: apt-get install mosquitto")
    return found


@dataclass
class Broker:
    """A running Mosquitto: where it listens, its folder (config and log) and its process."""

    host: str
    port: int
    folder: Path
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        """``HOST:PORT``, as ``twin observe mqtt --broker`` takes it."""
        return f"{self.host}:{self.port}"

    def log(self) -> str:
        """What the broker wrote to its log."""
        return (self.folder / "mosquitto.log").read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Stop the broker (terminate, then kill after 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_mosquitto(
    folder: str | os.PathLike[str] | None = None,
    *,
    port: int | None = None,
    timeout_s: float = 20.0,
) -> Broker:
    """Start Mosquitto on ``127.0.0.1:port`` (a free port by default) and wait until it listens.

    Raises
    ------
    UsageError
        Mosquitto is not installed.
    RuntimeError
        It did not start listening within ``timeout_s`` (its log is in the message).
    """
    where = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="mosquitto-"))
    where.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = where / "mosquitto.conf"
    conf.write_text(mosquitto_config(port), encoding="utf-8")
    with open(where / "mosquitto.log", "wb") as log:
        process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
    broker = Broker("127.0.0.1", port, where, process)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return broker
        time.sleep(0.05)
    broker.stop()
    raise RuntimeError(f"mosquitto did not start on port {port}: {broker.log()}")
