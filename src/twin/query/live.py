"""The current snapshot of a twin for a long-running service, replaced when the twin changes.

A :class:`LiveIndex` holds a :class:`~twin.query.index.CityIndex` and swaps in
a new one after each import: polled for a twin file, heard through
``LISTEN``/``NOTIFY`` for a PostGIS twin.

Examples
--------
>>> from twin.query.live import LiveIndex
>>> LiveIndex(sample_twin_path).current().layer("roads").kind
'road'
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from twin.errors import StorageError
from twin.query.index import CityIndex, FileIdentity, identity_of
from twin.query.urgency import quick_turns, urgent
from twin.store import PostgisStore, is_url
from twin.store.pglisten import CommitListener

__all__ = ["LiveIndex", "Swap"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Swap:
    """When a new snapshot went into force: what a service reports of its last reload.

    Times are wall-clock (``time.time()``), so another process on the machine can
    compare them with its own, e.g. with the moment it saw the commit.

    Attributes
    ----------
    version : str
        The new snapshot's :attr:`~twin.query.index.CityIndex.version_tag`.
    heard_at : float
        When the change was heard: the PostGIS commit's NOTIFY received, or the
        twin file's change noticed.
    swapped_at : float
        When the new snapshot replaced the old one (requests from then on use it).
    update_cpu_s : float or None
        CPU seconds the reloading thread spent between the two (``time.thread_time()``):
        beside ``update_s``, how long the update waited for the cores and the
        interpreter lock.
    updates : dict of str to str
        What the update did to each layer (:attr:`~twin.query.index.CityIndex.updates`):
        ``"kept"``, ``"patched"`` or ``"read: <why>"``.

    Examples
    --------
    >>> swap = Swap(version="7", heard_at=100.0, swapped_at=101.25, update_cpu_s=0.3)
    >>> swap.update_s
    1.25
    """

    version: str
    heard_at: float
    swapped_at: float
    update_cpu_s: float | None = None
    updates: dict[str, str] = field(default_factory=dict)

    @property
    def update_s(self) -> float:
        """Seconds from hearing the change to serving the new snapshot."""
        return self.swapped_at - self.heard_at


class LiveIndex:
    """The current :class:`CityIndex` of a twin, replaced whole when the twin changes.

    :meth:`current` is what a request uses: it returns the snapshot in force
    without waiting. For a twin file, a background thread (started by
    :meth:`start`) compares the file's identity every ``poll_s`` seconds; on a
    change it loads a new snapshot while the old one keeps answering, then swaps
    the reference (an atomic assignment). :meth:`current` also notices a change
    when the poller is not running, and starts the same background reload.

    For a PostGIS twin (a ``postgresql://…?schema=`` URL) nothing polls: a
    :class:`~twin.store.pglisten.CommitListener` hears each commit
    (``LISTEN citytwin``) and reloads then, and again after it reconnects
    from a lost connection.

    Parameters
    ----------
    path : path-like or str
        The twin file, or the PostGIS twin's URL.
    poll_s : float, default 1.0
        How often to look at the file (twin files only).
    prepare : callable, optional
        Called with each new snapshot before it is swapped in (for caches a
        service derives from it), in the reloading thread.
    pause : callable, optional
        Returns a context manager entered around each update and its ``prepare``:
        a service stops taking requests meanwhile
        (:class:`twin_api.preparing.PauseRequests`), so that the update does not
        share the process with them. Settable later, as :attr:`pause`.

    Examples
    --------
    >>> live = LiveIndex(sample_twin_path)
    >>> live.current().layer("roads").kind
    'road'
    >>> live.listener is None  # a file: polled, not listened to
    True
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        poll_s: float = 1.0,
        prepare: Callable[[CityIndex], object] | None = None,
        pause: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> None:
        self.name: str | Path = str(path) if is_url(path) else Path(path)
        self.poll_s = poll_s
        self.prepare = prepare
        self.pause = pause
        self._index = CityIndex.load(self.name)
        self.path = self._index.path
        self.listener = (
            CommitListener(str(self.name), self._heard) if isinstance(self.name, str) else None
        )
        self._reloading = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_check = time.monotonic()
        self.reloads = 0
        #: The last reload's :class:`Swap` (None until one happened).
        self.last_swap: Swap | None = None
        self.last_error: str | None = None
        self._failed: FileIdentity | None = None

    def current(self) -> CityIndex:
        """The snapshot in force (never blocks on a reload)."""
        now = time.monotonic()
        polled = self._thread is None and self.listener is None
        if polled and now - self._last_check >= self.poll_s:
            self._last_check = now
            if self._index.changed():
                threading.Thread(target=self.refresh, daemon=True).start()
        return self._index

    def refresh(self) -> bool:
        """Reload now if the twin changed; return whether a new snapshot is in force.

        Runs in the caller's thread (the commit listener's, for a PostGIS twin: the
        moment it is called is when the commit was heard, see :class:`Swap`). A
        reload already running elsewhere makes
        this return False at once. A failed reload (a twin left unreadable)
        keeps the old snapshot and records the error in :attr:`last_error`;
        that version of the twin is not tried again. A database that cannot be
        reached is only recorded: the next commit or reconnection tries again.
        """
        heard, cpu = time.time(), time.thread_time()
        if not self._reloading.acquire(blocking=False):
            return False
        seen: FileIdentity | None = None
        try:
            seen = identity_of(self._index.twin)
            if seen is None or seen == self._index.identity or seen == self._failed:
                return False
            paused = nullcontext() if self.pause is None else self.pause()
            with urgent(), quick_turns(), paused:
                fresh = self._index.updated()
                if self.prepare is not None:
                    self.prepare(fresh)
                old = self._swap(fresh, heard, cpu)  # before requests resume: they get it
        except Exception as exc:  # keep serving the last good snapshot
            if not isinstance(exc, StorageError):
                self._failed = seen
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("could not reload %s, still serving the previous version: %s", self.path, exc)
            return False
        finally:
            self._reloading.release()
        store = old.twin.store
        if isinstance(store, PostgisStore):  # its read connection; a late request reopens one
            store.close()
        self.reloads += 1
        self.last_error = None
        log.info("reloaded %s (%d layers)", self.path, len(fresh.layers))
        return True

    def _swap(self, fresh: CityIndex, heard: float, cpu: float) -> CityIndex:
        """Put ``fresh`` in force (an atomic assignment) and note the :class:`Swap`;
        the snapshot it replaced."""
        old, self._index = self._index, fresh
        self.last_swap = Swap(
            fresh.version_tag, heard, time.time(), time.thread_time() - cpu, dict(fresh.updates)
        )
        return old

    def start(self) -> None:
        """Start watching: the file poller, or the PostGIS commit listener."""
        if self.listener is not None:
            self.listener.start()
            return
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="twin-index-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (waits for the thread)."""
        if self.listener is not None:
            self.listener.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 2 * self.poll_s))
            self._thread = None

    def _heard(self) -> None:
        self.refresh()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.refresh()
