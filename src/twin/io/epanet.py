"""Read EPANET INP files as layers of a water network.

twin's own parser of the EPANET 2 input format: no hydraulic library is needed
to import a network. Only what a city model keeps is read (network topology,
coordinates, sizes, elevations, base demands, initial status); curves,
patterns, controls and quality options are skipped.

Units follow the ``Units`` option of ``[OPTIONS]``: US flow units (CFS, GPM,
MGD, IMGD, AFD) mean lengths and elevations in feet, diameters in inches and
power in horsepower; SI flow units (LPS, LPM, MLD, CMH, CMD, CMS) mean metres
and millimetres. Every value returned is metric (``_m``, ``_mm``, ``_lps``,
``_kw``).

Examples
--------
``ky4_inp`` is the path of the Kentucky network 4 that wntr ships
(``wntr/library/networks/ky4.inp``; the doctests get it from ``conftest.py``):

>>> from twin.io.epanet import read_epanet
>>> pipes = read_epanet(ky4_inp, "pipe")
>>> pipes.crs is None, len(pipes)  # INP coordinates carry no CRS
(True, 1156)
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import LineString, Point

from twin.errors import SourceError, UsageError

__all__ = ["EPANET_KINDS", "read_epanet"]

EPANET_KINDS = ("pipe", "junction", "valve", "pump", "source")

FT_M = 0.3048
IN_MM = 25.4
HP_KW = 0.745699872
# Flow unit -> litres per second; the first five are US customary units.
FLOW_LPS: dict[str, float] = {
    "CFS": 28.316846592,
    "GPM": 3.785411784 / 60.0,
    "MGD": 3.785411784e6 / 86400.0,
    "IMGD": 4.54609e6 / 86400.0,
    "AFD": 1233481.83754752 / 86400.0,
    "LPS": 1.0,
    "LPM": 1.0 / 60.0,
    "MLD": 1.0e6 / 86400.0,
    "CMH": 1000.0 / 3600.0,
    "CMD": 1000.0 / 86400.0,
    "CMS": 1000.0,
}
US_FLOW_UNITS = ("CFS", "GPM", "MGD", "IMGD", "AFD")
VALVE_TYPES = ("PRV", "PSV", "PBV", "FCV", "TCV", "GPV", "PCV")
PUMP_KEYWORDS = ("HEAD", "POWER", "SPEED", "PATTERN")

_NODE_SECTIONS = ("JUNCTIONS", "RESERVOIRS", "TANKS")
_LINK_SECTIONS = ("PIPES", "PUMPS", "VALVES")
_TOKEN = re.compile(r'"[^"]*"|\S+')

Record = tuple[int, list[str]]  # (line number, tokens)


@dataclass
class _Inp:
    """The records of one INP file, grouped by upper-case section name."""

    path: str
    sections: dict[str, list[Record]]
    flow_units: str = "GPM"
    headloss: str = "H-W"
    _status: dict[str, str] | None = field(default=None, repr=False)

    @property
    def us(self) -> bool:
        return self.flow_units in US_FLOW_UNITS

    @property
    def length_m(self) -> float:
        """Metres per length unit of the file (feet or metres)."""
        return FT_M if self.us else 1.0

    @property
    def diameter_mm(self) -> float:
        """Millimetres per diameter unit of the file (inches or millimetres)."""
        return IN_MM if self.us else 1.0

    def records(self, section: str) -> list[Record]:
        return self.sections.get(section, [])

    def error(self, lineno: int, message: str) -> SourceError:
        return SourceError(f"{self.path}:{lineno}: {message}")

    def number(self, lineno: int, token: str, what: str) -> float:
        """Parse ``token`` as a float or raise a SourceError naming the line and the field."""
        try:
            return float(token)
        except ValueError:
            raise self.error(lineno, f"{what} {token!r} is not a number") from None

    def need(self, record: Record, count: int, section: str, layout: str) -> list[str]:
        """Return the tokens of ``record``, raising when fewer than ``count`` are given."""
        lineno, tokens = record
        if len(tokens) < count:
            raise self.error(
                lineno,
                f"[{section}] line needs at least {count} fields ({layout}), got {len(tokens)}",
            )
        return tokens

    @property
    def status(self) -> dict[str, str]:
        """Initial link status from [STATUS], upper-case (OPEN, CLOSED, ACTIVE or a setting)."""
        if self._status is None:
            self._status = {}
            for record in self.records("STATUS"):
                tokens = self.need(record, 2, "STATUS", "ID Status/Setting")
                self._status[tokens[0]] = tokens[1].upper()
        return self._status


def read_epanet(path: str | os.PathLike[str], kind: str) -> gpd.GeoDataFrame:
    """Read one kind of feature from an EPANET INP file.

    Parameters
    ----------
    path : str or os.PathLike
        The INP file (UTF-8 or latin-1).
    kind : str
        ``pipe`` (pipes, including check-valve pipes), ``junction``, ``valve``
        (EPANET valve links as points), ``pump`` (points) or ``source``
        (reservoirs and tanks).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per feature with the EPANET id in column ``id`` (str), the
        kind's fields in metric units, ``network`` = ``"water"``, and
        ``crs=None``: INP coordinates carry no CRS, the caller says which.
        Pipes are LineStrings from the start node through ``[VERTICES]`` to the
        end node; valves and pumps are Points half-way along their link.

    Raises
    ------
    UsageError
        When ``kind`` is not one of :data:`EPANET_KINDS`.
    SourceError
        When the file is missing, unreadable or malformed (the message names
        the file, the line and the problem), or nodes lack coordinates.

    Examples
    --------
    EPANET's example network 3 as wntr ships it (``net3_inp``, given by ``conftest.py``):

    >>> junctions = read_epanet(net3_inp, "junction")
    >>> junctions[["id", "elevation_m", "base_demand_lps"]].head(2)
       id  elevation_m  base_demand_lps
    0  10      44.8056          0.00000
    1  15       9.7536          0.06309
    """
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise UsageError(
            f"EPANET files hold no {kind!r} features: use one of {', '.join(EPANET_KINDS)}"
        )
    return builder(_parse(path))


# --------------------------------------------------------------------------- parsing


def _read_text(path: str) -> str:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read EPANET file: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _tokens(line: str) -> list[str]:
    """Split a data line into tokens, dropping the ``;`` comment and quotes around ids."""
    body = line.split(";", 1)[0]
    if '"' not in body:
        return body.split()
    return [t[1:-1] if len(t) > 1 and t[0] == t[-1] == '"' else t for t in _TOKEN.findall(body)]


def _sections(path: str, text: str) -> dict[str, list[Record]]:
    sections: dict[str, list[Record]] = {}
    current: list[Record] | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            end = stripped.find("]")
            if end < 0:
                raise SourceError(f"{path}:{lineno}: section header {stripped!r} lacks ']'")
            name = stripped[1:end].strip().upper()
            current = sections.setdefault(name, [])
            continue
        if current is None:
            continue
        tokens = _tokens(line)
        if tokens:
            current.append((lineno, tokens))
    if not any(s in sections for s in _NODE_SECTIONS + _LINK_SECTIONS):
        raise SourceError(f"{path}: not an EPANET INP file (no [JUNCTIONS] or [PIPES] section)")
    return sections


def _parse(path: str | os.PathLike[str]) -> _Inp:
    name = os.fspath(path)
    inp = _Inp(name, _sections(name, _read_text(name)))
    for lineno, tokens in inp.records("OPTIONS"):
        key = tokens[0].upper()
        if key == "UNITS" and len(tokens) > 1:
            units = tokens[1].upper()
            if units not in FLOW_LPS:
                expected = ", ".join(FLOW_LPS)
                raise inp.error(lineno, f"unknown flow units {tokens[1]!r}: use one of {expected}")
            inp.flow_units = units
        elif key == "HEADLOSS" and len(tokens) > 1:
            inp.headloss = tokens[1].upper()
    _check_ids(inp)
    return inp


def _check_ids(inp: _Inp) -> None:
    """Refuse duplicate node or link ids, and links between undefined nodes."""
    nodes: set[str] = set()
    for section in _NODE_SECTIONS:
        for lineno, tokens in inp.records(section):
            if tokens[0] in nodes:
                raise inp.error(lineno, f"[{section}] node id {tokens[0]!r} is defined twice")
            nodes.add(tokens[0])
    links: set[str] = set()
    for section in _LINK_SECTIONS:
        for record in inp.records(section):
            lineno, tokens = record
            inp.need(record, 3, section, "ID Node1 Node2 ...")
            if tokens[0] in links:
                raise inp.error(lineno, f"[{section}] link id {tokens[0]!r} is defined twice")
            links.add(tokens[0])
            for node in tokens[1:3]:
                if node not in nodes:
                    raise inp.error(
                        lineno, f"[{section}] link {tokens[0]!r}: undefined node {node!r}"
                    )
    for lineno, tokens in inp.records("STATUS"):
        if tokens[0] not in links:
            raise inp.error(lineno, f"[STATUS] undefined link {tokens[0]!r}")


# --------------------------------------------------------------------------- geometry


def _coordinates(inp: _Inp) -> dict[str, tuple[float, float]]:
    coords: dict[str, tuple[float, float]] = {}
    for record in inp.records("COORDINATES"):
        tokens = inp.need(record, 3, "COORDINATES", "Node X Y")
        coords[tokens[0]] = (
            inp.number(record[0], tokens[1], "X coordinate"),
            inp.number(record[0], tokens[2], "Y coordinate"),
        )
    return coords


def _require_coordinates(
    inp: _Inp, coords: dict[str, tuple[float, float]], nodes: Iterable[str]
) -> None:
    missing = sorted({n for n in nodes if n not in coords})
    if missing:
        shown = ", ".join(missing[:10])
        if len(missing) > 10:
            shown += f" and {len(missing) - 10} more"
        raise SourceError(f"{inp.path}: {len(missing)} node(s) have no [COORDINATES]: {shown}")


def _vertices(inp: _Inp) -> dict[str, list[tuple[float, float]]]:
    vertices: dict[str, list[tuple[float, float]]] = {}
    for record in inp.records("VERTICES"):
        tokens = inp.need(record, 3, "VERTICES", "Link X Y")
        lineno = record[0]
        vertices.setdefault(tokens[0], []).append(
            (
                inp.number(lineno, tokens[1], "X coordinate"),
                inp.number(lineno, tokens[2], "Y coordinate"),
            )
        )
    return vertices


def _link_lines(inp: _Inp, links: list[tuple[str, str, str]]) -> list[LineString]:
    """LineStrings of ``(id, from_node, to_node)`` links through their vertices."""
    coords = _coordinates(inp)
    _require_coordinates(inp, coords, (n for _, a, b in links for n in (a, b)))
    vertices = _vertices(inp)
    return [LineString([coords[a], *vertices.get(link, []), coords[b]]) for link, a, b in links]


def _link_midpoints(inp: _Inp, links: list[tuple[str, str, str]]) -> list[Point]:
    """Points half-way along each link (its straight from-to line when it has no vertices)."""
    return [line.interpolate(0.5, normalized=True) for line in _link_lines(inp, links)]


def _node_points(inp: _Inp, ids: list[str]) -> list[Point]:
    coords = _coordinates(inp)
    _require_coordinates(inp, coords, ids)
    return [Point(coords[i]) for i in ids]


def _frame(
    rows: list[dict[str, object]], columns: dict[str, str], geometry: list[Point] | list[LineString]
) -> gpd.GeoDataFrame:
    """Build the result with ``columns`` (name -> "str" or "float") in order, crs None."""
    df = pd.DataFrame(rows, columns=list(columns))
    for name, dtype in columns.items():
        df[name] = df[name].astype("float64" if dtype == "float" else "object")
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geometry, index=df.index), crs=None)


# --------------------------------------------------------------------------- kinds


def _pipe_status(inp: _Inp, lineno: int, tokens: list[str]) -> tuple[float, str]:
    """Minor loss and status of a [PIPES] line (``... [MinorLoss] [Status]``)."""
    minor, status = 0.0, "OPEN"
    extra = tokens[6:8]
    if len(extra) == 1 and extra[0].upper() in ("OPEN", "CLOSED", "CV"):
        status = extra[0].upper()
    elif extra:
        minor = inp.number(lineno, extra[0], "minor loss")
        if len(extra) == 2:
            status = extra[1].upper()
    if status not in ("OPEN", "CLOSED", "CV"):
        raise inp.error(lineno, f"pipe status {tokens[7]!r} is not Open, Closed or CV")
    override = inp.status.get(tokens[0])
    if status != "CV" and override in ("OPEN", "CLOSED"):
        status = override
    return minor, status.lower()


def _roughness_factor(inp: _Inp) -> float:
    """Darcy-Weisbach roughness is in millifeet (US) or mm (SI); Hazen-Williams C has no unit."""
    return FT_M if inp.us and inp.headloss == "D-W" else 1.0


def _pipes(inp: _Inp) -> gpd.GeoDataFrame:
    rows, links = [], []
    for record in inp.records("PIPES"):
        tokens = inp.need(record, 6, "PIPES", "ID Node1 Node2 Length Diameter Roughness")
        lineno = record[0]
        minor, status = _pipe_status(inp, lineno, tokens)
        rows.append(
            {
                "id": tokens[0],
                "network": "water",
                "diameter_mm": inp.number(lineno, tokens[4], "diameter") * inp.diameter_mm,
                "length_m": inp.number(lineno, tokens[3], "length") * inp.length_m,
                "roughness": inp.number(lineno, tokens[5], "roughness") * _roughness_factor(inp),
                "status": status,
                "from_node": tokens[1],
                "to_node": tokens[2],
                "minor_loss": minor,
                "headloss_formula": inp.headloss,
            }
        )
        links.append((tokens[0], tokens[1], tokens[2]))
    columns = {
        "id": "str",
        "network": "str",
        "diameter_mm": "float",
        "length_m": "float",
        "roughness": "float",
        "status": "str",
        "from_node": "str",
        "to_node": "str",
        "minor_loss": "float",
        "headloss_formula": "str",
    }
    return _frame(rows, columns, _link_lines(inp, links))


def _demands(inp: _Inp, junctions: set[str]) -> dict[str, float]:
    """The first [DEMANDS] entry of each junction listed there, in the file's flow unit."""
    first: dict[str, float] = {}
    for record in inp.records("DEMANDS"):
        tokens = inp.need(record, 2, "DEMANDS", "Junction Demand")
        if tokens[0] not in junctions:
            raise inp.error(record[0], f"[DEMANDS] undefined junction {tokens[0]!r}")
        first.setdefault(tokens[0], inp.number(record[0], tokens[1], "demand"))
    return first


def _junctions(inp: _Inp) -> gpd.GeoDataFrame:
    lps = FLOW_LPS[inp.flow_units]
    records = inp.records("JUNCTIONS")
    demands = _demands(inp, {tokens[0] for _, tokens in records})
    rows: list[dict[str, object]] = []
    for record in records:
        tokens = inp.need(record, 2, "JUNCTIONS", "ID Elevation")
        lineno = record[0]
        demand = inp.number(lineno, tokens[2], "demand") if len(tokens) > 2 else 0.0
        rows.append(
            {
                "id": tokens[0],
                "network": "water",
                "elevation_m": inp.number(lineno, tokens[1], "elevation") * inp.length_m,
                # as in EPANET, demands listed in [DEMANDS] replace the one in [JUNCTIONS]
                "base_demand_lps": demands.get(tokens[0], demand) * lps,
            }
        )
    columns = {"id": "str", "network": "str", "elevation_m": "float", "base_demand_lps": "float"}
    return _frame(rows, columns, _node_points(inp, [str(r["id"]) for r in rows]))


def _sources(inp: _Inp) -> gpd.GeoDataFrame:
    rows: list[dict[str, object]] = []
    for record in inp.records("RESERVOIRS"):
        tokens = inp.need(record, 2, "RESERVOIRS", "ID Head")
        head = inp.number(record[0], tokens[1], "head") * inp.length_m
        rows.append(
            {"id": tokens[0], "source_type": "reservoir", "network": "water", "elevation_m": head}
        )
    layout = "ID Elevation InitLevel MinLevel MaxLevel Diameter"
    for record in inp.records("TANKS"):
        tokens = inp.need(record, 6, "TANKS", layout)
        values = [
            inp.number(record[0], t, what) * inp.length_m
            for t, what in zip(
                tokens[1:6],
                ("elevation", "initial level", "minimum level", "maximum level", "diameter"),
                strict=True,
            )
        ]
        rows.append(
            {
                "id": tokens[0],
                "source_type": "tank",
                "network": "water",
                "elevation_m": values[0],
                "init_level_m": values[1],
                "min_level_m": values[2],
                "max_level_m": values[3],
                "tank_diameter_m": values[4],
            }
        )
    columns = {
        "id": "str",
        "source_type": "str",
        "network": "str",
        "elevation_m": "float",
        "init_level_m": "float",
        "min_level_m": "float",
        "max_level_m": "float",
        "tank_diameter_m": "float",
    }
    return _frame(rows, columns, _node_points(inp, [str(r["id"]) for r in rows]))


def _valves(inp: _Inp) -> gpd.GeoDataFrame:
    rows, links = [], []
    layout = "ID Node1 Node2 Diameter Type Setting"
    for record in inp.records("VALVES"):
        tokens = inp.need(record, 6, "VALVES", layout)
        lineno = record[0]
        valve_type = tokens[4].upper()
        if valve_type not in VALVE_TYPES:
            raise inp.error(
                lineno, f"valve type {tokens[4]!r} is not one of {', '.join(VALVE_TYPES)}"
            )
        closed = inp.status.get(tokens[0]) == "CLOSED"
        rows.append(
            {
                "id": tokens[0],
                "network": "water",
                "valve_type": valve_type,
                "diameter_mm": inp.number(lineno, tokens[3], "diameter") * inp.diameter_mm,
                "status": "closed" if closed else "open",
                "from_node": tokens[1],
                "to_node": tokens[2],
            }
        )
        links.append((tokens[0], tokens[1], tokens[2]))
    columns = {
        "id": "str",
        "network": "str",
        "valve_type": "str",
        "diameter_mm": "float",
        "status": "str",
        "from_node": "str",
        "to_node": "str",
    }
    return _frame(rows, columns, _link_midpoints(inp, links))


def _pump_options(inp: _Inp, record: Record) -> dict[str, str]:
    """Keyword/value pairs after the nodes of a [PUMPS] line (HEAD, POWER, SPEED, PATTERN)."""
    lineno, tokens = record
    rest = tokens[3:]
    if rest and rest[0].upper() not in PUMP_KEYWORDS and _is_number(rest[0]):
        return {}  # EPANET 1.1 pump curve coefficients
    if len(rest) % 2:
        raise inp.error(lineno, f"pump {tokens[0]!r}: keyword {rest[-1]!r} has no value")
    options = {}
    for key, value in zip(rest[::2], rest[1::2], strict=True):
        if key.upper() not in PUMP_KEYWORDS:
            raise inp.error(lineno, f"pump {tokens[0]!r}: unknown keyword {key!r}")
        options[key.upper()] = value
    return options


def _pump_closed(status: str) -> bool:
    """A pump is closed by CLOSED or by a relative speed of zero in [STATUS]."""
    try:
        return float(status) == 0.0
    except ValueError:
        return status == "CLOSED"


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _pumps(inp: _Inp) -> gpd.GeoDataFrame:
    rows: list[dict[str, object]] = []
    links = []
    kw_per_unit = HP_KW if inp.us else 1.0
    for record in inp.records("PUMPS"):
        lineno, tokens = record
        options = _pump_options(inp, record)
        power = options.get("POWER")
        closed = _pump_closed(inp.status.get(tokens[0], "OPEN"))
        rows.append(
            {
                "id": tokens[0],
                "network": "water",
                "from_node": tokens[1],
                "to_node": tokens[2],
                "power_kw": None
                if power is None
                else inp.number(lineno, power, "power") * kw_per_unit,
                "head_curve": options.get("HEAD"),
                "status": "closed" if closed else "open",
            }
        )
        links.append((tokens[0], tokens[1], tokens[2]))
    columns = {
        "id": "str",
        "network": "str",
        "from_node": "str",
        "to_node": "str",
        "power_kw": "float",
        "head_curve": "str",
        "status": "str",
    }
    return _frame(rows, columns, _link_midpoints(inp, links))


_BUILDERS: dict[str, Callable[[_Inp], gpd.GeoDataFrame]] = {
    "pipe": _pipes,
    "junction": _junctions,
    "valve": _valves,
    "pump": _pumps,
    "source": _sources,
}
