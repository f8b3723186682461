"""``twin info``: what the twin holds."""

from __future__ import annotations

from dataclasses import asdict

import typer
from rich.table import Table

from twin.analyses import Twin
from twin.cli._common import JsonOpt, TwinArg, out, print_json
from twin.raster import raster_infos


def info(twin_path: TwinArg, json_output: JsonOpt = False) -> None:
    """Show the twin's CRS and its layers: kind, CIM category, classification, count, extent.

    Example: [bold]twin info chengdu.twin.gpkg --json[/bold]
    """
    city = Twin.open(twin_path)
    infos = city.layer_infos()
    last = city.imports().groupby("layer").tail(1).set_index("layer") if infos else None
    if json_output:
        layers = []
        for item in infos:
            entry = asdict(item)
            if last is not None and item.name in last.index:
                entry["last_import_time"] = last.loc[item.name, "time"]
            layers.append(entry)
        print_json(
            {
                "path": city.location,
                "name": city.meta["name"],
                "crs": city.crs_text,
                "size_bytes": city.path.stat().st_size if city.path.is_file() else None,
                "layers": layers,
                "rasters": raster_infos(city),
            }
        )
        return
    out.print(f"[bold]{city.meta['name']}[/bold]  {city.location}  CRS {city.crs_text}")
    if not infos:
        out.print(
            f"no layers yet: add one with `twin import {city.location} SOURCE -l NAME -k KIND`"
        )
        return
    table = Table(show_lines=False)
    for column in (
        "layer",
        "kind",
        "category",
        "class",
        "features",
        "geometry",
        "extent (min x, min y – max x, max y)",
        "last import (UTC)",
    ):
        table.add_column(column, justify="right" if column == "features" else "left")
    for item in infos:
        extent = ""
        if item.extent is not None:
            x0, y0, x1, y1 = item.extent
            extent = f"{x0:.0f}, {y0:.0f} – {x1:.0f}, {y1:.0f}"
        when = ""
        if last is not None and item.name in last.index:
            when = str(last.loc[item.name, "time"])[:19].replace("T", " ")
        table.add_row(
            item.name,
            item.kind,
            item.category_zh,
            item.classification,
            f"{item.feature_count:,}",
            item.geometry_type or "",
            extent,
            when,
        )
    out.print(table)
    for raster in raster_infos(city):
        out.print(
            f"raster {raster['name']} ({raster['kind']}): {raster['width']} x {raster['height']} "
            f"cells of {raster['cell_size_m']:g} m, {raster['file']}",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    app.command("info")(info)
