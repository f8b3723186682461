"""``twin copy``: copy a twin between a GeoPackage and PostGIS (history and relations included)."""

from __future__ import annotations

from typing import Annotated

import typer

from twin.cli._common import JsonOpt, out, print_json
from twin.store.transfer import copy_twin

_TwinName = Annotated[
    str,
    typer.Argument(
        help="A twin: a GeoPackage file or a PostGIS URL (postgresql://user@host/db?schema=NAME).",
        show_default=False,
    ),
]


def copy(
    source: _TwinName,
    target: _TwinName,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a twin already at TARGET.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Copy a twin, every layer with its history, provenance and relations, to another store.

    Example: [bold]twin copy chengdu.twin.gpkg "postgresql://gis@db:5432/cim?schema=chengdu"[/bold]
    """
    report = copy_twin(source, target, overwrite=overwrite)
    if json_output:
        print_json(report.to_dict())
        return
    features = sum(report.layers.values())
    versions = sum(report.history.values())
    out.print(
        f"copied {report.source} to {report.target}: {len(report.layers)} layers, "
        f"{features} features, {versions} older versions, {report.imports} imports, "
        f"{report.relations} relation rows"
    )


def register(app: typer.Typer) -> None:
    app.command("copy")(copy)
