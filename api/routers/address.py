"""Standard-address routes (标准地址): geocode an address, reverse-geocode a point.

Thin: the caller's visible layers decide which address layers exist (an
internal or restricted address layer is invisible without a key, as any
layer); the work is :mod:`twin.address.service`. Points are WGS 84
longitude/latitude, or read off a web map with ``coords=gcj02`` / ``coords=bd09``
(answers come back in the same convention).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from twin.address.service import geocode_text, reverse_point

from ..deps import VisibleDep
from ..errors import ERROR_RESPONSES

router = APIRouter(tags=["addresses"], responses=ERROR_RESPONSES)

Coords = Literal["wgs84", "gcj02", "bd09"]


class LonLat(BaseModel):
    lon: float
    lat: float


class GeocodeResponse(BaseModel):
    """The standard address an address as typed matched, and at which level."""

    query: str
    level: Literal["room", "building", "house_number", "road", "community", "unmatched"]
    uid: str | None = Field(
        description="the standard address; at road level the road, at community level its grid"
    )
    score: float
    address: str | None
    candidates: int = Field(0, description="buildings at a house number answered without one")
    building: str | None = Field(description="uid of the building the address belongs to")
    grid: str | None = Field(description="uid of its grid cell (网格), from twin build")
    district: str | None = Field(description="uid of its district, from twin build")
    reason: str | None = Field(description="why the match stopped above building level")
    point: LonLat | None
    layer: str
    parsed: dict[str, str]


class ReverseResponse(BaseModel):
    """The standard address nearest a point."""

    uid: str | None
    layer: str
    address: str | None = None
    distance_m: float | None = None
    building: str | None = None
    grid: str | None = None
    district: str | None = None
    point: LonLat | None = None
    reason: str | None = None


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _visible_uid(visible: VisibleDep, body: dict[str, Any]) -> None:
    """Hide links into layers the caller may not read."""
    for key in ("uid", "building", "grid", "district"):
        uid = body.get(key)
        if uid and not visible.allowed(str(uid).split(".", 1)[0]):
            body[key] = None


@router.get(
    "/geocode",
    response_model=GeocodeResponse,
    summary="Geocode a Chinese address (地址匹配)",
    description="Parses q into levels (province … room), matches it against the standard "
    "address layer (exactly, then fuzzily within its street or community) and answers the "
    "matched address, the level reached, its building, grid cell and district. "
    "Example: /geocode?q=成都市锦江区杉江街3号2栋",
)
def geocode_route(
    visible: VisibleDep,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    layer: Annotated[str | None, Query(max_length=200)] = None,
    coords: Coords = "wgs84",
) -> Response:
    names = visible.names("address")
    body = geocode_text(visible.index, q, layers=names, layer=layer, coords=coords)
    _visible_uid(visible, body)
    return _json(body)


@router.get(
    "/reverse",
    response_model=ReverseResponse,
    summary="The standard address nearest a point (逆地址解析)",
    description="Example: /reverse?lon=104.0489&lat=30.6685 (coords=gcj02 for a point "
    "read off a Chinese web map)",
)
def reverse_route(
    visible: VisibleDep,
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    coords: Coords = "wgs84",
    max_distance_m: Annotated[float, Query(gt=0, le=5000)] = 200.0,
    layer: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    names = visible.names("address")
    body = reverse_point(
        visible.index,
        lon,
        lat,
        layers=names,
        layer=layer,
        coords=coords,
        max_distance_m=max_distance_m,
    )
    _visible_uid(visible, body)
    return _json(body)
