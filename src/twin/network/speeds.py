"""Speeds per road class: the table that turns a road's length into a travel time.

A road's speed is its own ``speed_kmh`` when it has one (posted or design
speed), else the speed of its ``road_class`` in a :class:`SpeedTable`, else
the table's ``default_kmh``. Classes mapped to ``None`` are not drivable and
stay out of the network (footways, cycleways, steps…).

Default speeds (km/h) are typical free-flow urban speeds:

======================================  =====
Chinese road classes (CJJ 37-2012)
======================================  =====
快速路 (expressway)                      80
主干路 (arterial)                        60
次干路 (collector)                       40
支路 (local street)                      30
高速公路 (motorway)                      100
======================================  =====

OSM ``highway`` values: motorway 100, trunk 80, primary 60, secondary 50,
tertiary 40, unclassified 30, residential 30, living_street 10, service 20,
road 30, ``*_link`` ramps 40 (motorway_link 60); not drivable: footway,
cycleway, path, pedestrian, steps, bridleway, track, corridor, busway,
bus_guideway, elevator, escalator, ladder, trail, platform, proposed,
construction, abandoned, raceway.

A YAML file overrides or extends the table::

    default_kmh: 25
    speeds_kmh:
      支路: 20
      service: null    # not drivable

Examples
--------
>>> DEFAULT_SPEEDS.speed_of("主干路"), DEFAULT_SPEEDS.speed_of("footway")
(60.0, None)
>>> DEFAULT_SPEEDS.with_speeds({"支路": 20}).speed_of("支路")
20.0
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml

from twin.errors import UsageError

__all__ = ["DEFAULT_SPEEDS", "SpeedTable", "read_speeds"]

_NOT_DRIVABLE = (
    "footway",
    "cycleway",
    "path",
    "pedestrian",
    "steps",
    "bridleway",
    "track",
    "corridor",
    "busway",
    "bus_guideway",
    "elevator",
    "escalator",
    "ladder",
    "trail",
    "platform",
    "proposed",
    "construction",
    "abandoned",
    "raceway",
)
_SPEEDS: dict[str, float | None] = {
    "快速路": 80.0,
    "主干路": 60.0,
    "次干路": 40.0,
    "支路": 30.0,
    "高速公路": 100.0,
    "motorway": 100.0,
    "motorway_link": 60.0,
    "trunk": 80.0,
    "trunk_link": 40.0,
    "primary": 60.0,
    "primary_link": 40.0,
    "secondary": 50.0,
    "secondary_link": 40.0,
    "tertiary": 40.0,
    "tertiary_link": 40.0,
    "unclassified": 30.0,
    "residential": 30.0,
    "living_street": 10.0,
    "service": 20.0,
    "road": 30.0,
    **dict.fromkeys(_NOT_DRIVABLE),
}


@dataclass(frozen=True)
class SpeedTable:
    """Road class -> speed in km/h (``None``: not drivable), with a default.

    Attributes
    ----------
    speeds_kmh : dict of str to float or None
        Speeds per ``road_class`` value.
    default_kmh : float
        Speed of classes missing from the table (and of roads without a class).

    Examples
    --------
    >>> DEFAULT_SPEEDS.default_kmh
    30.0
    """

    speeds_kmh: dict[str, float | None] = field(default_factory=lambda: dict(_SPEEDS))
    default_kmh: float = 30.0

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.speeds_kmh.items() if v is not None and not float(v) > 0}
        if bad or not self.default_kmh > 0:
            what = bad or {"default_kmh": self.default_kmh}
            raise UsageError(f"speeds must be positive km/h (or null: not drivable), not {what}")

    def speed_of(self, road_class: str | None) -> float | None:
        """Speed of one class (None when not drivable)."""
        if road_class is None or road_class not in self.speeds_kmh:
            return float(self.default_kmh)
        value = self.speeds_kmh[road_class]
        return None if value is None else float(value)

    def with_speeds(self, speeds: dict[str, float | None], default_kmh: float | None = None) -> Any:
        """A copy with ``speeds`` added or replaced (and optionally a new default)."""
        return SpeedTable(
            {**self.speeds_kmh, **speeds},
            self.default_kmh if default_kmh is None else float(default_kmh),
        )

    def speeds(
        self, road_class: pd.Series | None, own_kmh: pd.Series | None, n: int
    ) -> npt.NDArray[np.float64]:
        """Speed of every road: its own speed if positive, else its class's; NaN: not drivable."""
        if road_class is None:
            by_class = np.full(n, float(self.default_kmh))
        else:
            classes = road_class.astype(object).where(road_class.notna(), None).to_numpy()
            table = {k: (np.nan if v is None else float(v)) for k, v in self.speeds_kmh.items()}
            by_class = (
                np.array(
                    [
                        table.get(c, self.default_kmh) if c is not None else self.default_kmh
                        for c in classes
                    ],
                    dtype=float,
                )
                if n
                else np.zeros(0)
            )
        if own_kmh is None:
            return by_class
        own = pd.to_numeric(own_kmh, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return np.where((own > 0) & ~np.isnan(by_class), own, by_class)


DEFAULT_SPEEDS = SpeedTable()


def read_speeds(path: str | os.PathLike[str], base: SpeedTable = DEFAULT_SPEEDS) -> SpeedTable:
    """Read a speed table from YAML (``speeds_kmh`` and ``default_kmh``) on top of ``base``.

    Raises
    ------
    UsageError
        When the file is missing, not YAML, or holds anything but those keys.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "speeds.yaml"
    >>> _ = path.write_text("speeds_kmh: {primary: 40}")
    >>> read_speeds(path).speeds_kmh["primary"]
    40.0
    """
    src = Path(path)
    try:
        doc = yaml.safe_load(src.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise UsageError(f"speed table {src} does not exist") from None
    except yaml.YAMLError:
        raise UsageError(f"speed table {src} is not valid YAML") from None
    if not isinstance(doc, dict) or set(doc) - {"speeds_kmh", "default_kmh"}:
        raise UsageError(f"speed table {src} may only hold 'speeds_kmh:' and 'default_kmh:'")
    speeds = doc.get("speeds_kmh") or {}
    if not isinstance(speeds, dict):
        raise UsageError(f"speed table {src}: 'speeds_kmh' must map road classes to km/h")
    try:
        clean = {str(k): (None if v is None else float(v)) for k, v in speeds.items()}
        default = doc.get("default_kmh")
        return base.with_speeds(clean, None if default is None else float(default))
    except (TypeError, ValueError):
        raise UsageError(f"speed table {src}: speeds must be numbers in km/h or null") from None
