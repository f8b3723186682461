"""``twin sample``: generate the synthetic sample district as a municipal delivery."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from twin.cli._common import JsonOpt, out, print_json


def sample(
    out_dir: Annotated[
        Path, typer.Argument(help="Folder to write the delivery files into.", show_default=False)
    ],
    buildings: Annotated[int, typer.Option(help="Number of buildings.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same city.")] = 42,
    one_gpkg: Annotated[
        bool,
        typer.Option(
            "--gpkg",
            help="Write every layer into one city.gpkg "
            "in EPSG:4544 instead of the delivery formats.",
        ),
    ] = False,
    addresses: Annotated[
        bool,
        typer.Option(
            "--addresses",
            help="Also write addresses.gpkg (standard addresses, 标准地址, import with "
            "--kind address --id addr_id) and addresses_typed.csv (3,000 typed, with the truth).",
        ),
    ] = False,
    city_buildings: Annotated[
        int | None,
        typer.Option(
            "--city-buildings",
            min=100,
            help="A province: cities of about N buildings side by side, written city by "
            "city into one city.gpkg (memory holds one city). E.g. --buildings 10000000 "
            "--city-buildings 1000000.",
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Generate a synthetic district in Chengdu (parcels, buildings, roads, pipes, valves,
    sensors, districts, grids) in the formats real deliveries come in, with a mapping file.

    Example: [bold]twin sample /tmp/city --buildings 20000 && twin init /tmp/city.gpkg &&
    twin import /tmp/city.gpkg --mapping /tmp/city/mapping.yaml[/bold]
    """
    from twin.sample import generate_city, write_delivery

    if city_buildings is not None:
        _province(out_dir, buildings, seed, city_buildings, json_output)
        return
    city = generate_city(buildings, seed=seed)
    paths = write_delivery(city, out_dir, formats="gpkg" if one_gpkg else "delivery")
    if not one_gpkg:  # the district's DEM and DSM at 2 m (twin.sample.terrain)
        from twin.sample.terrain import write_terrain

        paths = {**paths, **write_terrain(city, out_dir, seed=seed)}
    counts = {name: len(frame) for name, frame in city.items()}
    if addresses:
        from twin.sample.addresses import write_addresses

        written = write_addresses(city, out_dir, seed=seed)
        paths.update({f"addresses_{k}": v for k, v in written.items()})
    if json_output:
        print_json({"files": {k: str(v) for k, v in paths.items()}, "counts": counts})
        return
    for name, count in counts.items():
        out.print(f"{name:12} {count:>9,}  {paths[name].name}", highlight=False)
    for key in ("addresses_standard", "addresses_typed"):
        if key in paths:
            out.print(f"{key:12} {'':>9}  {paths[key].name}", highlight=False)
    out.print(f"mapping file: {paths['mapping']}")
    if "dem" in paths:
        out.print(f"terrain: {paths['dem'].name}, {paths['dsm'].name}")


def _province(out_dir: Path, buildings: int, seed: int, per_city: int, as_json: bool) -> None:
    from twin.sample.province import city_sizes, write_province

    paths = write_province(buildings, out_dir, seed=seed, city_buildings=per_city)
    sizes = city_sizes(buildings, per_city)
    if as_json:
        print_json({"files": {k: str(v) for k, v in paths.items()}, "cities": sizes})
        return
    out.print(f"{len(sizes)} cities, {buildings:,} buildings: {paths['buildings']}")
    out.print(f"mapping file: {paths['mapping']}")


def register(app: typer.Typer) -> None:
    app.command("sample")(sample)
