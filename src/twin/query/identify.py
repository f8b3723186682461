"""Identify (点查): everything at a point, across every layer the caller may read.

Polygons (parcel, building, grid cell, district, …) are reported when they
contain the point (its boundary included); points and lines (sensors, pipes,
valves, roads, …) when they lie within ``tolerance_m`` of it, nearest first.
One STRtree query per layer on the snapshot's prebuilt trees: nothing is read
from the twin file.

Examples
--------
>>> from twin.query.identify import identify
>>> import pyproj
>>> spot = city.layer("buildings").geometry.iloc[0].representative_point()
>>> lon, lat = pyproj.Transformer.from_crs(city.crs, "EPSG:4326", always_xy=True).transform(
...     spot.x, spot.y)
>>> hits = identify(index, lon, lat, layers=["buildings"])
>>> hits.uids("buildings") == [city.layer("buildings").index[0]]
True
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from twin.errors import UsageError
from twin.kinds import get_kind
from twin.query.common import (
    GeometryOut,
    QueryPoint,
    feature_dict,
    query_point,
    visible_layers,
)
from twin.query.index import CityIndex, IndexedLayer

__all__ = ["MAX_TOLERANCE_M", "IdentifyResult", "LayerHits", "identify", "point_hits"]

#: The largest tolerance identify accepts (around covers larger radii).
MAX_TOLERANCE_M = 500.0


@dataclass
class LayerHits:
    """The features one layer has for a query, nearest first.

    Attributes
    ----------
    layer, kind : str
    count : int
        How many features matched (``features`` may hold fewer, see ``truncated``).
    features : list of dict
        GeoJSON Features; ``properties`` hold the attributes and ``distance_m``.
    truncated : bool
        Whether ``features`` was cut at the query's limit.
    """

    layer: str
    kind: str
    count: int
    features: list[dict[str, Any]]
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "kind": self.kind,
            "count": self.count,
            "truncated": self.truncated,
            "features": self.features,
        }


@dataclass
class IdentifyResult:
    """What identify found: the point, the layers searched and their hits."""

    point: QueryPoint
    tolerance_m: float
    searched: list[str]
    layers: list[LayerHits] = field(default_factory=list)

    def uids(self, layer: str) -> list[str]:
        """The uids found in ``layer`` (empty when it has none or was not searched)."""
        return [f["id"] for hits in self.layers if hits.layer == layer for f in hits.features]

    def to_dict(self) -> dict[str, Any]:
        return {
            "point": point_dict(self.point),
            "tolerance_m": self.tolerance_m,
            "searched": self.searched,
            "layers": [hits.to_dict() for hits in self.layers],
        }


def point_dict(point: QueryPoint) -> dict[str, Any]:
    return {
        "lon": point.lon,
        "lat": point.lat,
        "crs": point.crs,
        "coords": point.coords,
        "x": point.x,
        "y": point.y,
    }


def is_polygonal(layer: IndexedLayer) -> bool:
    """Whether the layer's kind holds polygons (areas identify by containment)."""
    return get_kind(layer.kind).geometry == "polygon"


def point_hits(
    layer: IndexedLayer, where: shapely.Point, tolerance_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and distances of ``layer``'s features at ``where`` (twin CRS), nearest first."""
    if is_polygonal(layer):
        positions = layer.query(where, predicate="intersects")
        return positions, np.zeros(len(positions))
    positions = layer.within_distance(where, tolerance_m)
    if not len(positions):
        return positions, np.zeros(0)
    distances = shapely.distance(layer.geometries[positions], where)
    order = np.lexsort((positions, distances))
    return positions[order], distances[order]


def identify(
    index: CityIndex,
    lon: float,
    lat: float,
    *,
    layers: Collection[str] | None = None,
    crs: str | None = None,
    coords: str | None = None,
    tolerance_m: float = 10.0,
    geometry: bool = True,
) -> IdentifyResult:
    """Everything at a point: containing polygons, and points and lines within a tolerance.

    Parameters
    ----------
    index : CityIndex
        The twin snapshot.
    lon, lat : float
        The point, longitude first (see :func:`twin.query.common.query_point`).
    layers : collection of str, optional
        The layers the caller may read; others are never searched (None: all).
    crs : str, default "CRS84"
        ``CRS84``, ``EPSG:4326`` or ``EPSG:4490``.
    coords : {"wgs84", "gcj02", "bd09"}, optional
        Web-map convention of the point; geometries come back in the same one.
    tolerance_m : float, default 10
        How far a point or line feature may be from the point, in metres (0 to 500).
    geometry : bool, default True
        Include each feature's geometry.

    Returns
    -------
    IdentifyResult
        Layers with at least one hit, in the twin's layer order.
    """
    if not (math.isfinite(tolerance_m) and 0 <= tolerance_m <= MAX_TOLERANCE_M):
        raise UsageError(
            f"tolerance_m {tolerance_m}: give metres from 0 to {MAX_TOLERANCE_M:g} "
            "(use around for larger radii)"
        )
    point = query_point(index, lon, lat, crs=crs, coords=coords)
    out = GeometryOut(index, point.coords) if geometry else None
    where = point.geometry
    shown = visible_layers(index, layers)
    result = IdentifyResult(
        point=point, tolerance_m=tolerance_m, searched=[item.name for item in shown]
    )
    for layer in shown:
        positions, distances = point_hits(layer, where, tolerance_m)
        if not len(positions):
            continue
        extra = [{"distance_m": round(d, 3)} for d in distances.tolist()]
        features = feature_dict(index, layer, positions, out, extra)
        result.layers.append(LayerHits(layer.name, layer.kind, len(features), features))
    return result
