"""API keys, roles and the audit log (数据分级分类).

Keys are never stored, only their SHA-256 digests (keys are long random
tokens, so a plain digest cannot be reversed by guessing). Each key has a
role; a role sets the highest classification its holder may read:

========== ==========================================================
role       may read
========== ==========================================================
public     public layers (also what a caller without a key gets)
internal   public and internal layers (sensors)
restricted every layer, including pipes, valves and camera locations
========== ==========================================================

A keys file (YAML or JSON) may add roles of its own::

    roles:                 # role -> highest classification it may read
      planner: internal
      ops-centre: restricted
    keys:
      - name: ops-desk-1   # who: written to the audit log
        role: ops-centre
        sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
    writers: [ops-centre]  # roles that may write observations and event transitions

The ``TWIN_API_KEYS`` environment variable holds more keys as
``name:role:sha256hex`` entries separated by commas.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from twin.errors import UsageError
from twin.kinds import Classification

from .errors import AuthenticationError

BUILTIN_ROLES: dict[str, Classification] = {c.value: c for c in Classification}
ANONYMOUS = "anonymous"


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which ``key`` is stored.

    Examples
    --------
    >>> hash_key("password")
    '5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8'
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random API key (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Caller:
    """Who is asking: the key's name and role, and the highest classification they may read."""

    name: str
    role: str
    max_classification: Classification
    may_write: bool = False

    def may_read(self, classification: str | Classification) -> bool:
        """Whether a layer of ``classification`` exists for this caller."""
        return Classification(classification).rank <= self.max_classification.rank


ANONYMOUS_CALLER = Caller(ANONYMOUS, "public", Classification.PUBLIC)


class KeyRing:
    """The known keys (by digest) and the roles.

    Parameters
    ----------
    entries : iterable of (name, role, sha256)
        The keys.
    roles : mapping of role to classification, optional
        Roles besides the built-in ``public``, ``internal`` and ``restricted``.
    """

    def __init__(
        self,
        entries: Iterable[tuple[str, str, str]] = (),
        roles: Mapping[str, str] | None = None,
        writers: Iterable[str] = (),
    ) -> None:
        self.roles = dict(BUILTIN_ROLES)
        self.writers = {str(w) for w in writers}
        for role, level in (roles or {}).items():
            self.roles[str(role)] = _classification(level, f"role {role!r}")
        self._by_digest: dict[str, Caller] = {}
        for name, role, digest in entries:
            self.add(name, role, digest)

    def add(self, name: str, role: str, digest: str) -> None:
        """Register a key by its digest."""
        digest = digest.strip().lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise UsageError(
                f"key {name!r}: {digest!r} is not a SHA-256 hex digest; make one with "
                "`printf %s KEY | sha256sum`"
            )
        if role not in self.roles:
            raise UsageError(
                f"key {name!r} has unknown role {role!r}: use one of {', '.join(self.roles)}"
            )
        self._by_digest[digest] = Caller(name, role, self.roles[role], role in self.writers)

    def __len__(self) -> int:
        return len(self._by_digest)

    def caller(self, key: str | None) -> Caller:
        """The caller holding ``key``; anonymous without one, 401 for an unknown one."""
        if not key:
            return ANONYMOUS_CALLER
        found = self._by_digest.get(hash_key(key))
        if found is None:
            raise AuthenticationError(
                "unknown API key: send a valid key in the X-API-Key header, or none for "
                "public layers only"
            )
        return found

    @classmethod
    def load(cls, keys_file: Path | None = None, inline: str | None = None) -> KeyRing:
        """Keys from a YAML/JSON file and from ``name:role:sha256`` text (either optional)."""
        roles: dict[str, str] = {}
        entries: list[tuple[str, str, str]] = []
        writers: list[str] = []
        if keys_file is not None:
            file_roles, file_entries = _read_keys_file(keys_file)
            roles.update(file_roles)
            entries += file_entries
            writers = _read_writers(keys_file)
        if inline:
            entries += _parse_inline(inline)
        return cls(entries, roles, writers)


def _classification(value: Any, what: str) -> Classification:
    try:
        return Classification(str(value))
    except ValueError:
        levels = ", ".join(c.value for c in Classification)
        raise UsageError(
            f"{what}: {value!r} is not a classification; use one of {levels}"
        ) from None


def _read_keys_file(path: Path) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise UsageError(f"keys file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"keys file {path} is not valid YAML/JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys", []), list):
        raise UsageError(f"keys file {path} must hold a mapping with a 'keys' list")
    roles = data.get("roles") or {}
    if not isinstance(roles, dict):
        raise UsageError(f"keys file {path}: 'roles' must map role names to classifications")
    entries = []
    for number, item in enumerate(data.get("keys") or [], start=1):
        if not isinstance(item, dict) or not {"name", "role", "sha256"} <= set(item):
            raise UsageError(f"keys file {path}: key {number} needs name, role and sha256")
        if not isinstance(item["sha256"], str):
            raise UsageError(f"keys file {path}: key {number}: quote the sha256 digest")
        entries.append((str(item["name"]), str(item["role"]), str(item["sha256"])))
    return {str(k): str(v) for k, v in roles.items()}, entries


def _read_writers(path: Path) -> list[str]:
    """The ``writers`` list of a keys file: roles that may write (observations, events)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    writers = data.get("writers") or []
    if not isinstance(writers, list):
        raise UsageError(f"keys file {path}: 'writers' must be a list of role names")
    return [str(w) for w in writers]


def _parse_inline(text: str) -> list[tuple[str, str, str]]:
    entries = []
    for part in text.split(","):
        if not part.strip():
            continue
        pieces = part.strip().split(":")
        if len(pieces) != 3:
            raise UsageError(f"TWIN_API_KEYS entry {part.strip()!r} must be name:role:sha256hex")
        name, role, digest = pieces
        entries.append((name, role, digest))
    return entries


class AuditLog:
    """Appends one JSON line per request that touched restricted data.

    Each line: ``time`` (UTC, ISO 8601), ``who`` (key name), ``role``,
    ``client`` (address), ``method``, ``path``, ``query``, ``status`` and
    ``layers`` (the restricted layers the request read).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` (with the time added) as one line, written in one call."""
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = orjson.dumps({"time": stamp, **record}) + b"\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
