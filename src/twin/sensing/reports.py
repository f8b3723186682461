"""Citizen reports (12345 hotline style) become events, located and with their impact.

A report has a ticket id, a type (``water_leak``, ``gas_leak``, ``flooding``,
``road_blocked`` or any other), a time, and either a point (longitude and
latitude, WGS 84 or GCJ-02 as web maps give them) or a place: a feature uid
or the exact name of a building, facility or road. One open event per
ticket (rule ``citizen_report``, sensor ``report:<ticket>``).

CSV columns: ``ticket, type, time, lon, lat, coords, place, text, grade``
(``coords``, ``place``, ``text``, ``grade`` optional).

Examples
--------
>>> REPORT_RULE
'citizen_report'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyproj
import shapely

from twin.analyses import Twin
from twin.errors import SchemaError, SourceError, UsageError
from twin.sensing.events import GRADES, raise_events
from twin.sensing.loop import OperationsLoop
from twin.webcoords import bd09_to_wgs84, gcj02_to_wgs84

__all__ = ["REPORT_RULE", "read_reports", "report_events"]

REPORT_RULE = "citizen_report"
NAME_KINDS = ("building", "poi", "road")


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
    place = row.get("place")
    if place is None or pd.isna(place) or not str(place).strip():
        raise UsageError(f"report {row.get('ticket')}: give lon/lat or a place")
    return _place_point(Twin.open(loop.twin_path), str(place).strip(), row.get("ticket"))


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


def report_events(loop: OperationsLoop, reports: pd.DataFrame, *, who: str = "12345") -> list[int]:
    """Open (or update) one event per report ticket; returns the events' ids."""
    missing = [c for c in ("ticket", "type", "time") if c not in reports.columns]
    if missing:
        raise SchemaError(f"reports lack column(s) {', '.join(missing)}")
    rows = []
    places: dict[str, dict[str, Any]] = {}
    for _, row in reports.iterrows():
        stamp = pd.to_datetime(row["time"], utc=True, errors="coerce")
        if pd.isna(stamp):
            raise UsageError(f"report {row['ticket']}: time {row['time']!r} is not ISO 8601")
        grade = str(row.get("grade") or "一般")
        if grade not in GRADES:
            raise UsageError(f"report {row['ticket']}: grade {grade!r}: use {', '.join(GRADES)}")
        uid = f"report:{row['ticket']}"
        point = _point(loop, row)
        network = {"water_leak": "water", "gas_leak": "gas"}.get(str(row["type"]))
        place = loop.locator.point(point, network)
        place.update(report=str(row["ticket"]), text=row.get("text"))
        places[uid] = place
        rows.append([REPORT_RULE, uid, str(row["type"]), grade, stamp, pd.NaT, float("nan")])
    episodes = pd.DataFrame(
        rows, columns=["rule", "sensor_uid", "event_type", "grade", "start", "end", "value"]
    )
    return raise_events(
        loop.store, episodes, locate=places.__getitem__, impact=loop.impact_of, who=who
    )


def read_reports(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A CSV file of reports."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"reports file {path} does not exist")
    try:
        return pd.read_csv(path, dtype={"ticket": str}, encoding="utf-8-sig")
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read {path.name}: {exc}") from None
