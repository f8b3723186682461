"""Where an event is: building, parcel, grid cell (网格), district, the grid's unit, nearest assets.

A sensor's building, parcel, district and grid come from the relations
``twin build`` stored (``sensor_building``, ``sensor_parcel``,
``feature_district``, ``feature_grid``); a point (a citizen report) is
located by the same rules spatially (inside, else nearest building within
``max_distance_m``). The grid's responsible unit is its ``unit`` attribute.
The nearest pipe of each network, valve and road are found with STRtree
indexes built once per :class:`Locator`.

Examples
--------
>>> locator = Locator.from_twin(twin.Twin.open("chengdu.twin.gpkg"))  # doctest: +SKIP
>>> locator.sensor("sensors.WP000001")["unit"]  # doctest: +SKIP
'天亭街道第1网格工作站'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin.analyses import Twin
from twin.errors import FeatureNotFoundError, UsageError
from twin.sensing.sensors import SensorRegistry

__all__ = ["Locator"]

#: The network a sensor type watches (for its nearest pipe and valve).
SENSOR_NETWORK = {"water_pressure": "water", "gas_leak": "gas"}


@dataclass
class _Tree:
    frame: gpd.GeoDataFrame
    tree: shapely.STRtree = field(init=False)

    def __post_init__(self) -> None:
        self.tree = shapely.STRtree(self.frame.geometry.to_numpy())

    def nearest(
        self, point: shapely.Geometry, max_m: float | None = None
    ) -> tuple[str, float] | None:
        if not len(self.frame):
            return None
        hit = self.tree.query_nearest(point, max_distance=max_m, return_distance=True)
        if not len(hit[0]):
            return None
        i, d = int(np.asarray(hit[0]).ravel()[0]), float(np.asarray(hit[1]).ravel()[0])
        return str(self.frame.index[i]), d

    def containing(self, point: shapely.Geometry) -> str | None:
        hits = self.tree.query(point, predicate="intersects")
        return str(self.frame.index[int(hits[0])]) if len(hits) else None


@dataclass
class Locator:
    """Locates sensors and points in one twin (layers read once)."""

    registry: SensorRegistry
    relations: dict[tuple[str, str], str]
    grids: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame
    trees: dict[str, _Tree]
    max_distance_m: float = 30.0

    @classmethod
    def from_twin(cls, city: Twin, registry: SensorRegistry | None = None) -> Locator:
        """Read the twin's sensors, stored relations, grids, districts and asset layers."""
        registry = registry if registry is not None else SensorRegistry.from_twin(city)
        relations: dict[tuple[str, str], str] = {}
        for layer in registry.frame["layer"].unique():
            try:
                rows = city.relations(from_layer=str(layer))
            except UsageError:
                continue  # not built: spatial fallback
            rows = rows[rows["to_uid"].notna()]
            for rel, uid, to in zip(
                rows["relation"], rows["from_uid"], rows["to_uid"], strict=True
            ):
                relations[(str(uid), _short(str(rel)))] = str(to)
        trees: dict[str, _Tree] = {}
        grids = _kind(city, "grid")
        districts = _kind(city, "district")
        for name, kind in (
            ("building", "building"),
            ("parcel", "parcel"),
            ("road", "road"),
            ("valve", "valve"),
        ):
            trees[name] = _Tree(_kind(city, kind, columns=["network"] if kind == "valve" else []))
        pipes = _kind(city, "pipe", columns=["network"])
        for network in sorted(pipes["network"].dropna().unique()) if "network" in pipes else []:
            trees[f"pipe:{network}"] = _Tree(pipes[pipes["network"] == network])
        valves = trees["valve"].frame
        if "network" in valves.columns:
            for network in sorted(valves["network"].dropna().unique()):
                trees[f"valve:{network}"] = _Tree(valves[valves["network"] == network])
        trees["grid"], trees["district"] = _Tree(grids), _Tree(districts)
        return cls(registry, relations, grids, districts, trees)

    def sensor(self, uid: str) -> dict[str, Any]:
        """Where sensor ``uid`` is (stored relations first, spatial for what is missing)."""
        if uid not in self.registry.frame.index:
            raise FeatureNotFoundError(f"the twin has no sensor {uid!r}")
        row = self.registry.frame.loc[uid]
        found = {
            key: self.relations.get((uid, key))
            for key in ("building", "parcel", "district", "grid")
        }
        place = self._place(row.geometry, SENSOR_NETWORK.get(str(row["sensor_type"])), found)
        return {"sensor": uid, "sensor_type": row["sensor_type"], "name": row["name"], **place}

    def point(self, point: shapely.Geometry, network: str | None = None) -> dict[str, Any]:
        """Where a point (in the twin CRS) is."""
        return self._place(point, network, {})

    def _place(
        self, point: shapely.Geometry, network: str | None, found: dict[str, Any]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"x": float(point.x), "y": float(point.y)}
        for key in ("building", "parcel", "district", "grid"):
            value = found.get(key)
            if value is None and key in self.trees:
                value = self.trees[key].containing(point)
                if value is None and key == "building":
                    hit = self.trees[key].nearest(point, self.max_distance_m)
                    value = hit[0] if hit else None
            out[key] = value
        out["unit"] = _attr(self.grids, out["grid"], "unit")
        out["district_name"] = _attr(self.districts, out["district"], "name")
        nearest: dict[str, Any] = {}
        keys = [k for k in self.trees if k.startswith("pipe:")] + ["road"]
        keys.append(f"valve:{network}" if f"valve:{network}" in self.trees else "valve")
        for key in keys:
            hit = self.trees[key].nearest(point)
            if hit is not None:
                nearest[key.replace(":", "_")] = {"uid": hit[0], "distance_m": round(hit[1], 2)}
        out["nearest"] = nearest
        return out


def _short(relation: str) -> str:
    """``sensor_building`` -> ``building``, ``feature_grid`` -> ``grid``."""
    return relation.split("_", 1)[-1]


def _kind(city: Twin, kind: str, columns: list[str] | None = None) -> gpd.GeoDataFrame:
    names = city.layer_names(kind)
    frames = []
    for name in names:
        fields = city.fields(name)
        wanted = [c for c in (columns if columns is not None else fields) if c in fields]
        frames.append(city.layer(name, columns=wanted))
    if not frames:
        return gpd.GeoDataFrame({"geometry": []}, geometry="geometry", crs=city.crs)
    return gpd.GeoDataFrame(pd.concat(frames), crs=frames[0].crs)


def _attr(frame: pd.DataFrame, uid: str | None, column: str) -> Any:
    if uid is None or column not in frame.columns or uid not in frame.index:
        return None
    value = frame.at[uid, column]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value
