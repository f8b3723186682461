"""Live sensing routes: datastreams, latest values, observation windows, events, reports.

Reads follow the layer classifications: a sensor in a layer the caller may
not read (cameras are restricted) does not exist for them, nor do its
datastreams, readings and events. Writes (``POST /observations``, event
transitions, citizen reports) need a key whose role is listed under
``writers`` in the keys file; the transition's ``who`` is the key's name.
``GET /events/stream`` is a server-sent-events stream of new and changed
events (``id`` is the change number; ``Last-Event-ID`` resumes).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
import pandas as pd
from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from twin.errors import FeatureNotFoundError, UsageError
from twin.sensing.events import event_changes, get_event, list_events, transition
from twin.sensing.loop import OperationsLoop
from twin.sensing.reports import report_events
from twin.sensing.store import records

from ..deps import StreamVisibleDep, Visible, VisibleDep
from ..errors import ERROR_RESPONSES, ErrorBody, ForbiddenError

router = APIRouter(tags=["sensing"], responses=ERROR_RESPONSES)
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "The key's role may not write"},
}
_lock = threading.Lock()
EventId = Annotated[int, Path(ge=1, le=2**62, description="The event id")]


def operations(request: Request) -> OperationsLoop:
    """The app's operations loop, rebuilt when the served twin is re-imported."""
    index = request.app.state.live.current()
    with _lock:
        current = getattr(request.app.state, "ops", None)
        if current is None or current[0] is not index:
            loop = OperationsLoop.open(request.app.state.settings.twin)
            request.app.state.ops = (index, loop)
        found: OperationsLoop = request.app.state.ops[1]
        return found


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(
            body, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=str
        ),
        status_code=status,
        media_type="application/json",
    )


def _iso(value: Any) -> Any:
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    return pd.Timestamp(value).isoformat().replace("+00:00", "Z")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].map(_iso)
    out = out.astype(object).where(out.notna(), None)
    return records(out)


def visible_sensors(visible: Visible, loop: OperationsLoop, layer: str | None = None) -> pd.Index:
    """Uids of the sensors the caller may read (of one layer)."""
    names = visible.names(kind="sensor")
    if layer is not None:
        if layer not in names:
            raise FeatureNotFoundError(f"there is no sensor layer {layer!r}")
        names = [layer]
    frame = loop.registry.frame
    return frame.index[frame["layer"].isin(names)]


def _in_area(
    loop: OperationsLoop, uids: pd.Index, district: str | None, grid: str | None
) -> pd.Index:
    relations = loop.locator.relations
    if district is not None:
        uids = uids[[relations.get((u, "district")) == district for u in uids]]
    if grid is not None:
        uids = uids[[relations.get((u, "grid")) == grid for u in uids]]
    return uids


def _time(text: str | None, name: str) -> pd.Timestamp | None:
    if text is None:
        return None
    stamp = pd.to_datetime(text, utc=True, errors="coerce")
    if pd.isna(stamp):
        raise UsageError(f"{name}={text!r} is not an ISO 8601 time")
    return pd.Timestamp(stamp)


# Public names for the routers built on these helpers (vitals, SensorThings).
json_response = _json
frame_records = _records
parse_time = _time


def require_writer(visible: Visible) -> str:
    """The caller's name when they may write; 403 otherwise."""
    if not visible.caller.may_write:
        raise ForbiddenError(
            f"role {visible.caller.role!r} may not write: use a key whose role is listed under "
            "'writers' in the keys file"
        )
    return visible.caller.name


@router.get("/datastreams", summary="Datastreams (sensor × property × unit) the caller may read")
async def datastreams(
    request: Request,
    visible: VisibleDep,
    layer: str | None = None,
    district: str | None = None,
    grid: str | None = None,
) -> Response:
    loop = operations(request)
    uids = _in_area(loop, visible_sensors(visible, loop, layer), district, grid)
    frame = loop.store.datastreams(list(uids)).reset_index()
    frame["layer"] = frame["sensor_uid"].map(loop.registry.frame["layer"])
    return _json({"datastreams": _records(frame), "count": len(frame)})


@router.get("/latest", summary="The latest value of every visible datastream")
async def latest(
    request: Request,
    visible: VisibleDep,
    layer: str | None = None,
    district: str | None = None,
    grid: str | None = None,
) -> Response:
    loop = operations(request)
    uids = _in_area(loop, visible_sensors(visible, loop, layer), district, grid)
    frame = loop.store.latest(list(uids))
    return _json({"latest": _records(frame), "count": len(frame)})


@router.get("/observations", summary="One sensor's observations in a time window")
async def observations(
    request: Request,
    visible: VisibleDep,
    sensor: str,
    property: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> Response:
    loop = operations(request)
    if sensor not in visible_sensors(visible, loop):
        raise FeatureNotFoundError(f"there is no sensor {sensor!r}")
    frame = loop.store.window(sensor, property, start=_time(start, "start"), end=_time(end, "end"))
    return _json({"sensor": sensor, "observations": _records(frame), "count": len(frame)})


class ObservationIn(BaseModel):
    """One reading."""

    model_config = ConfigDict(extra="forbid")
    sensor: str = Field(min_length=1, max_length=200, description="Sensor uid or delivery id")
    time: str = Field(min_length=1, max_length=64, description="Phenomenon time, ISO 8601")
    value: Any = Field(description="The reading (a number)")
    property: str | None = Field(default=None, max_length=100)
    unit: str | None = Field(default=None, max_length=50)
    quality: str | None = Field(default=None, max_length=100)


class ObservationBatch(BaseModel):
    """A batch of readings."""

    model_config = ConfigDict(extra="forbid")
    observations: list[ObservationIn] = Field(min_length=1, max_length=100_000)


@router.post(
    "/observations", summary="Ingest a batch of readings (writer role)", responses=WRITE_RESPONSES
)
async def post_observations(
    request: Request, visible: VisibleDep, batch: ObservationBatch
) -> Response:
    require_writer(visible)
    loop = operations(request)
    frame = pd.DataFrame([o.model_dump() for o in batch.observations])
    frame["value"] = frame["value"].map(lambda v: None if v is None else str(v))
    report, changed = await asyncio.to_thread(loop.ingest, frame, source="api")
    # The readings were stored against these sensors' layers (cameras are restricted).
    layers = loop.registry.frame["layer"]
    visible.touch(layers[layers.index.isin(report.sensors)].unique().tolist())
    return _json({**report.to_dict(), "events_changed": changed})


def touch_references(visible: Visible, body: Any) -> Any:
    """``body`` with every uid (``<layer>.<id>``) of a layer the caller may not read blanked.

    An event's location and impact are worked out by the library from the whole
    twin (nearest pipe, pipe-break impact), not through ``Visible``: the layers
    they name are read on the caller's behalf, so the readable ones reach the
    audit log, and the ones the caller may not read (restricted pipes for an
    ``internal`` key) come out as None, as the address routes do.
    """
    if isinstance(body, dict):
        return {key: touch_references(visible, value) for key, value in body.items()}
    if isinstance(body, list | tuple):
        return [touch_references(visible, value) for value in body]
    if isinstance(body, str) and "." in body:
        name = body.split(".", 1)[0]
        if name in visible.index.layers:
            if not visible.allowed(name):
                return None
            visible.touch([name])
    return body


def _visible_events(visible: Visible, loop: OperationsLoop, frame: pd.DataFrame) -> pd.DataFrame:
    allowed = set(visible_sensors(visible, loop))
    keep = frame["sensor_uid"].isin(allowed) | frame["sensor_uid"].str.startswith("report:")
    return frame[keep]


@router.get("/events", summary="Events, filtered, newest first")
async def events(
    request: Request,
    visible: VisibleDep,
    status: str | None = None,
    open: bool = False,
    type: str | None = None,
    grade: str | None = None,
    district: str | None = None,
    grid: str | None = None,
    layer: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Response:
    loop = operations(request)
    frame = list_events(
        loop.store,
        status=status,
        open_only=open,
        event_type=type,
        grade=grade,
        district=district,
        grid=grid,
        since=_time(since, "since"),
        until=_time(until, "until"),
    )
    frame = _visible_events(visible, loop, frame)
    if layer is not None:
        frame = frame[frame["sensor_uid"].isin(visible_sensors(visible, loop, layer))]
    return _json({"events": touch_references(visible, _records(frame)), "count": len(frame)})


def _event_visible(visible: Visible, loop: OperationsLoop, event_id: int) -> dict[str, Any]:
    event = get_event(loop.store, event_id)
    if not event.sensor_uid.startswith("report:") and event.sensor_uid not in visible_sensors(
        visible, loop
    ):
        raise FeatureNotFoundError(f"there is no event {event_id}")
    body: dict[str, Any] = touch_references(visible, event.to_dict())
    return body


# An endless stream: kept out of the OpenAPI document (a generic client would wait forever).
@router.get("/events/stream", include_in_schema=False)
async def stream(
    request: Request,
    visible: StreamVisibleDep,  # a key header, or ?token= from POST /events/stream-token
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    last_event_id: str | None = Header(default=None),
) -> StreamingResponse:
    loop = operations(request)
    start = (
        after
        if after is not None
        else (int(last_event_id) if last_event_id and last_event_id.isdigit() else None)
    )
    if start is None:
        start = loop.store.max_seq()
    poll_s = request.app.state.settings.poll_s

    async def chunks() -> AsyncIterator[bytes]:
        seq = start
        yield b": twin events stream\n\n"
        while not await request.is_disconnected():
            frame = event_changes(loop.store, seq)
            if len(frame):
                seq = int(frame["seq"].max())
                for item in touch_references(
                    visible, _records(_visible_events(visible, loop, frame))
                ):
                    yield b"id: %d\nevent: event\ndata: %s\n\n" % (
                        item["seq"],
                        orjson.dumps(item, default=str),
                    )
            else:
                yield b": keep-alive\n\n"
            await asyncio.sleep(min(poll_s, 0.25))

    return StreamingResponse(
        chunks(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get("/events/{event_id}", summary="One event with its location, impact and history")
async def event(request: Request, visible: VisibleDep, event_id: EventId) -> Response:
    loop = operations(request)
    return _json(_event_visible(visible, loop, event_id))


class TransitionIn(BaseModel):
    """An event transition's details."""

    model_config = ConfigDict(extra="forbid")
    assignee: str | None = Field(default=None, max_length=200, description="For dispatch")
    note: str | None = Field(default=None, max_length=2000)


@router.post(
    "/events/{event_id}/{action}",
    summary="ack, dispatch, start, resolve or close (writer role)",
    responses=WRITE_RESPONSES,
)
async def event_action(
    request: Request,
    visible: VisibleDep,
    event_id: EventId,
    action: Literal["ack", "dispatch", "start", "resolve", "close"],
    body: TransitionIn | None = None,
) -> Response:
    who = require_writer(visible)
    loop = operations(request)
    _event_visible(visible, loop, event_id)
    details = body or TransitionIn()
    done = transition(
        loop.store, event_id, action, who, assignee=details.assignee, note=details.note
    )
    return _json(done.to_dict())


class ReportIn(BaseModel):
    """A citizen report (12345 hotline)."""

    model_config = ConfigDict(extra="forbid")
    ticket: str = Field(min_length=1, max_length=100)
    type: str = Field(min_length=1, max_length=100, description="water_leak, gas_leak, flooding, …")
    time: str = Field(min_length=1, max_length=64)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    coords: Literal["wgs84", "gcj02", "bd09"] = "wgs84"
    place: str | None = Field(default=None, max_length=200, description="Feature uid or name")
    address: str | None = Field(
        default=None,
        max_length=200,
        description="Address as typed, geocoded when no lon/lat or place is given; one that "
        "locates nothing (or only a road) is refused with 400",
    )
    text: str | None = Field(default=None, max_length=2000)
    grade: str = "一般"


@router.post(
    "/reports",
    summary="A citizen report becomes an event (writer role)",
    status_code=201,
    responses=WRITE_RESPONSES,
)
async def post_report(request: Request, visible: VisibleDep, report: ReportIn) -> Response:
    who = require_writer(visible)
    loop = operations(request)
    frame = pd.DataFrame([report.model_dump()])
    ids = await asyncio.to_thread(report_events, loop, frame, who=who)
    return _json(_event_visible(visible, loop, ids[0]) if ids else {"events": []}, status=201)
