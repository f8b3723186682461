"""``twin export``: write a layer, or a layer as of a date, to a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from twin.analyses import Twin
from twin.cli._common import JsonOpt, TwinArg, out, print_json
from twin.errors import UsageError


def export(
    twin_path: TwinArg,
    layer: Annotated[str, typer.Argument(help="The layer to export.", show_default=False)],
    output: Annotated[
        Path,
        typer.Argument(
            help="Output file: .gpkg .geojson .parquet .shp .fgb .csv; 3D (LOD1 buildings): "
            ".city.json .city.jsonl .glb, or tileset.json / a folder/ for 3D Tiles",
            show_default=False,
        ),
    ],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="The layer as it was then, e.g. 2026-05-01 or 2026-05-01T08:00Z (UTC)."
        ),
    ] = None,
    crs: Annotated[
        str | None,
        typer.Option("--crs", help="Reproject on the way out, e.g. EPSG:4490 or EPSG:4326."),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="Shapefile encoding (default UTF-8), e.g. GBK.")
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="CSV: keep text starting with = + - @ as it is (by default it gets a "
            "leading ' so spreadsheets do not run it as a formula).",
        ),
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Export a layer; the output suffix picks the format.

    Example: [bold]twin export city.gpkg buildings buildings_4490.geojson --crs EPSG:4490[/bold]

    Example: [bold]twin export city.gpkg buildings tiles/tileset.json[/bold]
    """
    city = Twin.open(twin_path)
    from twin.city3d import export_3d, is_3d_target

    if is_3d_target(output):
        if as_of is not None or crs is not None:
            raise UsageError("3D exports (CityJSON, glb, 3D Tiles) take neither --as-of nor --crs")
        path = export_3d(city, layer, output)
        if json_output:
            print_json({"layer": layer, "path": str(path), "crs": city.crs_text})
        else:
            out.print(f"wrote the LOD1 blocks of {layer} to {path}")
        return
    written = city.export(layer, output, as_of=as_of, crs=crs, encoding=encoding, raw=raw)
    count = city.info(layer).feature_count if as_of is None else None
    if json_output:
        print_json(
            {"layer": layer, "path": str(written), "as_of": as_of, "crs": crs or city.crs_text}
        )
    else:
        suffix = f" ({count:,} features)" if count is not None else f" as of {as_of}"
        out.print(f"wrote {layer} to {written}{suffix}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
