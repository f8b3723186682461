"""Hearing a PostGIS twin's commits: ``LISTEN citytwin`` on a connection of its own.

Every write transaction on a PostGIS twin ends with ``pg_notify('citytwin',
schema)`` (see :meth:`twin.store.pgsession.PostgisSession.commit`), delivered to
listeners only once the transaction commits. A :class:`CommitListener` holds one
autocommit connection in a background thread, ``LISTEN``\\ s on that channel and
calls ``on_commit()`` for every notification naming its twin's schema: no
polling of the database.

When the connection is lost (the server restarted, the network dropped) the
thread reconnects with a growing pause (``backoff_s`` doubling up to
``max_backoff_s``) and listens again; since commits made meanwhile sent their
notifications to nobody, ``on_commit()`` is called once after every
re-subscription, and the caller compares versions itself.

Examples
--------
>>> listener = CommitListener("postgresql://db.example/cim?schema=chengdu", lambda: None)
>>> listener.channel, listener.schema, listener.subscriptions
('citytwin', 'chengdu', 0)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from twin.errors import StorageError
from twin.store.postgis import PostgisStore

__all__ = ["CHANNEL", "CommitListener"]

log = logging.getLogger(__name__)

#: The notification channel every commit of a PostGIS twin is announced on.
CHANNEL = "citytwin"


class CommitListener:
    """Calls ``on_commit()`` in a background thread whenever the twin at ``url`` commits.

    Parameters
    ----------
    url : str
        The twin, ``postgresql://user@host:port/db?schema=NAME``.
    on_commit : callable
        Called with no argument after each commit of this twin (and once after
        each reconnection). It runs in the listener's thread: notifications that
        arrive meanwhile wait in the connection and are delivered afterwards.
    backoff_s, max_backoff_s : float
        First and longest pause between two connection attempts.
    wake_s : float
        How often the thread looks up from waiting (to notice :meth:`stop`).

    Attributes
    ----------
    subscriptions : int
        How many times ``LISTEN`` succeeded (1 after the start, +1 per reconnection).
    notifications : int
        Notifications received for this twin.
    connected : bool
        Whether the thread holds a listening connection now.
    last_error : str or None
        Why the connection was last lost or refused.
    """

    channel = CHANNEL

    def __init__(
        self,
        url: str,
        on_commit: Callable[[], object],
        *,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        wake_s: float = 0.5,
    ) -> None:
        self.store = PostgisStore(url)
        self.schema = self.store.schema
        self.on_commit = on_commit
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.wake_s = wake_s
        self.subscriptions = 0
        self.notifications = 0
        self.connected = False
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._con: Any = None

    def start(self) -> None:
        """Start listening in a daemon thread (no-op when it runs already)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="twin-commit-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close its connection (waits for it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10 + self.wake_s)
            self._thread = None

    def wait_subscribed(self, timeout_s: float = 10.0, *, count: int = 1) -> bool:
        """Wait until ``LISTEN`` has succeeded ``count`` times in all; whether it has."""
        deadline = time.monotonic() + timeout_s
        while self.subscriptions < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.subscriptions >= count

    # -- the thread ---------------------------------------------------------------
    def _run(self) -> None:
        pause = self.backoff_s
        while not self._stop.is_set():
            try:
                self._listen()
                pause = self.backoff_s  # a clean return: asked to stop
            except Exception as exc:  # the server went away, or refused us: try again later
                self.connected = False
                self.last_error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                log.warning("lost LISTEN on %s (%s); retrying in %.1f s", self.schema, exc, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, self.max_backoff_s)
            finally:
                self._close()

    def _listen(self) -> None:
        self._con = self.store.connect(autocommit=True)
        self._con.execute(f"LISTEN {CHANNEL}".encode())
        self.connected = True
        resubscribed = self.subscriptions > 0
        self.subscriptions += 1
        log.info("listening for commits of %s (subscription %d)", self.schema, self.subscriptions)
        if resubscribed:
            self.on_commit()  # commits during the outage notified nobody
        while not self._stop.is_set():
            heard = 0
            for note in self._con.notifies(timeout=self.wake_s, stop_after=1):
                heard += note.payload == self.schema
            if heard:  # several commits heard at once: one reload covers them all
                self.notifications += heard
                self.on_commit()
            if self._con.broken or self._con.closed:
                raise StorageError(f"the listening connection to {self.store.location} closed")

    def _close(self) -> None:
        if self._con is not None:
            try:
                self._con.close()
            finally:
                self._con = None
                self.connected = False
