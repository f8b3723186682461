"""``twin analyze route|service-area|road-closure|cascade``: emergency access on the roads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import geopandas as gpd
import numpy as np
import shapely
import typer
from rich.table import Table

from twin import guards
from twin.analyses import Twin
from twin.cli._common import (
    SERVICE_DISTANCE_M,
    TOLERANCE_M,
    JsonOpt,
    NetworkOpt,
    OutOpt,
    PipesOpt,
    ServiceOpt,
    SourcesOpt,
    ToleranceOpt,
    TwinArg,
    ValvesOpt,
    load_network,
    out,
    print_json,
    service_links,
    write_check_report,
)
from twin.errors import UsageError
from twin.settings import Direction, Weight

if TYPE_CHECKING:  # twin.network (networkx, scipy) is imported when a command runs
    from twin.network import RoadAccess, RoadNetwork

RoadsOpt = Annotated[str, typer.Option("--roads", help="The road layer.")]
FacilitiesOpt = Annotated[
    str, typer.Option("--facilities", help="The layer holding the facilities (any layer).")
]
WhereOpt = Annotated[
    str | None,
    typer.Option("--where", help="Facility filter field=value[,value…], e.g. poi_type=消防站."),
]
BuildingLayerOpt = Annotated[str, typer.Option("--buildings", help="The building layer.")]
MaxTimeOpt = Annotated[
    float | None, typer.Option("--max-time", help="Emergency access limit, seconds.", min=0)
]
SpeedsOpt = Annotated[
    Path | None, typer.Option("--speeds", help="YAML speed table (speeds_kmh, default_kmh).")
]
DirectionOpt = Annotated[
    str,
    typer.Option("--direction", help="from_facility (engines drive out) or to_facility."),
]
RoadToleranceOpt = Annotated[
    float, typer.Option("--road-tolerance", help="Road snapping tolerance, m.", min=0)
]

_XY = re.compile(r"^\s*(-?\d+(?:\.\d*)?)\s*,\s*(-?\d+(?:\.\d*)?)\s*$")


def _network(city: Twin, roads: str, speeds: Path | None, tolerance: float) -> RoadNetwork:
    from twin.network import DEFAULT_SPEEDS, read_speeds, road_network

    table = read_speeds(speeds) if speeds is not None else DEFAULT_SPEEDS
    return road_network(city, roads, speeds=table, snap_tolerance_m=tolerance)


def load_access(
    twin_path: str | Path,
    roads: str,
    buildings: str,
    facilities: str,
    where: str | None,
    speeds: Path | None,
    tolerance: float,
    direction: str = "from_facility",
) -> tuple[Twin, RoadAccess]:
    """Open the twin, build the road network and link buildings and facilities to it."""
    from twin.network import road_access, select_facilities

    city = Twin.open(twin_path)
    net = _network(city, roads, speeds, tolerance)
    chosen = select_facilities(city.layer(facilities), where)
    return city, road_access(
        net, city.layer(buildings), chosen, direction=cast(Direction, direction)
    )


PointCrsOpt = Annotated[
    str | None,
    typer.Option(
        "--point-crs",
        help="CRS of 'x,y' points and --area-wkt, e.g. EPSG:4326 for lon/lat "
        "(default: the twin CRS).",
    ),
]
CoordsOpt = Annotated[
    str | None,
    typer.Option("--coords", help="gcj02 or bd09: points are lon/lat read off a web map."),
]
MaxAccessOpt = Annotated[
    float,
    typer.Option(
        "--max-access-m", help="A point farther than this from every road is an error.", min=0
    ),
]


def _place(
    city: Twin,
    text: str,
    option: str,
    point_crs: str | None = None,
    coords: str | None = None,
) -> shapely.Geometry:
    """A point ``x,y`` (twin CRS unless ``point_crs`` / ``coords``), or a feature uid."""
    match = _XY.match(text)
    if match:
        point = shapely.Point(float(match.group(1)), float(match.group(2)))
        assert city.crs is not None
        return guards.geometry_in_twin(
            point,
            city.crs,
            crs=point_crs,
            coords=coords,
            option=f"{option} {text}",
            crs_option="point_crs",
        )
    layer = text.split(".", 1)[0]
    if "." not in text or layer not in city.layers:
        raise UsageError(
            f"{option} {text!r} must be 'x,y' in the twin CRS or a feature uid such as "
            "buildings.JZ0000001"
        )
    return city.feature(layer, text).geometry


def write_analysis(
    path: Path, summary: dict[str, Any], layers: dict[str, gpd.GeoDataFrame]
) -> None:
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
        return
    path.unlink(missing_ok=True)
    for name, frame in layers.items():
        if len(frame):
            frame.reset_index().to_file(path, layer=name)


def check_output_options(json_output: bool, output: Path | None) -> None:
    if json_output and output is not None:
        raise UsageError("give --json or --out, not both")


def route_cmd(
    twin_path: TwinArg,
    origin: Annotated[str, typer.Option("--from", help="'x,y' or a feature uid.")],
    destination: Annotated[str, typer.Option("--to", help="'x,y' or a feature uid.")],
    roads: RoadsOpt = "roads",
    weight: Annotated[str, typer.Option("--weight", help="Minimise time or length.")] = "time",
    closed: Annotated[
        list[str] | None, typer.Option("--closed", help="A closed road uid (repeatable).")
    ] = None,
    speeds: SpeedsOpt = None,
    tolerance: RoadToleranceOpt = TOLERANCE_M,
    point_crs: PointCrsOpt = None,
    coords: CoordsOpt = None,
    max_access_m: MaxAccessOpt = guards.DEFAULT_MAX_SNAP_M,
    output: OutOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Fastest (or shortest) route between two points or features: distance, time, geometry.

    Points are 'x,y' in the twin CRS, or lon/lat with --point-crs EPSG:4326 (or
    --coords gcj02 / bd09); a point over --max-access-m from every road is an error.

    Example: [bold]twin analyze route city.gpkg --from facilities.YJ0001
    --to buildings.JZ0000001 --json[/bold]
    """
    check_output_options(json_output, output)
    city = Twin.open(twin_path)
    net = _network(city, roads, speeds, tolerance)
    from twin.network import route

    result = route(
        net,
        _place(city, origin, "--from", point_crs, coords),
        _place(city, destination, "--to", point_crs, coords),
        weight=cast(Weight, weight),  # the library says which values it takes
        closed_roads=closed or (),
    )
    read_in = "EPSG:4326 (lon/lat)" if coords else (point_crs or f"the twin CRS {city.crs_text}")
    for option, text, distance in (
        ("--from", origin, result.origin_access_m),
        ("--to", destination, result.destination_access_m),
    ):
        guards.check_access_distance(
            distance, what=f"{option} {text}", max_m=max_access_m, crs_note=read_in
        )
    summary = result.to_dict()
    summary["point_crs"] = read_in
    if output is not None:
        line = [result.geometry] if result.geometry is not None else []
        frame = gpd.GeoDataFrame(
            {k: [v] * len(line) for k, v in summary.items() if k not in ("geometry_wkt", "roads")},
            geometry=line,
            crs=net.crs,
        )
        write_analysis(output, summary, {"route": frame})
        out.print(f"wrote the route to {output}")
    if json_output:
        print_json(summary)
    elif output is None:
        if result.geometry is None:
            out.print("no route: the destination cannot be reached")
            return
        out.print(
            f"route: {result.distance_m:,.0f} m, {result.time_s / 60:,.1f} min over "
            f"{len(result.roads)} road(s): {', '.join(result.roads[:8])}"
        )


def service_area_cmd(
    twin_path: TwinArg,
    facilities: FacilitiesOpt = "facilities",
    where: WhereOpt = None,
    buildings: BuildingLayerOpt = "buildings",
    roads: RoadsOpt = "roads",
    max_time: MaxTimeOpt = None,
    direction: DirectionOpt = "from_facility",
    speeds: SpeedsOpt = None,
    tolerance: RoadToleranceOpt = TOLERANCE_M,
    output: OutOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Each building's nearest facility and travel time; what each facility reaches in time.

    Example: [bold]twin analyze service-area city.gpkg --facilities facilities
    --where poi_type=消防站 --max-time 300 --out fire_cover.gpkg[/bold]
    """
    check_output_options(json_output, output)
    _, access = load_access(
        twin_path, roads, buildings, facilities, where, speeds, tolerance, direction
    )
    from twin.network import service_areas

    areas = service_areas(access, max_time_s=max_time)
    summary = areas.summary.to_dict()
    if output is not None:
        write_analysis(
            output, summary, {"buildings": areas.buildings, "facilities": areas.facilities}
        )
        out.print(f"wrote the service areas to {output}")
    if json_output:
        print_json(summary)
    elif output is None:
        _print_service(summary, areas.facilities)


def _print_service(s: dict[str, Any], facilities: gpd.GeoDataFrame) -> None:
    within = (
        f", {s['within_max_time']:,} within {s['max_time_s']:,.0f} s" if s["max_time_s"] else ""
    )
    mean = s["mean_time_s"] or 0.0
    out.print(
        f"{s['buildings']:,} buildings, {s['facilities']} facilities: {s['reached']:,} reached"
        f"{within}; mean {mean:,.0f} s"
    )
    table = Table()
    for column in ("facility", "nearest to", "within limit"):
        table.add_column(column)
    for uid, row in facilities.iterrows():
        reach = f"{row['within']:,}" if "within" in facilities else ""
        table.add_row(str(uid), f"{row['buildings']:,}", reach)
    out.print(table)


def _area(
    city: Twin,
    area: Path | None,
    wkt: str | None,
    buffer_m: float,
    point_crs: str | None = None,
    coords: str | None = None,
) -> Any:
    if area is None and wkt is None:
        return None
    shapes = []
    if area is not None:
        if not area.exists():
            raise UsageError(f"--area {area} does not exist")
        frame = gpd.read_file(area)
        if frame.crs is None:
            raise UsageError(f"--area {area} has no CRS: give it one (e.g. save it as GeoPackage)")
        shapes.append(shapely.union_all(frame.to_crs(city.crs).geometry.to_numpy()))
    if wkt is not None:
        try:
            given = shapely.from_wkt(wkt)
        except shapely.errors.GEOSException:
            raise UsageError(f"--area-wkt is not valid WKT: {wkt[:60]!r}") from None
        assert city.crs is not None
        shapes.append(
            guards.geometry_in_twin(
                given,
                city.crs,
                crs=point_crs,
                coords=coords,
                option="--area-wkt",
                crs_option="point_crs",
            )
        )
    geom = shapely.union_all(shapes)
    return geom.buffer(buffer_m) if buffer_m > 0 else geom


def road_closure_cmd(
    twin_path: TwinArg,
    close: Annotated[
        list[str] | None, typer.Option("--close", help="A road uid to close (repeatable).")
    ] = None,
    area: Annotated[
        Path | None, typer.Option("--area", help="A vector file: close every road crossing it.")
    ] = None,
    area_wkt: Annotated[
        str | None,
        typer.Option("--area-wkt", help="An area as WKT in the twin CRS (or in --point-crs)."),
    ] = None,
    point_crs: PointCrsOpt = None,
    coords: CoordsOpt = None,
    buffer_m: Annotated[float, typer.Option("--buffer", help="Grow the area by metres.")] = 0.0,
    facilities: FacilitiesOpt = "facilities",
    where: WhereOpt = None,
    buildings: BuildingLayerOpt = "buildings",
    roads: RoadsOpt = "roads",
    max_time: MaxTimeOpt = None,
    rank: Annotated[
        int, typer.Option("--rank", help="Also rank this many critical roads (0: none).", min=0)
    ] = 0,
    direction: DirectionOpt = "from_facility",
    speeds: SpeedsOpt = None,
    tolerance: RoadToleranceOpt = TOLERANCE_M,
    output: OutOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Close roads (by uid or an area): who loses access, every building's detour, criticality.

    Example: [bold]twin analyze road-closure city.gpkg --close roads.DL000002
    --where poi_type=消防站 --max-time 180 --rank 5 --json[/bold]
    """
    check_output_options(json_output, output)
    city, access = load_access(
        twin_path, roads, buildings, facilities, where, speeds, tolerance, direction
    )
    shape = _area(city, area, area_wkt, buffer_m, point_crs, coords)
    from twin.network import road_closure, road_criticality

    result = road_closure(access, roads=close or (), area=shape, max_time_s=max_time)
    summary = result.summary.to_dict()
    ranking = road_criticality(access, candidates=rank, max_time_s=max_time) if rank else None
    if ranking is not None:
        summary["criticality"] = (
            ranking.drop(columns="geometry").head(rank).reset_index().to_dict("records")
        )
    if output is not None:
        layers = {"closed_roads": result.closed, "buildings": result.affected()}
        if ranking is not None:
            layers["criticality"] = ranking
        write_analysis(output, summary, layers)
        out.print(f"wrote the closure to {output}")
    if json_output:
        print_json(summary)
    elif output is None:
        _print_closure(summary)


def _print_closure(s: dict[str, Any]) -> None:
    out.print(
        f"closed {s['closed_roads']} road(s), {s['closed_edges']} edge(s), "
        f"{s['closed_length_m']:,.0f} m: {s['buildings_lost']:,} building(s) lose access, "
        f"{s['buildings_delayed']:,} delayed"
        + (
            f" (mean {s['mean_detour_s']:,.0f} s, max {s['max_detour_s']:,.0f} s)"
            if s["mean_detour_s"] is not None
            else ""
        )
    )
    if s["buildings_beyond_max"] is not None:
        out.print(
            f"no facility within {s['max_time_s']:,.0f} s any more: "
            f"{s['buildings_beyond_max']:,} building(s)"
        )
    for row in s.get("criticality", []):
        out.print(
            f"  critical #{row['rank']}: {row['uid']} — {row['buildings_lost']:,} lost, "
            f"{row.get('buildings_beyond_max') or 0:,} beyond the limit, "
            f"{row['total_detour_s']:,.0f} s of detours"
        )


def cascade_cmd(
    twin_path: TwinArg,
    pipe: Annotated[str, typer.Option("--pipe", help="The broken pipe's uid.", show_default=False)],
    distance_m: Annotated[
        float, typer.Option("--distance", help="The works reach this far from the pipes, m.")
    ] = 10.0,
    min_overlap_m: Annotated[
        float,
        typer.Option(
            "--min-overlap", help="Close a road with this much of it within reach, m (0: any)."
        ),
    ] = 15.0,
    network: NetworkOpt = None,
    pipes: PipesOpt = None,
    valves: ValvesOpt = "valves",
    sources: SourcesOpt = "sources",
    max_service_m: ServiceOpt = SERVICE_DISTANCE_M,
    facilities: FacilitiesOpt = "facilities",
    where: WhereOpt = None,
    buildings: BuildingLayerOpt = "buildings",
    roads: RoadsOpt = "roads",
    max_time: MaxTimeOpt = None,
    speeds: SpeedsOpt = None,
    tolerance: ToleranceOpt = TOLERANCE_M,
    output: OutOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """A pipe break and the roads it closes: valves, outage, closed roads, emergency access.

    Example: [bold]twin analyze cascade city.gpkg
    --pipe water_pipes.JS000123 --where poi_type=消防站 --max-time 180 --json[/bold]
    """
    check_output_options(json_output, output)
    city, net = load_network(twin_path, network, pipes, valves, sources, tolerance, pipe=pipe)
    links = service_links(city, net, buildings, max_service_m)
    from twin.network import cascade, pipe_break

    broken = pipe_break(net, pipe, connections=links)
    _, access = load_access(twin_path, roads, buildings, facilities, where, speeds, tolerance)
    report = cascade(
        broken, access, distance_m=distance_m, min_overlap_m=min_overlap_m, max_time_s=max_time
    )
    summary = report.to_dict()
    if output is not None:
        layers = {
            "valves_to_close": broken.valves_to_close,
            "isolated_pipes": broken.isolated_pipes,
        }
        if report.closure is not None:
            layers["closed_roads"] = report.closure.closed
            layers["access_affected"] = report.closure.affected()
        write_analysis(output, summary, layers)
        out.print(f"wrote the cascade of {pipe} to {output}")
    if json_output:
        print_json(summary)
    elif output is None:
        _print_cascade(summary)


def _print_cascade(s: dict[str, Any]) -> None:
    out.print(
        f"break on [bold]{s['pipe']}[/bold]: close {len(s['valves_to_close'])} valve(s), "
        f"{s['pipes_isolated']} pipe(s) isolated, "
        f"{s['buildings_without_service'] or 0:,} building(s) without service"
    )
    c = s["road_closure"]
    if c is None:
        out.print(f"no road within {s['distance_m']:,.0f} m of the isolated pipes")
        return
    out.print(
        f"roads closed while the works last: {len(s['roads_closed'])} "
        f"({', '.join(s['roads_closed'][:5])}{', …' if len(s['roads_closed']) > 5 else ''}); "
        f"emergency access: {c['buildings_lost']:,} cut, {c['buildings_delayed']:,} delayed"
        + (f" (max {np.round(c['max_detour_s']):,.0f} s)" if c["max_detour_s"] else "")
    )


def check_road_layer(
    twin_path: str | Path,
    roads: str,
    tolerance: float,
    near_miss_m: float,
    output: Path | None,
    json_output: bool,
) -> None:
    """``twin network check --roads LAYER``: road topology problems."""
    city = Twin.open(twin_path)
    from twin.network import check_roads

    report = check_roads(_network(city, roads, None, tolerance), near_miss_m=near_miss_m)
    if write_check_report(report, output, json_output=json_output):
        return
    s = report.stats
    out.print(
        f"[bold]{roads}[/bold]: {s['roads']:,} roads, {s['nodes']:,} nodes, {s['edges']:,} "
        f"edges ({s['one_way_edges']:,} one-way), {s['parts']:,} part(s), "
        f"{s['length_m'] / 1000:,.1f} km"
    )
    table = Table()
    for column in ("issue", "count", "first"):
        table.add_column(column)
    for name, count in report.counts.items():
        first = report.issues[report.issues["issue"] == name].head(3)
        shown = "; ".join(f"{u} {d}" for u, d in zip(first["uid"], first["detail"], strict=True))
        table.add_row(name, f"{count:,}", shown)
    out.print(table)
    for text in report.warnings:
        out.print(f"[yellow]warning:[/yellow] {text}")


def register_on(group: typer.Typer) -> None:
    """Add route, service-area, road-closure and cascade to the ``twin analyze`` group."""
    group.command("route")(route_cmd)
    group.command("service-area")(service_area_cmd)
    group.command("road-closure")(road_closure_cmd)
    group.command("cascade")(cascade_cmd)
