"""Impact analysis routes: POST a scenario, get a GeoJSON FeatureCollection and a summary.

The answers are the library's (:mod:`twin.query.impact`, built on
:mod:`twin.network`) and so the CLI's (``twin analyze …``); the networks are
built once per loaded twin snapshot, not per request.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from twin import guards, settings
from twin.errors import UsageError
from twin.network.cascade import CascadeSummary as LibraryCascadeSummary
from twin.network.closures import ClosureSummary as LibraryClosureSummary
from twin.network.isolation import BreakSummary
from twin.network.routing import RouteSummary as LibraryRouteSummary
from twin.network.routing import ServiceSummary as LibraryServiceSummary
from twin.query.common import (
    GeometryOut,
    json_ready,
    normalise_crs,
    query_point,
    visible_layer,
)
from twin.query.impact import NetworkLayers, pipe_break_impact
from twin.query.impact_roads import (
    area_in_twin,
    cascade_impact,
    road_closure_impact,
    route_impact,
    service_area_impact,
)

from ..deps import Visible, VisibleDep
from ..errors import ERROR_RESPONSES
from ..factory import AnalysisFactory, collection_model
from ..summaries import model_from_dataclass

router = APIRouter(prefix="/impact", tags=["impact"], responses=ERROR_RESPONSES)
routes = AnalysisFactory(router)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    coords: Literal["wgs84", "gcj02", "bd09"] = Field(
        default="wgs84", description="Web-map convention of the answer's geometries"
    )
    geometry: bool = Field(default=True, description="Include geometries")


class PipeBreakRequest(_Request):
    """A break on one pipe, optionally with valves that fail to close."""

    pipe: str = Field(min_length=1, max_length=200, description="The broken pipe's uid")
    failed_valves: list[str] = Field(
        default_factory=list, max_length=200, description="Valves that will not close"
    )
    network: str | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="The network (default: the pipe's own, from the layer its uid names)",
    )
    pipes: str | None = Field(
        default=None, max_length=200, description="Pipe layer (default: the one the uid names)"
    )
    valves: str | None = Field(default=None, max_length=200)
    sources: str | None = Field(default=None, max_length=200)
    buildings: str | None = Field(default=None, max_length=200)
    max_service_m: float = Field(
        default=settings.SERVICE_DISTANCE_M, ge=0, le=settings.MAX_SERVICE_DISTANCE_M
    )
    tolerance_m: float = Field(
        default=settings.TOLERANCE_M,
        ge=0,
        le=settings.MAX_TOLERANCE_M,
        description="Snapping tolerance",
    )


BreakLayers = model_from_dataclass(
    NetworkLayers,
    "BreakLayers",
    doc="The layers a pipe break read.",
    exclude=("network", "pumps"),
)


# The summaries are the library's dataclasses: their models are generated, not copied.
PipeBreakSummary = model_from_dataclass(
    BreakSummary,
    "PipeBreakSummary",
    doc="What ``twin analyze pipe-break --json`` prints, plus the layers used.",
    exclude=("service_connections",),
    extra_valve_uids=(list[str], ...),
    layers=(BreakLayers, ...),
)
ClosureSummary = model_from_dataclass(
    LibraryClosureSummary,
    "ClosureSummary",
    doc="What ``twin analyze road-closure --json`` prints, and the CRS the area was read in.",
    area_crs=(str | None, None),
)
CascadeSummary = model_from_dataclass(
    LibraryCascadeSummary,
    "CascadeSummary",
    doc="What ``twin analyze cascade --json`` prints.",
    exclude=("min_overlap_m", "access_affected"),
    road_closure=(ClosureSummary | None, ...),
)
ServiceSummary = model_from_dataclass(
    LibraryServiceSummary,
    "ServiceSummary",
    doc="What ``twin analyze service-area --json`` prints.",
)
RouteSummary = model_from_dataclass(
    LibraryRouteSummary,
    "RouteSummary",
    doc="What ``twin analyze route --json`` prints (without the WKT).",
    exclude=("geometry_wkt",),
    road_layer=(str, ...),
    point_crs=(str, ...),
)


_CONVENTIONS = {"gcj02": "GCJ-02 lon/lat", "bd09": "BD-09 lon/lat"}


def read_in(crs: str | None, coords: str | None) -> str:
    """The CRS lon/lat places (or an area) were read in, as the answer states it.

    Examples
    --------
    >>> read_in("epsg:4490", "wgs84"), read_in(None, "wgs84"), read_in("CRS84", "gcj02")
    ('EPSG:4490', 'OGC:CRS84', 'GCJ-02 lon/lat')
    """
    if coords in _CONVENTIONS:
        return _CONVENTIONS[str(coords)]
    return normalise_crs(crs)


PipeBreakResponse = collection_model(
    "PipeBreakResponse",
    PipeBreakSummary,
    doc="Valves to close, isolated and cut-off pipes, buildings losing service.\n\n"
    "Each Feature has ``properties.result`` (``valve_to_close``, ``valve_already_closed``, "
    "``isolated_pipe``, ``cut_off_pipe``, ``building``), ``layer`` and ``extra`` (only "
    "because of the failed valves).",
)


class _RoadRequest(_Request):
    """Options shared by the road analyses (as ``twin analyze`` has them)."""

    roads: str | None = Field(default=None, max_length=200, description="Road layer")
    buildings: str | None = Field(default=None, max_length=200, description="Building layer")
    facilities: str = Field(default="facilities", max_length=200, description="Facility layer")
    where: str | None = Field(
        default=None, max_length=500, description="Facility filter field=value[,value…]"
    )
    direction: Literal["from_facility", "to_facility"] = "from_facility"
    max_time_s: float | None = Field(
        default=None, gt=0, le=86400, description="Emergency access limit, seconds"
    )
    snap_tolerance_m: float = Field(default=settings.TOLERANCE_M, ge=0, le=settings.MAX_TOLERANCE_M)

    def options(self) -> dict[str, Any]:
        return {
            "roads": self.roads,
            "buildings": self.buildings,
            "facilities": self.facilities,
            "where": self.where,
            "direction": self.direction,
            "snap_tolerance_m": self.snap_tolerance_m,
        }


class RoadClosureRequest(_RoadRequest):
    """Roads closed by uid, and/or every road crossing an area."""

    roads_closed: list[str] = Field(default_factory=list, max_length=1000)
    area: dict[str, Any] | None = Field(
        default=None, description="A GeoJSON geometry in CRS84 (or in coords)"
    )
    buffer_m: float = Field(default=0.0, ge=0, le=5000, description="Grow the area by metres")


RoadClosureResponse = collection_model(
    "RoadClosureResponse",
    ClosureSummary,
    doc="Closed road edges (``closed_road``) and buildings delayed or cut off "
    "(``building_delayed`` / ``building_lost``) with their times and detours.",
)


class CascadeRequest(_RoadRequest):
    """A pipe break, and the roads over the isolated pipes closed while the works last."""

    pipe: str = Field(min_length=1, max_length=200)
    distance_m: float = Field(default=10.0, ge=0, le=500)
    network: str | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="The network (default: the pipe's own, from the layer its uid names)",
    )
    pipes: str | None = Field(default=None, max_length=200)
    valves: str | None = Field(default=None, max_length=200)
    sources: str | None = Field(default=None, max_length=200)
    max_service_m: float = Field(
        default=settings.SERVICE_DISTANCE_M, ge=0, le=settings.MAX_SERVICE_DISTANCE_M
    )


CascadeResponse = collection_model(
    "CascadeResponse",
    CascadeSummary,
    doc="The pipe break's features and the closed roads' (see the two analyses).",
)


class ServiceAreaRequest(_RoadRequest):
    """The nearest facility of every building, and each facility's reach."""

    buildings_limit: int = Field(
        default=0, ge=0, le=5000, description="Also return this many slowest-served buildings"
    )


ServiceAreaResponse = collection_model(
    "ServiceAreaResponse",
    ServiceSummary,
    doc="Facilities (``facility``: buildings, within, access_m) and, when asked, the slowest "
    "buildings (``building``: facility, time_s, access_m; access point as geometry).",
    numberMatched=(int, ...),
)


class Place(BaseModel):
    """A point (lon, lat) or a feature (layer, uid)."""

    model_config = ConfigDict(extra="forbid")

    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    layer: str | None = Field(default=None, max_length=200)
    uid: str | None = Field(default=None, max_length=200)


class RouteRequest(_Request):
    """The fastest (or shortest) route between two places."""

    origin: Place
    destination: Place
    weight: Literal["time", "length"] = "time"
    closed_roads: list[str] = Field(default_factory=list, max_length=1000)
    roads: str | None = Field(default=None, max_length=200)
    crs: str = Field(default="CRS84", max_length=100, description="CRS of lon/lat places")
    snap_tolerance_m: float = Field(default=settings.TOLERANCE_M, ge=0, le=settings.MAX_TOLERANCE_M)
    max_access_m: float = Field(
        default=1000.0,
        ge=0,
        le=100_000,
        description="A place farther than this from every road is a 400, not a route",
    )


RouteResponse = collection_model(
    "RouteResponse",
    RouteSummary,
    doc="The route as one LineString Feature (none when there is no route).",
)


class _Impact(Protocol):
    def features(self, index: Any, out: GeometryOut | None) -> list[dict[str, Any]]: ...

    def summary(self) -> dict[str, Any]: ...


def _collection(
    visible: Visible,
    impact: _Impact,
    *,
    coords: str | None,
    geometry: bool,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An impact's features (in the caller's coordinates) and summary (plus ``extra``)."""
    out = GeometryOut(visible.index, coords) if geometry else None
    features = impact.features(visible.index, out)
    summary = {**impact.summary(), **(extra or {})}
    return {"type": "FeatureCollection", "features": features, "summary": summary}


@routes.post(
    "/pipe-break",
    PipeBreakResponse,
    summary="A pipe breaks: valves to close, pipes and buildings shut off (爆管分析)",
    description="The answer of `twin analyze pipe-break`. Example body: "
    '{"pipe": "water_pipes.JS000123", "failed_valves": ["valves.JSF000045"]}',
)
def pipe_break_route(visible: VisibleDep, body: PipeBreakRequest) -> dict[str, Any]:
    names = [item.name for item in visible.listing()]
    impact = pipe_break_impact(
        visible.index,
        body.pipe,
        failed_valves=body.failed_valves,
        network=body.network,
        pipes=body.pipes,
        valves=body.valves,
        sources=body.sources,
        buildings=body.buildings,
        max_service_m=body.max_service_m,
        snap_tolerance_m=body.tolerance_m,
        layers=names,
    )
    visible.touch(impact.layers.names)
    return _collection(visible, impact, coords=body.coords, geometry=body.geometry)


@routes.post(
    "/road-closure",
    RoadClosureResponse,
    summary="Roads closed: who loses access to a facility, and each detour (封路分析)",
    description="The answer of `twin analyze road-closure`. Example body: "
    '{"roads_closed": ["roads.DL000012"], "where": "poi_type=消防站", "max_time_s": 180}',
)
def road_closure_route(visible: VisibleDep, body: RoadClosureRequest) -> dict[str, Any]:
    names = [item.name for item in visible.listing()]
    area = None
    if body.area is not None:
        area = area_in_twin(visible.index, body.area, coords=body.coords, buffer_m=body.buffer_m)
    impact = road_closure_impact(
        visible.index,
        roads_closed=body.roads_closed,
        area=area,
        max_time_s=body.max_time_s,
        layers=names,
        **body.options(),
    )
    chosen = impact.layers
    visible.touch([chosen.roads, chosen.buildings, chosen.facilities])
    area_crs = None if body.area is None else read_in(None, body.coords)
    return _collection(
        visible, impact, coords=body.coords, geometry=body.geometry, extra={"area_crs": area_crs}
    )


@routes.post(
    "/cascade",
    CascadeResponse,
    summary="A pipe break and the roads its works close (级联分析)",
    description="The answer of `twin analyze cascade`. Example body: "
    '{"pipe": "water_pipes.JS000123", "distance_m": 10, "where": "poi_type=消防站"}',
)
def cascade_route(visible: VisibleDep, body: CascadeRequest) -> dict[str, Any]:
    names = [item.name for item in visible.listing()]
    impact = cascade_impact(
        visible.index,
        body.pipe,
        distance_m=body.distance_m,
        max_time_s=body.max_time_s,
        network=body.network,
        pipes=body.pipes,
        valves=body.valves,
        sources=body.sources,
        max_service_m=body.max_service_m,
        layers=names,
        **body.options(),
    )
    visible.touch([*impact.network.names, impact.layers.roads, impact.layers.facilities])
    return _collection(visible, impact, coords=body.coords, geometry=body.geometry)


@routes.post(
    "/service-area",
    ServiceAreaResponse,
    summary="Each building's nearest facility and each facility's reach (服务范围)",
    description="The answer of `twin analyze service-area`. Example body: "
    '{"where": "poi_type=消防站", "max_time_s": 240, "buildings_limit": 100}',
)
def service_area_route(visible: VisibleDep, body: ServiceAreaRequest) -> dict[str, Any]:
    names = [item.name for item in visible.listing()]
    impact = service_area_impact(
        visible.index, max_time_s=body.max_time_s, layers=names, **body.options()
    )
    visible.touch([impact.layers.roads, impact.layers.buildings, impact.layers.facilities])
    out = GeometryOut(visible.index, body.coords) if body.geometry else None
    features, total = impact.features(out, buildings=body.buildings_limit)
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberMatched": total,
        "summary": impact.summary(),
    }


def _place(visible: Any, place: Place, body: RouteRequest, names: list[str]) -> Any:
    if place.layer is not None and place.uid is not None and place.lon is None:
        layer = visible_layer(visible.index, place.layer, names)
        return layer.geometries[layer.position(place.uid)]
    if place.lon is not None and place.lat is not None and place.layer is None:
        point = query_point(visible.index, place.lon, place.lat, crs=body.crs, coords=body.coords)
        return point.geometry
    raise UsageError("a place is {lon, lat} or {layer, uid}: give one pair")


@routes.post(
    "/route",
    RouteResponse,
    summary="The fastest or shortest route between two places (路径)",
    description="The answer of `twin analyze route`. Example body: "
    '{"origin": {"lon": 104.05, "lat": 30.66}, '
    '"destination": {"layer": "facilities", "uid": "facilities.YJ0001"}}',
)
def route_route(visible: VisibleDep, body: RouteRequest) -> dict[str, Any]:
    names = [item.name for item in visible.listing()]
    origin = _place(visible, body.origin, body, names)
    destination = _place(visible, body.destination, body, names)
    found, road_layer = route_impact(
        visible.index,
        origin,
        destination,
        weight=body.weight,
        closed_roads=body.closed_roads,
        roads=body.roads,
        snap_tolerance_m=body.snap_tolerance_m,
        layers=names,
    )
    visible.touch([road_layer])
    for name, distance in (
        ("origin", found.origin_access_m),
        ("destination", found.destination_access_m),
    ):
        guards.check_access_distance(
            distance,
            what=f"the {name}",
            max_m=body.max_access_m,
            crs_note=read_in(body.crs, body.coords),
            option="max_access_m",
        )
    summary = {k: json_ready(v) for k, v in found.to_dict().items() if k != "geometry_wkt"}
    summary["road_layer"] = road_layer
    summary["point_crs"] = read_in(body.crs, body.coords)
    features = []
    if found.geometry is not None:
        out = GeometryOut(visible.index, body.coords)
        features.append(
            {
                "type": "Feature",
                "id": "route",
                "geometry": out.one(found.geometry) if body.geometry else None,
                "properties": {"result": "route", **summary},
            }
        )
    return {"type": "FeatureCollection", "features": features, "summary": summary}
