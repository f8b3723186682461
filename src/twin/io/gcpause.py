"""Python's cyclic garbage collector paused while a reader makes many geometries.

Shapely's geometries are objects the collector tracks. Decoding 200,000 of
them (one batch of a large import) sets off a collection every 700 of them, and
the older generations' collections walk every geometry made so far, again and
again: at a million buildings, reading took 2.2 s with the collector running
and 1.5 s without. A decode makes no reference cycles, so pausing the
collector around it frees nothing later than it would have been freed; the
objects made meanwhile are looked at once, at the first collection after it.

Examples
--------
>>> import gc
>>> with paused_gc():
...     gc.isenabled()
False
>>> gc.isenabled()
True
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["paused_gc"]


class _Pause:
    """How many blocks hold the collector paused, and whether it ran before the first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.resume = False


_PAUSE = _Pause()


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The collector off for the block (threads may nest blocks: it runs again, if it
    ran before, when the last one ends).

    Examples
    --------
    >>> import gc, shapely
    >>> with paused_gc():
    ...     points = shapely.points(range(1000), range(1000))
    >>> len(points), gc.isenabled()
    (1000, True)
    """
    with _PAUSE.lock:
        if _PAUSE.depth == 0:
            _PAUSE.resume = gc.isenabled()
            gc.disable()
        _PAUSE.depth += 1
    try:
        yield
    finally:
        with _PAUSE.lock:
            _PAUSE.depth -= 1
            if _PAUSE.depth == 0 and _PAUSE.resume:
                gc.enable()
