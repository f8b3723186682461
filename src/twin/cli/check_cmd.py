"""``twin check``: plan compliance (规划管控) of the buildings against their parcels."""

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
    report_check,
)


def check(
    twin_path: TwinArg,
    parcels: Annotated[
        str | None, typer.Option(help="Parcel layer (default: the only one).")
    ] = None,
    buildings: OnlyBuildingsOpt = None,
    floor_height_m: Annotated[
        float, typer.Option("--floor-height-m", help="Storey height linking floors and height.")
    ] = 3.0,
    output: TableOutOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Parcels over their FAR (容积率) or coverage (建筑密度) limit, buildings over their
    parcel's height limit (限高), buildings on no parcel: measured value, limit, excess.

    Example: [bold]twin check chengdu.twin.gpkg --out compliance.gpkg[/bold]
    """
    from twin.compliance import plan_compliance  # scipy: imported when the command runs

    city = Twin.open(twin_path)
    parcel_layer = parcels or only_layer_of_kind(city, "parcel", "--parcels")
    building_layer = buildings or only_layer_of_kind(city, "building", "--buildings")
    table = plan_compliance(
        city.layer(parcel_layer),
        city.layer(building_layer),
        floor_height_m=floor_height_m,
        parcel_layer=parcel_layer,
        building_layer=building_layer,
    )
    report_check(table, output, json_output, layer="compliance")


def register(app: typer.Typer) -> None:
    app.command("check")(check)
