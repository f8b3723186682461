"""Domain exceptions.

One root, :class:`TwinError`; every subclass also inherits the built-in
exception a Python caller would expect (``CRSError`` is a ``ValueError``), so
``except ValueError`` keeps working. The CLI and the API map these classes to
exit codes and HTTP statuses in one table each; the library never decides how
an error is shown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import PurePath
from typing import Any, Literal


class TwinError(Exception):
    """Root of every error citytwin raises on purpose.

    Examples
    --------
    >>> import twin
    >>> try:
    ...     twin.Twin.open("no/such/twin.gpkg")
    ... except twin.TwinError as exc:
    ...     print(type(exc).__name__)
    TwinNotFoundError
    """


class InputDataError(TwinError, ValueError):
    """The source data cannot be imported as it is (bad file, bad values).

    Examples
    --------
    >>> issubclass(InputDataError, ValueError)
    True
    """


class SourceError(InputDataError):
    """A source file is missing, unreadable or in a format twin does not read.

    Examples
    --------
    >>> import twin
    >>> try:
    ...     city.import_layer("no/such/file.gpkg", layer="x", kind="poi")
    ... except twin.SourceError as exc:
    ...     print("SourceError")
    SourceError
    """


class CRSError(InputDataError):
    """A coordinate reference system is missing, unknown or unsuitable.

    Examples
    --------
    >>> from twin.crs import require_projected
    >>> try:
    ...     require_projected("EPSG:4326", "the pipe layer")
    ... except CRSError:
    ...     print("geographic CRS refused")
    geographic CRS refused
    """


class SchemaError(InputDataError):
    """A source does not fit the layer kind (missing field, wrong geometry type).

    Examples
    --------
    >>> issubclass(SchemaError, InputDataError) and issubclass(SchemaError, ValueError)
    True
    """


class NetworkError(InputDataError):
    """A utility network cannot be analysed as it is (no pipes, no usable topology).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from twin.network import network_from_frames
    >>> try:
    ...     network_from_frames(gpd.GeoDataFrame(geometry=[], crs="EPSG:4544"), network="gas")
    ... except NetworkError as exc:
    ...     print(exc)
    no pipes of the gas network
    """


class RejectedFeaturesError(InputDataError):
    """A strict import met features it had to reject; nothing was written.

    Parameters
    ----------
    message : str
        The one-line explanation.
    report : Any
        The :class:`twin.imports.ImportReport` describing every rejection.

    Examples
    --------
    >>> issubclass(RejectedFeaturesError, InputDataError)
    True
    """

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report


class UsageError(TwinError, ValueError):
    """An option or argument given by the caller is not valid.

    Examples
    --------
    >>> try:
    ...     city.indicators(by="street")
    ... except UsageError as exc:
    ...     print(type(exc).__name__, isinstance(exc, ValueError))
    UsageError True
    """


@dataclass(frozen=True)
class BuildNeeded:
    """Why the twin's stored relations cannot answer, in fields a caller can word.

    The library's message (``str()``) names Python calls and keywords; the CLI
    words the same fields as ``twin build PATH --max-service-m 80``, the API as
    its ``max_service_m`` parameter.

    Attributes
    ----------
    code : {"no_build", "stale", "beyond_reach", "other_pipes"}
        No build yet; layers changed since the last build; a larger reach asked
        than the build used; the build joined buildings to other pipe layers too.
    twin : str
        The twin's location (file path or PostGIS URL).
    what : str
        What is missing: ``"relations"`` or ``"service connections"``.
    layers : tuple of str
        The changed layers (``stale``) or the other pipe layers (``other_pipes``).
    parameter : str, optional
        The build keyword that would help (``"max_service_m"``).
    value, built : float, optional
        The value asked for and the one the last build used.

    Examples
    --------
    >>> reason = BuildNeeded("beyond_reach", "city.gpkg", parameter="max_service_m",
    ...                      value=80.0, built=50.0)
    >>> reason.fact
    'the last build connected buildings within 50 m of a pipe'
    >>> str(reason).split(": ")[1]
    'build the twin again with build(max_service_m=80) to reach farther'
    >>> reason.to_dict()["parameter"], reason.advice
    ('max_service_m', True)
    """

    code: Literal["no_build", "stale", "beyond_reach", "other_pipes"]
    twin: str
    what: str = "service connections"
    layers: tuple[str, ...] = ()
    parameter: str | None = None
    value: float | None = None
    built: float | None = None

    @property
    def fact(self) -> str:
        """What is wrong, without the advice (the same words everywhere)."""
        name = self.twin if "://" in self.twin else PurePath(self.twin).name
        listed = ", ".join(self.layers)
        if self.code == "no_build":
            return f"{name} has no {self.what} yet"
        if self.code == "stale":
            return f"the relations are stale: {listed} changed since the last build"
        if self.code == "beyond_reach":
            return f"the last build connected buildings within {self.built or 0:g} m of a pipe"
        return f"the build connected buildings to pipes of {listed} too"

    @property
    def advice(self) -> bool:
        """Whether building the twin (again) is the fix."""
        return self.code != "other_pipes"

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return {**asdict(self), "layers": list(self.layers), "message": str(self)}

    def __str__(self) -> str:
        if not self.advice:
            return self.fact
        if self.code == "beyond_reach":
            return (
                f"{self.fact}: build the twin again with "
                f"build({self.parameter}={self.value or 0:g}) to reach farther"
            )
        return f"{self.fact}: build the twin{' again' if self.code == 'stale' else ''} with build()"


class BuildNeededError(UsageError):
    """The twin's stored relations are missing or stale: :meth:`twin.Twin.build` is the fix.

    ``reason`` (a :class:`BuildNeeded`) holds the fields; the message words them for Python.

    Examples
    --------
    >>> exc = BuildNeededError(BuildNeeded("no_build", "data/empty.gpkg", what="relations"))
    >>> print(exc.reason.code, "|", exc)
    no_build | empty.gpkg has no relations yet: build the twin with build()
    >>> isinstance(exc, UsageError)
    True
    """

    def __init__(self, reason: BuildNeeded) -> None:
        super().__init__(str(reason))
        self.reason = reason


def api_wording(reason: BuildNeeded) -> str:
    """Why the stored relations cannot answer, in the words of the HTTP API and its operators.

    The library's message names a Python call (``build(max_service_m=80)``); an
    operator reading an API answer or an event gets the request's parameter and
    "have the twin built" instead. The API's error bodies and the impact notes
    events carry both use this wording (the CLI has its own, naming ``twin build``).

    Examples
    --------
    >>> api_wording(BuildNeeded("beyond_reach", "c.gpkg", parameter="max_service_m",
    ...                         value=80.0, built=50.0))
    'the last build connected buildings within 50 m of a pipe: ask with max_service_m <= 50, or have the twin built again with max_service_m=80'
    >>> api_wording(BuildNeeded("stale", "c.gpkg", layers=("pipes",)))
    'the relations are stale: pipes changed since the last build: have the twin built again'
    >>> api_wording(BuildNeeded("no_build", "data/c.gpkg"))
    'c.gpkg has no service connections yet: have the twin built'
    """  # noqa: E501
    if not reason.advice:
        return reason.fact
    if reason.code == "beyond_reach":
        return (
            f"{reason.fact}: ask with {reason.parameter} <= {reason.built or 0:g}, "
            f"or have the twin built again with {reason.parameter}={reason.value or 0:g}"
        )
    return f"{reason.fact}: have the twin built{' again' if reason.code == 'stale' else ''}"


class TwinNotFoundError(TwinError, FileNotFoundError):
    """The twin file does not exist.

    Examples
    --------
    >>> import twin
    >>> try:
    ...     twin.Twin.open("no/such/twin.gpkg")
    ... except FileNotFoundError as exc:
    ...     print(type(exc).__name__)
    TwinNotFoundError
    """


class TwinExistsError(TwinError, FileExistsError):
    """A twin file already exists where a new one was to be created.

    Examples
    --------
    >>> import twin
    >>> try:
    ...     twin.Twin.create(city.path)
    ... except FileExistsError as exc:
    ...     print(type(exc).__name__)
    TwinExistsError
    """


class LayerNotFoundError(TwinError, KeyError):
    """The twin has no layer of that name.

    Examples
    --------
    >>> try:
    ...     city.layer("nothing")
    ... except KeyError as exc:
    ...     print(type(exc).__name__)
    LayerNotFoundError
    """

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class FeatureNotFoundError(TwinError, KeyError):
    """A layer has no feature with that uid.

    Examples
    --------
    >>> try:
    ...     city.feature("buildings", "buildings.NONE")
    ... except KeyError as exc:
    ...     print(exc)
    layer buildings has no feature 'buildings.NONE'
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TwinBusyError(TwinError, TimeoutError):
    """Another process is writing the twin and did not finish in time.

    Examples
    --------
    >>> issubclass(TwinBusyError, TimeoutError)
    True
    """


class StorageError(TwinError, OSError):
    """The twin file cannot be written where it is (no free space, a failed copy).

    Examples
    --------
    >>> issubclass(StorageError, OSError)
    True
    """


class DatabaseUnavailableError(StorageError):
    """The twin's database cannot be reached now (down, restarting, or too slow to answer).

    A service answers 503 and serves again once the database is back.

    Examples
    --------
    >>> issubclass(DatabaseUnavailableError, StorageError)
    True
    """


class ReadOnlyTwinError(UsageError):
    """The twin file is read-only; writing it needs ``force``.

    Examples
    --------
    >>> issubclass(ReadOnlyTwinError, ValueError)
    True
    """


class TwinFileError(InputDataError):
    """The file is not a twin: not a GeoPackage, truncated, damaged, or without twin tables.

    Examples
    --------
    >>> import twin
    >>> try:
    ...     twin.Twin.open(__file__)
    ... except twin.TwinFileError as exc:
    ...     print(type(exc).__name__)
    TwinFileError
    """
