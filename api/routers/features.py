"""OGC API - Features, Part 1 (Core, GeoJSON, OpenAPI 3) and Part 2 (CRS by reference).

One collection per layer the caller may read. Items come from the in-memory
index (STRtree bbox queries), or, with ``datetime``, from the twin's history
as it was at that instant.
"""

# No ``from __future__ import annotations`` here: the route signatures inside
# ``make_router`` use the settings of the closure, which FastAPI must evaluate.
import math
from collections import OrderedDict
from datetime import UTC, datetime
from functools import lru_cache
from threading import Lock
from typing import Annotated, Any

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from twin.errors import CRSError, UsageError
from twin.query.index import CityIndex, IndexedLayer

from ..deps import IndexDep, VisibleDep
from ..errors import ERROR_RESPONSES
from ..geojson import (
    CRS84,
    GEOJSON,
    OutputCrs,
    canonical_uri,
    collection_bytes,
    columns_of,
    crs_uri,
    dumps,
    feature_dicts,
    transform_geometries,
    uri_to_text,
)
from ..links import base_url, here_url
from ..models import Collection, Collections, Conformance, Feature, FeatureCollection, LandingPage
from ..settings import Settings
from .page import page_response, wants_html

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
]
RESERVED = frozenset(("bbox", "bbox-crs", "limit", "offset", "datetime", "crs", "f"))
_GEOGRAPHIC = ("OGC:CRS84", "EPSG:4326", "EPSG:4490")
_JSON = "application/json"


class GeoJSONResponse(Response):
    """A GeoJSON body (``application/geo+json``)."""

    media_type = GEOJSON


def _json(body: Any) -> Response:
    return Response(dumps(body), media_type=_JSON)


def _link(href: str, rel: str, kind: str = _JSON, title: str | None = None) -> dict[str, Any]:
    link = {"href": href, "rel": rel, "type": kind}
    if title:
        link["title"] = title
    return link


def supported_crs(index: CityIndex) -> list[str]:
    """CRS URIs every collection can be served in: CRS84, EPSG:4326, EPSG:4490, the twin's."""
    return list(_supported_crs(index.crs_text))


@lru_cache(maxsize=8)
def _supported_crs(twin_crs: str) -> tuple[str, ...]:
    uris = [crs_uri(text) for text in _GEOGRAPHIC]
    twin_uri = crs_uri(twin_crs) if twin_crs.startswith("EPSG:") else None
    return tuple(uris + ([twin_uri] if twin_uri and twin_uri not in uris else []))


def _output(index: CityIndex, value: str | None, name: str = "crs") -> OutputCrs:
    offered = supported_crs(index)
    if canonical_uri(uri_to_text(value or CRS84)) not in offered:
        raise CRSError(f"{name} {value!r} is not offered: use one of {', '.join(offered)}")
    return OutputCrs.of(value or CRS84)


def _base(request: Request) -> str:
    """The service's own URL for links (see :mod:`twin_api.links`)."""
    return base_url(request)


def _here(request: Request, **params: Any) -> str:
    """This request's URL (with ``params`` changed), under the service's own URL."""
    return here_url(request, **params)


def _collection(request: Request, layer: IndexedLayer, index: CityIndex) -> dict[str, Any]:
    base = f"{_base(request)}/collections/{layer.name}"
    info = layer.info
    extent = None
    if info.extent is not None:
        lon0, lat0, lon1, lat1 = index.from_twin("OGC:CRS84").transform_bounds(*info.extent)
        extent = {
            "spatial": {"bbox": [[lon0, lat0, lon1, lat1]], "crs": CRS84},
            "temporal": {"interval": [[info.created, None]]},
        }
    return {
        "id": layer.name,
        "title": layer.name,
        "description": f"{info.kind} layer ({info.category_zh}), {info.classification}",
        "itemType": "feature",
        "extent": extent,
        "crs": supported_crs(index),
        "storageCrs": crs_uri(index.crs_text) if index.crs_text.startswith("EPSG:") else CRS84,
        "kind": info.kind,
        "classification": info.classification,
        "category": info.category,
        "featureCount": len(layer),
        "links": [
            _link(base, "self", _JSON, "this collection"),
            _link(f"{base}/items", "items", GEOJSON, "its features"),
        ],
    }


def _numbers(text: str, name: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"{name} {text!r} must be comma-separated numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise UsageError(f"{name} {text!r} must hold finite numbers")
    return values


def bbox_in_twin(index: CityIndex, bbox: str, bbox_crs: str | None) -> shapely.Geometry:
    """The ``bbox`` parameter (in ``bbox-crs`` axis order) as a polygon in the twin CRS.

    A box in another CRS is densified before it is transformed, so its curved
    edges in the twin CRS are followed to well under a millimetre.
    """
    values = _numbers(bbox, "bbox")
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4:
        raise UsageError(f"bbox {bbox!r} needs 4 numbers (minx,miny,maxx,maxy) or 6 (with z)")
    source = _output(index, bbox_crs, "bbox-crs")
    a0, b0, a1, b1 = values
    x0, y0, x1, y1 = (b0, a0, b1, a1) if source.swap else (a0, b0, a1, b1)
    if x0 > x1 or y0 > y1:
        raise UsageError(f"bbox {bbox!r}: the minimum must not exceed the maximum on either axis")
    if x0 == x1 or y0 == y1:
        raise UsageError(
            f"bbox {bbox!r} has no area: give a minimum below the maximum on both axes"
        )
    if source.text in _GEOGRAPHIC and not (x0 >= -180 and x1 <= 180 and y0 >= -90 and y1 <= 90):
        raise UsageError(
            f"bbox {bbox!r} is out of range for {source.uri}: longitudes within ±180, "
            "latitudes within ±90" + (" (latitude first in this CRS)" if source.swap else "")
        )
    box = shapely.box(x0, y0, x1, y1)
    if source.text == index.crs_text:
        return box
    edge = max(x1 - x0, y1 - y0) / 64 or 1.0
    forward = index.to_twin(source.text)
    return shapely.transform(
        shapely.segmentize(box, edge),
        lambda xy: np.column_stack(forward.transform(xy[:, 0], xy[:, 1])),
    )


def parse_instant(text: str) -> pd.Timestamp:
    """An OGC ``datetime`` instant (RFC 3339 date-time or date) as a UTC timestamp."""
    if "/" in text:
        raise UsageError(
            f"datetime {text!r} is an interval: give one instant (e.g. 2026-05-01T12:00:00Z) "
            "to read the twin as it was then"
        )
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        raise UsageError(
            f"datetime {text!r} is not an RFC 3339 instant between {_FIRST:%Y-%m-%d} and "
            f"{_LAST:%Y-%m-%d}, e.g. 2026-05-01T12:00:00Z"
        ) from None
    if pd.isna(stamp):
        raise UsageError(f"datetime {text!r} is not an instant")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if not _FIRST <= stamp <= _LAST:
        raise UsageError(
            f"datetime {text!r} is outside {_FIRST:%Y-%m-%d} .. {_LAST:%Y-%m-%d}: "
            "give an instant in that range"
        )
    return stamp


# Instants the history can be read at: pandas' nanosecond range, a day inside each end
# so that a conversion between time zones or units never overflows.
_FIRST = (pd.Timestamp.min + pd.Timedelta(days=1)).ceil("D").tz_localize("UTC")
_LAST = (pd.Timestamp.max - pd.Timedelta(days=1)).floor("D").tz_localize("UTC")


class _AsOfCache:
    """A few layers read as of an instant, kept while the same twin version is served."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Any, ...], IndexedLayer] = OrderedDict()
        self._lock = Lock()

    def get(self, index: CityIndex, layer: IndexedLayer, stamp: pd.Timestamp) -> IndexedLayer:
        key = (index.identity, layer.name, stamp.value)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        frame = index.twin.layer(layer.name, as_of=stamp)
        # Served with today's columns (a field added since is null in older versions).
        past = IndexedLayer.from_frame(layer.info, frame.reindex(columns=layer.columns))
        with self._lock:
            self._items[key] = past
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return past


def _filter_mask(layer: IndexedLayer, rows: np.ndarray, filters: dict[str, str]) -> np.ndarray:
    keep = np.ones(len(rows), dtype=bool)
    for name, wanted in filters.items():
        values = layer.attributes[name].iloc[rows]
        if pd.api.types.is_bool_dtype(values):
            if wanted.lower() not in ("true", "false"):
                raise UsageError(f"{name}={wanted!r}: give true or false")
            keep &= (values == (wanted.lower() == "true")).fillna(False).to_numpy(dtype=bool)
        elif pd.api.types.is_numeric_dtype(values):
            try:
                number = float(wanted)
            except ValueError:
                raise UsageError(f"{name}={wanted!r} must be a number") from None
            keep &= (values == number).fillna(False).to_numpy(dtype=bool)
        else:
            keep &= (values.astype("string") == wanted).fillna(False).to_numpy(dtype=bool)
    return rows[keep]


def _property_filters(request: Request, layer: IndexedLayer) -> dict[str, str]:
    filters = {}
    names = columns_of(layer).names
    for key, value in request.query_params.multi_items():
        if key in RESERVED:
            continue
        if key not in names:
            fields = f"filter on one of {', '.join(names)}, or " if names else ""
            raise UsageError(
                f"unknown parameter {key!r}: {fields}use {', '.join(sorted(RESERVED))}"
            )
        filters[key] = value
    return filters


def _page_links(
    request: Request, offset: int, limit: int, matched: int, kind: str
) -> list[dict[str, Any]]:
    links = [_link(_here(request), "self", kind, "this page")]
    if offset + limit < matched:
        links.append(_link(_here(request, offset=offset + limit), "next", kind))
    if offset > 0:
        previous = max(0, offset - limit)
        links.append(_link(_here(request, offset=previous), "prev", kind))
    return links


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def make_router(settings: Settings) -> APIRouter:
    """The OGC API Features routes, with the limits of ``settings``."""
    router = APIRouter(tags=["OGC API - Features"], responses=ERROR_RESPONSES)
    as_of_cache = _AsOfCache()

    @router.get("/", response_model=LandingPage, summary="Landing page")
    async def landing(request: Request, index: IndexDep) -> Response:
        if wants_html(request):  # a browser: the one-map page
            return page_response()
        base = _base(request)
        return _json(
            {
                "title": f"citytwin: {index.name}",
                "description": "City information model (城市信息模型): OGC API - Features "
                "over every layer you may read, city one-map queries and impact analysis.",
                "links": [
                    _link(f"{base}/", "self", _JSON, "this document"),
                    _link(
                        f"{base}/api",
                        "service-desc",
                        "application/vnd.oai.openapi+json;version=3.0",
                        "the API definition",
                    ),
                    _link(f"{base}/conformance", "conformance", _JSON, "conformance classes"),
                    _link(f"{base}/collections", "data", _JSON, "the collections"),
                    _link(f"{base}/tiles", "tilesets-vector", _JSON, "vector tiles"),
                    _link(f"{base}/map", "alternate", "text/html", "the one-map page"),
                ],
            }
        )

    @router.get("/conformance", response_model=Conformance, summary="Conformance classes")
    async def conformance(request: Request) -> Response:
        return _json({"conformsTo": request.app.state.conformance})

    @router.get("/collections", response_model=Collections, summary="The collections")
    async def collections(request: Request, visible: VisibleDep) -> Response:
        items = [_collection(request, layer, visible.index) for layer in visible.listing()]
        self_link = _link(f"{_base(request)}/collections", "self", _JSON, "this document")
        return _json({"links": [self_link], "collections": items})

    @router.get("/collections/{collectionId}", response_model=Collection, summary="A collection")
    async def collection(
        request: Request,
        visible: VisibleDep,
        collection_id: Annotated[str, Path(alias="collectionId")],
    ) -> Response:
        layer = visible.layer(collection_id)
        return _json(_collection(request, layer, visible.index))

    @router.get(
        "/collections/{collectionId}/items",
        response_model=FeatureCollection,
        response_class=GeoJSONResponse,
        summary="Features of a collection",
    )
    async def items(
        request: Request,
        visible: VisibleDep,
        collection_id: Annotated[str, Path(alias="collectionId")],
        bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in bbox-crs")] = None,
        bbox_crs: Annotated[str | None, Query(alias="bbox-crs")] = None,
        limit: Annotated[int, Query(ge=1, le=settings.max_limit)] = settings.default_limit,
        offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
        datetime: Annotated[
            str | None, Query(description="an instant: the twin as of then")
        ] = None,
        crs: Annotated[str | None, Query(description="CRS URI of the answer")] = None,
        f: Annotated[str | None, Query(pattern="^(json|geojson)$")] = None,
    ) -> Response:
        layer = visible.layer(collection_id)
        index = visible.index
        out = _output(index, crs)
        filters = _property_filters(request, layer)
        box = bbox_in_twin(index, bbox, bbox_crs) if bbox is not None else None
        if datetime is not None:
            stamp = parse_instant(datetime)
            layer = await run_in_threadpool(as_of_cache.get, index, layer, stamp)
        rows = layer.query(box) if box is not None else np.arange(len(layer))
        if filters:
            rows = _filter_mask(layer, rows, filters)
        page = rows[offset : offset + limit]
        body = collection_bytes(
            feature_dicts(layer, page, index, out),
            numberMatched=len(rows),
            numberReturned=len(page),
            timeStamp=_now(),
            links=_page_links(request, offset, limit, len(rows), GEOJSON),
        )
        return GeoJSONResponse(body, headers={"Content-Crs": f"<{out.uri}>"})

    @router.get(
        "/collections/{collectionId}/items/{featureId}",
        response_model=Feature,
        response_class=GeoJSONResponse,
        summary="One feature by its uid",
    )
    async def item(
        request: Request,
        visible: VisibleDep,
        collection_id: Annotated[str, Path(alias="collectionId")],
        feature_id: Annotated[str, Path(alias="featureId")],
        crs: Annotated[str | None, Query(description="CRS URI of the answer")] = None,
        f: Annotated[str | None, Query(pattern="^(json|geojson)$")] = None,
    ) -> Response:
        layer = visible.layer(collection_id)
        out = _output(visible.index, crs)
        position = layer.position(feature_id)
        feature = feature_dicts(layer, np.array([position]), visible.index, out)[0]
        base = f"{_base(request)}/collections/{layer.name}"
        feature["links"] = [
            _link(_here(request), "self", GEOJSON),
            _link(base, "collection", _JSON),
        ]
        return GeoJSONResponse(dumps(feature), headers={"Content-Crs": f"<{out.uri}>"})

    return router


__all__ = ["CONFORMANCE", "bbox_in_twin", "make_router", "parse_instant", "transform_geometries"]
