"""``twin check-3d``: buildings over their parcel's height limit or over a limit surface."""

from __future__ import annotations

from typing import Annotated

import typer

from twin.analyses import Twin
from twin.cli._common import (
    JsonOpt,
    OnlyBuildingsOpt,
    TableOutOpt,
    TwinArg,
    only_layer_of_kind,
    out,
    report_check,
)


def check_3d(
    twin_path: TwinArg,
    limit_surface: Annotated[
        str | None,
        typer.Option("--limit-surface", help="A raster layer of limit elevations (净空 surface)."),
    ] = None,
    parcels: Annotated[
        str | None,
        typer.Option(help="Parcel layer with height_limit_m (default: the only one; '' none)."),
    ] = None,
    buildings: OnlyBuildingsOpt = None,
    storey_m: Annotated[
        float, typer.Option("--storey-m", help="Storey height where only floors are known.")
    ] = 3.0,
    output: TableOutOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Height limits (限高) in 3D: buildings over their parcel's limit, and roofs
    (ground_m + height_m) over a limit surface raster: measured, limit, excess.

    Example: [bold]twin check-3d city.gpkg --limit-surface airport_clearance --json[/bold]
    """
    from twin.city3d import height_compliance_3d  # trimesh: imported when this command runs
    from twin.raster import read_raster

    city = Twin.open(twin_path)
    building_layer = buildings or only_layer_of_kind(city, "building", "--buildings")
    parcel_layer = (
        parcels if parcels is not None else only_layer_of_kind(city, "parcel", "--parcels")
    )
    table = height_compliance_3d(
        city.layer(parcel_layer) if parcel_layer else None,
        city.layer(building_layer),
        limit_surface=read_raster(city, limit_surface) if limit_surface else None,
        storey_m=storey_m,
        building_layer=building_layer,
        parcel_layer=parcel_layer or "parcels",
    )
    report_check(table, output, json_output, layer="height_compliance")
    if table.empty and not json_output:
        out.print("(heights checked against the parcel limits and the limit surface)")


def register(app: typer.Typer) -> None:
    app.command("check-3d")(check_3d)
