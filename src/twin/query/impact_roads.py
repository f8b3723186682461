"""Road impact analyses on a snapshot: closure, cascade, service areas and routes.

The road network and its links to buildings and facilities
(:class:`twin.network.RoadAccess`, which also caches the no-closure answer)
are built by the CLI's own functions from the snapshot's frames, once per
snapshot and set of layers; each request then only masks edges. Answers are
GeoJSON features with a ``result`` property plus the library's summary, the
same as ``twin analyze road-closure / cascade / service-area / route --json``.

Examples
--------
>>> from twin.query.impact_roads import road_closure_impact
>>> closure = road_closure_impact(index, roads_closed=["roads.DL000002"])
>>> closure.result.summary.closed_roads
1
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import shapely

from twin import settings
from twin.errors import UsageError
from twin.network import (
    DEFAULT_SPEEDS,
    CascadeResult,
    ClosureResult,
    RoadAccess,
    RoadNetwork,
    Route,
    ServiceAreas,
    cascade,
    road_access,
    road_closure,
    road_network,
    route,
    select_facilities,
    service_areas,
)
from twin.query.common import GeometryOut, derived, json_ready, json_value, visible_layer
from twin.query.impact import NetworkLayers, impact_features, only_visible_layer, pipe_break_impact
from twin.query.index import CityIndex
from twin.query.statistics import VisibleTwin
from twin.settings import Direction, Weight

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = [
    "RoadLayers",
    "cascade_impact",
    "road_closure_impact",
    "route_impact",
    "service_area_impact",
]


@dataclass(frozen=True)
class RoadLayers:
    """The layers and options a road analysis reads."""

    roads: str
    buildings: str
    facilities: str
    where: str | None = None
    direction: str = "from_facility"
    snap_tolerance_m: float = settings.TOLERANCE_M


def road_layers(
    index: CityIndex,
    *,
    roads: str | None = None,
    buildings: str | None = None,
    facilities: str = "facilities",
    where: str | None = None,
    direction: str = "from_facility",
    snap_tolerance_m: float = settings.TOLERANCE_M,
    layers: Collection[str] | None = None,
) -> RoadLayers:
    """Resolve (and check the visibility of) the layers of a road analysis."""
    if not (math.isfinite(snap_tolerance_m) and 0 <= snap_tolerance_m <= settings.MAX_TOLERANCE_M):
        raise UsageError(f"snap tolerance {snap_tolerance_m}: give metres from 0 to 50")
    for name in (roads, buildings, facilities):
        if name:
            visible_layer(index, name, layers)
    road_layer = roads or only_visible_layer(index, "road", layers)
    building_layer = buildings or only_visible_layer(index, "building", layers)
    if road_layer is None or building_layer is None:
        raise UsageError("the twin needs a road layer and a building layer for road analyses")
    return RoadLayers(
        road_layer, building_layer, facilities, where, direction, float(snap_tolerance_m)
    )


def road_network_of(index: CityIndex, chosen: RoadLayers) -> RoadNetwork:
    """The snapshot's road network (built once per snapshot, layer and tolerance)."""

    def build() -> RoadNetwork:
        view = cast("Twin", VisibleTwin(index, [chosen.roads]))
        return road_network(
            view, chosen.roads, speeds=DEFAULT_SPEEDS, snap_tolerance_m=chosen.snap_tolerance_m
        )

    return derived(index, ("road_network", chosen.roads, chosen.snap_tolerance_m), build)


def access_of(index: CityIndex, chosen: RoadLayers) -> RoadAccess:
    """Buildings and facilities linked to the road network (once per snapshot and key)."""

    def build() -> RoadAccess:
        net = road_network_of(index, chosen)
        facilities = select_facilities(index.layer(chosen.facilities).frame, chosen.where)
        buildings = index.layer(chosen.buildings).frame
        return road_access(net, buildings, facilities, direction=cast(Direction, chosen.direction))

    return derived(index, ("road_access", chosen), build)


def area_in_twin(
    index: CityIndex, geometry: dict[str, Any], *, coords: str | None, buffer_m: float = 0.0
) -> shapely.Geometry:
    """A GeoJSON geometry in CRS84 (or a web-map convention) taken to the twin CRS."""
    from twin import webcoords
    from twin.query.common import normalise_coords

    try:
        shape = shapely.geometry.shape(geometry)
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.ShapelyError):
        raise UsageError(
            "area must be a GeoJSON geometry: Polygon, MultiPolygon, LineString, Point, … "
            f"(got type {str(geometry.get('type'))[:40]!r})"
            if isinstance(geometry, dict)
            else "area must be a GeoJSON geometry such as a Polygon"
        ) from None
    if shape.is_empty or not shape.is_valid:
        raise UsageError("area must be a valid, non-empty GeoJSON geometry")
    lon_min, lat_min, lon_max, lat_max = shape.bounds
    if not (-180 <= lon_min <= lon_max <= 180 and -90 <= lat_min <= lat_max <= 90):
        raise UsageError("area coordinates must be longitude/latitude degrees (CRS84)")
    convention = normalise_coords(coords)
    if convention != "wgs84":
        shape = webcoords.geometries_to_wgs84(np.array([shape], dtype=object), convention)[0]
    to_twin = index.to_twin("OGC:CRS84")

    def forward(xy: np.ndarray) -> np.ndarray:
        x, y = to_twin.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    area = shapely.transform(shape, forward)
    if not (math.isfinite(buffer_m) and 0 <= buffer_m <= 5000):
        raise UsageError(f"buffer_m {buffer_m}: give metres from 0 to 5000")
    return area.buffer(buffer_m) if buffer_m else area


# --------------------------------------------------------------------------- features


def closure_features(
    index: CityIndex, chosen: RoadLayers, result: ClosureResult, out: GeometryOut | None
) -> list[dict[str, Any]]:
    """Closed road edges (``closed_road``) and buildings delayed or cut off
    (``building_delayed`` / ``building_lost``, footprints as geometry)."""
    closed = result.closed.copy()
    closed.index = pd.Index(
        [f"{road}#{k}" for k, road in enumerate(closed["road"].astype(str))], name="uid"
    )
    found = impact_features(closed, "closed_road", chosen.roads, out)
    table = result.touched  # the buildings the closure may change: every affected one
    hit = (table["detour_s"] > 1.0).to_numpy() | table["lost"].to_numpy()
    affected = table.loc[hit]
    if len(affected):
        footprints = index.layer(chosen.buildings).frame
        rows = footprints.index.get_indexer(affected.index)
        affected = affected.assign(geometry=footprints.geometry.array[rows])
        kinds = ["building_lost" if lost else "building_delayed" for lost in affected["lost"]]
        found += impact_features(affected, kinds, chosen.buildings, out)
    return found


@dataclass
class ClosureImpact:
    """A road closure on a snapshot: the library's result and the layers it used."""

    result: ClosureResult
    layers: RoadLayers

    def summary(self) -> dict[str, Any]:
        return {k: json_value(v) for k, v in self.result.summary.to_dict().items()}

    def features(self, index: CityIndex, out: GeometryOut | None) -> list[dict[str, Any]]:
        return closure_features(index, self.layers, self.result, out)


def road_closure_impact(
    index: CityIndex,
    *,
    roads_closed: Sequence[str] = (),
    area: shapely.Geometry | None = None,
    max_time_s: float | None = None,
    layers: Collection[str] | None = None,
    **options: Any,
) -> ClosureImpact:
    """Close roads (uids) and/or every road crossing ``area`` (twin CRS); measure detours.

    ``options`` are those of :func:`road_layers` (roads, buildings, facilities,
    where, direction, snap_tolerance_m).
    """
    chosen = road_layers(index, layers=layers, **options)
    access = access_of(index, chosen)
    result = road_closure(access, roads=list(roads_closed), area=area, max_time_s=max_time_s)
    return ClosureImpact(result, chosen)


@dataclass
class CascadeImpact:
    """A pipe break and the road closures its works cause."""

    result: CascadeResult
    layers: RoadLayers
    network: NetworkLayers

    def summary(self) -> dict[str, Any]:
        return cast("dict[str, Any]", json_ready(self.result.to_dict()))

    def features(self, index: CityIndex, out: GeometryOut | None) -> list[dict[str, Any]]:
        broken = self.result.pipe_break
        found = impact_features(
            broken.valves_to_close,
            [
                "valve_to_close" if r == "close" else "valve_already_closed"
                for r in broken.valves_to_close["role"].astype(str)
            ],
            self.network.valves,
            out,
        )
        found += impact_features(broken.isolated_pipes, "isolated_pipe", self.network.pipes, out)
        found += impact_features(broken.cut_off_pipes, "cut_off_pipe", self.network.pipes, out)
        if self.result.closure is not None:
            found += closure_features(index, self.layers, self.result.closure, out)
        return found


def cascade_impact(
    index: CityIndex,
    pipe: str,
    *,
    distance_m: float = 10.0,
    max_time_s: float | None = None,
    network: str | None = None,
    pipes: str | None = None,
    valves: str | None = None,
    sources: str | None = None,
    max_service_m: float = settings.SERVICE_DISTANCE_M,
    layers: Collection[str] | None = None,
    **options: Any,
) -> CascadeImpact:
    """A break on ``pipe`` and the roads within ``distance_m`` of the isolated pipes closed.

    ``options`` are those of :func:`road_layers`; the building layer is shared by both.
    """
    chosen = road_layers(index, layers=layers, **options)
    broken = pipe_break_impact(
        index,
        pipe,
        network=network,
        pipes=pipes,
        valves=valves,
        sources=sources,
        buildings=chosen.buildings,
        max_service_m=max_service_m,
        snap_tolerance_m=chosen.snap_tolerance_m,
        layers=layers,
    )
    if not (math.isfinite(distance_m) and 0 <= distance_m <= 500):
        raise UsageError(f"distance_m {distance_m}: give metres from 0 to 500")
    result = cascade(
        broken.result, access_of(index, chosen), distance_m=distance_m, max_time_s=max_time_s
    )
    return CascadeImpact(result, chosen, broken.layers)


@dataclass
class ServiceAreaImpact:
    """Service areas of the facilities: the library's result and the layers it used."""

    result: ServiceAreas
    layers: RoadLayers

    def summary(self) -> dict[str, Any]:
        return cast("dict[str, Any]", json_ready(self.result.summary.to_dict()))

    def features(
        self, out: GeometryOut | None, *, buildings: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """Facilities (``facility``) and the ``buildings`` slowest-served buildings
        (``building``, access point as geometry); also how many buildings there are."""
        found = impact_features(self.result.facilities, "facility", self.layers.facilities, out)
        table = self.result.buildings
        if buildings:
            slowest = table.sort_values("time_s", ascending=False, kind="stable").head(buildings)
            found += impact_features(slowest, "building", self.layers.buildings, out)
        return found, len(table)


def service_area_impact(
    index: CityIndex,
    *,
    max_time_s: float | None = None,
    layers: Collection[str] | None = None,
    **options: Any,
) -> ServiceAreaImpact:
    """The nearest facility of every building and each facility's reach within ``max_time_s``."""
    chosen = road_layers(index, layers=layers, **options)
    return ServiceAreaImpact(service_areas(access_of(index, chosen), max_time_s=max_time_s), chosen)


def route_impact(
    index: CityIndex,
    origin: shapely.Geometry,
    destination: shapely.Geometry,
    *,
    weight: str = "time",
    closed_roads: Sequence[str] = (),
    roads: str | None = None,
    snap_tolerance_m: float = settings.TOLERANCE_M,
    layers: Collection[str] | None = None,
) -> tuple[Route, str]:
    """The fastest (or shortest) route between two twin-CRS geometries; and the road layer."""
    road_layer = roads or only_visible_layer(index, "road", layers)
    if road_layer is None:
        raise UsageError("the twin has no road layer to route on")
    visible_layer(index, road_layer, layers)
    chosen = RoadLayers(road_layer, "", "", snap_tolerance_m=float(snap_tolerance_m))
    net = road_network_of(index, chosen)
    return route(
        net, origin, destination, weight=cast(Weight, weight), closed_roads=list(closed_roads)
    ), road_layer
