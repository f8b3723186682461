"""Typed dependencies shared by every router: the index, the caller, the layers they may see.

Use them as annotations in route signatures::

    @router.get("/identify")
    async def identify(visible: VisibleDep, lon: float, lat: float): ...

``Visible`` is the only way a route should reach a layer: a layer the caller
may not read does not exist for them (the same 404 as an unknown name), and
every restricted layer a route reaches is recorded for the audit log.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from twin.errors import LayerNotFoundError
from twin.kinds import Classification
from twin.query.index import CityIndex, IndexedLayer, on_layer_reads

from .errors import AuthenticationError
from .security import Caller
from .settings import Settings

_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="API key; without one only public layers exist.",
)
_bearer = HTTPBearer(auto_error=False, description="The API key as a bearer token.")

AUDIT_STATE = "twin_audit"


async def get_settings(request: Request) -> Settings:
    """The service settings."""
    settings: Settings = request.app.state.settings
    return settings


async def get_index(request: Request) -> CityIndex:
    """The twin snapshot in force for this request (the same one for the whole request)."""
    state = request.scope.setdefault("state", {})
    index = state.get("twin_index")
    if index is None:
        index = request.app.state.live.current()
        state["twin_index"] = index
    return index


async def get_caller(
    request: Request,
    api_key: Annotated[str | None, Depends(_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> Caller:
    """Who is asking, from the ``X-API-Key`` header or ``Authorization: Bearer``."""
    given = request.headers.getlist("x-api-key")
    if len(given) > 1:
        raise AuthenticationError(
            f"{len(given)} X-API-Key headers: send exactly one key per request"
        )
    if api_key and bearer is not None and bearer.credentials != api_key:
        raise AuthenticationError(
            "an X-API-Key header and another key as a bearer token: send one key"
        )
    key = api_key or (bearer.credentials if bearer is not None else None)
    caller: Caller = request.app.state.keys.caller(key)
    _audit_state(request)["caller"] = caller
    return caller


def _audit_state(request: Request) -> dict[str, object]:
    state = request.scope.setdefault("state", {})
    audit: dict[str, object] = state.setdefault(AUDIT_STATE, {"layers": set()})
    return audit


class Visible:
    """The layers of one snapshot that one caller may read.

    Parameters
    ----------
    index : CityIndex
        The snapshot.
    caller : Caller
        Who is asking.
    touched : set of str
        Filled with the restricted layers the request reaches (for the audit log).
    """

    def __init__(self, index: CityIndex, caller: Caller, touched: set[str]) -> None:
        self.index = index
        self.caller = caller
        self._touched = touched

    def allowed(self, name: str) -> bool:
        """Whether ``name`` is a layer this caller may read."""
        layer = self.index.layers.get(name)
        return layer is not None and self.caller.may_read(layer.info.classification)

    def names(self, kind: str | None = None) -> list[str]:
        """Names of the layers the caller may read (of one kind); restricted ones are audited."""
        names = self.index.names(kind=kind, max_classification=self.caller.max_classification)
        self.touch(names)
        return names

    def listing(self) -> list[IndexedLayer]:
        """The layers the caller may read, for listings (metadata only: not audited)."""
        ceiling = self.caller.max_classification
        return [self.index.layers[n] for n in self.index.names(max_classification=ceiling)]

    def layer(self, name: str) -> IndexedLayer:
        """The layer ``name``; the same 404 whether it is unknown or not allowed."""
        if not self.allowed(name):
            names = ", ".join(i.name for i in self.listing()) or "none"
            raise LayerNotFoundError(f"there is no collection {name!r}; collections: {names}")
        self.touch([name])
        return self.index.layers[name]

    def touch(self, names: Iterable[str]) -> None:
        """Record that the request read ``names`` (only restricted ones are audited)."""
        restricted = restricted_layers(self.index)
        if restricted:
            self._touched.update(name for name in names if name in restricted)


_RESTRICTED: weakref.WeakKeyDictionary[CityIndex, frozenset[str]] = weakref.WeakKeyDictionary()


def restricted_layers(index: CityIndex) -> frozenset[str]:
    """The names of the snapshot's restricted layers (found once per snapshot: a
    request touches layers several times, each a lookup, not an enum made per layer).

    Examples
    --------
    >>> sorted(restricted_layers(index)) == sorted(
    ...     n for n, layer in index.layers.items() if layer.classification == "restricted")
    True
    """
    found = _RESTRICTED.get(index)
    if found is None:
        found = frozenset(
            name
            for name, layer in index.layers.items()
            if layer.classification is Classification.RESTRICTED
        )
        _RESTRICTED[index] = found
    return found


async def get_visible(
    request: Request,
    index: Annotated[CityIndex, Depends(get_index)],
    caller: Annotated[Caller, Depends(get_caller)],
) -> Visible:
    """The layers this caller may read in this request's snapshot."""
    touched = _audit_state(request)["layers"]
    assert isinstance(touched, set)
    visible = Visible(index, caller, touched)
    # Every layer a query resolves in this request is recorded, whichever route asked.
    on_layer_reads(visible.touch)
    return visible


async def get_stream_caller(
    request: Request,
    api_key: Annotated[str | None, Depends(_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
    token: Annotated[
        str | None,
        Query(
            max_length=1000,
            description="A token from POST /events/stream-token (for a browser's EventSource, "
            "which cannot send X-API-Key); never the API key itself",
        ),
    ] = None,
) -> Caller:
    """Who is asking for the events stream: a key header as elsewhere, or a stream token.

    Only the stream route takes this dependency: a token opens nothing else.
    """
    if token is None:
        return await get_caller(request, api_key, bearer)
    if api_key or bearer is not None:
        raise AuthenticationError("send a key header or a ?token=, not both")
    caller: Caller = request.app.state.stream_tokens.verify(token, request.app.state.keys)
    _audit_state(request)["caller"] = caller
    return caller


async def get_stream_visible(
    request: Request,
    index: Annotated[CityIndex, Depends(get_index)],
    caller: Annotated[Caller, Depends(get_stream_caller)],
) -> Visible:
    """:func:`get_visible` for the events stream (a key header or a stream token)."""
    return await get_visible(request, index, caller)


SettingsDep = Annotated[Settings, Depends(get_settings)]
IndexDep = Annotated[CityIndex, Depends(get_index)]
CallerDep = Annotated[Caller, Depends(get_caller)]
VisibleDep = Annotated[Visible, Depends(get_visible)]
StreamVisibleDep = Annotated[Visible, Depends(get_stream_visible)]
