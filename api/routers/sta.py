"""OGC SensorThings API (v1.1), read-only, under ``/sta/v1.1``.

Entity sets: Things (the twin's sensors), Locations, FeaturesOfInterest,
Sensors (sensor types), ObservedProperties, Datastreams and Observations;
``Set``, ``Set(id)`` and ``Set(id)/Navigation`` paths, with ``$filter``
(``eq ne gt ge lt le``, ``and or not``, parentheses: on result,
phenomenonTime, resultTime, Datastream/Thing ids and property names),
``$orderby``, ``$top``, ``$skip``, ``$count``, ``$select`` and one level of
``$expand``; anything else is a 400 with a JSON body naming what is supported.
See :mod:`twin.sensing.sensorthings`. Paged lists carry ``@iot.nextLink``.
Only sensors of layers the caller may read exist.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from twin.sensing.sensorthings import SETS, SensorThings
from twin.sensing.sensorthings import Query as StaQuery

from ..deps import VisibleDep
from ..errors import ERROR_RESPONSES
from ..links import base_url, here_url
from .sensing import operations

ROOT = "/sta/v1.1"
router = APIRouter(prefix=ROOT, tags=["sensorthings"], responses=ERROR_RESPONSES)


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body, default=str), media_type="application/json")


@router.get("", summary="SensorThings service root")
async def root(request: Request) -> Response:
    base = base_url(request) + ROOT
    return _json(
        {
            "value": [{"name": n, "url": f"{base}/{n}"} for n in SETS],
            "serverSettings": {
                "conformance": ["http://www.opengis.net/spec/iot_sensing/1.1/req/request-data"]
            },
        }
    )


@router.get(
    "/{resource:path}",
    summary="Set, Set(id) or Set(id)/Navigation of Things, Locations, FeaturesOfInterest, "
    "Sensors, ObservedProperties, Datastreams, Observations",
)
async def resource(
    request: Request,
    visible: VisibleDep,
    resource: Annotated[str, Path(max_length=500, description="e.g. Datastreams(3)/Observations")],
    top: Annotated[int, Query(alias="$top", ge=0, le=10_000)] = 100,
    skip: Annotated[int, Query(alias="$skip", ge=0, le=2**62)] = 0,
    count: Annotated[bool, Query(alias="$count")] = False,
    filter: Annotated[str | None, Query(alias="$filter", max_length=2000)] = None,
    orderby: Annotated[str | None, Query(alias="$orderby", max_length=200)] = None,
    select: Annotated[str | None, Query(alias="$select", max_length=500)] = None,
    expand: Annotated[str | None, Query(alias="$expand", max_length=500)] = None,
) -> Response:
    loop = operations(request)
    view = SensorThings(
        loop.store, loop.registry, visible.names(kind="sensor"), base_url(request) + ROOT
    )
    query = StaQuery(filter, orderby, top, skip, count, select, expand)
    body = await asyncio.to_thread(view.get, resource, query)
    if view.total is not None and top > 0 and skip + top < view.total:
        body["@iot.nextLink"] = here_url(request, **{"$skip": skip + top, "$top": top})
    return _json(body)
