"""City vital signs (城市体征) over HTTP: ``GET /vitals`` (a table) and ``GET /vitals/series``.

The same numbers as ``twin vitals --json`` (both call :func:`twin.sensing.vitals.vitals`
and :func:`~twin.sensing.vitals.vitals_series`), counted over the sensors the
caller may read: a sensor of a layer the caller may not read (cameras are
restricted) is not counted, nor are its readings and events. Citizen reports
always count.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from twin.errors import UsageError
from twin.sensing.escalation import parse_deadlines
from twin.sensing.vitals import vitals, vitals_series

from ..deps import VisibleDep
from ..errors import ERROR_RESPONSES
from .sensing import frame_records, json_response, operations, parse_time, visible_sensors

router = APIRouter(tags=["sensing"], responses=ERROR_RESPONSES)
_FREQ = re.compile(r"^[1-9][0-9]{0,3}(min|h|D)$")
By = Annotated[Literal["district", "grid"], Query(description="district or grid")]


def _freq(text: str) -> str:
    if not _FREQ.match(text):
        raise UsageError(f"freq={text!r}: use a number and min, h or D, e.g. 15min, 1h, 1D")
    return text


@router.get("/vitals", summary="Vital signs per district or grid cell (a table)")
async def vitals_table(
    request: Request,
    visible: VisibleDep,
    by: By = "district",
    at: str | None = None,
    online_min: Annotated[float, Query(gt=0, le=10_080)] = 30.0,
) -> Response:
    """Sensors, sensors online, readings in the last hour, open events (by grade), overdue
    events (by the service's deadlines) and mean minutes to dispose, per area, at ``at``
    (default: the newest reading)."""
    loop = operations(request)
    sensors = list(visible_sensors(visible, loop))
    frame = await asyncio.to_thread(
        vitals,
        loop.store,
        loop.locator,
        by=by,
        at=parse_time(at, "at"),
        online_min=online_min,
        sensors=sensors,
        deadlines_min=parse_deadlines(request.app.state.settings.ack_deadlines),
    )
    rows = frame_records(frame.reset_index())
    return json_response({"by": by, "vitals": rows, "count": len(rows)})


@router.get("/vitals/series", summary="Vital signs per period and area (a time series)")
async def vitals_over_time(
    request: Request,
    visible: VisibleDep,
    by: By = "district",
    start: str | None = None,
    end: str | None = None,
    freq: Annotated[str, Query(max_length=10, description="Period, e.g. 1h, 15min")] = "1h",
) -> Response:
    """Readings, sensors reporting, events opened and events open, per period and area
    (default: the day before the newest reading, hourly)."""
    loop = operations(request)
    sensors = list(visible_sensors(visible, loop))
    lo, hi = parse_time(start, "start"), parse_time(end, "end")
    if lo is not None and hi is not None and lo >= hi:
        raise UsageError(f"start {start} must be before end {end}")
    frame = await asyncio.to_thread(
        vitals_series,
        loop.store,
        loop.locator,
        by=by,
        start=lo,
        end=hi,
        freq=_freq(freq),
        sensors=sensors,
    )
    frame = frame.reset_index()
    if "time" in frame.columns:
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
    rows = frame_records(frame)
    return json_response({"by": by, "freq": freq, "series": rows, "count": len(rows)})
