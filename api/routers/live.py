"""What the one-map page needs of the live data: a stream token, events and sensor states on a map.

- ``POST /events/stream-token``: a short-lived token that opens
  ``GET /events/stream?token=…`` (a browser's EventSource cannot send the
  ``X-API-Key`` header, and the key itself must never go into a URL); see
  :mod:`twin_api.streamtoken`.
- ``GET /map/events``: the events the caller may see as GeoJSON points in
  CRS84, with ``overdue`` (escalated, or new past its grade's deadline).
- ``GET /map/events/{id}``: one event as a point with its attached impact as
  a FeatureCollection (valves to close, buildings without service, closed
  roads, buildings cut off), every feature in a layer the caller may read.
- ``GET /map/sensors``: each visible sensor's state (normal / alarm / offline
  / no data) from :func:`twin.sensing.states.sensor_states`.

The same visibility rules as the sensing routes: a sensor in a layer the
caller may not read, its readings and its events do not exist for them.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import pandas as pd
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from twin.errors import FeatureNotFoundError
from twin.query.common import GeometryOut, feature_dict
from twin.sensing.events import get_event, list_events
from twin.sensing.states import SENSOR_STATES, overdue_events, sensor_states

from ..deps import Visible, VisibleDep
from ..errors import ERROR_RESPONSES
from .sensing import operations, touch_references, visible_sensors

router = APIRouter(tags=["one-map live"], responses=ERROR_RESPONSES)

#: Impact lists of an event (``impact`` of :func:`twin.sensing.events.get_event`) → result.
IMPACT_RESULTS = (
    ("valves_to_close", "valve_to_close"),
    ("buildings", "building"),
    ("roads_closed", "closed_road"),
    ("buildings_lost", "building_lost"),
)


def _json(body: Any) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY, default=str),
        media_type="application/json",
    )


def _none(value: Any) -> Any:
    return None if value is None or pd.isna(value) else value


def _iso(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).isoformat().replace("+00:00", "Z")


@router.post(
    "/events/stream-token",
    summary="A short-lived token that opens the events stream (for EventSource)",
    description="Send the API key as usual (X-API-Key); the answer's token, valid for "
    "expires_in_s seconds, opens GET /events/stream?token=… with the key's role, and opens "
    "nothing else. Without a key the token carries the public role.",
)
async def stream_token(request: Request, visible: VisibleDep) -> Response:
    operations(request)  # 404-free check that the live store can be opened
    token, expires = request.app.state.stream_tokens.issue(visible.caller)
    ttl = request.app.state.stream_tokens.ttl_s
    return _json(
        {
            "token": token,
            "role": visible.caller.role,
            "expires": _iso(pd.Timestamp(expires, unit="s", tz="UTC")),
            "expires_in_s": ttl,
            "stream": f"/events/stream?token={token}",
        }
    )


def _event_features(visible: Visible, frame: pd.DataFrame, clock_ms: int) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    to84 = visible.index.from_twin("OGC:CRS84")
    lon, lat = to84.transform(frame["x"].to_numpy(float), frame["y"].to_numpy(float))
    late = overdue_events(frame, clock_ms)
    features = []
    rows: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
    for i, row in enumerate(rows):
        props = {
            "id": int(row["id"]),
            "seq": int(row["seq"]),
            "status": row["status"],
            "overdue": bool(late.iloc[i]),
            "is_open": bool(row["is_open"]),
            "event_type": row["event_type"],
            "grade": row["grade"],
            "sensor_uid": row["sensor_uid"],
            "district": _none(row["district"]),
            "grid": _none(row["grid"]),
            "opened": _iso(row["opened"]),
            "updated": _iso(row["updated"]),
        }
        point = None
        if pd.notna(lon[i]) and pd.notna(lat[i]):
            point = {"type": "Point", "coordinates": [float(lon[i]), float(lat[i])]}
        features.append(
            {"type": "Feature", "id": props["id"], "geometry": point, "properties": props}
        )
    out: list[dict[str, Any]] = touch_references(visible, features)
    return out


def _visible(visible: Visible, request: Request, frame: pd.DataFrame) -> pd.DataFrame:
    allowed = set(visible_sensors(visible, operations(request)))
    keep = frame["sensor_uid"].isin(allowed) | frame["sensor_uid"].str.startswith("report:")
    return frame[keep]


@router.get("/map/events", summary="Events as points for the map (CRS84), newest first")
async def map_events(
    request: Request,
    visible: VisibleDep,
    open: Annotated[bool, Query(description="Only events not yet resolved")] = True,
    after: Annotated[int, Query(ge=0, le=2**62, description="Only changes after this seq")] = 0,
) -> Response:
    loop = operations(request)
    frame = _visible(visible, request, list_events(loop.store, open_only=open))
    frame = frame[frame["seq"] > after]
    clock = loop.store.clock_ms() or int(pd.Timestamp.now("UTC").value // 1_000_000)
    features = _event_features(visible, frame, clock)
    last = loop.store.max_seq()
    return _json({"type": "FeatureCollection", "seq": last, "features": features})


def impact_features(visible: Visible, impact: dict[str, Any] | None) -> list[dict[str, Any]]:
    """An event's attached impact as GeoJSON features (CRS84), ``properties.result`` set.

    Features of layers the caller may not read are left out; the rest are audited.
    """
    if not impact:
        return []
    index = visible.index
    out = GeometryOut(index)
    features: list[dict[str, Any]] = []
    for key, result in IMPACT_RESULTS:
        uids = [str(u) for u in impact.get(key) or []]
        if key == "roads_closed" and impact.get("road"):
            uids = [str(impact["road"]), *uids]
        by_layer: dict[str, list[str]] = {}
        for uid in dict.fromkeys(uids):
            by_layer.setdefault(uid.split(".", 1)[0], []).append(uid)
        for name, members in by_layer.items():
            if not visible.allowed(name):
                continue
            layer = visible.layer(name)
            positions = layer.uids.get_indexer(pd.Index(members))
            positions = positions[positions >= 0]
            extra = [{"result": result}] * len(positions)
            features += feature_dict(index, layer, positions, out, extra)
    return features


@router.get(
    "/map/events/{event_id}",
    summary="One event as a point, with its attached impact drawn as features",
)
async def map_event(
    request: Request,
    visible: VisibleDep,
    event_id: Annotated[int, Path(ge=1, le=2**62)],
) -> Response:
    loop = operations(request)
    frame = _visible(visible, request, list_events(loop.store))
    row = frame[frame["id"] == event_id]
    if row.empty:
        raise FeatureNotFoundError(f"there is no event {event_id}")
    clock = loop.store.clock_ms() or int(pd.Timestamp.now("UTC").value // 1_000_000)
    (feature,) = _event_features(visible, row, clock)
    event = get_event(loop.store, event_id)
    impact = event.impact or {}
    feature["properties"]["impact"] = {
        "type": "FeatureCollection",
        "analysis": impact.get("analysis"),
        "summary": touch_references(visible, impact.get("summary") or {}),
        "features": impact_features(visible, impact),
    }
    return _json(feature)


@router.get(
    "/map/sensors",
    summary="Each visible sensor's state: normal, alarm, offline or no data",
    description="From the latest values in the live store and each sensor's thresholds; "
    "offline when its newest reading is older than online_min before the newest reading "
    "stored. Example: /map/sensors?online_min=30",
)
async def map_sensors(
    request: Request,
    visible: VisibleDep,
    online_min: Annotated[float, Query(gt=0, le=10_080)] = 30.0,
) -> Response:
    loop = operations(request)
    uids = visible_sensors(visible, loop)
    table = sensor_states(loop.store, loop.registry, sensors=list(uids), online_min=online_min)
    counts = table["state"].value_counts()
    clock = loop.store.clock_ms()
    return _json(
        {
            "clock": None if clock is None else _iso(pd.Timestamp(clock, unit="ms", tz="UTC")),
            "online_min": online_min,
            "counts": {state: int(counts.get(state, 0)) for state in SENSOR_STATES},
            "sensors": [
                {
                    "uid": str(uid),
                    "layer": row.layer,
                    "state": row.state,
                    "property": _none(row.property),
                    "value": _none(row.value),
                    "time": _iso(row.time),
                }
                for uid, row in zip(table.index, table.itertuples(index=False), strict=True)
            ],
        }
    )
