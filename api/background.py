"""Background work of a running service: escalation of unacknowledged events.

Started and stopped by the app's lifespan. Every ``escalate_every_s`` seconds
a worker's :class:`twin.sensing.escalation.Escalator` takes (or renews) the
live store's escalation lease and, if it holds it, escalates the events still
``new`` past their grade's deadline; the change goes out on
``GET /events/stream`` like any other (each escalation bumps the event's
change number). With several workers only the lease holder escalates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3

from twin.errors import StorageError
from twin.sensing.escalation import Escalator, parse_deadlines
from twin.sensing.store import LiveStore

from .settings import Settings

log = logging.getLogger("twin_api")

__all__ = ["EscalationTask"]


class EscalationTask:
    """An asyncio task running an :class:`Escalator` until :meth:`stop`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.escalator: Escalator | None = None
        self.task: asyncio.Task[None] | None = None
        self.escalated: list[int] = []
        self._stopping = asyncio.Event()

    def start(self) -> None:
        """Start escalating (nothing when ``escalate_every_s`` is 0)."""
        every = self.settings.escalate_every_s
        if every <= 0:
            return
        try:
            store = LiveStore.beside(self.settings.twin)
        except (sqlite3.Error, StorageError) as exc:  # e.g. a read-only folder: serve, but say why
            log.warning("no escalation: the live store beside the twin cannot open: %s", exc)
            return
        deadlines = parse_deadlines(self.settings.ack_deadlines)
        self.escalator = Escalator(store, every_s=every, deadlines_min=deadlines)
        self.task = asyncio.get_running_loop().create_task(self._run(), name="escalation")

    async def _run(self) -> None:
        assert self.escalator is not None
        while not self._stopping.is_set():
            try:
                done = await asyncio.to_thread(self.escalator.run_once)
                self.escalated += done
                if done:
                    log.info("escalated events %s", done)
            except Exception:  # a failed round (disk full, locked too long) must not end it
                log.exception("escalation round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.escalator.every_s)

    async def stop(self) -> None:
        """Let the current round finish, end the task, and release the lease."""
        self._stopping.set()
        if self.task is not None:
            await self.task
        if self.escalator is not None:
            await asyncio.to_thread(self.escalator.stop)
