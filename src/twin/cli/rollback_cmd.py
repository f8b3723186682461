"""``twin rollback``: put a layer back as it was before one import."""

from __future__ import annotations

from typing import Annotated

import typer

from twin.cli._common import JsonOpt, TwinArg, out, print_json
from twin.model import Twin


def rollback(
    twin_path: TwinArg,
    import_id: Annotated[
        int, typer.Option("--import", help="The import to undo (`twin history` lists them).")
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Write the twin even if its file is read-only.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Put the layer an import changed back as it was before it, as a new import.

    Nothing is deleted: the rollback is itself a change set in the history.

    Example: [bold]twin rollback city.gpkg --import 7[/bold]
    """
    report = Twin.open(twin_path, force=force).rollback(import_id)
    if json_output:
        print_json(report.to_dict())
        return
    out.print(
        f"{report.layer}: back to before import {import_id} as import {report.import_id} "
        f"(added {report.added}, changed {report.changed}, removed {report.removed})"
    )


def register(app: typer.Typer) -> None:
    app.command("rollback")(rollback)
