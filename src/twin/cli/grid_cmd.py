"""``twin grid``: generate a management grid (网格) from the district boundaries."""

from __future__ import annotations

from typing import Annotated

import typer

from twin.analyses import Twin
from twin.cli._common import JsonOpt, TwinArg, only_layer_of_kind, out, print_json
from twin.grid import grid_from_districts


def grid(
    twin_path: TwinArg,
    cell_m: Annotated[float, typer.Option("--cell-m", help="Cell side in metres.")] = 500.0,
    districts: Annotated[
        str | None,
        typer.Option("--districts", help="District layer (default: the twin's district layer)."),
    ] = None,
    layer: Annotated[str, typer.Option("--layer", "-l", help="Grid layer to write.")] = "grids",
    force: Annotated[
        bool, typer.Option("--force", help="Write the twin even if its file is read-only.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Generate square grid cells clipped to the districts, with ids stable across runs
    (<district>-<cell>-<column>-<row>), and import them as a grid layer.

    Example: [bold]twin grid chengdu.twin.gpkg --cell-m 500 && twin build chengdu.twin.gpkg[/bold]
    """
    city = Twin.open(twin_path, force=force)
    source = districts or only_layer_of_kind(city, "district", "--districts")
    cells = grid_from_districts(city.layer(source), cell_m=cell_m)
    report = city.import_frame(
        cells,
        layer=layer,
        kind="grid",
        id="grid_code",
        source=f"generated: {cell_m:g} m grid clipped to {source}",
    )
    if json_output:
        print_json(report.to_dict())
        return
    out.print(
        f"{layer}: {report.imported:,} cells of {cell_m:g} m from {source} "
        f"(added {report.added}, changed {report.changed}, removed {report.removed})"
    )


def register(app: typer.Typer) -> None:
    app.command("grid")(grid)
