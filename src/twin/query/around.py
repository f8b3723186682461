"""Around (周边): everything within ``radius_m`` of a point or of a feature, by layer.

Distances are exact (shapely, in the twin's projected CRS, metres) from the
point or from the feature's own geometry (0 for what touches it); each layer's
features come nearest first, at most ``limit`` of them, with the full count.

Examples
--------
>>> from twin.query.around import around
>>> near = around(index, feature=("buildings", "buildings.JZ0000101"), radius_m=50)
>>> "buildings" in [h.layer for h in near.layers]
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
from twin.query.common import (
    GeometryOut,
    QueryPoint,
    feature_dict,
    query_point,
    visible_layer,
    visible_layers,
)
from twin.query.identify import LayerHits, point_dict
from twin.query.index import CityIndex

__all__ = ["MAX_LIMIT", "MAX_RADIUS_M", "AroundResult", "around"]

#: The largest radius around accepts, in metres.
MAX_RADIUS_M = 5000.0
#: The most features one layer returns.
MAX_LIMIT = 1000


@dataclass
class AroundResult:
    """What is around a point or a feature: the centre, the radius, hits by layer."""

    radius_m: float
    point: QueryPoint | None
    feature: tuple[str, str] | None
    searched: list[str]
    layers: list[LayerHits] = field(default_factory=list)

    def hits(self, layer: str) -> LayerHits | None:
        """The hits of ``layer``, or None when it has none."""
        return next((h for h in self.layers if h.layer == layer), None)

    def to_dict(self) -> dict[str, Any]:
        centre: dict[str, Any] = (
            {"point": point_dict(self.point)}
            if self.point is not None
            else {"feature": {"layer": self.feature[0], "uid": self.feature[1]}}  # type: ignore[index]
        )
        return {
            **centre,
            "radius_m": self.radius_m,
            "searched": self.searched,
            "layers": [hits.to_dict() for hits in self.layers],
        }


def _check(radius_m: float, limit: int) -> None:
    if not (math.isfinite(radius_m) and 0 < radius_m <= MAX_RADIUS_M):
        raise UsageError(f"radius_m {radius_m}: give metres above 0 and at most {MAX_RADIUS_M:g}")
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"limit {limit}: give 1 to {MAX_LIMIT} features per layer")


def around(
    index: CityIndex,
    lon: float | None = None,
    lat: float | None = None,
    *,
    feature: tuple[str, str] | None = None,
    radius_m: float = 100.0,
    layers: Collection[str] | None = None,
    crs: str | None = None,
    coords: str | None = None,
    limit: int = 100,
    geometry: bool = True,
) -> AroundResult:
    """Everything within ``radius_m`` of a point (``lon``, ``lat``) or of ``feature``.

    Parameters
    ----------
    index : CityIndex
        The twin snapshot.
    lon, lat : float, optional
        The centre point, longitude first (give these or ``feature``).
    feature : (layer, uid), optional
        A feature as the centre; distances are measured from its geometry and
        the feature itself is left out.
    radius_m : float, default 100
        Search radius in metres (up to 5000).
    layers : collection of str, optional
        The layers the caller may read (None: all). The centre feature's layer
        must be one of them.
    crs, coords : str, optional
        As for :func:`twin.query.identify.identify`; ``coords`` also sets the
        web-map convention of the returned geometries.
    limit : int, default 100
        The most features returned per layer (1 to 1000); ``count`` has them all.
    geometry : bool, default True
        Include each feature's geometry.

    Returns
    -------
    AroundResult
        Layers with at least one feature in reach, in the twin's layer order.
    """
    _check(radius_m, limit)
    if (feature is None) == (lon is None or lat is None):
        raise UsageError("give a point (lon and lat) or a feature (layer and uid), not both")
    point: QueryPoint | None = None
    skip: tuple[str, int] | None = None
    if feature is not None:
        centre_layer = visible_layer(index, feature[0], layers)
        row = centre_layer.position(feature[1])
        centre = centre_layer.geometries[row]
        skip = (centre_layer.name, row)
    else:
        point = query_point(index, float(lon), float(lat), crs=crs, coords=coords)  # type: ignore[arg-type]
        centre = point.geometry
    out = GeometryOut(index, coords) if geometry else None
    shown = visible_layers(index, layers)
    result = AroundResult(radius_m, point, feature, [item.name for item in shown])
    for layer in shown:
        positions = layer.within_distance(centre, radius_m)
        if skip is not None and skip[0] == layer.name:
            positions = positions[positions != skip[1]]
        if not len(positions):
            continue
        distances = shapely.distance(layer.geometries[positions], centre)
        order = np.lexsort((positions, distances))[:limit]
        extra = [{"distance_m": round(d, 3)} for d in distances[order].tolist()]
        features = feature_dict(index, layer, positions[order], out, extra)
        result.layers.append(
            LayerHits(layer.name, layer.kind, len(positions), features, len(positions) > limit)
        )
    return result
