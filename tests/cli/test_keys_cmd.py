"""``twin keys add|list|revoke`` manage the hashed keys file a real server reads (issue 12)."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.cli.test_cli_guards import run_main

ROLES = ["public", "internal", "restricted"]


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """Run ``twin …`` in this process (the real entry point)."""
    return lambda *args: run_main([str(a) for a in args], monkeypatch, capsys)


def add_key(cli: Callable[..., tuple[int, str, str]], keys: Path, name: str, role: str) -> str:
    code, out, err = cli("keys", "add", keys, name, "--role", role, "--json")
    assert code == 0, err
    return str(json.loads(out)["key"])


def test_keys_are_stored_hashed_listed_and_revoked(tmp_path: Path, cli: Callable) -> None:
    keys = tmp_path / "keys.yaml"
    added = {f"user-{role}": (add_key(cli, keys, f"user-{role}", role), role) for role in ROLES}
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    text = keys.read_text(encoding="utf-8")
    stored = {k["name"]: k for k in yaml.safe_load(text)["keys"]}
    for name, (key, role) in added.items():
        assert key not in text and len(key) >= 40
        assert stored[name]["sha256"] == hashlib.sha256(key.encode()).hexdigest()
        assert stored[name]["role"] == role
    listed = json.loads(cli("keys", "list", keys, "--json")[1])
    assert [(k["name"], k["role"]) for k in listed] == [(f"user-{r}", r) for r in ROLES]
    assert cli("keys", "revoke", keys, "user-internal")[0] == 0
    listed = json.loads(cli("keys", "list", keys, "--json")[1])
    assert [k["name"] for k in listed] == ["user-public", "user-restricted"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "{k}", "x", "--role", "secret"], "unknown role"),
        (["add", "{k}", "a:b", "--role", "public"], "key name"),
        (["add", "{k}", "dup", "--role", "public"], "already has a key"),
        (["revoke", "{k}", "nobody"], "no key called"),
    ],
)
def test_bad_key_commands_exit_2(
    tmp_path: Path, args: list[str], message: str, cli: Callable
) -> None:
    keys = tmp_path / "keys.yaml"
    add_key(cli, keys, "dup", "public")
    before = keys.read_bytes()
    code, _, err = cli("keys", *[a.format(k=keys) for a in args])
    assert code == 2 and message in err
    assert keys.read_bytes() == before
