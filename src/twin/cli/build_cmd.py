"""``twin build``: compute and store the cross-layer relations."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from twin import settings
from twin.analyses import Twin
from twin.cli._common import JsonOpt, TwinArg, out, print_json, progress_callback, show_progress


class Engine(StrEnum):
    """Where a build's tiles are computed."""

    local = "local"
    dask = "dask"


def build(
    twin_path: TwinArg,
    max_distance_m: Annotated[
        float,
        typer.Option("--max-distance-m", help="How far a sensor may stand from its building."),
    ] = settings.SENSOR_DISTANCE_M,
    max_service_m: Annotated[
        float,
        typer.Option("--max-service-m", help="How far a building may be from its serving pipe."),
    ] = settings.SERVICE_DISTANCE_M,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Recompute every relation, changed inputs or not (and write a read-only twin).",
        ),
    ] = False,
    tile_features: Annotated[
        int | None,
        typer.Option(
            "--tile-features",
            min=1,
            help="Build tile by tile, about N features of the largest layer per tile (same "
            "rows, memory bounded by a tile). Default: whole layers up to 2,000,000 features.",
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option("--engine", help="Where tiles are computed: local, or on dask.distributed."),
    ] = Engine.local,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="The dask scheduler's address (tcp://HOST:PORT); default: a local cluster.",
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Relate layers: building → parcel (largest share), sensor → building and parcel,
    building → nearest pipe of each network (service connection), every feature →
    district and grid cell. Only relations whose layers were
    re-imported since the last build are recomputed.

    Example: [bold]twin build chengdu.twin.gpkg && twin build chengdu.twin.gpkg --json[/bold]

    A province: [bold]twin build sichuan.twin.gpkg --engine dask --scheduler tcp://10.0.0.5:8786[/bold]
    """
    city = Twin.open(twin_path, force=force)
    update, close = progress_callback(show_progress(json_output))
    try:
        report = city.build(
            max_distance_m=max_distance_m,
            max_service_m=max_service_m,
            force=force,
            progress=update,
            tile_features=tile_features,
            engine=engine.value,
            scheduler=scheduler,
        )
    finally:
        close()
    if json_output:
        print_json(report.to_dict())
        return
    table = Table(title=f"build {report.build_id}: {report.seconds:.1f} s", title_justify="left")
    for column in ("relation", "from → to", "rows", "without a match"):
        table.add_column(
            column, justify="right" if column in ("rows", "without a match") else "left"
        )
    for key, rows in report.recomputed.items():
        relation, layers = key.split(":", 1)
        table.add_row(
            relation, layers.replace("->", " → "), f"{rows:,}", f"{report.unrelated[key]:,}"
        )
    out.print(table)
    if report.kept:
        out.print(f"{len(report.kept)} relations unchanged since the last build (kept)")
    for key in report.dropped:
        out.print(f"dropped {key}: a layer it linked is gone")


def register(app: typer.Typer) -> None:
    app.command("build")(build)
