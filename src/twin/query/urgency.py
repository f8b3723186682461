"""Running a thread at a higher priority for a while: a service's reload of its snapshot.

Examples
--------
>>> with urgent(0) as raised:
...     raised
False
>>> with quick_turns():
...     sys.getswitchinterval() == RELOAD_SWITCH_S
True
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

__all__ = ["RELOAD_NICE", "RELOAD_SWITCH_S", "quick_turns", "urgent"]


#: The reloading thread's Linux nice value relative to the process (negative: more urgent).
RELOAD_NICE = -5

#: The interpreter's thread switch interval (seconds) while a snapshot is being updated.
RELOAD_SWITCH_S = 0.0005

_TURNS = threading.Lock()
_TURNS_HELD: list[float] = []  # the interval to restore, once per block inside


@contextlib.contextmanager
def urgent(step: int = RELOAD_NICE) -> Iterator[bool]:
    """Add ``step`` to the calling thread's Linux nice value inside the block (negative:
    a higher priority); yields whether it could (lowering it needs privileges:
    otherwise the block runs as it is).

    A reload under a saturating load competes for the cores with the requests it
    should end up answering, in every worker at once: a snapshot a few seconds
    late is served by the whole service. Requests go on meanwhile (the process's
    other threads keep their priority; they share its interpreter lock).

    Examples
    --------
    >>> with urgent(0) as raised:
    ...     raised
    False
    """
    thread = threading.get_native_id()
    try:
        before = os.getpriority(os.PRIO_PROCESS, thread)
        if step:
            os.setpriority(os.PRIO_PROCESS, thread, max(-20, before + step))
        raised = bool(step)
    except (AttributeError, OSError):  # not Linux, or not allowed
        raised = False
    try:
        yield raised
    finally:
        if raised:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, thread, before)


@contextlib.contextmanager
def quick_turns(interval_s: float = RELOAD_SWITCH_S) -> Iterator[None]:
    """Shorten the interpreter's thread switch interval inside the block (process-wide).

    A thread that gave up the interpreter lock for a C call (an Arrow take, a
    read from the database) waits up to the switch interval (5 ms by default)
    before a thread busy in Python code (the service's event loop under load)
    is made to hand it back. A snapshot update makes thousands of such calls:
    beside a busy thread, its wall time grows many times over its CPU time.
    Blocks may nest or overlap in several threads: the interval in force before
    the first one comes back when the last one ends.

    Examples
    --------
    >>> before = sys.getswitchinterval()
    >>> with quick_turns(0.001):
    ...     sys.getswitchinterval()
    0.001
    >>> sys.getswitchinterval() == before
    True
    """
    with _TURNS:
        if not _TURNS_HELD:
            _TURNS_HELD.append(sys.getswitchinterval())
            sys.setswitchinterval(interval_s)
        else:
            _TURNS_HELD.append(_TURNS_HELD[0])
    try:
        yield
    finally:
        with _TURNS:
            restore = _TURNS_HELD.pop()
            if not _TURNS_HELD:
                sys.setswitchinterval(restore)
