"""OGC SensorThings API (v1.1) read paths over the live store, under ``/sta/v1.1``.

Things are the twin's sensor features (``@iot.id``: the uid), Datastreams one
sensor × property × unit (integer ids), Observations their readings
(``@iot.id``: ``<datastream>-<phenomenon ms>``). Supported: ``Things``,
``Things('<uid>')``, ``Things('<uid>')/Datastreams``, ``Datastreams``,
``Datastreams(<id>)``, ``Datastreams(<id>)/Thing``,
``Datastreams(<id>)/Observations`` with ``$top``, ``$skip``, ``$count``,
``$orderby=phenomenonTime asc|desc`` and ``$filter`` on ``phenomenonTime``
(``ge``/``gt``/``le``/``lt`` ISO times joined by ``and``). Paged lists carry
``@iot.nextLink``. Only sensors of layers the caller may read exist.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from twin.errors import FeatureNotFoundError, UsageError
from twin.sensing.loop import OperationsLoop
from twin.sensing.store import from_ms, records, to_ms

from ..deps import Visible, VisibleDep
from ..errors import ERROR_RESPONSES
from ..links import base_url, here_url
from .sensing import operations, visible_sensors

ROOT = "/sta/v1.1"
router = APIRouter(prefix=ROOT, tags=["sensorthings"], responses=ERROR_RESPONSES)
_FILTER = re.compile(r"^\s*phenomenonTime\s+(ge|gt|le|lt)\s+(\S+)\s*$")
TopQ = Query(default=100, alias="$top", ge=0, le=10_000)
SkipQ = Query(default=0, alias="$skip", ge=0, le=2**62)
CountQ = Query(default=False, alias="$count")


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body, default=str), media_type="application/json")


def _base(request: Request) -> str:
    return base_url(request) + ROOT


def _iso(ms: int) -> str:
    return str(from_ms(int(ms)).isoformat().replace("+00:00", "Z"))


def _thing(base: str, loop: OperationsLoop, uid: str) -> dict[str, Any]:
    row = loop.registry.frame.loc[uid]
    link = f"{base}/Things('{uid}')"
    return {
        "@iot.id": uid,
        "@iot.selfLink": link,
        "name": str(row["name"] if isinstance(row["name"], str) else uid),
        "description": f"{row['sensor_type']} sensor of layer {row['layer']}",
        "properties": {"sensor_type": row["sensor_type"], "layer": row["layer"]},
        "Datastreams@iot.navigationLink": f"{link}/Datastreams",
    }


def _datastream(base: str, ds: int, row: Any) -> dict[str, Any]:
    link = f"{base}/Datastreams({ds})"
    unit = row["unit"] if isinstance(row["unit"], str) else ""
    return {
        "@iot.id": int(ds),
        "@iot.selfLink": link,
        "name": f"{row['sensor_uid']} {row['property']}",
        "description": f"{row['property']} of {row['sensor_uid']}",
        "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
        "unitOfMeasurement": {"name": unit, "symbol": unit, "definition": ""},
        "properties": {"sensor": row["sensor_uid"], "property": row["property"]},
        "Thing@iot.navigationLink": f"{link}/Thing",
        "Observations@iot.navigationLink": f"{link}/Observations",
    }


def _streams_json(base: str, streams: pd.DataFrame) -> list[dict[str, Any]]:
    rows = records(streams.reset_index())
    return [_datastream(base, int(r["id"]), r) for r in rows]


def _page(
    request: Request, values: list[dict[str, Any]], total: int, top: int, skip: int, count: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if count:
        body["@iot.count"] = total
    body["value"] = values
    if skip + top < total:
        body["@iot.nextLink"] = here_url(request, **{"$skip": skip + top, "$top": top})
    return body


def _visible_streams(visible: Visible, loop: OperationsLoop) -> pd.DataFrame:
    return loop.store.datastreams(list(visible_sensors(visible, loop)))


@router.get("", summary="SensorThings service root")
async def root(request: Request) -> Response:
    base = _base(request)
    names = ("Things", "Datastreams")
    return _json({"value": [{"name": n, "url": f"{base}/{n}"} for n in names]})


@router.get("/Things", summary="Things: the sensors the caller may read")
async def things(
    request: Request, visible: VisibleDep, top: int = TopQ, skip: int = SkipQ, count: bool = CountQ
) -> Response:
    loop = operations(request)
    uids = list(visible_sensors(visible, loop))
    base = _base(request)
    values = [_thing(base, loop, u) for u in uids[skip : skip + top]]
    return _json(_page(request, values, len(uids), top, skip, count))


def _uid(visible: Visible, loop: OperationsLoop, uid: str) -> str:
    if uid not in visible_sensors(visible, loop):
        raise FeatureNotFoundError(f"there is no Thing {uid!r}")
    return uid


@router.get("/Things('{uid}')", summary="One Thing")
async def thing(request: Request, visible: VisibleDep, uid: str) -> Response:
    loop = operations(request)
    return _json(_thing(_base(request), loop, _uid(visible, loop, uid)))


@router.get("/Things('{uid}')/Datastreams", summary="A Thing's Datastreams")
async def thing_streams(
    request: Request,
    visible: VisibleDep,
    uid: str,
    top: int = TopQ,
    skip: int = SkipQ,
    count: bool = CountQ,
) -> Response:
    loop = operations(request)
    streams = loop.store.datastreams([_uid(visible, loop, uid)])
    base = _base(request)
    values = _streams_json(base, streams.iloc[skip : skip + top])
    return _json(_page(request, values, len(streams), top, skip, count))


@router.get("/Datastreams", summary="Datastreams the caller may read")
async def datastreams(
    request: Request, visible: VisibleDep, top: int = TopQ, skip: int = SkipQ, count: bool = CountQ
) -> Response:
    loop = operations(request)
    streams = _visible_streams(visible, loop)
    base = _base(request)
    values = _streams_json(base, streams.iloc[skip : skip + top])
    return _json(_page(request, values, len(streams), top, skip, count))


def _stream(visible: Visible, loop: OperationsLoop, ds: int) -> dict[str, Any]:
    streams = _visible_streams(visible, loop)
    if ds not in streams.index:
        raise FeatureNotFoundError(f"there is no Datastream {ds}")
    return records(streams.loc[[ds]])[0]


@router.get("/Datastreams({ds})", summary="One Datastream")
async def datastream(request: Request, visible: VisibleDep, ds: int) -> Response:
    loop = operations(request)
    return _json(_datastream(_base(request), ds, _stream(visible, loop, ds)))


@router.get("/Datastreams({ds})/Thing", summary="A Datastream's Thing")
async def datastream_thing(request: Request, visible: VisibleDep, ds: int) -> Response:
    loop = operations(request)
    row = _stream(visible, loop, ds)
    return _json(_thing(_base(request), loop, str(row["sensor_uid"])))


def _bounds(expression: str | None) -> tuple[int, int]:
    lo, hi = -(2**62), 2**62
    if not expression:
        return lo, hi
    for part in re.split(r"\s+and\s+", expression.strip()):
        match = _FILTER.match(part)
        stamp = pd.to_datetime(match.group(2), utc=True, errors="coerce") if match else pd.NaT
        if match is None or pd.isna(stamp):
            raise UsageError(
                f"$filter {expression!r}: only phenomenonTime ge|gt|le|lt <ISO time> joined by "
                "'and' is supported"
            )
        ms = to_ms(pd.Timestamp(stamp))
        op = match.group(1)
        if op in ("ge", "gt"):
            lo = max(lo, ms + (op == "gt"))
        else:
            hi = min(hi, ms - (op == "lt"))
    return lo, hi


@router.get("/Datastreams({ds})/Observations", summary="A Datastream's Observations")
async def observations(
    request: Request,
    visible: VisibleDep,
    ds: int,
    top: int = TopQ,
    skip: int = SkipQ,
    count: bool = CountQ,
    orderby: str = Query(default="phenomenonTime desc", alias="$orderby", max_length=100),
    filter: str | None = Query(default=None, alias="$filter", max_length=500),
) -> Response:
    loop = operations(request)
    _stream(visible, loop, ds)
    order = orderby.strip().lower().split()
    if (
        not order
        or order[0] != "phenomenontime"
        or (len(order) > 1 and order[1] not in ("asc", "desc"))
    ):
        raise UsageError(f"$orderby {orderby!r}: only 'phenomenonTime asc|desc' is supported")
    direction = "DESC" if len(order) < 2 or order[1] == "desc" else "ASC"
    lo, hi = _bounds(filter)
    frame = loop.store._query(
        "SELECT phenomenon_ms, result_ms, value, quality FROM observations WHERE datastream = ? "
        f"AND phenomenon_ms BETWEEN ? AND ? ORDER BY phenomenon_ms {direction} LIMIT ? OFFSET ?",
        (ds, lo, hi, top, skip),
    )
    total = int(
        loop.store.scalar(
            "SELECT count(*) FROM observations WHERE datastream = ? "
            "AND phenomenon_ms BETWEEN ? AND ?",
            (ds, lo, hi),
        )
    )
    base = _base(request)
    values = [
        {
            "@iot.id": f"{ds}-{int(r['phenomenon_ms'])}",
            "@iot.selfLink": f"{base}/Observations('{ds}-{int(r['phenomenon_ms'])}')",
            "phenomenonTime": _iso(r["phenomenon_ms"]),
            "resultTime": _iso(r["result_ms"]),
            "result": float(r["value"]),
            "resultQuality": r["quality"],
        }
        for r in records(frame)
    ]
    return _json(_page(request, values, total, top, skip, count))
