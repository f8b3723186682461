"""A throwaway PostgreSQL + PostGIS cluster for tests and benchmarks.

:class:`TempCluster` runs Debian's PostgreSQL 15 (``initdb`` then ``postgres``)
in a temporary folder, listening on a free loopback port only, creates one
database with the PostGIS extension and removes everything on :meth:`stop`.
When the caller is root the server runs as the ``postgres`` system user
(PostgreSQL refuses to run as root). It never touches a cluster someone
started by hand.

Examples
--------
>>> postgres_bin().name
'bin'
>>> TempCluster.url_for(5433, "twin", schema="chengdu")
'postgresql://postgres@127.0.0.1:5433/twin?schema=chengdu'
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from twin.errors import StorageError

__all__ = ["TempCluster", "free_port", "postgres_bin"]

_VERSIONS = ("15", "16", "17")


def postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs (``initdb``, ``postgres``, ``pg_ctl``)."""
    for version in _VERSIONS:
        folder = Path(f"/usr/lib/postgresql/{version}/bin")
        if (folder / "postgres").is_file():
            return folder
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise StorageError(
        "PostgreSQL is not installed: run `bash scripts/setup.sh` "
        "(Debian: apt-get install postgresql-15 postgresql-15-postgis-3)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TempCluster:
    """A PostgreSQL cluster in a temporary folder, on a free loopback port.

    Parameters
    ----------
    database : str, default "twin"
        The database created (with ``CREATE EXTENSION postgis``).

    Examples
    --------
    >>> cluster = TempCluster()  # doctest: +SKIP
    >>> cluster.start()  # doctest: +SKIP
    >>> cluster.url(schema="chengdu")  # doctest: +SKIP
    'postgresql://postgres@127.0.0.1:41234/twin?schema=chengdu'
    >>> cluster.stop()  # doctest: +SKIP
    """

    def __init__(self, database: str = "twin") -> None:
        self.database = database
        self.port = 0
        self.folder: Path | None = None
        self._bin = postgres_bin()
        self._options = ""

    @staticmethod
    def url_for(port: int, database: str, *, schema: str | None = None) -> str:
        """The URL of ``database`` on a local cluster (``?schema=`` names a twin)."""
        url = f"postgresql://postgres@127.0.0.1:{port}/{database}"
        return url if schema is None else f"{url}?schema={schema}"

    def url(self, *, schema: str | None = None) -> str:
        """The URL of the cluster's database, optionally naming a twin's schema."""
        return self.url_for(self.port, self.database, schema=schema)

    @property
    def data(self) -> Path:
        if self.folder is None:
            raise StorageError("the cluster is not started")
        return self.folder / "data"

    def start(self) -> None:
        """initdb, start the server, create the database and the PostGIS extension."""
        self.folder = Path(tempfile.mkdtemp(prefix="twin-pg-"))
        os.chmod(self.folder, 0o755)
        self._own(self.folder)
        self._run(
            [
                str(self._bin / "initdb"),
                "-D",
                str(self.data),
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
            ]
        )
        self.port = free_port()
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.folder}",
                "-c fsync=off",  # a throwaway cluster: durability buys nothing
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=60",
            ]
        )
        self._options = options
        self.resume()
        self.sql("postgres", f'CREATE DATABASE "{self.database}"')
        self.sql(self.database, "CREATE EXTENSION postgis")

    def restart(self) -> None:
        """Stop and start the server (same port and data): for fault tests."""
        self._run([str(self._bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "restart"])

    def halt(self) -> None:
        """Stop the server but keep its data (an outage; :meth:`resume` ends it)."""
        self._run([str(self._bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop"])

    def resume(self) -> None:
        """Start the server on its data, on the same port and settings (after :meth:`halt`)."""
        log = self.data.parent / "server.log"
        command = [str(self._bin / "pg_ctl"), "-D", str(self.data), "-l", str(log)]
        self._run([*command, "-o", self._options, "-w", "-t", "60", "start"])

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        if self.folder is None:
            return
        with contextlib.suppress(StorageError):
            self._run([str(self._bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop"])
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def sql(self, database: str, statement: str) -> None:
        """Run one statement as the superuser (autocommit)."""
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                url = self.url_for(self.port, database)
                with psycopg.connect(url, autocommit=True) as con:
                    con.execute(statement.encode())
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def __enter__(self) -> TempCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- running as the postgres user when root ---------------------------------
    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")

    def _run(self, command: list[str]) -> None:
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise StorageError(f"{Path(command[-1]).name} failed: {' '.join(tail)}")
