"""``twin init``: create an empty twin file."""

from __future__ import annotations

from typing import Annotated

import typer

from twin.analyses import Twin
from twin.cli._common import JsonOpt, TwinArg, out, print_json


def init(
    twin_path: TwinArg,
    crs: Annotated[
        str,
        typer.Option(
            "--crs",
            help="The twin CRS: 'auto' (CGCS2000 Gauss-Krüger zone in China, UTM elsewhere, "
            "chosen at the first import) or any CRS, e.g. EPSG:4544.",
        ),
    ] = "auto",
    name: Annotated[str | None, typer.Option(help="A title for the twin.")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing file.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Create an empty twin (one GeoPackage).

    Example: [bold]twin init chengdu.twin.gpkg --crs EPSG:4544[/bold]
    """
    city = Twin.create(twin_path, crs=crs, name=name, overwrite=overwrite)
    if json_output:
        print_json({"path": city.location, "crs": city.crs_text, "name": city.meta["name"]})
    else:
        out.print(f"created {city.location} (CRS {city.crs_text})")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
