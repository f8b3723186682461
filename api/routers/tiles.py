"""Vector tiles of every layer the caller may read (OGC API - Tiles, WebMercatorQuad).

``/tiles/{layer}/{z}/{x}/{y}.pbf`` (XYZ) and the OGC API - Tiles path
``/collections/{layer}/tiles/WebMercatorQuad/{z}/{row}/{col}`` give the same
Mapbox Vector Tile, cut by :mod:`twin.tiles` from the snapshot in memory;
``/tiles/{layer}.json`` is the layer's TileJSON 3.0. ``/tileMatrixSets``,
``/tileMatrixSets/WebMercatorQuad`` (OGC 2D Tile Matrix Set 2.0) and
``/collections/{layer}/tiles[/WebMercatorQuad]`` are the OGC API - Tiles
metadata of the same tiles. A restricted layer exists
only for a key that may read it (the same 404 as an unknown layer), and each
tile of it read is written to the audit log.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from twin.errors import UsageError
from twin.mercator import carried_mercator
from twin.query.common import derived
from twin.query.index import CityIndex, IndexedLayer
from twin.tiles import (
    MAX_ZOOM,
    ORIGIN,
    TileSource,
    tile_fields,
    zoom_range,
)

from ..deps import VisibleDep
from ..errors import ERROR_RESPONSES
from ..links import base_url
from ..preparing import LULL, Job, Worker

log = logging.getLogger("twin_api.tiles")
router = APIRouter(tags=["vector tiles"], responses=ERROR_RESPONSES)

MVT = "application/vnd.mapbox-vector-tile"
TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {MVT: {"schema": {"type": "string", "format": "binary"}}}},
    204: {"description": "No feature in this tile"},
}

Zoom = Annotated[int, Path(ge=0, le=MAX_ZOOM, description="Zoom level (tile matrix)")]
Index = Annotated[int, Path(ge=0, le=(1 << MAX_ZOOM) - 1)]
MatrixSetId = Annotated[str, Path(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]


class VectorLayer(BaseModel):
    id: str
    fields: dict[str, str]
    minzoom: int
    maxzoom: int
    description: str | None = None


class TileJSON(BaseModel):
    """TileJSON 3.0.0 of one layer's vector tiles."""

    tilejson: str
    name: str
    tiles: list[str]
    minzoom: int
    maxzoom: int
    bounds: list[float]
    center: list[float]
    scheme: str
    vector_layers: list[VectorLayer]
    kind: str = Field(description="The layer's kind (building, road, pipe, …)")
    category: str = Field(description="CIM category (时空基础, 物联感知, …)")
    category_zh: str
    classification: str


class TilesetItem(BaseModel):
    layer: str
    kind: str
    category: str
    category_zh: str
    classification: str
    count: int
    tilejson: str
    tiles: str
    bounds: list[float] = Field(description="Longitude/latitude box of the layer")
    minzoom: int
    maxzoom: int


class TwinCRS(BaseModel):
    id: str = Field(description="The twin's projected CRS, e.g. EPSG:4544")
    proj4: str | None = Field(description="Its PROJ string, for coordinate read-outs")


class TilesetList(BaseModel):
    """The layers the caller may read as vector tiles, in the twin's layer order."""

    tilesets: list[TilesetItem]
    crs: TwinCRS


def tile_source(
    index: CityIndex,
    layer: IndexedLayer,
    pause: Callable[[], object] | None = None,
    older: TileSource | None = None,
) -> TileSource:
    """The layer made ready for tiling, once per snapshot (``pause()`` between two
    batches of its projection, when this call is the one that prepares it).

    A whole layer's source is kept with the layer (:func:`whole_source`): a layer a
    reload kept is not prepared again, and a patched one takes its older layer's
    projected geometries (``older``: that layer's source, else the one kept).

    A call without ``pause`` (a tile request) marks the layer wanted: a
    preparation of it already under way with pauses (:func:`warm`) goes on
    without them, so the request does not wait out a busy service's pauses.
    """
    wanted = (id(index), layer.name)
    if pause is None:
        _WANTED.add(wanted)

    def build() -> TileSource:
        if _province(index):  # geometries decoded and projected per tile, never all kept
            return TileSource.from_compact(
                layer.name,
                layer.kind,
                layer.attributes,
                layer.geometries,
                crs=index.crs,
                tree=_Candidates(layer),
            )
        return whole_source(layer, pause, older)

    try:
        return derived(index, ("tile-source", layer.name), build)
    finally:
        if pause is None:
            _WANTED.discard(wanted)


#: (snapshot id, layer name) of the layers a tile request is waiting for.
_WANTED: set[tuple[int, str]] = set()


#: Whole layers' tile sources, by layer snapshot (a reload keeps most layers as they are).
_SOURCES: weakref.WeakKeyDictionary[IndexedLayer, TileSource] = weakref.WeakKeyDictionary()


def whole_source(
    layer: IndexedLayer,
    pause: Callable[[], object] | None = None,
    older: TileSource | None = None,
) -> TileSource:
    """The tile source of a whole (not compact) layer, made once per layer snapshot.

    A layer patched from an older one (:class:`twin.query.delta.Lineage`) whose
    source was made takes that source's EPSG:3857 geometries for its unchanged
    rows (:func:`twin.mercator.carried_mercator`): only the rows read are projected,
    and the older geometries are not freed a million at a time (half a second
    holding the interpreter lock, in whichever thread let the old snapshot go).

    Examples
    --------
    >>> layer = index.layer("roads")
    >>> whole_source(layer) is whole_source(layer)
    True
    """
    found = _SOURCES.get(layer)
    if found is not None:
        return found
    lineage = layer.lineage
    if older is None:
        older = _base_source(layer)
    mercator = None
    projected = None if older is None else older.mercator
    if (
        lineage is not None
        and isinstance(projected, np.ndarray)
        and len(projected) == lineage.base_rows
    ):
        geometries = np.asarray(layer.geometries, dtype=object)
        crs = layer.frame.crs
        read = lineage.read_rows
        mercator = carried_mercator(projected, lineage.positions, read, geometries, crs, pause)
    found = TileSource.from_frame(
        layer.name, layer.kind, layer.frame, tree=layer.tree, pause=pause, mercator=mercator
    )
    _SOURCES[layer] = found
    return found


def _older_sources(index: CityIndex) -> dict[str, TileSource]:
    """The made tile sources of the older layers ``index``'s patched layers come from.

    Held by the preparation of a new snapshot until its own are made: the old
    snapshot may be let go first, and its sources with it.
    """
    found = {}
    for layer in index:
        source = _base_source(layer)
        if source is not None:
            found[layer.name] = source
    return found


def _base_source(layer: IndexedLayer) -> TileSource | None:
    """The made tile source of the older layer ``layer`` was patched from, if any."""
    base = None if layer.lineage is None else layer.lineage.base()
    return None if base is None else _SOURCES.get(base)


def _province(index: CityIndex) -> bool:
    """Whether the snapshot holds compact layers: then memory comes before tile speed."""
    return any(layer.compact for layer in index)


class _Candidates:
    """A layer's spatial index (twin CRS) as :class:`~twin.tiles.TileSource` queries it."""

    def __init__(self, layer: IndexedLayer) -> None:
        self.layer = layer

    def query(self, geometry: Any) -> Any:
        return self.layer.query(geometry, predicate=None)


_WARM_LOCK = threading.Lock()
_NEWEST: dict[object, int] = {}  # twin path -> id of the newest snapshot being warmed


def warm(index: CityIndex) -> Job:
    """Prepare every layer of a new snapshot for tiling on the process's tile-sources thread.

    Called as each snapshot loads, so start-up is not held up; a tile request
    arriving while a layer is still being prepared waits for that same
    preparation (:func:`tile_source` builds each layer once per snapshot).
    When a newer snapshot of the same file is warmed, this one stops after the
    layer under way. A snapshot holding compact layers (a province, see
    :mod:`twin.query.compact`) is not prepared ahead: each layer is on its
    first tile request, and projected tile by tile. Returns the queued
    :class:`~twin_api.preparing.Job` (``join()`` waits for it).

    Examples
    --------
    >>> warm(index).join()  # doctest: +SKIP
    """

    with _WARM_LOCK:
        _NEWEST[index.path] = id(index)

    province = _province(index)  # memory first: each layer prepared on its first tile request
    older = {} if province else _older_sources(index)

    def run() -> None:
        for layer in [] if province else list(index.layers.values()):
            # A layer is one long piece of work holding the interpreter lock for much of
            # it: it waits for a pause in the requests (a tile asked for meanwhile is
            # prepared on demand, as without this).
            LULL.wait(patience_s=TILE_PATIENCE_S)
            with _WARM_LOCK:
                if _NEWEST.get(index.path) != id(index):
                    return  # a newer snapshot of the file came in: prepare that one instead
            started = time.perf_counter()
            try:
                pause = _between_batches((id(index), layer.name))
                tile_source(index, layer, pause, older.pop(layer.name, None))
            except Exception:  # the request for a tile of it reports the failure
                log.exception("preparing %s for tiling failed", layer.name)
                continue
            log.info("%s ready for tiling in %.1f s", layer.name, time.perf_counter() - started)

    return _PREPARING.submit(run)


def _yield_cpu() -> None:
    """Run this thread at a lower priority (Linux nice 10, this thread only).

    Preparing a million buildings for tiling takes seconds of CPU; at full
    priority, the first worker to swap in a re-imported snapshot would slow
    the other workers still making theirs, and requests. Tiles asked for
    meanwhile are still prepared on demand (:func:`tile_source`).
    """
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _between_batches(layer: tuple[int, str]) -> Callable[[], object]:
    """A pause between two batches of a layer's projection: requests go first,
    until a tile request waits for this layer (``layer``: snapshot id, name)."""

    def pause() -> float:
        return LULL.wait(patience_s=BATCH_PATIENCE_S, until=lambda: layer in _WANTED)

    return pause


#: The thread preparing tile sources, one for the process (see :mod:`twin_api.preparing`).
_PREPARING = Worker("tile-sources", setup=_yield_cpu)

#: Under a load with no pause, a layer is prepared ahead after this many seconds anyway.
TILE_PATIENCE_S = 30.0
#: Under a load with no pause, the next batch of a layer's projection goes after this long
#: (a tile request for the layer ends the wait at once: see tile_source).
BATCH_PATIENCE_S = 1.0


def _bounds(index: CityIndex, layer: IndexedLayer) -> list[float]:
    """The layer's longitude/latitude box, from its stored extent (no tiling needed)."""
    extent = layer.info.extent
    if extent is None:
        if len(layer) == 0:
            return [0.0, 0.0, 0.0, 0.0]
        extent = tuple(float(v) for v in layer.frame.total_bounds)  # type: ignore[assignment]
    assert extent is not None
    box = index.from_twin("OGC:CRS84").transform_bounds(*extent, densify_pts=21)
    return [float(v) for v in box]


def _base(request: Request) -> str:
    return base_url(request)


def _template(request: Request, name: str) -> str:
    return f"{_base(request)}/tiles/{name}/{{z}}/{{x}}/{{y}}.pbf"


def _tile(visible: VisibleDep, layer: str, z: int, x: int, y: int) -> Response:
    found = visible.layer(layer)
    data = tile_source(visible.index, found).tile(z, x, y)
    cache = "private, max-age=30" if found.classification.rank > 0 else "public, max-age=30"
    if not data:
        return Response(status_code=204, headers={"Cache-Control": cache})
    return Response(data, media_type=MVT, headers={"Cache-Control": cache})


@router.get("/tiles", response_model=TilesetList, summary="Vector tilesets (矢量瓦片)")
def tilesets(request: Request, visible: VisibleDep) -> Response:
    items = []
    for layer in visible.listing():
        info = layer.info
        minzoom, maxzoom = zoom_range(layer.kind)
        items.append(
            {
                "layer": layer.name,
                "kind": layer.kind,
                "category": info.category,
                "category_zh": info.category_zh,
                "classification": info.classification,
                "count": len(layer),
                "tilejson": f"{_base(request)}/tiles/{layer.name}.json",
                "tiles": _template(request, layer.name),
                "bounds": _bounds(visible.index, layer),
                "minzoom": minzoom,
                "maxzoom": maxzoom,
            }
        )
    crs = {"id": visible.index.crs_text, "proj4": _proj4(visible.index)}
    return Response(orjson.dumps({"tilesets": items, "crs": crs}), media_type="application/json")


def _proj4(index: CityIndex) -> str | None:
    if index.crs is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        text: str = index.crs.to_proj4()
    return text


@router.get(
    "/tiles/{layer}.json",
    response_model=TileJSON,
    summary="TileJSON of a layer",
    description="Example: /tiles/buildings.json",
)
def tilejson(request: Request, visible: VisibleDep, layer: str) -> Response:
    found = visible.layer(layer)
    west, south, east, north = _bounds(visible.index, found)
    minzoom, maxzoom = zoom_range(found.kind)
    body = {
        "tilejson": "3.0.0",
        "name": layer,
        "tiles": [_template(request, layer)],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": [west, south, east, north],
        "center": [(west + east) / 2, (south + north) / 2, max(minzoom, 14)],
        "scheme": "xyz",
        "vector_layers": [
            {
                "id": layer,
                "fields": {
                    n: "String" if n == "uid" else "String|Number"
                    for n in tile_fields(found.attributes, found.kind)
                },
                "minzoom": minzoom,
                "maxzoom": maxzoom,
                "description": found.kind,
            }
        ],
        "kind": found.kind,
        "category": found.info.category,
        "category_zh": found.info.category_zh,
        "classification": found.info.classification,
    }
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(
    "/tiles/{layer}/{z}/{x}/{y}.pbf",
    response_class=Response,
    responses=TILE_RESPONSES,
    summary="A vector tile of a layer (XYZ, Web Mercator)",
    description="Mapbox Vector Tile 2.1; 204 when the tile holds no feature. Several layers "
    "separated by commas give one tile with a layer each (as the one-map page asks). "
    "Example: /tiles/buildings/16/53705/27070.pbf, /tiles/roads,buildings/15/26852/13535.pbf",
)
def tile_xyz(visible: VisibleDep, layer: str, z: Zoom, x: Index, y: Index) -> Response:
    if "," in layer:
        return _composite(visible, layer, z, x, y)
    return _tile(visible, layer, z, x, y)


#: At most this many layers in one composite tile.
MAX_COMPOSITE = 64


def _composite(visible: VisibleDep, names: str, z: int, x: int, y: int) -> Response:
    """Several layers' tiles as one MVT (one protobuf layer each: a Tile's ``layers`` field is
    repeated, so the encoded tiles concatenate). A layer below its minzoom adds nothing.

    The one-map page asks for the layers the caller may read in one tile per z/x/y: a
    handful of requests for its first view instead of one per layer and tile.
    """
    wanted = list(dict.fromkeys(n.strip() for n in names.split(",") if n.strip()))
    if len(wanted) > MAX_COMPOSITE:
        raise UsageError(f"at most {MAX_COMPOSITE} layers in one tile, not {len(wanted)}")
    layers = [visible.layer(name) for name in wanted]  # 404 for a layer the caller may not read
    parts = [
        tile_source(visible.index, found).tile(z, x, y)
        for found in layers
        if z >= zoom_range(found.kind)[0]
    ]
    private = any(found.classification.rank > 0 for found in layers)
    cache = "private, max-age=30" if private else "public, max-age=30"
    data = b"".join(part for part in parts if part)
    if not data:
        return Response(status_code=204, headers={"Cache-Control": cache})
    return Response(data, media_type=MVT, headers={"Cache-Control": cache})


@router.get(
    "/collections/{collectionId}/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}",
    response_class=Response,
    responses=TILE_RESPONSES,
    summary="A vector tile of a collection (OGC API - Tiles)",
    description="The same tile as /tiles/{layer}/{z}/{x}/{y}.pbf with tileRow = y, tileCol = x.",
)
def tile_ogc(
    visible: VisibleDep, collectionId: str, tileMatrix: Zoom, tileRow: Index, tileCol: Index
) -> Response:
    return _tile(visible, collectionId, tileMatrix, tileCol, tileRow)


# --------------------------------------------------------------------------- OGC API - Tiles

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]
"""The OGC API - Tiles and 2D Tile Matrix Set classes these routes implement."""

WMQ = "WebMercatorQuad"
WMQ_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
WMQ_CRS = "http://www.opengis.net/def/crs/EPSG/0/3857"
TMS_MAX_ZOOM = 24  # the matrices the OGC definition lists; tiles are cut up to MAX_ZOOM
TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
_DIMENSION = {"Point": 0, "MultiPoint": 0, "LineString": 1, "MultiLineString": 1}


def _link(href: str, rel: str, kind: str, title: str, **extra: Any) -> dict[str, Any]:
    return {"href": href, "rel": rel, "type": kind, "title": title, **extra}


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def web_mercator_quad() -> dict[str, Any]:
    """The WebMercatorQuad tile matrix set (OGC 2DTMS 2.0, JSON encoding), zooms 0-24."""
    world = 2 * ORIGIN
    matrices = []
    for z in range(TMS_MAX_ZOOM + 1):
        cell = world / (256 << z)
        matrices.append(
            {
                "id": str(z),
                "scaleDenominator": cell / 0.00028,  # the standard 0.28 mm pixel
                "cellSize": cell,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [-ORIGIN, ORIGIN],
                "matrixWidth": 1 << z,
                "matrixHeight": 1 << z,
                "tileWidth": 256,
                "tileHeight": 256,
            }
        )
    return {
        "id": WMQ,
        "title": "Google Maps Compatible for the World",
        "uri": WMQ_URI,
        "crs": WMQ_CRS,
        "orderedAxes": ["E", "N"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "tileMatrices": matrices,
    }


def _tile_index(z: int, lon: float, lat: float) -> tuple[int, int]:
    """(col, row) of the WebMercatorQuad tile at zoom z holding lon/lat."""
    n = 1 << z
    lat = max(min(lat, 85.0511287798), -85.0511287798)
    col = int((lon + 180.0) / 360.0 * n)
    row = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return min(max(col, 0), n - 1), min(max(row, 0), n - 1)


def _limits(box: list[float], minzoom: int, maxzoom: int) -> list[dict[str, Any]]:
    west, south, east, north = box
    limits = []
    for z in range(minzoom, maxzoom + 1):
        min_col, min_row = _tile_index(z, west, north)
        max_col, max_row = _tile_index(z, east, south)
        limits.append(
            {
                "tileMatrix": str(z),
                "minTileRow": min_row,
                "maxTileRow": max_row,
                "minTileCol": min_col,
                "maxTileCol": max_col,
            }
        )
    return limits


def _tileset_links(request: Request, layer: str) -> list[dict[str, Any]]:
    base = _base(request)
    own = f"{base}/collections/{layer}/tiles/{WMQ}"
    return [
        _link(own, "self", "application/json", f"{layer}: vector tileset"),
        _link(f"{base}/tileMatrixSets/{WMQ}", TILING_SCHEME, "application/json", WMQ),
        _link(f"{base}/collections/{layer}", "collection", "application/json", layer),
    ]


@router.get("/tileMatrixSets", summary="Tile matrix sets (OGC API - Tiles)")
def tile_matrix_sets(request: Request) -> Response:
    href = f"{_base(request)}/tileMatrixSets/{WMQ}"
    item = {
        "id": WMQ,
        "title": "Google Maps Compatible for the World",
        "uri": WMQ_URI,
        "crs": WMQ_CRS,
        "links": [_link(href, "self", "application/json", WMQ)],
    }
    return _json({"tileMatrixSets": [item]})


@router.get(
    "/tileMatrixSets/{tileMatrixSetId}",
    summary="A tile matrix set definition (OGC 2DTMS 2.0)",
    description="Only WebMercatorQuad is served; example: /tileMatrixSets/WebMercatorQuad",
)
def tile_matrix_set(tileMatrixSetId: MatrixSetId) -> Response:
    if tileMatrixSetId != WMQ:
        raise HTTPException(404, f"tile matrix set {tileMatrixSetId!r}: only {WMQ} is served")
    return _json(web_mercator_quad())


@router.get(
    "/collections/{collectionId}/tiles",
    summary="Vector tilesets of a collection (OGC API - Tiles)",
)
def collection_tilesets(request: Request, visible: VisibleDep, collectionId: str) -> Response:
    found = visible.layer(collectionId)
    base = _base(request)
    item = {
        "title": f"{found.name} ({found.kind})",
        "dataType": "vector",
        "crs": WMQ_CRS,
        "tileMatrixSetURI": WMQ_URI,
        "links": _tileset_links(request, found.name)[:2],
    }
    own = _link(f"{base}/collections/{found.name}/tiles", "self", "application/json", "tilesets")
    return _json({"links": [own], "tilesets": [item]})


@router.get(
    "/collections/{collectionId}/tiles/WebMercatorQuad",
    summary="Vector tileset metadata of a collection (OGC API - Tiles)",
)
def collection_tileset(request: Request, visible: VisibleDep, collectionId: str) -> Response:
    found = visible.layer(collectionId)
    box = _bounds(visible.index, found)
    minzoom, maxzoom = zoom_range(found.kind)
    base = _base(request)
    template = f"{base}/collections/{found.name}/tiles/{WMQ}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"
    links = _tileset_links(request, found.name)
    links.append(_link(template, "item", MVT, "Mapbox Vector Tiles", templated=True))
    body = {
        "title": f"{found.name} ({found.kind})",
        "dataType": "vector",
        "crs": WMQ_CRS,
        "tileMatrixSetURI": WMQ_URI,
        "links": links,
        "boundingBox": {
            "lowerLeft": box[:2],
            "upperRight": box[2:],
            "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        },
        "tileMatrixSetLimits": _limits(box, minzoom, maxzoom),
        "layers": [
            {
                "id": found.name,
                "dataType": "vector",
                "geometryDimension": _DIMENSION.get(found.info.geometry_type or "", 2),
                "minTileMatrix": str(minzoom),
                "maxTileMatrix": str(maxzoom),
                "propertiesSchema": {
                    "type": "object",
                    "properties": {n: {} for n in tile_fields(found.attributes, found.kind)},
                },
            }
        ],
    }
    return _json(body)
