"""``twin keys``: add, list and revoke the API keys of ``twin serve`` (stored hashed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from twin.cli._common import JsonOpt, err, out, print_json

keys_app = typer.Typer(
    help="Manage the keys file of `twin serve --keys-file`: keys are stored as SHA-256 "
    "digests, shown once when added.\n\nExample: twin keys add keys.yaml ops-desk-1 "
    "--role restricted",
    no_args_is_help=True,
)

KeysFileArg = Annotated[
    Path, typer.Argument(help="The keys file (YAML), e.g. keys.yaml.", show_default=False)
]
NameArg = Annotated[str, typer.Argument(help="Who holds the key (written to the audit log).")]


@keys_app.command("add")
def add(
    keys_file: KeysFileArg,
    name: NameArg,
    role: Annotated[
        str,
        typer.Option("--role", help="public, internal, restricted, or a role the file defines."),
    ],
    json_output: JsonOpt = False,
) -> None:
    """Add a key: prints the new key once; the file keeps only its digest.

    Example: [bold]twin keys add keys.yaml ops-desk-1 --role restricted[/bold]
    """
    from twin_api.keyfile import add_key

    key = add_key(keys_file, name, role)
    if json_output:
        print_json({"name": name, "role": role, "key": key})
        return
    out.print(key, highlight=False)
    err.print(f"added {name} ({role}) to {keys_file}: the key is shown only now", highlight=False)


@keys_app.command("list")
def list_(keys_file: KeysFileArg, json_output: JsonOpt = False) -> None:
    """List the keys: name, role, when added, the start of the digest.

    Example: [bold]twin keys list keys.yaml --json[/bold]
    """
    from twin_api.keyfile import list_keys

    entries = list_keys(keys_file)
    if json_output:
        print_json([{"name": k.name, "role": k.role, "created": k.created} for k in entries])
        return
    table = Table("name", "role", "created", "sha256")
    for k in entries:
        table.add_row(k.name, k.role, k.created or "", k.sha256[:12] + "…")
    out.print(table)


@keys_app.command("revoke")
def revoke(keys_file: KeysFileArg, name: NameArg) -> None:
    """Remove a key; a running server picks the change up on restart.

    Example: [bold]twin keys revoke keys.yaml ops-desk-1[/bold]
    """
    from twin_api.keyfile import revoke_key

    revoke_key(keys_file, name)
    err.print(f"revoked {name} in {keys_file}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
