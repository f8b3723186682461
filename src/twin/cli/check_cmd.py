"""``twin check``: plan compliance (规划管控) of the buildings against their parcels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from twin.analyses import Twin
from twin.cli._common import JsonOpt, TwinArg, only_layer_of_kind, out, print_json
from twin.compliance import plan_compliance
from twin.io.export import write_layer

_SHOWN = 20


def check(
    twin_path: TwinArg,
    parcels: Annotated[
        str | None, typer.Option(help="Parcel layer (default: the only one).")
    ] = None,
    buildings: Annotated[
        str | None, typer.Option(help="Building layer (default: the only one).")
    ] = None,
    floor_height_m: Annotated[
        float, typer.Option("--floor-height-m", help="Storey height linking floors and height.")
    ] = 3.0,
    output: Annotated[
        Path | None,
        typer.Option("--out", help="Write the table as a layer: .gpkg .geojson .parquet .csv …"),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Parcels over their FAR (容积率) or coverage (建筑密度) limit, buildings over their
    parcel's height limit (限高), buildings on no parcel: measured value, limit, excess.

    Example: [bold]twin check chengdu.twin.gpkg --out compliance.gpkg[/bold]
    """
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


def report_check(
    table: pd.DataFrame, output: Path | None, json_output: bool, *, layer: str
) -> None:
    """Write a compliance table to ``output`` (as ``layer``), then print it or its JSON."""
    if output is not None:
        write_layer(table, output, layer=layer)
    counts = {str(check): int(n) for check, n in table["check"].value_counts().items()}
    if json_output:
        rows = table.drop(columns="geometry").replace({float("nan"): None})
        print_json(
            {
                "counts": counts,
                "violations": rows.to_dict(orient="records"),
                "out": str(output) if output else None,
            }
        )
        return
    _print_table(table, counts, output)


def _print_table(table: pd.DataFrame, counts: dict[str, int], output: Path | None) -> None:
    if table.empty:
        out.print("no violations: every parcel and building complies")
        return
    out.print(", ".join(f"{n} {check}" for check, n in counts.items()))
    grid = Table()
    for column in ("check", "uid", "parcel", "measured", "limit", "excess"):
        grid.add_column(
            column, justify="right" if column in ("measured", "limit", "excess") else "left"
        )
    for _, row in table.head(_SHOWN).iterrows():
        grid.add_row(
            row["check"],
            row["uid"],
            str(row["parcel_uid"] or ""),
            *(("" if pd.isna(row[c]) else f"{row[c]:g}") for c in ("measured", "limit", "excess")),
        )
    out.print(grid)
    if len(table) > _SHOWN:
        out.print(f"… and {len(table) - _SHOWN} more (all of them with --json or --out)")
    if output is not None:
        out.print(f"wrote {len(table)} rows to {output}")


def register(app: typer.Typer) -> None:
    app.command("check")(check)
