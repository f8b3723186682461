"""``twin indicators``: city indicators by parcel, grid cell or district."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from twin.analyses import Twin
from twin.cli._common import JsonOpt, TwinArg, as_option_error, out, print_json
from twin.errors import UsageError

_SHOWN = ["building_count", "far", "coverage", "height_max_m"]


def indicators(
    twin_path: TwinArg,
    by: Annotated[
        str, typer.Option("--by", help="parcel, grid, district, or the name of a zone layer.")
    ] = "grid",
    output: Annotated[
        Path | None,
        typer.Option("--out", help="Write the table: .gpkg .parquet (GeoParquet) .csv .geojson"),
    ] = None,
    floor_height_m: Annotated[
        float, typer.Option("--floor-height-m", help="Storey height linking floors and height.")
    ] = 3.0,
    json_output: JsonOpt = False,
) -> None:
    """FAR (容积率), coverage (建筑密度), heights, sensor counts, density and coverage by
    type, road and pipe km: one row per zone.

    Example: [bold]twin indicators chengdu.twin.gpkg --by grid --out grid_indicators.gpkg[/bold]
    """
    from twin.io.export import write_layer  # the indicators' scipy: when the command runs
    from twin.zones import indicators_by_zone, zone_layer

    city = Twin.open(twin_path)
    try:
        layer = zone_layer(city, by)
    except UsageError as exc:
        raise as_option_error(exc, by="--by") from None
    table = indicators_by_zone(city, layer, floor_height_m=floor_height_m)
    if output is not None:
        write_layer(table.reset_index(), output, layer=f"indicators_{layer}")
    if json_output:
        rows = table.drop(columns="geometry").reset_index()
        print_json(
            {
                "by": layer,
                "zones": len(table),
                "out": str(output) if output else None,
                "rows": rows.astype(object).where(rows.notna(), None).to_dict("records"),
            }
        )
        return
    shown = [c for c in _SHOWN if c in table.columns]
    out.print(f"{len(table):,} zones of {layer}, {table.shape[1] - 1} columns")
    out.print(table[shown].describe().loc[["mean", "min", "max"]].round(3).to_string())
    if output is not None:
        out.print(f"wrote {output}")


def register(app: typer.Typer) -> None:
    app.command("indicators")(indicators)
