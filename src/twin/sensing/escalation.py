"""Escalation on a timer, one process at a time: a lease (a lock row) in the live store.

``twin serve`` may run several workers over one twin; each runs an
:class:`Escalator`, but only the holder of the live store's ``escalation``
lease escalates. The lease is one row of the ``leases`` table, taken and
renewed by one conditional upsert (:meth:`~twin.store.live_queries.LiveQueries.take_lease`:
the database decides, so two processes can never both take it); it expires ``ttl_s`` after its last
renewal, so a worker that dies hands over to another within that time, and a
worker that stops releases it at once. No election, no heartbeat protocol:
the database decides.

Examples
--------
>>> import tempfile, pathlib
>>> from twin.sensing.store import LiveStore, LiveStoreProtocol
>>> live = LiveStore(pathlib.Path(tempfile.mkdtemp()) / "x.live.sqlite")
>>> take_lease(live, "escalation", "worker-1", ttl_s=30)
True
>>> take_lease(live, "escalation", "worker-2", ttl_s=30)
False
>>> release_lease(live, "escalation", "worker-1")
>>> take_lease(live, "escalation", "worker-2", ttl_s=30)
True
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from twin.errors import UsageError
from twin.sensing.events import GRADES, escalate
from twin.sensing.store import LiveStoreProtocol

__all__ = ["Escalator", "lease_holder", "parse_deadlines", "release_lease", "take_lease"]


def _now_ms() -> int:
    return int(time.time() * 1000)


def take_lease(store: LiveStoreProtocol, name: str, holder: str, *, ttl_s: float) -> bool:
    """Take (or renew) the lease ``name`` for ``ttl_s`` seconds; False when another holds it.

    Parameters
    ----------
    store : LiveStore
    name : str
        What the lease guards (``"escalation"``).
    holder : str
        Who asks (unique per process and task, see :func:`lease_holder`).
    ttl_s : float
        How long the lease lasts without renewal.
    """
    now = _now_ms()
    return store.take_lease(name, holder, until_ms=now + int(ttl_s * 1000), now_ms=now)


def release_lease(store: LiveStoreProtocol, name: str, holder: str) -> None:
    """Give the lease ``name`` back (only if ``holder`` holds it)."""
    store.release_lease(name, holder)


def lease_holder() -> str:
    """A holder name unique to this process: ``host:pid:random``.

    Examples
    --------
    >>> lease_holder().count(":")
    2
    """
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def parse_deadlines(text: str | None) -> dict[str, float]:
    """Acknowledgement deadlines ``"重大=10,一般=60"`` (grade=minutes) as a dict.

    Examples
    --------
    >>> parse_deadlines("重大=10, 一般=0.5")
    {'重大': 10.0, '一般': 0.5}
    >>> parse_deadlines("")
    {}
    """
    out: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        grade, sep, minutes = part.partition("=")
        grade = grade.strip()
        try:
            value = float(minutes)
        except ValueError:
            value = -1.0
        if not sep or grade not in GRADES or not value > 0:
            raise UsageError(
                f"deadline {part.strip()!r}: write GRADE=MINUTES (minutes > 0), GRADE one of "
                f"{', '.join(GRADES)}, e.g. 重大=10"
            )
        out[grade] = value
    return out


@dataclass
class Escalator:
    """Escalates a live store's overdue events every ``every_s`` seconds, while it holds the lease.

    Parameters
    ----------
    store : LiveStore
        Its own connection (the escalator runs in a thread of its own).
    every_s : float
        Seconds between two rounds.
    deadlines_min : mapping, optional
        Acknowledgement deadline (minutes) per grade, over
        :data:`twin.sensing.events.ACK_DEADLINES_MIN`.
    """

    store: LiveStoreProtocol
    every_s: float = 30.0
    deadlines_min: Mapping[str, float] = field(default_factory=dict)
    holder: str = field(default_factory=lease_holder)
    rounds: int = 0

    @property
    def ttl_s(self) -> float:
        """How long the lease lasts: three rounds, at least five seconds."""
        return max(3 * self.every_s, 5.0)

    def run_once(self) -> list[int]:
        """One round: take or renew the lease, escalate if held; the ids escalated."""
        self.rounds += 1
        if not take_lease(self.store, "escalation", self.holder, ttl_s=self.ttl_s):
            return []
        return escalate(self.store, deadlines_min=self.deadlines_min)

    def stop(self) -> None:
        """Release the lease (another worker takes over at its next round) and close."""
        try:
            release_lease(self.store, "escalation", self.holder)
        finally:
            self.store.close()
