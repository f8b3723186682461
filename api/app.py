"""``create_app(settings)``: the twin's HTTP service.

The twin is loaded and indexed once, here; a watcher swaps in a new snapshot
when the twin file is re-imported. Routers: OGC API Features
(:mod:`.routers.features`), and the city one-map, impact and address routers
(``routers/onemap.py``, ``routers/impact.py``, ``routers/address.py``) when they are
installed.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import twin
from twin.io.gcpause import paused_gc
from twin.query.index import CityIndex
from twin.query.live import LiveIndex, Swap
from twin.store.postgis import PostgisStore

from . import errors, geojson
from .background import EscalationTask
from .deps import AUDIT_STATE, CallerDep, IndexDep
from .geojson import dumps
from .models import Health
from .preparing import NoteRequests, PauseRequests
from .routers import features
from .security import ANONYMOUS_CALLER, AuditLog, Caller, KeyRing
from .settings import Settings
from .streamtoken import StreamTokens

log = logging.getLogger("twin_api")

#: Environment variable holding the line a worker prints once its twin is loaded.
ANNOUNCE_ENV = "TWIN_API_ANNOUNCE"

OPTIONAL_ROUTERS = (
    "onemap",
    "impact",
    "address",
    "tiles",
    "export",
    "page",
    "sensing",
    "live",
    "sta",
    "vitals",
)


def create_app(settings: Settings) -> FastAPI:
    """Build the service for ``settings``: load and index the twin, wire the routers.

    Examples
    --------
    >>> from twin_api import Settings, create_app
    >>> app = create_app(Settings(twin="out/chengdu.twin.gpkg"))  # doctest: +SKIP
    """
    keys = KeyRing.load(settings.keys_file, settings.keys)  # a bad key file fails first
    live = _load(settings)
    routers = _optional_routers()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _prepare_ahead(live.current(), routers)  # once serving: start-up keeps the cores
        app.state.pause = live.pause = PauseRequests(
            asyncio.get_running_loop(), settings.reload_pause_s
        )
        live.start()
        escalation = EscalationTask(settings)
        escalation.start()
        app.state.escalation = escalation
        try:
            yield
        finally:
            await escalation.stop()
            live.pause = None  # this loop stops: a later reload has none to pause
            live.stop()

    app = FastAPI(
        title="citytwin API",
        version=twin.__version__,
        description="OGC API - Features over a city information model (城市信息模型), "
        "with city one-map queries and impact analysis. Send an API key in the "
        "X-API-Key header to see internal or restricted layers.",
        openapi_url="/api",
        # Swagger UI would load its scripts from a CDN; intranets are offline.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.live = live
    app.state.keys = keys
    app.state.audit = AuditLog(settings.audit_path)
    app.state.stream_tokens = StreamTokens.from_env()
    errors.install(app)
    app.include_router(features.make_router(settings))
    app.include_router(_health_router())
    app.state.conformance = list(features.CONFORMANCE)
    for module in routers:
        app.include_router(module.router)
        app.state.conformance += getattr(module, "CONFORMANCE", [])
    app.add_middleware(
        AuditAndLimits, audit=app.state.audit, max_body_bytes=settings.max_body_bytes
    )
    app.add_middleware(SnapshotHeaders, live=live)
    app.add_middleware(NoteRequests)  # background preparation waits for a pause
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type"],
            expose_headers=["Content-Crs"],
        )
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with error answers documented as the service sends them."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = errors.ErrorBody.model_json_schema()
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path in document.get("paths", {}).values():
        for operation in path.values():
            for status, answer in operation.get("responses", {}).items():
                if status[0] in "45":  # every error is an ErrorBody in JSON
                    if status == "422":
                        answer["description"] = "Unprocessable request"
                    answer["content"] = {"application/json": {"schema": error_ref}}
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    app.openapi_schema = document
    return document


def _load(settings: Settings) -> LiveIndex:
    """The twin's live index, its first snapshot ready to serve (:func:`_ready`).

    Loading a large twin takes seconds, much of it in the loading threads' C
    code (GDAL, GEOS) with a core to spare. PROJ searches its database for a
    transformation without the interpreter lock: the PROJ transformations of
    this thread, the one that will run the event loop, are made meanwhile
    (:func:`~twin_api.geojson.ready_projections`, 0.3 s each). The cyclic
    garbage collector is paused until the snapshot is frozen: the load makes
    no reference cycles, and each collection would walk every geometry made so
    far (1M buildings: 5.2-5.8 -> 4.3-4.6 s). The twin's errors are the
    load's, raised here.
    """
    with paused_gc(), ThreadPoolExecutor(1, thread_name_prefix="twin-load") as pool:
        loading = pool.submit(LiveIndex, settings.twin, poll_s=settings.poll_s, prepare=_prepare)
        crs = _twin_crs(settings.twin)
        if crs is not None:
            geojson.ready_projections(crs)
        live = loading.result()
        _ready(live.current())
    return live


def _twin_crs(twin_path: str | os.PathLike[str]) -> str | None:
    """The twin's CRS as stored (cheap: its metadata only); None when it cannot be read
    (the load then reports why)."""
    try:
        opened = twin.Twin.open(twin_path)
        crs = opened.meta["crs"]
    except Exception:  # the load, run beside this, raises the error users should see
        return None
    if isinstance(opened.store, PostgisStore):
        opened.store.close()  # the live index has its own connection
    return str(crs)


def _ready(index: CityIndex) -> None:
    """What a snapshot needs before serving: attribute arrays built, and out of the GC's way.

    A snapshot holds millions of long-lived objects (one per geometry); frozen,
    the cyclic garbage collector stops walking them on every full collection,
    which would otherwise stall a request now and then for a tenth of a second.
    """
    geojson.ready_columns(index)
    gc.freeze()


def _prepare_ahead(index: CityIndex, routers: list[ModuleType]) -> None:
    """Start the background preparation of ``index``: its CRS84 GeoJSON texts, and what
    optional routers with a ``warm(index)`` prepare (tile sources). Requests that need
    them before they are ready make their own (see :mod:`twin_api.preparing`)."""
    geojson.prepare_geometry_texts(index)
    for module in routers:
        if hasattr(module, "warm"):
            module.warm(index)


def _prepare(index: CityIndex) -> None:
    """Ready a reloaded snapshot for serving (:func:`_ready`) and start its background
    preparation (:func:`_prepare_ahead`), in the reloading thread."""
    _ready(index)
    _prepare_ahead(index, _optional_routers())


def create_app_from_env() -> FastAPI:
    """``create_app`` with :meth:`Settings.from_env` (the uvicorn factory ``twin serve`` uses).

    Once the twin is loaded, the line ``twin serve`` left in ``TWIN_API_ANNOUNCE``
    (if any) is printed, so "serving …" never precedes a twin that fails to load.
    """
    app = create_app(Settings.from_env())
    announce = os.environ.get(ANNOUNCE_ENV)
    if announce:
        print(f"{announce} (worker {os.getpid()})", file=sys.stderr, flush=True)
    return app


def _optional_routers() -> list[ModuleType]:
    modules = []
    for name in OPTIONAL_ROUTERS:
        qualified = f"{__package__}.routers.{name}"
        try:
            modules.append(importlib.import_module(qualified))
        except ModuleNotFoundError as exc:
            if exc.name != qualified:
                raise
    return modules


def _health_router() -> Any:
    from fastapi import APIRouter

    router = APIRouter(tags=["service"], responses=errors.ERROR_RESPONSES)

    @router.get("/health", response_model=Health, summary="What the service has loaded")
    async def health(request: Request, index: IndexDep, caller: CallerDep) -> Response:
        live: LiveIndex = request.app.state.live
        loaded = datetime.fromtimestamp(index.loaded_at, UTC).isoformat(timespec="seconds")
        # only the layers this caller may see: the rest do not exist for them
        visible = index.names(max_classification=caller.max_classification)
        body = {
            "twin": index.path.name,
            "layers": len(visible),
            "loaded_at": loaded.replace("+00:00", "Z"),
            "load_s": round(index.load_s, 3),
            "reloads": live.reloads,
            "last_reload_error": live.last_error,
            "version": index.version_tag,
            "worker": os.getpid(),
        }
        pause: PauseRequests | None = getattr(request.app.state, "pause", None)
        body["snapshot"] = _swap_fields(live.last_swap, pause, set(visible))
        if live.listener is not None:  # a PostGIS twin: is the commit listener connected?
            body["listening"] = live.listener.connected
            body["subscriptions"] = live.listener.subscriptions
        return Response(dumps(body), media_type="application/json")

    return router


def _swap_fields(
    swap: Swap | None, pause: PauseRequests | None, visible: set[str]
) -> dict[str, Any] | None:
    """``/health``'s ``snapshot``: when the worker's last reload was heard and took over,
    what it did to each layer the caller may see (``visible``) and how long it paused
    the requests."""
    if swap is None:
        return None
    paused = None if pause is None or pause.last_s is None else round(pause.last_s, 3)
    return {
        "version": swap.version,
        "heard_at": swap.heard_at,
        "swapped_at": swap.swapped_at,
        "update_s": round(swap.update_s, 3),
        "update_cpu_s": None if swap.update_cpu_s is None else round(swap.update_cpu_s, 3),
        "paused_s": paused,
        "updates": {name: how for name, how in swap.updates.items() if name in visible},
    }


class SnapshotHeaders:
    """ASGI middleware: which worker answered, from which version of the twin.

    Every HTTP answer carries ``X-Twin-Worker`` (the worker's process id) and
    ``X-Twin-Version`` (:attr:`twin.query.index.CityIndex.version_tag` of the
    snapshot the request used: the commit counter of a PostGIS twin), so a
    client behind several workers can tell when each one serves a new import.
    """

    def __init__(self, app: ASGIApp, *, live: LiveIndex) -> None:
        self.app = app
        self.live = live
        self.worker = str(os.getpid()).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def tagged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                index = (scope.get("state") or {}).get("twin_index") or self.live.current()
                headers = list(message.get("headers", []))
                headers.append((b"x-twin-worker", self.worker))
                headers.append((b"x-twin-version", index.version_tag.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, tagged_send)


class AuditAndLimits:
    """ASGI middleware: request-size limit, and one audit line per request on restricted data.

    Routes record the restricted layers they read in the request state (see
    :class:`twin_api.deps.Visible`); once the answer is sent, a request that
    read any is written to the audit log with who asked and the status.
    """

    def __init__(self, app: ASGIApp, *, audit: AuditLog, max_body_bytes: int) -> None:
        self.app = app
        self.audit = audit
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            response = errors.error_response(
                413,
                "RequestTooLarge",
                f"request body over {self.max_body_bytes} bytes; send a smaller request",
            )
            await response(scope, receive, send)
            return
        seen = {"body": 0, "recorded": False}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen["body"] += len(message.get("body", b""))
                if seen["body"] > self.max_body_bytes:
                    raise errors.RequestTooLargeError(
                        f"request body over {self.max_body_bytes} bytes; send a smaller request"
                    )
            return message

        async def audited_send(message: Message) -> None:
            # Recorded before the answer leaves: a client that has it finds the line written.
            if message["type"] == "http.response.start" and not seen["recorded"]:
                seen["recorded"] = True
                self._record(scope, message["status"])
            await send(message)

        try:
            await self.app(scope, counting_receive, audited_send)
        finally:
            if not seen["recorded"]:
                self._record(scope, 500)

    def _record(self, scope: Scope, status: int) -> None:
        state = scope.get("state") or {}
        audit = state.get(AUDIT_STATE)
        if not audit or not audit.get("layers"):
            return
        caller = audit.get("caller", ANONYMOUS_CALLER)
        assert isinstance(caller, Caller)
        client = scope.get("client")
        self.audit.write(
            {
                "who": caller.name,
                "role": caller.role,
                "client": client[0] if client else None,
                "method": scope["method"],
                "path": scope["path"],
                "query": scope.get("query_string", b"").decode("latin-1"),
                "status": status,
                "layers": sorted(audit["layers"]),
            }
        )
