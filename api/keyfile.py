"""Managing the keys file: add a key (shown once, stored hashed), list, revoke.

The file is the one :class:`twin_api.security.KeyRing` reads::

    roles:
      ops-centre: restricted
    keys:
      - name: ops-desk-1
        role: ops-centre
        sha256: 5e88…

Writes replace the file atomically and keep it private (mode 600 for a new
file, the existing mode otherwise): it lists who may read restricted layers.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from twin.errors import UsageError

from .security import BUILTIN_ROLES, _read_keys_file, hash_key, new_key


@dataclass(frozen=True)
class KeyEntry:
    """One key as the file holds it (never the key itself)."""

    name: str
    role: str
    sha256: str
    created: str | None = None


def list_keys(path: Path) -> list[KeyEntry]:
    """The keys of ``path`` (empty when the file does not exist yet).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> keys = pathlib.Path(tempfile.mkdtemp()) / "keys.yaml"
    >>> secret = add_key(keys, "ops-desk-1", "restricted")
    >>> [(k.name, k.role) for k in list_keys(keys)]
    [('ops-desk-1', 'restricted')]
    >>> revoke_key(keys, "ops-desk-1"); list_keys(keys)
    []
    """
    document = _load(path)
    return [
        KeyEntry(str(k["name"]), str(k["role"]), str(k["sha256"]), k.get("created"))
        for k in document["keys"]
    ]


def add_key(path: Path, name: str, role: str) -> str:
    """Add a key called ``name`` with ``role``; return the new key (only its hash is stored)."""
    if not name.strip() or any(c in name for c in ":,\n"):
        raise UsageError(f"key name {name!r} must be non-empty, without ':' ',' or line breaks")
    document = _load(path)
    roles = {**{r: r for r in BUILTIN_ROLES}, **(document.get("roles") or {})}
    if role not in roles:
        raise UsageError(f"unknown role {role!r}: use one of {', '.join(roles)}")
    if any(str(k["name"]) == name for k in document["keys"]):
        raise UsageError(f"{path} already has a key called {name!r}: revoke it first")
    key = new_key()
    stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    document["keys"].append({"name": name, "role": role, "sha256": hash_key(key), "created": stamp})
    _save(path, document)
    return key


def revoke_key(path: Path, name: str) -> None:
    """Remove the key called ``name``; an unknown name is a :class:`UsageError`."""
    document = _load(path)
    kept = [k for k in document["keys"] if str(k["name"]) != name]
    if len(kept) == len(document["keys"]):
        names = ", ".join(str(k["name"]) for k in document["keys"]) or "none"
        raise UsageError(f"{path} has no key called {name!r}; its keys: {names}")
    document["keys"] = kept
    _save(path, document)


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"keys": []}
    _read_keys_file(path)  # the same checks the server makes
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    document["keys"] = list(document.get("keys") or [])
    return dict(document)


def _save(path: Path, document: dict[str, Any]) -> None:
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o600
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(document, handle, allow_unicode=True, sort_keys=False)
        os.chmod(temp, mode)
        os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
