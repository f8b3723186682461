"""Citizen reports (12345 hotline style) become events, located and with their impact.

A report has a ticket id, a type (``water_leak``, ``gas_leak``, ``flooding``,
``road_blocked`` or any other), a time, and either a point (longitude and
latitude, WGS 84 or GCJ-02 as web maps give them), a place (a feature uid
or the exact name of a building, facility or road), or only an address as
typed (``address``: geocoded against the twin's standard address layer by
:mod:`twin.address`). One open event per ticket (rule ``citizen_report``,
sensor ``report:<ticket>``).

An address located at room, building or house-number level puts the event at
the matched building (its grid cell and district from the twin's relations);
at community level at the grid cell. An address matched only to a road, or not
at all, locates nothing: :func:`locate_reports` keeps such a report as a dead
letter (reason ``address_not_located: …``) and opens no event, never a guessed
one; :func:`report_events` with ``strict=True`` (the API) refuses it.

CSV columns: ``ticket, type, time, lon, lat, coords, place, address, text, grade``
(all but the first three optional).

Examples
--------
>>> REPORT_RULE
'citizen_report'
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyproj
import shapely

from twin.address import Geocoder, geocoder_for
from twin.analyses import Twin
from twin.errors import InputDataError, SchemaError, SourceError, UsageError
from twin.sensing.events import GRADES, raise_events
from twin.sensing.loop import OperationsLoop
from twin.webcoords import bd09_to_wgs84, gcj02_to_wgs84

__all__ = [
    "ADDRESS_LEVELS",
    "REPORT_RULE",
    "ReportsOutcome",
    "locate_reports",
    "read_reports",
    "report_events",
]

REPORT_RULE = "citizen_report"
NAME_KINDS = ("building", "poi", "road")
#: Address match levels that locate a report (a road alone does not).
ADDRESS_LEVELS = ("room", "building", "house_number", "community")
_CODERS: dict[tuple[str, int, int], Geocoder] = {}
_CODERS_LOCK = threading.Lock()


class _Unlocated(InputDataError):
    """A report whose address the standard address layer does not locate."""


@dataclass
class ReportsOutcome:
    """Events opened or changed, and the reports kept as dead letters (ticket, reason)."""

    events: list[int]
    rejected: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"events": self.events, "rejected": self.rejected}


def _given(row: pd.Series, key: str) -> str | None:
    value = row.get(key)
    if value is None or (not isinstance(value, str) and pd.isna(value)) or not str(value).strip():
        return None
    return str(value).strip()


def _geocoder(path: Path) -> Geocoder:
    """The geocoder of the twin at ``path`` (rebuilt when the file changes)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _CODERS_LOCK:
        if key not in _CODERS:
            _CODERS.clear()
            _CODERS[key] = geocoder_for(Twin.open(path))
        return _CODERS[key]


def _by_address(loop: OperationsLoop, row: pd.Series, text: str) -> tuple[Any, dict[str, Any]]:
    """The report's point and links (building, grid, district) from its address."""
    coder = _geocoder(Path(loop.twin_path))
    found, point = coder.locate(coder.index.match(text))
    level = found["level"]
    if level not in ADDRESS_LEVELS or point is None:
        why = found.get("reason") or "no match"
        raise _Unlocated(
            f"report {row.get('ticket')}: address {text!r} is not located "
            f"(matched {level}: {why}); give a fuller address, a place or lon/lat"
        )
    links = {k: found.get(k) for k in ("building", "grid", "district")}
    links |= {"address": found.get("uid"), "address_level": level}
    links["address_score"] = found.get("score")
    return shapely.Point(point.x, point.y), links


def _point(loop: OperationsLoop, row: pd.Series) -> shapely.Point:
    """The report's point in the twin CRS (from lon/lat or a place)."""
    lon, lat = row.get("lon"), row.get("lat")
    if lon is not None and lat is not None and not (pd.isna(lon) or pd.isna(lat)):
        coords = str(row.get("coords") or "wgs84").lower().replace("-", "")
        lon, lat = float(lon), float(lat)
        if coords == "gcj02":
            lon, lat = (float(v) for v in gcj02_to_wgs84(lon, lat))
        elif coords == "bd09":
            lon, lat = (float(v) for v in bd09_to_wgs84(lon, lat))
        elif coords != "wgs84":
            raise UsageError(
                f"report {row.get('ticket')}: coords {coords!r}: use wgs84, gcj02 or bd09"
            )
        crs = loop.locator.grids.crs or loop.registry.frame.crs
        to_twin = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        x, y = to_twin.transform(lon, lat)
        return shapely.Point(x, y)
    place = _given(row, "place")
    if place is None:
        raise UsageError(f"report {row.get('ticket')}: give lon/lat, a place or an address")
    return _place_point(Twin.open(loop.twin_path), place, row.get("ticket"))


def _place_point(city: Twin, place: str, ticket: Any) -> shapely.Point:
    layer = place.split(".", 1)[0]
    if "." in place and layer in city.layers:
        return shapely.Point(city.feature(layer, place).geometry.representative_point())
    for kind in NAME_KINDS:
        for name in city.layer_names(kind):
            if "name" not in city.fields(name):
                continue
            frame = city.layer(name, columns=["name"])
            hit = frame[frame["name"] == place]
            if len(hit):
                return shapely.Point(hit.geometry.iloc[0].representative_point())
    raise UsageError(f"report {ticket}: no building, facility or road is named {place!r}")


def _where(loop: OperationsLoop, row: pd.Series) -> dict[str, Any]:
    """Where the report is (the locator's answer; an address's building, grid, district win)."""
    network = {"water_leak": "water", "gas_leak": "gas"}.get(str(row["type"]))
    address = _given(row, "address")
    has_point = _given(row, "lon") is not None and _given(row, "lat") is not None
    if address is None or has_point or _given(row, "place") is not None:
        return loop.locator.point(_point(loop, row), network)
    point, links = _by_address(loop, row, address)
    place = loop.locator.point(point, network)
    level = links["address_level"]
    if links["building"] is None and level in ("house_number", "community"):
        place["building"] = None  # several buildings at that number, or a grid cell only
        if level == "community":
            place["parcel"] = None
    place.update({key: value for key, value in links.items() if value is not None})
    return place


def locate_reports(
    loop: OperationsLoop,
    reports: pd.DataFrame,
    *,
    who: str = "12345",
    source: str = "reports",
    strict: bool = False,
) -> ReportsOutcome:
    """Open (or update) one event per located report; keep the others as dead letters.

    Parameters
    ----------
    loop : OperationsLoop
        The operations loop of the twin.
    reports : DataFrame
        Columns ``ticket, type, time`` and a location: ``lon, lat`` (``coords``),
        ``place`` or ``address``.
    who : str, default "12345"
        Recorded as the events' opener.
    source : str, default "reports"
        Kept with the dead letters (e.g. ``file:reports.csv``).
    strict : bool, default False
        Refuse the whole batch (nothing stored) when an address locates nothing.

    Returns
    -------
    ReportsOutcome
        The events' ids and the tickets not located, with the reason.

    Raises
    ------
    InputDataError
        With ``strict``, when an address is matched only to a road or not at all.
    """
    missing = [c for c in ("ticket", "type", "time") if c not in reports.columns]
    if missing:
        raise SchemaError(f"reports lack column(s) {', '.join(missing)}")
    rows: list[list[Any]] = []
    rejected: list[dict[str, Any]] = []
    places: dict[str, dict[str, Any]] = {}
    for _, row in reports.iterrows():
        stamp = pd.to_datetime(row["time"], utc=True, errors="coerce")
        if pd.isna(stamp):
            raise UsageError(f"report {row['ticket']}: time {row['time']!r} is not ISO 8601")
        grade = str(row.get("grade") or "一般")
        if grade not in GRADES:
            raise UsageError(f"report {row['ticket']}: grade {grade!r}: use {', '.join(GRADES)}")
        uid = f"report:{row['ticket']}"
        try:
            place = _where(loop, row)
        except _Unlocated as exc:
            if strict:
                raise
            rejected.append({"ticket": str(row["ticket"]), "reason": str(exc), "row": row})
            continue
        place.update(report=str(row["ticket"]), text=row.get("text"))
        places[uid] = place
        rows.append([REPORT_RULE, uid, str(row["type"]), grade, stamp, pd.NaT, float("nan")])
    _dead_letters(loop, rejected, source)
    episodes = pd.DataFrame(
        rows, columns=["rule", "sensor_uid", "event_type", "grade", "start", "end", "value"]
    )
    ids = raise_events(
        loop.store, episodes, locate=places.__getitem__, impact=loop.impact_of, who=who
    )
    return ReportsOutcome(ids, [{"ticket": r["ticket"], "reason": r["reason"]} for r in rejected])


def _dead_letters(loop: OperationsLoop, rejected: list[dict[str, Any]], source: str) -> None:
    """Keep the reports not located in the live store's dead letters."""
    if not rejected:
        return
    now_ms = int(time.time() * 1000)
    rows = [
        (
            now_ms,
            source,
            "address_not_located: " + r["reason"].split("is not located ", 1)[-1],
            f"report:{r['ticket']}",
            str(r["row"]["time"]),
            "address",
            _given(r["row"], "address"),
        )
        for r in rejected
    ]
    loop.store.add_dead_letters(rows)


def report_events(
    loop: OperationsLoop, reports: pd.DataFrame, *, who: str = "12345", strict: bool = True
) -> list[int]:
    """Open (or update) one event per report ticket; returns the events' ids.

    With ``strict`` (the default) a report whose address locates nothing
    raises :class:`~twin.errors.InputDataError` and nothing is stored; without,
    it is kept as a dead letter (see :func:`locate_reports`).
    """
    return locate_reports(loop, reports, who=who, strict=strict).events


def read_reports(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A CSV file of reports."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"reports file {path} does not exist")
    try:
        return pd.read_csv(path, dtype={"ticket": str}, encoding="utf-8-sig")
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read {path.name}: {exc}") from None
