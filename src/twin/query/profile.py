"""Profile (档案): one feature with everything the twin relates to it.

- a **parcel**: its buildings and sensors (the ``twin build`` relations), its
  grid cell and district, its indicators (FAR, coverage, heights, sensors…, the
  values :func:`twin.query.statistics.statistics` gives it) and its plan
  compliance (:func:`twin.compliance.plan_compliance` rows about it);
- a **building**: its parcel, grid cell and district, the sensors on it, its
  service connection on each visible pipe network (the nearest pipe of that
  network within ``max_service_m``, as :func:`twin.network.service_connections`
  joins it) and its road access (the nearest road and the point on it);
- any other feature: the features it belongs to (building, parcel, grid cell,
  district).

Only layers the caller may read appear, and a pipe network is used only when
its pipe layer is visible.

Examples
--------
>>> from twin.query.profile import profile
>>> card = profile(index, "buildings", "buildings.JZ0000101")
>>> "grid" in [g.role for g in card.related]
True
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely

from twin import settings
from twin.compliance import plan_compliance
from twin.errors import UsageError
from twin.query._relations import Related, related_from, related_to
from twin.query.common import GeometryOut, derived, feature_dict, json_value, visible_layer
from twin.query.index import CityIndex, IndexedLayer
from twin.query.statistics import zone_indicators

__all__ = ["BACKWARD", "FORWARD", "Profile", "RelatedGroup", "profile"]

#: Relations from a feature of a kind to what it belongs to: (relation, target kind, role).
FORWARD: dict[str, list[tuple[str, str, str]]] = {
    "building": [("building_parcel", "parcel", "parcel")],
    "sensor": [("sensor_building", "building", "building"), ("sensor_parcel", "parcel", "parcel")],
}
#: Relations to a feature from what belongs to it: (relation, source kind, role).
BACKWARD: dict[str, list[tuple[str, str, str]]] = {
    "parcel": [
        ("building_parcel", "building", "buildings"),
        ("sensor_parcel", "sensor", "sensors"),
    ],
    "building": [("sensor_building", "sensor", "sensors")],
}
_ZONES = [("feature_district", "district", "district"), ("feature_grid", "grid", "grid")]


@dataclass
class RelatedGroup:
    """Features related to the profiled one through one relation with one layer."""

    role: str  # parcel, building, buildings, sensors, grid, district
    relation: str
    layer: str
    features: list[dict[str, Any]]

    @property
    def uids(self) -> list[str]:
        return [f["id"] for f in self.features]

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "relation": self.relation,
            "layer": self.layer,
            "features": self.features,
        }


@dataclass
class Profile:
    """A feature and what the twin relates to it (see the module docstring)."""

    layer: str
    kind: str
    feature: dict[str, Any]
    related: list[RelatedGroup] = field(default_factory=list)
    indicators: dict[str, Any] | None = None
    compliance: list[dict[str, Any]] | None = None
    service_connections: list[dict[str, Any]] | None = None
    road_access: list[dict[str, Any]] | None = None

    def group(self, role: str) -> list[str]:
        """The uids related in ``role`` (all layers together)."""
        return [uid for g in self.related if g.role == role for uid in g.uids]

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "kind": self.kind,
            "feature": self.feature,
            "related": [g.to_dict() for g in self.related],
            "indicators": self.indicators,
            "compliance": self.compliance,
            "service_connections": self.service_connections,
            "road_access": self.road_access,
        }


def profile(
    index: CityIndex,
    layer: str,
    uid: str,
    *,
    layers: Collection[str] | None = None,
    coords: str | None = None,
    geometry: bool = True,
    floor_height_m: float = 3.0,
    max_service_m: float = settings.SERVICE_DISTANCE_M,
    max_access_m: float = 200.0,
) -> Profile:
    """The profile of feature ``uid`` of ``layer``.

    Parameters
    ----------
    index : CityIndex
        The twin snapshot.
    layer, uid : str
        The feature.
    layers : collection of str, optional
        The layers the caller may read (None: all); ``layer`` must be one.
    coords : {"wgs84", "gcj02", "bd09"}, optional
        Web-map convention of the returned geometries.
    geometry : bool, default True
        Include geometries.
    floor_height_m : float, default 3
        Storey height for the indicators and the height check.
    max_service_m : float, default 50
        How far a building may be from the pipe serving it.
    max_access_m : float, default 200
        How far a building may be from the road giving it access.

    Returns
    -------
    Profile
    """
    for name, value in (("max_service_m", max_service_m), ("max_access_m", max_access_m)):
        if not (math.isfinite(value) and 0 <= value <= 5000):
            raise UsageError(f"{name} {value}: give metres from 0 to 5000")
    item = visible_layer(index, layer, layers)
    row = item.position(uid)
    out = GeometryOut(index, coords) if geometry else None
    card = Profile(item.name, item.kind, feature_dict(index, item, [row], out)[0])
    card.related = _related(index, item, uid, layers, out)
    if item.kind == "parcel":
        card.indicators, zone_rows, rows = zone_indicators(
            index, item, uid, layers=layers, floor_height_m=floor_height_m
        )
        card.compliance = _compliance(index, item, uid, zone_rows, rows, layers, floor_height_m)
    elif item.kind == "building":
        card.service_connections = _services(index, item, row, layers, max_service_m)
        card.road_access = _access(index, item, row, layers, max_access_m, out)
    return card


def _related(
    index: CityIndex,
    item: IndexedLayer,
    uid: str,
    layers: Collection[str] | None,
    out: GeometryOut | None,
) -> list[RelatedGroup]:
    groups = []
    forward = FORWARD.get(item.kind, [])
    if item.kind != "district":
        forward = [*forward, *(z for z in _ZONES if not (item.kind == "grid" and z[1] == "grid"))]
    for relation, kind, role in forward:
        for target in _visible_of_kind(index, kind, layers, skip=item.name):
            found = related_to(index, relation, item, target, uid)
            if found is not None:
                groups.append(_group(index, role, relation, target, [found], out))
    for relation, kind, role in BACKWARD.get(item.kind, []):
        for source in _visible_of_kind(index, kind, layers, skip=item.name):
            found_all = related_from(index, relation, source, item, uid)
            if found_all:
                groups.append(_group(index, role, relation, source, found_all, out))
    return groups


def _visible_of_kind(
    index: CityIndex, kind: str, layers: Collection[str] | None, *, skip: str
) -> list[IndexedLayer]:
    return [
        item
        for item in index
        if item.kind == kind and item.name != skip and (layers is None or item.name in layers)
    ]


def _group(
    index: CityIndex,
    role: str,
    relation: str,
    layer: IndexedLayer,
    found: list[Related],
    out: GeometryOut | None,
) -> RelatedGroup:
    present = [r for r in found if r.uid in layer.frame.index]  # the build may be older
    positions = [layer.position(r.uid) for r in present]
    extra = [{"share": r.share, "distance_m": r.distance_m} for r in present]
    return RelatedGroup(
        role, relation, layer.name, feature_dict(index, layer, positions, out, extra)
    )


def _compliance(
    index: CityIndex,
    parcels: IndexedLayer,
    uid: str,
    zone_rows: np.ndarray,
    rows: dict[str, np.ndarray],
    layers: Collection[str] | None,
    floor_height_m: float,
) -> list[dict[str, Any]]:
    """The plan-compliance rows about the parcel or the buildings whose parcel it is."""
    found = []
    zones = parcels.frame.iloc[zone_rows]
    for buildings in _visible_of_kind(index, "building", layers, skip=parcels.name):
        table = plan_compliance(
            zones,
            buildings.frame.iloc[rows.get(buildings.name, np.empty(0, dtype=np.intp))],
            floor_height_m=floor_height_m,
            parcel_layer=parcels.name,
            building_layer=buildings.name,
        )
        mine = table[(table["uid"] == uid) | (table["parcel_uid"] == uid)]
        for record in mine.drop(columns="geometry").to_dict("records"):
            found.append({str(k): json_value(v) for k, v in record.items()})
    return found


# --------------------------------------------------------------------------- building


def _network_pipes(index: CityIndex, pipes: IndexedLayer, network: str) -> tuple[Any, Any]:
    """Uids and STRtree of the pipes of one network (as a PipeNetwork selects them)."""

    def build() -> tuple[Any, Any]:
        keep = (pipes.frame["network"] == network).fillna(False).to_numpy(dtype=bool)
        return pipes.frame.index.to_numpy(dtype=object)[keep], shapely.STRtree(
            pipes.geometries[keep]
        )

    return derived(index, ("network_pipes", pipes.name, network), build)


def _networks_of(index: CityIndex, pipes: IndexedLayer) -> list[str]:
    def build() -> list[str]:
        if "network" not in pipes.frame.columns:
            return []
        return sorted(str(v) for v in pd.unique(pipes.frame["network"].dropna()))

    return derived(index, ("networks", pipes.name), build)


def _services(
    index: CityIndex,
    buildings: IndexedLayer,
    row: int,
    layers: Collection[str] | None,
    max_service_m: float,
) -> list[dict[str, Any]]:
    """The pipe serving the building on every visible network (nearest within reach)."""
    found = []
    footprint = buildings.geometries[row]
    for pipes in _visible_of_kind(index, "pipe", layers, skip=buildings.name):
        for network in _networks_of(index, pipes):
            uids, tree = _network_pipes(index, pipes, network)
            hit, distance = tree.query_nearest(
                footprint, max_distance=max_service_m, all_matches=False, return_distance=True
            )
            entry: dict[str, Any] = {"network": network, "pipe_layer": pipes.name}
            if len(hit):
                entry.update(pipe=str(uids[hit[0]]), distance_m=round(float(distance[0]), 3))
            else:
                entry.update(pipe=None, distance_m=None)
            found.append(entry)
    return found


def _access(
    index: CityIndex,
    buildings: IndexedLayer,
    row: int,
    layers: Collection[str] | None,
    max_access_m: float,
    out: GeometryOut | None,
) -> list[dict[str, Any]]:
    """The nearest road of every visible road layer, with the access point on it."""
    found = []
    footprint = buildings.geometries[row]
    for roads in _visible_of_kind(index, "road", layers, skip=buildings.name):
        hit, distance = roads.tree.query_nearest(
            footprint, max_distance=max_access_m, all_matches=False, return_distance=True
        )
        entry: dict[str, Any] = {"road_layer": roads.name, "road": None, "distance_m": None}
        if len(hit):
            line = shapely.shortest_line(footprint, roads.geometries[hit[0]])
            point = shapely.get_point(line, 1)
            entry.update(
                road=str(roads.frame.index[hit[0]]),
                name=json_value(roads.frame["name"].iat[hit[0]])
                if "name" in roads.frame.columns
                else None,
                distance_m=round(float(distance[0]), 3),
                access_point=None if out is None else out.one(point),
            )
        found.append(entry)
    return found
