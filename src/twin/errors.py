"""Domain exceptions.

One root, :class:`TwinError`; every subclass also inherits the built-in
exception a Python caller would expect (``CRSError`` is a ``ValueError``), so
``except ValueError`` keeps working. The CLI and the API map these classes to
exit codes and HTTP statuses in one table each; the library never decides how
an error is shown.
"""

from __future__ import annotations

from typing import Any


class TwinError(Exception):
    """Root of every error citytwin raises on purpose."""


class InputDataError(TwinError, ValueError):
    """The source data cannot be imported as it is (bad file, bad values)."""


class SourceError(InputDataError):
    """A source file is missing, unreadable or in a format twin does not read."""


class CRSError(InputDataError):
    """A coordinate reference system is missing, unknown or unsuitable."""


class SchemaError(InputDataError):
    """A source does not fit the layer kind (missing field, wrong geometry type)."""


class NetworkError(InputDataError):
    """A utility network cannot be analysed as it is (no pipes, no usable topology)."""


class RejectedFeaturesError(InputDataError):
    """A strict import met features it had to reject; nothing was written.

    Parameters
    ----------
    message : str
        The one-line explanation.
    report : Any
        The :class:`twin.imports.ImportReport` describing every rejection.
    """

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report


class UsageError(TwinError, ValueError):
    """An option or argument given by the caller is not valid."""


class TwinNotFoundError(TwinError, FileNotFoundError):
    """The twin file does not exist."""


class TwinExistsError(TwinError, FileExistsError):
    """A twin file already exists where a new one was to be created."""


class LayerNotFoundError(TwinError, KeyError):
    """The twin has no layer of that name."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class FeatureNotFoundError(TwinError, KeyError):
    """A layer has no feature with that uid."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TwinBusyError(TwinError, TimeoutError):
    """Another process is writing the twin and did not finish in time."""


class StorageError(TwinError, OSError):
    """The twin file cannot be written where it is (no free space, a read-only file)."""


class ReadOnlyTwinError(UsageError):
    """The twin file is read-only; writing it needs ``force``."""


class TwinFileError(InputDataError):
    """The file is not a twin: not a GeoPackage, truncated, damaged, or without twin tables."""
