"""Read errors of a damaged twin file, mapped to :class:`~twin.errors.TwinFileError` once.

A twin file can be a well-formed GeoPackage (right header, right tables) and
still be damaged inside: a page of a layer table overwritten by a bad disk, a
copy cut short by a crash of another tool. SQLite then says "database disk
image is malformed", GDAL says the same through pyogrio, and a geometry whose
bytes were hit fails to decode in GEOS. Whatever reads the twin goes through
:class:`~twin.store.gpkg.GpkgStore`, so the store maps these errors here, at
its boundary, and every command and route gets the same one-line error.

Examples
--------
>>> import sqlite3
>>> from pathlib import Path
>>> try:
...     with file_errors(Path("city.gpkg"), "reading layer 'buildings'"):
...         raise sqlite3.DatabaseError("database disk image is malformed")
... except TwinFileError as exc:
...     print(str(exc).split(":")[0])
city.gpkg is damaged (database disk image is malformed) while reading layer 'buildings'
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import pyarrow as pa
import pyogrio.errors
import shapely.errors

from twin.errors import TwinError, TwinFileError

__all__ = ["DAMAGE_MARKERS", "file_errors", "maps_file_errors"]

#: Words in SQLite's and GDAL's messages that mean the file itself is damaged.
DAMAGE_MARKERS = (
    "malformed",
    "not a database",
    "corrupt",
    "disk i/o error",
    "database disk image",
    "invalid page",
    "unable to open database",
)

_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    shapely.errors.GEOSException,
    shapely.errors.ShapelyError,
    pa.ArrowInvalid,
    UnicodeDecodeError,
)


def _damaged(exc: BaseException) -> bool:
    if isinstance(exc, TwinError):
        return False
    if isinstance(exc, UserWarning):  # raised from pyogrio's warning, see file_errors
        return "error parsing datetimes" in str(exc).lower()
    if isinstance(exc, _DECODE_ERRORS):
        return True  # the twin wrote these values itself: they only fail to decode when hit
    text = str(exc).lower()
    if isinstance(exc, sqlite3.DatabaseError | pyogrio.errors.DataSourceError | OSError):
        return any(marker in text for marker in DAMAGE_MARKERS)
    return False


@contextlib.contextmanager
def file_errors(path: Path, doing: str) -> Iterator[None]:
    """Turn a read error caused by a damaged file into :class:`TwinFileError`; others pass."""
    try:
        with warnings.catch_warnings():
            # a stored timestamp that no longer parses is damage, not a warning to pass on
            warnings.filterwarnings("error", message="Error parsing datetimes")
            yield
    except Exception as exc:
        if not _damaged(exc):
            raise
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise TwinFileError(
            f"{path} is damaged ({reason}) while {doing}: restore it from a backup "
            "(or Twin.rollback()), then check it with "
            f"`sqlite3 {path.name} 'PRAGMA integrity_check'`"
        ) from None


class _HasPath(Protocol):
    path: Path


F = TypeVar("F", bound=Callable[..., Any])


def maps_file_errors(doing: str) -> Callable[[F], F]:
    """Decorate a store method so that damage of ``self.path`` raises :class:`TwinFileError`.

    ``doing`` may name the method's first argument as ``{0}`` (a table name).
    """

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: _HasPath, *args: Any, **kwargs: Any) -> Any:
            what = doing.format(*(repr(a) for a in args)) if args else doing.replace(" {0}", "")
            with file_errors(self.path, what):
                return method(self, *args, **kwargs)

        return cast(F, wrapper)

    return decorate
