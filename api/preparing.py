"""Background preparation of a snapshot on long-lived threads, one per kind of work.

A new snapshot's caches (GeoJSON texts, tile sources) are prepared off the
request path. They used to run on a new thread per snapshot, and pyproj
makes its PROJ transformation anew in every thread that first uses a
``Transformer`` (about 0.3 s each, seconds when four workers reload at once
on a busy machine). A :class:`Worker` keeps one daemon thread for its kind of
work, so that cost is paid once per process, not once per reload.

Examples
--------
>>> worker = Worker("twin-example")
>>> job = worker.submit(lambda: None)
>>> job.join(10)
>>> job.is_alive()
False
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

__all__ = ["Job", "Worker"]

log = logging.getLogger("twin_api")


class Job:
    """One piece of work handed to a :class:`Worker`; ``join`` waits for it, as for a thread."""

    def __init__(self, work: Callable[[], object]) -> None:
        self.work = work
        self._done = threading.Event()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the work has run (or ``timeout`` seconds)."""
        self._done.wait(timeout)

    def is_alive(self) -> bool:
        """Whether the work is still waiting or running."""
        return not self._done.is_set()

    def run(self) -> None:
        try:
            self.work()
        except Exception:  # the requests that need what it prepares report the failure
            log.exception("background preparation failed")
        finally:
            self._done.set()


class Worker:
    """A daemon thread started on first use that runs submitted work in order.

    Parameters
    ----------
    name : str
        The thread's name (seen in ``py-spy dump`` and logs).
    setup : callable, optional
        Run once in the thread before any work (e.g. lowering its priority).
    """

    def __init__(self, name: str, setup: Callable[[], object] | None = None) -> None:
        self.name = name
        self.setup = setup
        self._queue: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, work: Callable[[], object]) -> Job:
        """Queue ``work``; the returned :class:`Job` says when it has run."""
        job = Job(work)
        self._queue.put(job)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        return job

    def _run(self) -> None:
        if self.setup is not None:
            self.setup()
        while True:
            self._queue.get().run()
