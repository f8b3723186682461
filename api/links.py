"""The service's own URL for links, never taken blindly from the request's Host header.

A client chooses the ``Host`` header it sends: echoing it into links lets a
forged header (or a poisoned cache in front of the service) point every
``next`` / ``self`` link at another site. Links are built from, in order:

1. the configured public URL (``--public-url``, ``TWIN_API_PUBLIC_URL``);
2. the request's Host, only when it names the address the connection arrived
   at (ASGI ``server``: the bound address, or the concrete local address under
   a wildcard binding) with its port, ``localhost`` / a loopback address (with
   that port), or a host of the ``--allowed-host`` setting (any port);
3. that local address itself, else (no address known) relative links (``/…``).
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.requests import Request

__all__ = ["LOCAL_NAMES", "base_url", "here_url", "trusted_host"]

#: Host names that always mean this machine.
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_WILDCARDS = frozenset({"0.0.0.0", "::", "[::]", ""})


def _split(host: str) -> tuple[str, int | None]:
    """``name:port`` into its parts (port None when absent, -1 when not a number)."""
    if host.startswith("["):  # an IPv6 literal
        name, _, rest = host.partition("]")
        name, port = name + "]", rest[1:] if rest.startswith(":") else None
    elif ":" in host:
        name, _, port = host.rpartition(":")
    else:
        name, port = host, None
    if port is None:
        return name.lower(), None
    return name.lower(), int(port) if port.isdigit() else -1


def trusted_host(host: str, bound: tuple[str, int] | None, allowed: Collection[str] = ()) -> bool:
    """Whether links may use ``host`` (a Host header) for a server bound to ``bound``.

    Examples
    --------
    >>> trusted_host("127.0.0.1:8000", ("127.0.0.1", 8000))
    True
    >>> trusted_host("localhost:8000", ("127.0.0.1", 8000))
    True
    >>> trusted_host("evil.example.com", ("127.0.0.1", 8000))
    False
    >>> trusted_host("localhost:9", ("127.0.0.1", 8000))
    False
    >>> trusted_host("twin.city.gov.cn", ("0.0.0.0", 80), allowed=["twin.city.gov.cn"])
    True
    """
    if not host or any(c in host for c in "/\\@?#% \t") or not host.isascii():
        return False
    name, port = _split(host)
    if name in {a.lower() for a in allowed}:
        return port != -1
    if bound is None:
        return False
    bound_name, bound_port = bound[0].lower(), int(bound[1])
    if port not in (bound_port, None if bound_port in (80, 443) else bound_port):
        return False
    return name in LOCAL_NAMES or (name == bound_name and bound_name not in _WILDCARDS)


def base_url(request: Request) -> str:
    """The service's root URL for links (no trailing slash; ``""`` means relative links)."""
    settings = request.app.state.settings
    public: str | None = settings.public_url
    if public:
        return public
    server = request.scope.get("server")
    bound = (str(server[0]), int(server[1])) if server else None
    host = request.headers.get("host", "")
    scheme = request.url.scheme
    root = request.scope.get("root_path", "").rstrip("/")
    if trusted_host(host, bound, getattr(settings, "allowed_hosts", ())):
        return f"{scheme}://{host}{root}"
    if bound is not None and bound[0] not in _WILDCARDS:
        name = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        return f"{scheme}://{name}:{bound[1]}{root}"
    return root


def here_url(request: Request, **params: object) -> str:
    """This request's URL (with ``params`` changed) under :func:`base_url`."""
    url = request.url.include_query_params(**params) if params else request.url
    query = f"?{url.query}" if url.query else ""
    return f"{base_url(request)}{url.path}{query}"
