"""Defaults shared by the library, the CLI and the API, defined once.

Every analysis that takes one of these as a keyword uses the constant here as
its default; the CLI options and the API query parameters show the same value.
Change a default here and every entry point follows.

Attributes
----------
SERVICE_DISTANCE_M : float
    How far (m) a building may be from the pipe that serves it (50).
TOLERANCE_M : float
    Snapping tolerance (m): pipe and road ends, valves and sources closer than
    this are joined (0.5).
SENSOR_DISTANCE_M : float
    How far (m) a sensor outside every building may be from its building (30).
NEAR_MISS_M : float
    Topology checks: two loose ends closer than this (m) are reported as a near
    miss (2).
MAX_TOLERANCE_M : float
    The largest snapping tolerance a caller may ask for (50).
MAX_SERVICE_DISTANCE_M : float
    The largest service distance a caller may ask for (5000).
DEFAULT_SPEED_KMH : float
    Speed (km/h) of a road class the speed table does not list (30); the table
    itself is :data:`twin.network.DEFAULT_SPEEDS`.
IMPASSABLE_M : float
    Flood depth (m) from which a road is impassable to vehicles (0.15).
MAX_CHANGED_SHARE : float
    A service's reload reads a layer whole, not its change sets, when more than
    this share of its features changed since its snapshot (0.2); a PostGIS
    re-import records its rows for the workers only up to this share.

NetworkName, ZoneBy, Weight, Direction, Snap : typing.Literal
    The option strings of ``network=``, ``by=``, ``weight=``, ``direction=`` and ``snap=``.

Examples
--------
>>> from twin import settings
>>> settings.SERVICE_DISTANCE_M, settings.TOLERANCE_M
(50.0, 0.5)
"""

from __future__ import annotations

from typing import Any, Final, Literal, get_args

from twin.errors import UsageError

__all__ = [
    "DEFAULT_SPEED_KMH",
    "IMPASSABLE_M",
    "MAX_CHANGED_SHARE",
    "MAX_SERVICE_DISTANCE_M",
    "MAX_TOLERANCE_M",
    "NEAR_MISS_M",
    "SENSOR_DISTANCE_M",
    "SERVICE_DISTANCE_M",
    "TOLERANCE_M",
    "Direction",
    "NetworkName",
    "Snap",
    "Weight",
    "ZoneBy",
    "choice",
]

SERVICE_DISTANCE_M: Final = 50.0
TOLERANCE_M: Final = 0.5
SENSOR_DISTANCE_M: Final = 30.0
NEAR_MISS_M: Final = 2.0
MAX_TOLERANCE_M: Final = 50.0
MAX_SERVICE_DISTANCE_M: Final = 5000.0
DEFAULT_SPEED_KMH: Final = 30.0
IMPASSABLE_M: Final = 0.15
MAX_CHANGED_SHARE: Final = 0.2

#: The zone layers indicators and compliance group by (``by=``).
ZoneBy = Literal["parcel", "grid", "district"]
#: The utility networks a pipe's ``network`` field names.
NetworkName = Literal["water", "gas", "drainage", "heat", "power"]
#: What a route minimises.
Weight = Literal["time", "length"]
#: Which way emergency access is measured: engines drive out, or people drive in.
Direction = Literal["from_facility", "to_facility"]
#: Where a building joins the road: its nearest point on an edge, or the nearest node.
Snap = Literal["edge", "node"]


def choice(value: str, options: Any, name: str) -> Any:
    """``value`` checked against a ``Literal`` option type (its one-line error names ``name``).

    Examples
    --------
    >>> choice("length", Weight, "weight")
    'length'
    >>> choice("fast", Weight, "weight")
    Traceback (most recent call last):
    ...
    twin.errors.UsageError: weight='fast': use one of time, length
    """
    allowed = get_args(options)
    if value not in allowed:
        raise UsageError(f"{name}={value!r}: use one of {', '.join(allowed)}")
    return value
