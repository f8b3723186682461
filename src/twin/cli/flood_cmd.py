"""``twin analyze flood``: inundation from a water level or a depth raster, and its impact."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import geopandas as gpd
import numpy as np
import typer
from rich.table import Table

from twin.analyses import Twin
from twin.cli._common import JsonOpt, TwinArg, out, print_json
from twin.cli.analyze import OutOpt, sub
from twin.cli.analyze_roads import (
    BuildingLayerOpt,
    FacilitiesOpt,
    MaxTimeOpt,
    RoadsOpt,
    check_output_options,
    load_access,
    write_analysis,
)
from twin.errors import UsageError
from twin.settings import IMPASSABLE_M

if TYPE_CHECKING:  # rasterio and twin.network are imported when the command runs
    from twin.flood import FloodImpact
    from twin.raster import Raster

_SHOWN = 10


@sub.command("flood")
def flood_cmd(
    twin_path: TwinArg,
    dem: Annotated[str | None, typer.Option("--dem", help="The DEM raster layer.")] = None,
    level: Annotated[
        float | None, typer.Option("--level", help="Water surface elevation, m (with --dem).")
    ] = None,
    depth_raster: Annotated[
        str | None,
        typer.Option("--depth-raster", help="A raster layer of water depths (instead of --dem)."),
    ] = None,
    seed: Annotated[
        list[str] | None,
        typer.Option("--seed", help="x,y in the twin CRS where water enters (repeatable)."),
    ] = None,
    water: Annotated[
        str | None,
        typer.Option(
            "--water",
            help="LAYER[:field=value] whose features the water rises from, "
            "e.g. parcels:land_use=E1 (the river).",
        ),
    ] = None,
    impassable: Annotated[
        float, typer.Option("--impassable", help="Roads deeper than this close, m.", min=0)
    ] = IMPASSABLE_M,
    buildings: BuildingLayerOpt = "buildings",
    roads: RoadsOpt = "roads",
    facilities: FacilitiesOpt = "facilities",
    where: Annotated[
        str | None,
        typer.Option("--where", help="Facilities that must stay reachable, field=value[,value…]."),
    ] = "poi_type=医院,消防站",
    max_time: MaxTimeOpt = None,
    save_depth: Annotated[
        str | None, typer.Option("--save-depth", help="Store the depth grid as this raster layer.")
    ] = None,
    output: OutOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Flood the DEM to a level from the river or seeds (connected water only), or take a
    depth raster: flooded buildings with depth, impassable roads, and who loses access
    to hospitals and fire stations.

    Example: [bold]twin analyze flood city.gpkg --dem dem --level 503.2
    --water parcels:land_use=E1 --json[/bold]
    """
    check_output_options(json_output, output)
    if (dem is None) == (depth_raster is None):
        raise UsageError("give --dem with --level, or --depth-raster")
    from twin.flood import flood_impact
    from twin.raster import store_raster

    city = Twin.open(twin_path)
    depth = _depth(city, dem, level, depth_raster, seed or [], water)
    if save_depth:
        source = f"twin analyze flood: {f'level {level} m on {dem}' if dem else depth_raster}"
        store_raster(city, depth, layer=save_depth, kind="raster", source=source)
    road_layer = roads if roads in city.layer_names() else None
    access, net = None, None
    if road_layer and facilities in city.layer_names() and where != "":
        _, access = load_access(
            twin_path, road_layer, buildings, facilities, where or None, None, 0.5
        )
    elif road_layer:
        net = city.road_network(roads=road_layer)
    impact = flood_impact(
        depth,
        city.layer(buildings),
        city.layer(road_layer) if road_layer else None,
        impassable_m=impassable,
        level_m=level,
        access=access,
        net=net,
        max_time_s=max_time,
    )
    summary = _summary(impact)
    if output is not None:
        write_analysis(output, summary, _layers(city, impact, buildings))
        out.print(f"wrote the flood to {output}")
    if json_output:
        print_json(summary)
    elif output is None:
        _print(summary)


def _depth(
    city: Twin,
    dem: str | None,
    level: float | None,
    depth_raster: str | None,
    seeds: list[str],
    water: str | None,
) -> Raster:
    from twin.flood import inundation
    from twin.raster import Raster, read_raster

    if depth_raster is not None:
        given = read_raster(city, depth_raster)
        wet = np.where(given.values > 0, given.values, np.nan)
        return Raster(wet, given.transform, given.crs, "flood_depth")
    if level is None:
        raise UsageError("--dem needs --level (the water surface elevation, m)")
    points = []
    for text in seeds:
        try:
            x, y = (float(v) for v in text.split(","))
        except ValueError:
            raise UsageError(f"--seed {text!r} must be x,y in the twin CRS") from None
        points.append((x, y))
    return inundation(
        read_raster(city, str(dem)), level_m=level, seeds=points, water=_water(city, water)
    )


def _water(city: Twin, text: str | None) -> gpd.GeoDataFrame | None:
    if not text:
        return None
    layer, _, condition = text.partition(":")
    frame = city.layer(layer)
    if condition:
        from twin.network.access import parse_where

        field, negate, values = parse_where(condition)
        if field not in frame.columns:
            raise UsageError(f"--water: layer {layer} has no field {field!r}")
        hit = frame[field].astype(str).isin(values)
        frame = frame.loc[~hit if negate else hit]
    if frame.empty:
        raise UsageError(f"--water {text!r} selects no feature")
    return frame


def _summary(impact: FloodImpact) -> dict[str, Any]:
    summary = impact.summary.to_dict()
    rows = impact.buildings.head(_SHOWN).reset_index().rename(columns={"index": "uid"})
    summary["deepest_buildings"] = rows.replace({float("nan"): None}).to_dict("records")
    summary["impassable_roads"] = [
        str(u) for u in impact.roads.index[impact.roads["impassable"].astype(bool)]
    ]
    if impact.edges is not None:
        edges = impact.edges
        summary["impassable_edges"] = [
            {"edge": int(edge), "road": str(road), "length_m": round(float(length), 2)}
            for edge, road, length in zip(
                edges.index, edges["road"], edges["length_m"].to_numpy(dtype=float), strict=True
            )
        ]
    if impact.closure is not None:
        lost = impact.closure.buildings
        summary["facilities_lost"] = (
            lost.loc[lost["lost"], "facility_before"].value_counts().astype(int).to_dict()
        )
    return summary


def _layers(city: Twin, impact: FloodImpact, layer: str) -> dict[str, gpd.GeoDataFrame]:
    footprints = city.layer(layer)
    flooded = gpd.GeoDataFrame(
        impact.buildings,
        geometry=footprints.geometry.reindex(impact.buildings.index),
        crs=footprints.crs,
    )
    layers = {"flooded_buildings": flooded}
    if impact.extent is not None and len(impact.extent):
        layers["impassable_area"] = gpd.GeoDataFrame(
            {"depth_over_m": [impact.summary.impassable_m] * len(impact.extent)},
            geometry=list(impact.extent),
            crs=footprints.crs,
        )
    if impact.closure is not None:
        layers["closed_roads"] = impact.closure.closed
        layers["lost_access"] = impact.closure.affected()
    return layers


def _print(s: dict[str, Any]) -> None:
    level = f" at {s['level_m']:g} m" if s["level_m"] is not None else ""
    out.print(
        f"flood{level}: {s['flooded_area_m2'] / 1e4:,.1f} ha under water "
        f"(max {s['max_depth_m']:.2f} m); "
        f"{s['buildings_flooded']:,} building(s) flooded; {s['edges_impassable']:,} road "
        f"segment(s) of {s['roads_impassable']:,} road(s) deeper than {s['impassable_m']:g} m "
        f"({s['impassable_length_m']:,.0f} m closed)"
    )
    if s.get("buildings_lost_access") is not None:
        out.print(
            f"access to the facilities: {s['buildings_lost_access']:,} building(s) cut off, "
            f"{s['buildings_delayed']:,} delayed"
        )
    if s["deepest_buildings"]:
        table = Table(title="deepest flooded buildings", title_justify="left")
        for column in ("uid", "max_depth_m", "mean_depth_m"):
            table.add_column(column, justify="left" if column == "uid" else "right")
        for row in s["deepest_buildings"]:
            table.add_row(row["uid"], f"{row['max_depth_m']:.2f}", f"{row['mean_depth_m']:.2f}")
        out.print(table)


def register(app: typer.Typer) -> None:
    """``flood`` is a sub-command of ``twin analyze``: importing this module adds it."""
    del app
