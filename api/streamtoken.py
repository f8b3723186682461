"""Short-lived, scoped tokens for the events stream (a browser's EventSource sends no headers).

``POST /events/stream-token`` with the API key in the ``X-API-Key`` header
answers a token that names the key's holder and role and expires after
:data:`TOKEN_TTL_S`; ``GET /events/stream?token=…`` accepts it, and no other
route does (they read keys from headers only), so the raw API key never
appears in a URL, a server log or the browser's history. The token is
``<payload>.<signature>``: the payload is base64url JSON (``sub``, ``role``,
``scope``, ``exp``), the signature its HMAC-SHA256 under a secret that lives
only in the server's memory — or, for several workers, in
``TWIN_API_STREAM_SECRET`` (hex), which ``twin serve`` sets for its workers.

Examples
--------
>>> from twin_api.security import KeyRing, hash_key
>>> ring = KeyRing([("ops-desk-1", "restricted", hash_key("k"))])
>>> tokens = StreamTokens(b"0" * 32)
>>> token, expires = tokens.issue(ring.caller("k"), now=1000.0)
>>> expires, tokens.verify(token, ring, now=1100.0).name
(1300, 'ops-desk-1')
>>> try:
...     tokens.verify(token, ring, now=1301.0)
... except Exception as exc:
...     print(str(exc)[:32])
the stream token expired: ask PO
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time

import orjson

from .errors import AuthenticationError
from .security import Caller, KeyRing

__all__ = ["SCOPE", "SECRET_ENV", "TOKEN_TTL_S", "StreamTokens"]

#: How long a stream token may be used to open (or reopen) the stream, seconds.
TOKEN_TTL_S = 300
#: The one route a token opens.
SCOPE = "events/stream"
#: Hex secret shared by the workers of one ``twin serve``.
SECRET_ENV = "TWIN_API_STREAM_SECRET"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StreamTokens:
    """Issues and checks stream tokens under one secret.

    Parameters
    ----------
    secret : bytes
        At least 16 bytes; :meth:`from_env` reads or makes one.
    ttl_s : int, default :data:`TOKEN_TTL_S`
        Lifetime of a token.
    """

    def __init__(self, secret: bytes, ttl_s: int = TOKEN_TTL_S) -> None:
        if len(secret) < 16:
            raise ValueError("a stream-token secret needs at least 16 bytes")
        self._secret = secret
        self.ttl_s = int(ttl_s)

    @classmethod
    def from_env(cls) -> StreamTokens:
        """Under ``TWIN_API_STREAM_SECRET`` when set (several workers), else a fresh secret."""
        text = os.environ.get(SECRET_ENV, "")
        try:
            secret = bytes.fromhex(text) if text else secrets.token_bytes(32)
        except ValueError:
            secret = b""
        if len(secret) < 16:
            raise AuthenticationError(
                f"{SECRET_ENV} must be at least 32 hex digits; unset it for a random secret"
            )
        return cls(secret)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, caller: Caller, *, now: float | None = None) -> tuple[str, int]:
        """A token for ``caller`` and its expiry (Unix seconds)."""
        expires = int((time.time() if now is None else now) + self.ttl_s)
        body = {"sub": caller.name, "role": caller.role, "scope": SCOPE, "exp": expires}
        payload = _b64(orjson.dumps(body))
        return f"{payload}.{self._sign(payload)}", expires

    def verify(self, token: str, keys: KeyRing, *, now: float | None = None) -> Caller:
        """The caller a valid token names; 401 for a forged, expired or foreign token."""
        payload, _, signature = token.partition(".")
        if not signature or not hmac.compare_digest(signature, self._sign(payload)):
            raise AuthenticationError(
                "the stream token is not valid here: ask POST /events/stream-token for one"
            )
        try:
            body = orjson.loads(_unb64(payload))
        except (binascii.Error, orjson.JSONDecodeError, ValueError):
            raise AuthenticationError("the stream token is malformed") from None
        if body.get("scope") != SCOPE:
            raise AuthenticationError(f"the token is not for {SCOPE}")
        if int(body.get("exp", 0)) < (time.time() if now is None else now):
            raise AuthenticationError(
                "the stream token expired: ask POST /events/stream-token for a new one"
            )
        role = str(body.get("role"))
        if role not in keys.roles:
            raise AuthenticationError(f"the stream token's role {role!r} no longer exists")
        return Caller(str(body.get("sub")), role, keys.roles[role], role in keys.writers)
