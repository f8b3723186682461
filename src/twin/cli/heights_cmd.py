"""``twin heights``: building heights from a DSM and a DEM raster layer."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from twin.analyses import Twin
from twin.cli._common import JsonOpt, TwinArg, only_layer_of_kind, out, print_json

_SHOWN = 15


def heights(
    twin_path: TwinArg,
    dsm: Annotated[str, typer.Option("--dsm", help="The DSM raster layer.")] = "dsm",
    dem: Annotated[str, typer.Option("--dem", help="The DEM raster layer.")] = "dem",
    buildings: Annotated[
        str | None, typer.Option("--buildings", help="Building layer (default: the only one).")
    ] = None,
    percentile: Annotated[
        float, typer.Option("--percentile", help="Percentile of DSM - DEM taken as the height.")
    ] = 90.0,
    storeys: Annotated[
        tuple[float, float],
        typer.Option("--storeys", help="Plausible storey heights, m: MIN MAX."),
    ] = (2.6, 5.0),
    slack: Annotated[
        float, typer.Option("--slack", help="Metres of slack before a floors flag.", min=0)
    ] = 3.0,
    json_output: JsonOpt = False,
) -> None:
    """Set each building's height_m (a percentile of DSM - DEM over its footprint), ground_m
    (lowest DEM cell) and height_source; flag buildings whose floors disagree.

    Example: [bold]twin import city.gpkg dsm.tif -l dsm -k dsm && twin import city.gpkg
    dem.tif -l dem -k dem && twin heights city.gpkg --dsm dsm --dem dem[/bold]
    """
    from twin.heights import apply_heights  # rasterio: imported when the command runs

    city = Twin.open(twin_path)
    layer = buildings or only_layer_of_kind(city, "building", "--buildings")
    report, measured = apply_heights(
        city,
        layer=layer,
        dsm=dsm,
        dem=dem,
        percentile=percentile,
        storeys_m=storeys,
        slack_m=slack,
    )
    flagged = measured[measured["floors_flag"] != ""]
    if json_output:
        rows = flagged.reset_index().replace({float("nan"): None})
        print_json({**report.to_dict(), "flagged": rows.to_dict(orient="records")})
        return
    out.print(
        f"{layer}: {report.measured:,} of {report.buildings:,} buildings measured "
        f"(import {report.import_id}, {report.changed:,} changed); floors disagree: "
        f"{report.taller:,} taller, {report.lower:,} lower; {report.not_measurable:,} too small"
    )
    if len(flagged):
        table = Table()
        for column in ("uid", "flag", "height_m", "storey_m", "difference_m", "samples"):
            table.add_column(column, justify="left" if column in ("uid", "flag") else "right")
        worst = flagged.reindex(flagged["difference_m"].abs().sort_values(ascending=False).index)
        for uid, row in worst.head(_SHOWN).iterrows():
            table.add_row(
                str(uid),
                row["floors_flag"],
                f"{row['height_m']:g}",
                f"{row['storey_m']:g}",
                f"{row['difference_m']:g}",
                str(row["samples"]),
            )
        out.print(table)


def register(app: typer.Typer) -> None:
    app.command("heights")(heights)
