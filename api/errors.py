"""One exception-to-status table, and JSON error bodies without stack traces.

Routes raise the library's domain exceptions (:mod:`twin.errors`) or the few
service-only ones below; :func:`install` registers one handler that looks the
exception up in :data:`STATUS_TABLE` (first match wins) and answers
``{"code": ..., "description": ..., "status": ...}``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from twin.errors import (
    BuildNeededError,
    CRSError,
    DatabaseUnavailableError,
    FeatureNotFoundError,
    InputDataError,
    LayerNotFoundError,
    NetworkError,
    TwinBusyError,
    TwinError,
    TwinNotFoundError,
    UsageError,
    api_wording,
)

log = logging.getLogger("twin_api")


class AuthenticationError(TwinError, PermissionError):
    """An API key was sent but is not one the service knows."""


class ForbiddenError(TwinError, PermissionError):
    """The caller's key is known but its role may not do this (e.g. write)."""


class RequestTooLargeError(TwinError, ValueError):
    """The request body is larger than the service accepts."""


class ResultTooLargeError(UsageError):
    """The answer would hold more features than the service returns at once."""


# One table: which exception gives which HTTP status and OGC-style code (first match wins).
STATUS_TABLE: tuple[tuple[type[BaseException], int, str], ...] = (
    (AuthenticationError, 401, "Unauthorized"),
    (ForbiddenError, 403, "Forbidden"),
    (RequestTooLargeError, 413, "RequestTooLarge"),
    (ResultTooLargeError, 400, "ResultTooLarge"),
    (LayerNotFoundError, 404, "NotFound"),
    (FeatureNotFoundError, 404, "NotFound"),
    (CRSError, 400, "InvalidParameterValue"),
    (NetworkError, 422, "UnprocessableNetwork"),
    (UsageError, 400, "InvalidParameterValue"),
    (InputDataError, 400, "InvalidParameterValue"),
    (TwinBusyError, 503, "ServiceUnavailable"),
    (DatabaseUnavailableError, 503, "ServiceUnavailable"),
    (TwinNotFoundError, 503, "ServiceUnavailable"),
)

_HTTP_CODES = {
    400: "InvalidParameterValue",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    413: "RequestTooLarge",
    415: "UnsupportedMediaType",
}


class ErrorBody(BaseModel):
    """Body of every 4xx and 5xx answer."""

    code: str = Field(description="Short error code, e.g. InvalidParameterValue, NotFound.")
    description: str = Field(description="What is wrong and how to fix it, in one line.")
    status: int = Field(description="The HTTP status, repeated.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "Invalid parameter"),
        (401, "Unknown API key"),
        (404, "No such collection or feature"),
        (413, "Request too large"),
        (500, "Internal error"),
    )
}


def status_for(exc: BaseException) -> tuple[int, str]:
    """HTTP status and code for ``exc`` from :data:`STATUS_TABLE` (500 when not listed)."""
    for cls, status, code in STATUS_TABLE:
        if isinstance(exc, cls):
            return status, code
    return 500, "InternalError"


def error_response(status: int, code: str, description: str) -> Response:
    """A JSON error answer."""
    body = {"code": code, "description": description, "status": status}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def describe(exc: BaseException) -> str:
    """The one-line description of a domain error, in the API's words.

    A :class:`~twin.errors.BuildNeededError` names the request's ``max_service_m``
    parameter and the operator's rebuild, not a Python call.

    Examples
    --------
    >>> from twin.errors import BuildNeeded
    >>> describe(BuildNeededError(BuildNeeded("beyond_reach", "c.gpkg",
    ...     parameter="max_service_m", value=80.0, built=50.0)))
    'the last build connected buildings within 50 m of a pipe: ask with max_service_m <= 50, or have the twin built again with max_service_m=80'
    >>> describe(BuildNeededError(BuildNeeded("stale", "c.gpkg", layers=("pipes",))))
    'the relations are stale: pipes changed since the last build: have the twin built again'
    """  # noqa: E501
    if not isinstance(exc, BuildNeededError):
        return _one_line(str(exc))
    return api_wording(exc.reason)


def _one_line(text: str) -> str:
    return " ".join(text.split())


async def _domain_error(request: Request, exc: Exception) -> Response:
    status, code = status_for(exc)
    if status == 500:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, code, "internal error; the service log has the details")
    return error_response(status, code, describe(exc))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "path"))
        given = error.get("input")
        shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
        problems.append(f"{where}: {error.get('msg', 'invalid')}{shown}")
    return error_response(400, "InvalidParameterValue", _one_line("; ".join(problems)))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "Error")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if status == 404 and detail == "Not Found":
        detail = f"no such resource {request.url.path}; the landing page / lists the links"
    response = error_response(status, code, _one_line(detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into a JSON body."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(TwinError, _domain_error)
    # Anything else is a bug: Starlette's outermost middleware answers 500 with this.
    app.add_exception_handler(Exception, _domain_error)
