"""Running a thread at a higher priority for a while: a service's reload of its snapshot.

Examples
--------
>>> with urgent(0) as raised:
...     raised
False
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

__all__ = ["RELOAD_NICE", "urgent"]


#: The reloading thread's Linux nice value relative to the process (negative: more urgent).
RELOAD_NICE = -5


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
