"""GDAL writes a layer in a helper process while this process makes the next batch.

pyogrio holds Python's GIL for the whole of ``write_arrow``: while GDAL writes
one batch, no thread of this process can read, check or convert the next one.
A large stream of batches (an import of a million buildings) is therefore
handed to a helper process, this file run as a script (``python -P gdalsink.py``:
it imports pyarrow and pyogrio only, not twin, so it starts in a fraction of the
time), as an Arrow IPC stream on its standard input; the helper passes the stream to the same
``pyogrio.raw.write_arrow`` call with the same options, so the file is the one an
in-process write makes. This process makes batch k+1 while the helper writes
batch k: a thread of this process sends the batches (waiting on the pipe with the
GIL released), so a producer that runs ahead is held back only when
:data:`QUEUED` batches wait to be sent.

The helper reports on its standard output, once the stream ends, as one JSON
object: the warnings GDAL raised (re-emitted here as :class:`RuntimeWarning`) and
the error, if the write failed (raised here as :class:`twin.errors.StorageError`).

Examples
--------
>>> import pathlib, tempfile, pyarrow as pa, shapely
>>> path = pathlib.Path(tempfile.mkdtemp()) / "points.gpkg"
>>> table = pa.table({"n": [1, 2], "geometry": shapely.to_wkb(shapely.points([0, 1], [0, 1]))})
>>> sink = GdalSink()
>>> sink.open(path, table.schema, {"layer": "pts", "driver": "GPKG",
...     "geometry_name": "geometry", "geometry_type": "Point", "crs": "EPSG:4544"})
>>> for batch in table.to_batches():
...     sink.write(batch)
>>> sink.close()
>>> import pyogrio
>>> pyogrio.read_info(path, layer="pts")["features"]
2
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["GdalSink", "serve", "spare_core"]

#: GDAL settings the helper runs with (GDAL reads its configuration from the
#: environment): SQLite skips its per-transaction syncs, as an in-process write of
#: a private working copy does (``twin.store.files``).
HELPER_CONFIG = {"OGR_SQLITE_SYNCHRONOUS": "OFF"}
#: Batches waiting to be sent while the helper is still reading earlier ones.
QUEUED = 2


class GdalSink:
    """One layer written by a helper process from Arrow record batches.

    The process starts at once (its interpreter loads while the caller makes the
    first batch); :meth:`open` names the file, layer and schema, :meth:`write`
    sends a batch, :meth:`close` waits for GDAL to finish. On any error call
    :meth:`abort`, which ends the helper (the file is then half-written: write a
    working copy).
    """

    def __init__(self) -> None:
        # the helper's stderr, read if it dies without its report; closed by _finish/abort
        self._errors: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-P", str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
            env={**os.environ, **HELPER_CONFIG, "PYTHONPATH": _search_path()},
        )
        _widen(self._process.stdin)
        self._stream: pa.ipc.RecordBatchStreamWriter | None = None
        self._path = Path()
        self._queue: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=QUEUED)
        self._sender: threading.Thread | None = None
        self._broken = False  # the pipe closed under the sender: the helper stopped

    def open(self, path: Path, schema: pa.Schema, options: dict[str, Any]) -> None:
        """Start the layer: ``options`` are ``write_arrow``'s keyword arguments."""
        self._path = Path(path)
        assert self._process.stdin is not None
        header = {"path": str(path), "options": options}
        try:
            self._process.stdin.write(json.dumps(header).encode() + b"\n")
            self._stream = pa.ipc.new_stream(self._process.stdin, schema)
        except (BrokenPipeError, OSError):
            self._failed()
        self._sender = threading.Thread(target=self._send, name="twin-gdalsink", daemon=True)
        self._sender.start()

    def write(self, batch: pa.RecordBatch) -> None:
        """Queue one batch to send; waits while :data:`QUEUED` batches are waiting."""
        assert self._sender is not None
        if self._broken:
            self._stop_sender()
            self._failed()
        self._queue.put(batch)

    def _send(self) -> None:
        """The sender thread: each queued batch to the pipe until ``None`` (or a broken pipe,
        after which batches are only taken off the queue)."""
        assert self._stream is not None
        while (batch := self._queue.get()) is not None:
            if self._broken:
                continue
            try:
                self._stream.write_batch(batch)
            except (BrokenPipeError, OSError):
                self._broken = True

    def _stop_sender(self) -> None:
        """Let the sender send what is queued and end."""
        if self._sender is not None:
            self._queue.put(None)
            self._sender.join()
            self._sender = None

    def close(self) -> None:
        """End the stream and wait for the layer to be written.

        Raises
        ------
        StorageError
            When GDAL could not write the layer (the helper's error, in one line).
        """
        assert self._stream is not None and self._process.stdin is not None
        self._stop_sender()
        try:
            if self._broken:
                raise BrokenPipeError
            self._stream.close()
            self._process.stdin.close()
        except (BrokenPipeError, OSError):
            self._failed()
        self._finish()

    def abort(self) -> None:
        """End the helper now (the caller is failing for its own reason)."""
        if self._process.returncode is None:
            self._process.kill()
            self._process.wait()
        self._broken = True  # the sender drops what is queued
        self._stop_sender()
        for pipe in (self._process.stdin, self._process.stdout):
            with contextlib.suppress(OSError):
                pipe and pipe.close()
        self._errors.close()

    def _failed(self) -> None:
        """The helper stopped reading: report why."""
        self._finish()
        raise _storage_error(f"cannot write {self._path.name}: the GDAL helper process stopped")

    def _finish(self) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        with contextlib.suppress(OSError):
            self._process.stdin.close()
        out = self._process.stdout.read()
        self._process.stdout.close()
        self._process.wait()
        self._errors.seek(0)
        errors = self._errors.read().decode(errors="replace").strip()
        self._errors.close()
        try:
            result = json.loads(out.decode().strip().splitlines()[-1])
        except (IndexError, ValueError):
            last = errors.splitlines()[-1] if errors else f"exit code {self._process.returncode}"
            raise _storage_error(f"cannot write {self._path.name}: {last}") from None
        for message in result["warnings"]:
            warnings.warn(message, RuntimeWarning, stacklevel=3)
        if result["error"]:
            raise _storage_error(f"cannot write {self._path.name}: {result['error']}")


#: The pipe's buffer, where the system lets it grow (Linux: up to 1 MiB unprivileged):
#: a batch of 200,000 buildings is about 60 MB, sent in 16 times fewer writes and
#: wake-ups than through the default 64 KiB (measured: a fifth to a third less wall time).
PIPE_BUFFER = 1 << 20


def _widen(pipe: IO[bytes] | None) -> None:
    """Give ``pipe`` a :data:`PIPE_BUFFER` buffer where the system can (else leave it)."""
    resize = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if pipe is None or resize is None:
        return
    with contextlib.suppress(OSError):  # above the system's limit: keep the default
        fcntl.fcntl(pipe.fileno(), resize, PIPE_BUFFER)


def _storage_error(message: str) -> Exception:
    """A :class:`twin.errors.StorageError` (imported here: the helper, running this file
    as a script, never imports twin)."""
    from twin.errors import StorageError

    return StorageError(message)


def spare_core() -> bool:
    """Whether the machine has a core for a helper (1-minute load average, where the
    system keeps one): on a saturated machine the helper's start and the stream cost
    more than the overlap gives back.

    Measured on 2 cores shared with other work (1M buildings, helper against none,
    one right after the other): the helper was faster in all 5 pairs at load averages
    of 1.6 to 2.3, by 0.2 to 1.8 s of 6.1 to 9.3 s. A load up to the number of cores
    plus half a core (the import's own previous runs count in it) keeps the helper.

    Examples
    --------
    >>> isinstance(spare_core(), bool)
    True
    """
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows keeps no load average
        load = 0.0
    return cores >= 2 and load < cores + 0.5


def _search_path() -> str:
    """This interpreter's module search path, so the helper imports the same twin
    (an entry added at run time, a source checkout) as multiprocessing's spawn does."""
    here = str(Path(__file__).resolve().parents[2])  # the folder holding the twin package
    return os.pathsep.join(dict.fromkeys([here, *(p for p in sys.path if p)]))


def serve(source: IO[bytes], out: IO[str]) -> None:
    """The helper's side: read the header and the Arrow stream from ``source``, write it.

    Writes one JSON line to ``out``: ``{"warnings": [...], "error": null | "..."}``.
    """
    import pyogrio.raw

    header = json.loads(source.readline())
    result: dict[str, Any] = {"warnings": [], "error": None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            reader = pa.ipc.open_stream(source)
            pyogrio.raw.write_arrow(reader, header["path"], **header["options"])
        except Exception as exc:  # reported to the caller, which raises it
            text = str(exc).strip()
            result["error"] = text.splitlines()[0] if text else type(exc).__name__
    seen = dict.fromkeys(str(w.message) for w in caught)
    result["warnings"] = list(seen)
    out.write(json.dumps(result) + "\n")
    out.flush()


#: What pyogrio imports when it can, which writing Arrow never uses: the helper keeps
#: them out (a third of a second of its start).
_UNUSED_HERE = ("geopandas", "pandas", "shapely", "pyproj")

#: The helper's niceness: the process making the batches is the import's critical
#: path, so when both want a core it goes first; GDAL (its writer and its R-tree
#: thread) takes the other core, and catches up when the batches end.
HELPER_NICE = 5

if __name__ == "__main__":
    if hasattr(os, "nice"):
        os.nice(HELPER_NICE)
    for _name in _UNUSED_HERE:
        sys.modules.setdefault(_name, None)  # type: ignore[arg-type]
    serve(sys.stdin.buffer, sys.stdout)
