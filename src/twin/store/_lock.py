"""An exclusive advisory lock on a sidecar file, on POSIX and on Windows.

POSIX uses :func:`fcntl.flock`; Windows locks the file's first byte with
:func:`msvcrt.locking`. Either way the lock dies with the process that holds it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["exclusive_lock"]

_BUSY = (errno.EAGAIN, errno.EACCES, errno.EDEADLK)


def _try_lock(handle: IO[bytes]) -> bool:
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno not in _BUSY:
                raise
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in _BUSY:
            raise
        return False
    return True


def _unlock(handle: IO[bytes]) -> None:
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive_lock(
    path: str | os.PathLike[str],
    timeout_s: float,
    busy: Callable[[], Exception] | None = None,
) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` inside the block.

    Yields True once locked. After ``timeout_s`` raises ``busy()`` (default: a
    :class:`TimeoutError`); exceptions from inside the block pass unchanged.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> lock = pathlib.Path(tempfile.mkdtemp()) / ".x.lock"
    >>> with exclusive_lock(lock, timeout_s=1) as held:
    ...     held
    True
    """
    with open(Path(path), "a+b") as handle:
        deadline = time.monotonic() + timeout_s
        while not _try_lock(handle):
            if time.monotonic() > deadline:
                if busy is not None:
                    raise busy()
                raise TimeoutError(f"{path} stayed locked for {timeout_s:g} s")
            time.sleep(0.05)
        try:
            yield True
        finally:
            _unlock(handle)
