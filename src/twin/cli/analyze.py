"""``twin analyze``: impact analyses on the twin's networks (pipe break, criticality)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import geopandas as gpd
import typer
from rich.table import Table

from twin.analyses import Twin
from twin.cli import analyze_roads
from twin.cli._common import (
    SERVICE_DISTANCE_M,
    TOLERANCE_M,
    BuildingsOpt,
    JsonOpt,
    NetworkOpt,
    OutOpt,
    PipesOpt,
    ServiceOpt,
    SourcesOpt,
    ToleranceOpt,
    TwinArg,
    ValvesOpt,
    connections_note,
    err,
    load_network,
    out,
    print_json,
    service_links,
)
from twin.errors import UsageError

if TYPE_CHECKING:  # twin.network (networkx, scipy) is imported when a command runs
    from twin.network import BreakResult

sub = typer.Typer(help="Impact analyses on the twin's networks.", no_args_is_help=True)


@sub.command("pipe-break")
def pipe_break_cmd(
    twin_path: TwinArg,
    pipe: Annotated[str, typer.Option("--pipe", help="The broken pipe's uid.", show_default=False)],
    failed_valve: Annotated[
        list[str] | None,
        typer.Option("--failed-valve", help="A valve that will not close (repeatable)."),
    ] = None,
    network: NetworkOpt = None,
    pipes: PipesOpt = None,
    valves: ValvesOpt = "valves",
    sources: SourcesOpt = "sources",
    buildings: BuildingsOpt = "buildings",
    max_service_m: ServiceOpt = SERVICE_DISTANCE_M,
    tolerance: ToleranceOpt = TOLERANCE_M,
    output: OutOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Valves to close, pipes and buildings shut off when a pipe breaks; and if a valve fails.

    The pipe layer and the network come from the uid (--pipes / -n override them).

    Example: [bold]twin analyze pipe-break city.gpkg
    --pipe water_pipes.JS000123 --failed-valve valves.JSF000039[/bold]
    """
    if json_output and output is not None:
        raise UsageError("give --json or --out, not both")
    from twin.network import pipe_break

    city, net = load_network(twin_path, network, pipes, valves, sources, tolerance, pipe=pipe)
    links = service_links(city, net, buildings, max_service_m)
    result = pipe_break(net, pipe, failed_valves=failed_valve or (), connections=links)
    if links is not None:
        result.summary.service_connections = connections_note(links)
    if output is not None:
        _write(result, output, city, buildings if links is not None else None)
        out.print(f"wrote the break of {pipe} to {output}")
    if json_output:
        print_json(
            {
                **result.summary,
                "valves": _valve_list(result.valves_to_close),
                "extra_valve_uids": [str(v) for v in result.extra_valves.index],
            }
        )
    elif output is None:
        _print_break(result)


def _valve_list(valves: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    return [
        {
            "uid": str(uid),
            "role": row.role,
            "pipe": row.pipe,
            "x": row.geometry.x,
            "y": row.geometry.y,
        }
        for uid, row in zip(valves.index, valves.itertuples(), strict=True)
    ]


def _write(result: BreakResult, path: Path, city: Twin, building_layer: str | None) -> None:
    if path.suffix.lower() == ".json":
        import json

        path.write_text(json.dumps(result.summary, ensure_ascii=False, indent=2, default=str))
        return
    layers: dict[str, gpd.GeoDataFrame] = {
        "valves_to_close": result.valves_to_close,
        "isolated_pipes": result.isolated_pipes,
        "cut_off_pipes": result.cut_off_pipes,
    }
    if building_layer is not None:
        footprints = city.layer(building_layer, columns=[])
        affected = footprints.loc[result.buildings.index, ["geometry"]].join(
            result.buildings.drop(columns="geometry")
        )
        affected["reason"] = affected["reason"].astype(str)
        layers["buildings"] = affected
    for name, frame in layers.items():
        if len(frame):
            frame.reset_index().to_file(path, layer=name)


def _print_break(result: BreakResult) -> None:
    s = result.summary
    out.print(
        f"break on [bold]{s['pipe']}[/bold] ({s['network']}): close {s['valves_to_close']} "
        f"valve(s); {s['isolated_pipes']} pipe(s) isolated ({s['isolated_length_m']:,.0f} m), "
        f"{s['cut_off_pipes']} cut off ({s['cut_off_length_m']:,.0f} m)"
    )
    if s["buildings"] is not None:
        people = f", population {s['population']:,.0f}" if "population" in s else ""
        out.print(f"buildings losing service: {s['buildings']:,}{people}")
        if "service_connections" in s:
            out.print(f"[dim]service connections {s['service_connections']}[/dim]")
    table = Table()
    for column in ("valve", "role", "on pipe"):
        table.add_column(column)
    for uid, row in zip(
        result.valves_to_close.index, result.valves_to_close.itertuples(), strict=True
    ):
        table.add_row(str(uid), row.role, str(row.pipe))
    out.print(table)
    if s["failed_valves"]:
        out.print(
            f"with {', '.join(s['failed_valves'])} failing: {s['extra_valves']} extra valve(s) "
            f"({', '.join(map(str, result.extra_valves.index))}), "
            f"{s['extra_buildings'] or 0} extra building(s)"
        )
    for text in result.warnings:
        out.print(f"[yellow]warning:[/yellow] {text}")


@sub.command("criticality")
def criticality_cmd(
    twin_path: TwinArg,
    network: NetworkOpt = None,
    pipes: PipesOpt = None,
    valves: ValvesOpt = "valves",
    sources: SourcesOpt = "sources",
    buildings: BuildingsOpt = "buildings",
    max_service_m: ServiceOpt = SERVICE_DISTANCE_M,
    tolerance: ToleranceOpt = TOLERANCE_M,
    top: Annotated[int, typer.Option("--top", help="Segments to show.")] = 10,
    output: OutOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Rank every isolation segment by what isolating it takes out (cut-off parts included).

    Example: [bold]twin analyze criticality city.gpkg --out critical_segments.gpkg[/bold]
    """
    from twin.network import criticality

    city, net = load_network(twin_path, network, pipes, valves, sources, tolerance)
    links = service_links(city, net, buildings, max_service_m)
    ranking = criticality(net, connections=links).sort_values("rank")
    if links is not None:
        err.print(f"[dim]service connections {connections_note(links)}[/dim]")
    if output is not None:
        ranking.reset_index().to_file(output, layer="criticality")
    shown = ranking.drop(columns="geometry").head(top)
    if json_output:
        print_json(shown.reset_index().to_dict("records"))
        return
    table = Table()
    for column in ("rank", "segment", "pipes", "length km", "buildings", "cut-off pipes"):
        table.add_column(column, justify="right")
    for seg, row in shown.iterrows():
        table.add_row(
            str(row["rank"]),
            str(seg),
            f"{row['total_pipes']:,.0f}",
            f"{row['total_length_m'] / 1000:,.2f}",
            f"{row['total_buildings']:,.0f}",
            f"{row['cut_off_pipes']:,.0f}",
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    analyze_roads.register_on(sub)
    app.add_typer(sub, name="analyze")
