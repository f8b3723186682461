"""City one-map routes (城市一张图): identify, around, profile, search and statistics.

Thin: parse the query, call :mod:`twin.query` with the layers the caller may
read, serialise with orjson. Points are longitude/latitude in CRS84, EPSG:4326
or EPSG:4490 (longitude first), or read off a web map with ``coords=gcj02`` /
``coords=bd09``; geometries come back in CRS84, or in that web-map convention.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from twin import settings
from twin.address.onemap import search_places
from twin.errors import UsageError
from twin.query.around import MAX_LIMIT, MAX_RADIUS_M, AroundResult, around
from twin.query.common import GeometryOut, QueryPoint
from twin.query.identify import MAX_TOLERANCE_M, IdentifyResult, LayerHits, identify
from twin.query.profile import Profile, RelatedGroup, profile
from twin.query.search import MAX_RESULTS, SearchHit, SearchResult
from twin.query.statistics import statistics
from twin.sensing.states import area_vitals

from ..deps import Visible, VisibleDep
from ..errors import ERROR_RESPONSES
from ..factory import AnalysisFactory, collection_model
from ..models import Feature
from ..summaries import model_from_dataclass
from .address import GeocodeResponse

router = APIRouter(tags=["one map"], responses=ERROR_RESPONSES)
routes = AnalysisFactory(router)

Coords = Literal["wgs84", "gcj02", "bd09"]


# --------------------------------------------------------------------------- models


# Generated from the library's result dataclasses (one source of fields); only the
# GeoJSON Features (plain dicts in the library) and nested results are typed here.
QueryPointModel = model_from_dataclass(
    QueryPoint, "QueryPointModel", doc="The query point as given, and in the twin CRS."
)
LayerHitsModel = model_from_dataclass(
    LayerHits,
    "LayerHitsModel",
    doc="One layer's features, nearest first; ``properties.distance_m`` on each.",
    features=(list[Feature], ...),
    truncated=(bool, ...),
)
IdentifyResponse = model_from_dataclass(
    IdentifyResult,
    "IdentifyResponse",
    doc="Everything at a point.",
    point=(QueryPointModel, ...),
    layers=(list[LayerHitsModel], ...),  # type: ignore[valid-type]
)


class FeatureRef(BaseModel):
    layer: str
    uid: str


AroundResponse = model_from_dataclass(
    AroundResult,
    "AroundResponse",
    doc="Everything within a radius of a point or a feature, by layer.",
    point=(QueryPointModel | None, None),
    feature=(FeatureRef | None, None),
    layers=(list[LayerHitsModel], ...),  # type: ignore[valid-type]
)
RelatedGroupModel = model_from_dataclass(
    RelatedGroup,
    "RelatedGroupModel",
    doc="Features related through one relation (``properties.share``, ``distance_m``).",
    features=(list[Feature], ...),
)


class ServiceConnection(BaseModel):
    network: str
    pipe_layer: str
    pipe: str | None
    distance_m: float | None


class RoadAccess(BaseModel):
    road_layer: str
    road: str | None
    distance_m: float | None
    name: str | None = None
    access_point: dict[str, Any] | None = None


ProfileResponse = model_from_dataclass(
    Profile,
    "ProfileResponse",
    doc="A feature and what the twin relates to it.",
    feature=(Feature, ...),
    related=(list[RelatedGroupModel], ...),  # type: ignore[valid-type]
    indicators=(dict[str, float | int | str | None] | None, ...),
    compliance=(list[dict[str, Any]] | None, ...),
    service_connections=(list[ServiceConnection] | None, ...),
    road_access=(list[RoadAccess] | None, ...),
)
SearchHitModel = model_from_dataclass(
    SearchHit,
    "SearchHitModel",
    how=(Literal["exact", "contains", "fuzzy", "attribute", "address"], ...),
    feature=(Feature, ...),
)
SearchResponse = model_from_dataclass(
    SearchResult,
    "SearchResponse",
    doc="Search hits, best first.",
    count=(int, ...),
    hits=(list[SearchHitModel], ...),  # type: ignore[valid-type]
    truncated=(bool, ...),
    address=(
        GeocodeResponse | None,
        Field(None, description="For an address-like q: the standard-address matcher's answer"),
    ),
)
StatisticsResponse = collection_model(
    "StatisticsResponse",
    None,
    doc="Indicators by zone, one Feature per zone.",
    by=(str, ...),
    layers=(list[str], ...),
    numberReturned=(int, ...),
)


# --------------------------------------------------------------------------- helpers

Lon = Annotated[float, Query(ge=-180, le=180, description="Longitude, degrees")]
Lat = Annotated[float, Query(ge=-90, le=90, description="Latitude, degrees")]
CrsParam = Annotated[
    str, Query(description="CRS of the point: CRS84 (default), EPSG:4326 or EPSG:4490")
]
CoordsParam = Annotated[
    Coords, Query(description="Web-map convention of the point and of the answer's geometries")
]
LayersParam = Annotated[
    str | None,
    Query(max_length=2000, description="Comma-separated layers to search (default: all visible)"),
]
GeometryParam = Annotated[bool, Query(description="Include geometries")]


def _layers(visible: Visible, subset: str | None) -> list[str]:
    """The visible layers (not audited yet), or the asked subset of them (404 when hidden)."""
    names = [item.name for item in visible.listing()]
    if not subset:
        return names
    wanted = [n.strip() for n in subset.split(",") if n.strip()]
    for name in wanted:
        if name not in names:
            visible.layer(name)  # raises the 404 of a layer that does not exist
    return [n for n in names if n in wanted]


def _touch(visible: Visible, body: dict[str, Any]) -> None:
    visible.touch(group["layer"] for group in body.get("layers", []))


def _add_vitals(
    request: Request, visible: Visible, zones: str, features: list[dict[str, Any]]
) -> None:
    """The live vital signs of each zone (:func:`twin.sensing.states.area_vitals`), in place."""
    from .sensing import operations, visible_sensors

    kind = visible.index.layers[zones].info.kind
    if kind not in ("district", "grid"):
        raise UsageError(f"live=true needs by=district or by=grid, not a {kind} layer")
    loop = operations(request)
    sensors = visible_sensors(visible, loop)
    table = area_vitals(loop.store, loop.locator, sensors=list(sensors), by=kind)
    rows: dict[Any, dict[Any, Any]] = table.to_dict("index")
    for feature in features:
        row = rows.get(str(feature["id"]), {})
        for column in ("sensors_online", "open_events", "overdue_events"):
            feature["properties"][column] = int(row.get(column, 0))


# --------------------------------------------------------------------------- routes


@routes.get(
    "/identify",
    IdentifyResponse,
    summary="Everything at a point (点查)",
    description="Polygons containing the point (parcel, building, grid cell, district, …) and "
    "points or lines within tolerance_m (sensors, pipes, valves, roads), in every layer the "
    "caller may read. Example: /identify?lon=104.0489&lat=30.6685",
)
async def identify_route(
    visible: VisibleDep,
    lon: Lon,
    lat: Lat,
    crs: CrsParam = "CRS84",
    coords: CoordsParam = "wgs84",
    tolerance_m: Annotated[float, Query(ge=0, le=MAX_TOLERANCE_M)] = 10.0,
    layers: LayersParam = None,
    geometry: GeometryParam = True,
) -> dict[str, Any]:
    names = _layers(visible, layers)
    found = identify(
        visible.index,
        lon,
        lat,
        layers=names,
        crs=crs,
        coords=coords,
        tolerance_m=tolerance_m,
        geometry=geometry,
    )
    body = found.to_dict()
    _touch(visible, body)
    return body


@routes.get(
    "/around",
    AroundResponse,
    summary="Everything within a radius of a point or a feature (周边)",
    description="Give lon and lat, or layer and uid. Each layer's features come nearest first "
    "with distance_m. Example: /around?layer=buildings&uid=buildings.JZ0000101&radius_m=50",
)
def around_route(
    visible: VisibleDep,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    layer: Annotated[str | None, Query(max_length=200)] = None,
    uid: Annotated[str | None, Query(max_length=200)] = None,
    radius_m: Annotated[float, Query(gt=0, le=MAX_RADIUS_M)] = 100.0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    crs: CrsParam = "CRS84",
    coords: CoordsParam = "wgs84",
    layers: LayersParam = None,
    geometry: GeometryParam = True,
) -> dict[str, Any]:
    names = _layers(visible, layers)
    if (layer is None) != (uid is None):
        raise UsageError("give both layer and uid to search around a feature")
    feature = (layer, uid) if layer is not None and uid is not None else None
    if feature is not None:
        visible.layer(feature[0])  # 404 when hidden; searched too so the centre is readable
        names = [item.name for item in visible.listing() if item.name in {*names, feature[0]}]
    found = around(
        visible.index,
        lon,
        lat,
        feature=feature,
        radius_m=radius_m,
        layers=names,
        crs=crs,
        coords=coords,
        limit=limit,
        geometry=geometry,
    )
    body = found.to_dict()
    _touch(visible, body)
    return body


@routes.get(
    "/profile/{layer}/{uid}",
    ProfileResponse,
    summary="A feature with everything related to it (档案)",
    description="A parcel: buildings, sensors, grid cell, district, indicators, plan "
    "compliance. A building: parcel, grid cell, district, sensors, service connections, road "
    "access. Example: /profile/buildings/buildings.JZ0000101",
)
def profile_route(
    visible: VisibleDep,
    layer: str,
    uid: str,
    coords: CoordsParam = "wgs84",
    geometry: GeometryParam = True,
    max_service_m: Annotated[
        float, Query(ge=0, le=settings.MAX_SERVICE_DISTANCE_M)
    ] = settings.SERVICE_DISTANCE_M,
    max_access_m: Annotated[float, Query(ge=0, le=5000)] = 200.0,
) -> dict[str, Any]:
    visible.layer(layer)
    names = _layers(visible, None)
    card = profile(
        visible.index,
        layer,
        uid,
        layers=names,
        coords=coords,
        geometry=geometry,
        max_service_m=max_service_m,
        max_access_m=max_access_m,
    )
    body = card.to_dict()
    _touch(visible, {"layers": body["related"]})
    visible.touch(c["pipe_layer"] for c in body["service_connections"] or [])
    return body


@routes.get(
    "/search",
    SearchResponse,
    summary="Search by name, address, code or attribute (搜索)",
    description="q matches every text field, case-insensitively (equal 100, containing 90, "
    "fuzzy below); where=field:value filters on attributes (repeatable). An address-like q "
    "(road and number, or building / unit / room) is also geocoded against the standard "
    "address layer: the answer is in address, and the building matched is a hit "
    "(how=address), first when matched at house-number level or below. "
    "Example: /search?q=天阳花园&fuzzy=true",
)
def search_route(
    visible: VisibleDep,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    where: Annotated[
        list[str] | None, Query(max_length=20, description="field:value, repeatable")
    ] = None,
    field: Annotated[list[str] | None, Query(max_length=50)] = None,
    fuzzy: bool = False,
    min_score: Annotated[float, Query(ge=0, le=100)] = 70.0,
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 20,
    coords: CoordsParam = "wgs84",
    layers: LayersParam = None,
    geometry: GeometryParam = True,
) -> dict[str, Any]:
    filters: dict[str, str] = {}
    for item in where or []:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"where={item!r}: write field:value, e.g. where=land_use:R2")
        filters[name.strip()] = value
    found = search_places(
        visible.index,
        q,
        where=filters,
        layers=_layers(visible, layers),
        fields=field,
        fuzzy=fuzzy,
        min_score=min_score,
        limit=limit,
        coords=coords,
        geometry=geometry,
    )
    body = found.to_dict()
    visible.touch(hit["layer"] for hit in body["hits"])
    return body


@routes.get(
    "/statistics",
    StatisticsResponse,
    summary="Indicators by district, grid cell or parcel (统计)",
    description="Every indicator the visible layers allow (buildings, FAR, coverage, heights, "
    "sensors, road and pipe km), one Feature per zone; with live=true also the vital signs "
    "(sensors online, open and overdue events). Example: /statistics?by=district&live=true",
)
def statistics_route(
    request: Request,
    visible: VisibleDep,
    by: Annotated[str, Query(min_length=1, max_length=200)] = "grid",
    coords: CoordsParam = "wgs84",
    geometry: GeometryParam = False,
    live: Annotated[
        bool,
        Query(
            description="Add the live vital signs (by district or grid): sensors_online, "
            "open_events, overdue_events, counting only the sensors the caller may read"
        ),
    ] = False,
) -> dict[str, Any]:
    names = _layers(visible, None)
    table = statistics(visible.index, by=by, layers=names)
    out = GeometryOut(visible.index, coords) if geometry else None
    features = table.records(out)
    visible.touch(table.layers)
    if live:
        _add_vitals(request, visible, table.by, features)
    return {
        "type": "FeatureCollection",
        "by": table.by,
        "layers": table.layers,
        "numberReturned": len(features),
        "features": features,
    }
