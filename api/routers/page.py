"""The one-map page (城市一张图): ``/`` and ``/map`` for browsers, its files under ``/static``.

The page is built from ``web/`` (MapLibre GL JS from npm, bundled by esbuild)
by ``scripts/setup.sh`` into this package's ``static`` folder; every file it
needs is served from here, so it works on an intranet with no way out. A
client that asks for JSON at ``/`` or ``/map`` gets the landing document.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from twin.errors import FeatureNotFoundError, TwinNotFoundError

router = APIRouter(tags=["one-map page"], include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "static"
PAGE = "index.html"


def wants_html(request: Request) -> bool:
    """Whether the caller is a browser asking for a page (``Accept: text/html``, no ``f=json``).

    Examples
    --------
    >>> from starlette.requests import Request
    >>> def ask(accept: str, query: bytes = b"") -> bool:
    ...     headers = [(b"accept", accept.encode())]
    ...     scope = {"type": "http", "query_string": query, "headers": headers}
    ...     return wants_html(Request(scope))
    >>> ask("text/html,application/xhtml+xml,*/*;q=0.8"), ask("application/json"), ask("*/*")
    (True, False, False)
    >>> ask("text/html", b"f=json")
    False
    """
    wanted = request.query_params.get("f")
    if wanted is not None:
        return wanted.lower() == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept.lower()


def page_response() -> Response:
    """The page's HTML; 503 with a way to fix it when the page has not been built."""
    page = STATIC / PAGE
    if not page.is_file():
        raise TwinNotFoundError(
            "the one-map page is not built: run `bash scripts/setup.sh` (it runs npm in web/)"
        )
    return FileResponse(page, media_type="text/html; charset=utf-8", headers=_NO_STORE)


_NO_STORE = {"Cache-Control": "no-cache"}


@router.get("/map")
async def map_page(request: Request) -> Response:
    if request.query_params.get("f", "").lower() == "json" or (
        "application/json" in request.headers.get("accept", "") and not wants_html(request)
    ):
        from fastapi.responses import RedirectResponse

        return RedirectResponse("/?f=json", status_code=303)
    return page_response()


@router.get("/static/{path:path}")
async def static_file(path: str) -> Response:
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        raise FeatureNotFoundError(f"no file {path!r} in the page's files")
    media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.suffix == ".js":
        media_type = "text/javascript; charset=utf-8"
    return FileResponse(target, media_type=media_type, headers=_NO_STORE)
