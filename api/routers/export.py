"""Download a result drawn on the one-map page as a GeoPackage (``POST /export/geopackage``).

The page holds each impact answer as GeoJSON (CRS84); this route writes it as
a GeoPackage in the twin's CRS, one layer per geometry type, so it opens in
QGIS beside the twin.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import shapely
from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from twin.errors import UsageError

from ..deps import IndexDep
from ..errors import ERROR_RESPONSES

router = APIRouter(prefix="/export", tags=["impact"], responses=ERROR_RESPONSES)

GPKG = "application/geopackage+sqlite3"
MAX_FEATURES = 100_000


class FeatureCollectionIn(BaseModel):
    """A GeoJSON FeatureCollection in CRS84, as the impact routes answer."""

    model_config = ConfigDict(extra="allow")

    type: Literal["FeatureCollection"]
    features: list[dict[str, Any]] = Field(max_length=MAX_FEATURES)


def _frame(body: FeatureCollectionIn) -> gpd.GeoDataFrame:
    rows, shapes = [], []
    for number, feature in enumerate(body.features, start=1):
        geometry = feature.get("geometry")
        if not isinstance(geometry, dict):
            raise UsageError(f"feature {number} has no GeoJSON geometry object")
        try:
            shape = shapely.geometry.shape(geometry)
        except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException):
            raise UsageError(f"feature {number}: its geometry is not valid GeoJSON") from None
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            raise UsageError(f"feature {number}: properties must be an object")
        values = {str(k): _scalar(v) for k, v in properties.items()}
        rows.append({"uid": str(feature.get("id", "")), **values})
        shapes.append(shape)
    if not rows:
        raise UsageError("the FeatureCollection has no feature to export")
    return gpd.GeoDataFrame(rows, geometry=shapes, crs="OGC:CRS84")


def _scalar(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


@router.post(
    "/geopackage",
    response_class=Response,
    responses={200: {"content": {GPKG: {"schema": {"type": "string", "format": "binary"}}}}},
    summary="A FeatureCollection (an impact answer) as a GeoPackage in the twin's CRS",
)
def geopackage(index: IndexDep, body: FeatureCollectionIn) -> Response:
    frame = _frame(body)
    if index.crs is not None:
        frame = frame.to_crs(index.crs)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "impact.gpkg"
        types = frame.geometry.geom_type.str.replace("Multi", "", regex=False)
        for kind, part in frame.groupby(types.to_numpy(), sort=True):
            part.to_file(path, layer=f"impact_{str(kind).lower()}", driver="GPKG", engine="pyogrio")
        data = path.read_bytes()
    headers = {"Content-Disposition": 'attachment; filename="impact.gpkg"'}
    return Response(data, media_type=GPKG, headers=headers)
