"""One factory for the analysis routes: the one-map queries and the impact analyses.

titiler's ``factory.py`` is the model: a small class owns an :class:`~fastapi.APIRouter`
and, given the description of an analysis (path, method, response model, summary),
registers its route. The endpoint keeps its typed dependencies (``VisibleDep``, the
``Annotated[…, Query(…)]`` parameters of a GET, the pydantic body of a POST) and
returns the answer as a plain dict; the factory serialises it with orjson (the
answers hold numpy-free JSON values already) and declares ``response_model`` so the
OpenAPI document tells what comes back.

The response models themselves come from the library: :func:`collection_model`
wraps a summary model (generated from the library's summary dataclass by
:func:`~twin_api.summaries.model_from_dataclass`) into the FeatureCollection the
impact routes answer.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, create_model

from .models import Feature

__all__ = ["Analysis", "AnalysisFactory", "collection_model", "json_response"]

Endpoint = Callable[..., Any]


def json_response(body: dict[str, Any]) -> Response:
    """``body`` as an ``application/json`` response, serialised by orjson.

    Examples
    --------
    >>> json_response({"n": 1}).body
    b'{"n":1}'
    """
    return Response(orjson.dumps(body), media_type="application/json")


def collection_model(
    name: str, summary: type[BaseModel] | None, *, doc: str | None = None, **extra: Any
) -> type[BaseModel]:
    """A GeoJSON FeatureCollection model with a ``summary`` of model ``summary``.

    ``extra`` adds fields as ``name=(type, default)``; ``summary=None`` leaves it out.

    Examples
    --------
    >>> from pydantic import BaseModel
    >>> class Count(BaseModel):
    ...     n: int
    >>> model = collection_model("Counted", Count, numberMatched=(int, ...))
    >>> list(model.model_fields)
    ['type', 'features', 'numberMatched', 'summary']
    """
    fields: dict[str, Any] = {
        "type": (Literal["FeatureCollection"], ...),
        "features": (list[Feature], ...),
        **extra,
    }
    if summary is not None:
        fields["summary"] = (summary, ...)
    model: type[BaseModel] = create_model(name, __doc__=doc, **fields)
    return model


@dataclass(frozen=True)
class Analysis:
    """One analysis as a route: where, how, what it answers and its endpoint.

    Attributes
    ----------
    path : str
        The route path (``/identify``, ``/pipe-break``).
    endpoint : callable
        Typed FastAPI parameters in, the JSON answer out as a dict.
    response : pydantic model
        What the answer is (``response_model`` in the OpenAPI document).
    summary, description : str
        The OpenAPI operation's title and text (with an example).
    method : {"GET", "POST"}
        GET for queries by point or feature, POST for scenarios with a body.
    """

    path: str
    endpoint: Endpoint
    response: type[BaseModel]
    summary: str
    description: str
    method: Literal["GET", "POST"] = "GET"


def _answering(run: Endpoint) -> Endpoint:
    """``run`` with the same signature, answering its dict as an orjson response."""
    if inspect.iscoroutinefunction(run):

        @functools.wraps(run)
        async def endpoint_async(*args: Any, **kwargs: Any) -> Response:
            return json_response(await run(*args, **kwargs))

        return endpoint_async

    @functools.wraps(run)
    def endpoint(*args: Any, **kwargs: Any) -> Response:
        return json_response(run(*args, **kwargs))

    return endpoint


@dataclass
class AnalysisFactory:
    """Registers analyses as routes of one router (titiler's factory idea).

    Examples
    --------
    >>> from fastapi import APIRouter
    >>> from pydantic import BaseModel
    >>> class Pong(BaseModel):
    ...     pong: int
    >>> routes = AnalysisFactory(APIRouter())
    >>> @routes.get("/ping", Pong, summary="Ping", description="Example: /ping?n=1")
    ... def ping(n: int = 1) -> dict[str, int]:
    ...     return {"pong": n}
    >>> [(a.path, a.method) for a in routes.analyses], ping(n=2)
    ([('/ping', 'GET')], {'pong': 2})
    """

    router: APIRouter
    analyses: list[Analysis] = field(default_factory=list)

    def register(self, analysis: Analysis) -> None:
        """Add ``analysis``'s route to the router."""
        self.router.add_api_route(
            analysis.path,
            _answering(analysis.endpoint),
            methods=[analysis.method],
            response_model=analysis.response,
            summary=analysis.summary,
            description=analysis.description,
            name=analysis.endpoint.__name__,
        )
        self.analyses.append(analysis)

    def route(
        self,
        method: Literal["GET", "POST"],
        path: str,
        response: type[BaseModel],
        *,
        summary: str,
        description: str,
    ) -> Callable[[Endpoint], Endpoint]:
        """A decorator registering the endpoint it decorates (returned unchanged)."""

        def decorate(endpoint: Endpoint) -> Endpoint:
            self.register(Analysis(path, endpoint, response, summary, description, method))
            return endpoint

        return decorate

    def get(
        self, path: str, response: type[BaseModel], *, summary: str, description: str
    ) -> Callable[[Endpoint], Endpoint]:
        """Register a GET analysis (a query by point, feature or zone)."""
        return self.route("GET", path, response, summary=summary, description=description)

    def post(
        self, path: str, response: type[BaseModel], *, summary: str, description: str
    ) -> Callable[[Endpoint], Endpoint]:
        """Register a POST analysis (a scenario in the request body)."""
        return self.route("POST", path, response, summary=summary, description=description)
