"""``twin network``: check a utility network's topology, trace gravity networks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import shapely
import typer
from rich.table import Table

from twin import guards
from twin.cli._common import (
    TOLERANCE_M,
    JsonOpt,
    NetworkOpt,
    PipesOpt,
    SourcesOpt,
    ToleranceOpt,
    TwinArg,
    ValvesOpt,
    load_network,
    out,
    print_json,
    write_check_report,
)
from twin.cli.analyze_roads import CoordsOpt, PointCrsOpt, check_road_layer
from twin.errors import UsageError

sub = typer.Typer(
    help="Check and trace the twin's utility networks (pipes, valves, sources).",
    no_args_is_help=True,
)


@sub.command("check")
def check(
    twin_path: TwinArg,
    network: NetworkOpt = None,
    pipes: PipesOpt = None,
    valves: ValvesOpt = "valves",
    sources: SourcesOpt = "sources",
    tolerance: ToleranceOpt = TOLERANCE_M,
    near_miss: Annotated[
        float,
        typer.Option(
            "--near-miss", help="A dangling end this close to a pipe it does not join is reported."
        ),
    ] = 2.0,
    output: Annotated[
        Path | None, typer.Option("--out", help="Write the issues as a layer, e.g. issues.gpkg.")
    ] = None,
    roads: Annotated[
        str | None, typer.Option("--roads", help="Check this road layer instead of pipes.")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Report dangling ends and near misses, disconnected parts, short pipes, off-network valves.

    Also sources off the network; with --roads, road topology (dangles, near misses,
    islands, one-way traps). Example:
    [bold]twin network check city.gpkg --pipes water_pipes --near-miss 2 --json[/bold]
    """
    if roads is not None:
        check_road_layer(twin_path, roads, tolerance, near_miss, output, json_output)
        return
    from twin.network import check_network  # networkx, scipy: when the command runs

    _, net = load_network(twin_path, network, pipes, valves, sources, tolerance)
    report = check_network(net, near_miss_m=near_miss)
    if write_check_report(report, output, json_output=json_output):
        return
    stats = report.stats
    out.print(
        f"[bold]{net.network}[/bold] network: {stats['pipes']:,} pipes, {stats['nodes']:,} nodes, "
        f"{stats['valves']:,} valves, {stats['sources']:,} sources, {stats['parts']:,} part(s), "
        f"{stats['length_m'] / 1000:,.1f} km"
    )
    table = Table()
    table.add_column("issue")
    table.add_column("count", justify="right")
    table.add_column("first")
    for name, count in report.counts.items():
        first = report.issues[report.issues["issue"] == name].head(3)
        pairs = zip(first["uid"], first["detail"], strict=True)
        shown = "; ".join(f"{u or ''} {d}".strip() for u, d in pairs)
        table.add_row(name, f"{count:,}", shown)
    out.print(table)
    for text in report.warnings:
        out.print(f"[yellow]warning:[/yellow] {text}")


@sub.command("trace")
def trace(
    twin_path: TwinArg,
    pipe: Annotated[str | None, typer.Option("--pipe", help="Start pipe uid.")] = None,
    point: Annotated[
        str | None,
        typer.Option("--point", help="Start point 'x,y' (twin CRS unless --point-crs / --coords)."),
    ] = None,
    point_crs: PointCrsOpt = None,
    coords: CoordsOpt = None,
    max_distance_m: Annotated[
        float,
        typer.Option("--max-distance-m", help="The point must lie this close to a pipe.", min=0),
    ] = 50.0,
    direction: Annotated[
        str, typer.Option("--direction", help="downstream or upstream.")
    ] = "downstream",
    network: NetworkOpt = None,
    pipes: PipesOpt = None,
    tolerance: ToleranceOpt = TOLERANCE_M,
    output: Annotated[
        Path | None, typer.Option("--out", help="Write the traced pipes, e.g. trace.gpkg.")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Trace a gravity network up or down from a pipe or a point (by invert elevations).

    Example: [bold]twin network trace city.gpkg --pipe drains.YS000042 --direction upstream[/bold];
    from lon/lat:
    [bold]twin network trace city.gpkg --point 104.07,30.66 --point-crs EPSG:4326[/bold]
    """
    if direction not in ("downstream", "upstream"):
        raise UsageError(f"--direction must be downstream or upstream, not {direction!r}")
    city, net = load_network(
        twin_path,
        network,
        pipes,
        "valves",
        "sources",
        tolerance,
        pipe=pipe,
        default_network="drainage",
    )
    start, read_in = _start_point(city, point, point_crs, coords)
    from twin.network import trace_downstream, trace_upstream

    fn = trace_downstream if direction == "downstream" else trace_upstream
    try:
        result = fn(net, pipe=pipe, point=start, max_distance_m=max_distance_m)
    except UsageError as exc:
        if start is None:
            raise
        raise UsageError(
            f"--point {point} (read in {read_in}): {exc}; check the point and its CRS, "
            "or raise --max-distance-m"
        ) from None
    if output is not None:
        result.pipes.to_file(output)
    if json_output:
        print_json(
            {
                **result.summary,
                **({"point_crs": read_in} if start is not None else {}),
                "pipe_uids": [str(u) for u in result.pipes.index],
                "warnings": result.warnings,
            }
        )
        return
    s = result.summary
    out.print(
        f"{s['direction']} of {s['start_pipe']}: {s['pipes']:,} pipes, {s['length_m']:,.0f} m"
    )
    for text in result.warnings:
        out.print(f"[yellow]warning:[/yellow] {text}")


def _start_point(
    city: Any, point: str | None, point_crs: str | None, coords: str | None
) -> tuple[shapely.Point | None, str]:
    """The ``--point`` in the twin CRS, and the CRS it was read in (for messages and --json)."""
    read_in = "EPSG:4326 (lon/lat)" if coords else (point_crs or f"the twin CRS {city.crs_text}")
    if point is None:
        return None, read_in
    try:
        x, y = (float(v) for v in point.split(","))
    except ValueError:
        raise UsageError(f"--point must be 'x,y', not {point!r}") from None
    geom = guards.geometry_in_twin(
        shapely.Point(x, y),
        city.crs,
        crs=point_crs,
        coords=coords,
        option=f"--point {point}",
        crs_option="point_crs",
    )
    return geom, read_in


def register(app: typer.Typer) -> None:
    app.add_typer(sub, name="network")
