"""``twin history``: imports (provenance) and their change sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from twin.analyses import Twin
from twin.cli._common import JsonOpt, TwinArg, out, print_json
from twin.raster import raster_layers

_SHOWN_CHANGES = 50


def history(
    twin_path: TwinArg,
    layer: Annotated[
        str | None, typer.Option("--layer", "-l", help="Only this layer's imports.")
    ] = None,
    import_id: Annotated[
        int | None,
        typer.Option(
            "--import", help="Show the change set (uids added / changed / removed) of this import."
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """List imports with their counts, or one import's change set.

    Examples: [bold]twin history city.gpkg -l buildings[/bold];
    [bold]twin history city.gpkg --import 3 --json[/bold]
    """
    city = Twin.open(twin_path)
    if import_id is not None:
        _show_changes(city, import_id, json_output)
        return
    if layer is not None and layer not in raster_layers(city):
        city.info(layer)
    imports = city.imports(layer)
    if json_output:
        print_json(
            [
                {"import_id": int(str(i)), **row.drop(["report"]).to_dict()}
                for i, row in imports.iterrows()
            ]
        )
        return
    table = Table()
    for column in (
        "id",
        "time (UTC)",
        "layer",
        "source",
        "read",
        "imported",
        "rejected",
        "+added",
        "~changed",
        "-removed",
    ):
        table.add_column(column)
    for import_no, row in imports.iterrows():
        table.add_row(
            str(import_no),
            row["time"],
            row["layer"],
            Path(row["source"]).name,
            *(
                str(row[c])
                for c in ("n_read", "n_imported", "n_rejected", "n_added", "n_changed", "n_removed")
            ),
        )
    out.print(table)


def _show_changes(city: Twin, import_id: int, json_output: bool) -> None:
    changes = city.changes(import_id)
    if json_output:
        print_json({"import_id": import_id, "changes": changes.to_dict(orient="records")})
        return
    row = city.imports().loc[import_id]
    if row["options"].get("raster"):
        out.print(
            f"import {import_id} (raster {row['layer']}): {row['n_added']} cells added, "
            f"{row['n_changed']} changed, {row['n_removed']} removed, "
            f"{row['n_unchanged']} unchanged",
            highlight=False,
        )
        return
    counts = changes["change"].value_counts().to_dict()
    out.print(f"import {import_id}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    for _, row in changes.head(_SHOWN_CHANGES).iterrows():
        out.print(f"  {row['change']:8} {row['uid']}", markup=False, highlight=False)
    if len(changes) > _SHOWN_CHANGES:
        out.print(f"  … and {len(changes) - _SHOWN_CHANGES} more (all of them with --json)")


def register(app: typer.Typer) -> None:
    app.command("history")(history)
