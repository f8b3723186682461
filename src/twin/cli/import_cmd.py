"""``twin import``: bring a data delivery into a layer of the twin."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from twin.analyses import Twin
from twin.cli._common import (
    JsonOpt,
    TwinArg,
    cli_wording,
    err,
    out,
    print_json,
    progress_callback,
    show_progress,
)
from twin.errors import RejectedFeaturesError, UsageError
from twin.imports import ImportReport
from twin.mapping import ImportSpec, parse_pairs, read_mapping

_SHOWN_REJECTIONS = 10


def import_(
    twin_path: TwinArg,
    source: Annotated[
        Path | None,
        typer.Argument(
            help="The source file (.gpkg .shp .zip .geojson .gdb .parquet .csv "
            ".osm.pbf .inp). Omit it to import every layer of --mapping.",
            show_default=False,
        ),
    ] = None,
    layer: Annotated[
        list[str] | None,
        typer.Option(
            "--layer",
            "-l",
            help="Twin layer name (with --mapping and no SOURCE: repeat to pick layers).",
        ),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            "-k",
            help="Layer kind: parcel, building, road, pipe, valve, source, sensor, district, "
            "grid, poi, … (`twin kinds`); dem, dsm or raster for a raster file.",
        ),
    ] = None,
    id_field: Annotated[
        str | None,
        typer.Option(
            "--id", help="The source's own id field: gives stable uids across re-imports."
        ),
    ] = None,
    field_map: Annotated[
        list[str] | None,
        typer.Option("--map", help="SOURCE_FIELD=twin_field, repeatable, e.g. --map 层数=floors."),
    ] = None,
    set_values: Annotated[
        list[str] | None,
        typer.Option("--set", help="twin_field=VALUE for every feature, e.g. --set network=water."),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="A YAML mapping file describing many layers.")
    ] = None,
    source_layer: Annotated[
        str | None,
        typer.Option("--source-layer", help="Layer inside a GeoPackage / FileGDB / zip."),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option("--encoding", help="Text encoding of a Shapefile or CSV, e.g. GBK."),
    ] = None,
    where: Annotated[
        str | None, typer.Option("--where", help="OGR SQL filter, e.g. \"类型 = 'camera'\".")
    ] = None,
    src_crs: Annotated[
        str | None,
        typer.Option(
            "--src-crs", help="CRS of a source that declares none (CSV, EPANET), e.g. EPSG:4490."
        ),
    ] = None,
    coords: Annotated[
        str | None,
        typer.Option("--coords", help="gcj02 or bd09: lon/lat captured from a Chinese web map."),
    ] = None,
    x: Annotated[str | None, typer.Option("--x", help="CSV x / longitude column.")] = None,
    y: Annotated[str | None, typer.Option("--y", help="CSV y / latitude column.")] = None,
    wkt: Annotated[str | None, typer.Option("--wkt", help="CSV WKT geometry column.")] = None,
    classification: Annotated[
        str | None,
        typer.Option("--classification", help="public, internal or restricted (default: by kind)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail (and write nothing) if any feature is rejected.")
    ] = False,
    allow_removals: Annotated[
        bool,
        typer.Option(
            "--allow-removals",
            help="Let a re-import remove more than --max-removed of the layer's features.",
        ),
    ] = False,
    max_removed: Annotated[
        float,
        typer.Option(
            "--max-removed",
            min=0.0,
            max=1.0,
            help="Share of a layer a re-import may remove without --allow-removals.",
        ),
    ] = 0.2,
    local_coords: Annotated[
        bool,
        typer.Option(
            "--local-coords",
            help="The coordinates are local drawing units (EPANET, CAD), not in --src-crs's "
            "area of use: skip the area-of-use and twin-extent checks.",
        ),
    ] = False,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Replace the layer with a delivery using another id field or another dataset.",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Write the twin even if its file is read-only.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Import a source into a twin layer; a re-import records what changed.

    A delivery that holds nothing, whose every feature is rejected, or whose
    file is truncated fails with exit code 3 and writes nothing; so does a
    re-import that would remove more than 20% of the layer (--allow-removals).

    Examples:

      [bold]twin import city.gpkg parcels.shp -l parcels -k parcel --id 地块编码
      --map 容积率上限=far_limit[/bold]

      [bold]twin import city.gpkg sensors.csv -l sensors -k sensor
      --src-crs EPSG:4326 --coords gcj02[/bold]

      [bold]twin import city.gpkg --mapping data/samples/mapping.yaml[/bold]

      [bold]twin import city.gpkg data/samples/dem.tif -l dem -k dem[/bold]
    """
    options: dict[str, Any] = {
        "id": id_field,
        "source_layer": source_layer,
        "encoding": encoding,
        "where": where,
        "src_crs": src_crs,
        "coords": coords,
        "x": x,
        "y": y,
        "wkt": wkt,
        "classification": classification,
        "strict": strict,
        "allow_removals": allow_removals,
        "local_coords": local_coords,
        "replace": replace,
    }
    if source is not None and _import_3d(
        twin_path, source, layer or [], kind, src_crs, json_output
    ):
        return
    specs = _specs(source, layer or [], kind, mapping, field_map or [], set_values or [], options)
    for spec in specs:
        spec.max_removed_share = max_removed
    city = Twin.open(twin_path, force=force)
    reports: list[ImportReport] = []
    for spec in specs:
        update, close = progress_callback(show_progress(json_output))
        try:
            reports.append(city.import_spec(spec, progress=update))
        except RejectedFeaturesError as exc:
            close()
            if json_output:
                print_json(exc.report.to_dict())
            raise
        finally:
            close()
        if not json_output:
            _print_report(reports[-1])
    if json_output:
        payload = [r.to_dict() for r in reports]
        print_json(payload[0] if source is not None else payload)


def _import_3d(
    twin_path: str | Path,
    source: Path,
    layers: list[str],
    kind: str | None,
    src_crs: str | None,
    json_output: bool,
) -> bool:
    """Rasters (--kind dem|dsm|raster) and CityJSON files take their own path; False otherwise."""
    from twin.city3d import import_cityjson
    from twin.raster import RASTER_KINDS, import_raster

    is_cityjson = source.name.lower().endswith((".city.json", ".city.jsonl"))
    if kind not in RASTER_KINDS and not is_cityjson:
        return False
    if len(layers) != 1:
        raise UsageError("importing one SOURCE needs --layer NAME")
    city = Twin.open(twin_path)
    if kind in RASTER_KINDS:
        report = import_raster(city, source, layer=layers[0], kind=str(kind), src_crs=src_crs)
        if json_output:
            print_json(report.to_dict())
        else:
            out.print(f"raster {report.summary()}; import {report.import_id}", highlight=False)
        return True
    if kind not in (None, "building"):
        raise UsageError("a CityJSON file imports buildings: use --kind building")
    imported = import_cityjson(city, source, layer=layers[0])
    if json_output:
        print_json(imported.to_dict())
    else:
        _print_report(imported)
    return True


def _specs(
    source: Path | None,
    layers: list[str],
    kind: str | None,
    mapping: Path | None,
    field_map: list[str],
    set_values: list[str],
    options: dict[str, Any],
) -> list[ImportSpec]:
    given = {k: v for k, v in options.items() if v not in (None, False)}
    if source is None:
        if mapping is None:
            raise UsageError("give a SOURCE file, or --mapping FILE to import many layers")
        specs = read_mapping(mapping)
        for name in layers:
            if name not in specs:
                raise UsageError(f"{mapping} has no layer {name!r}; it has: {', '.join(specs)}")
        chosen = [specs[name] for name in (layers or list(specs))]
        for spec in chosen:
            for flag in ("strict", "allow_removals", "local_coords", "replace"):
                setattr(spec, flag, getattr(spec, flag) or bool(options[flag]))
        return chosen
    if len(layers) != 1 or kind is None:
        raise UsageError("importing one SOURCE needs --layer NAME and --kind KIND")
    fields: dict[str, str] = {}
    if mapping is not None:
        entry = read_mapping(mapping).get(layers[0])
        if entry is not None:
            fields = dict(entry.fields)
    fields.update(parse_pairs(field_map, "--map"))
    constants = parse_pairs(set_values, "--set")
    return [
        ImportSpec(source=source, layer=layers[0], kind=kind, fields=fields, set=constants, **given)
    ]


def _print_report(report: ImportReport) -> None:
    table = Table(
        title=f"import into {report.layer} ({report.kind}) from {Path(report.source).name}",
        title_justify="left",
    )
    for column in (
        "read",
        "imported",
        "repaired",
        "rejected",
        "added",
        "changed",
        "removed",
        "unchanged",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        *(
            str(getattr(report, c))
            for c in (
                "read",
                "imported",
                "repaired",
                "rejected",
                "added",
                "changed",
                "removed",
                "unchanged",
            )
        )
    )
    out.print(table)
    out.print(
        f"  CRS {report.src_crs} -> {report.crs}; classification {report.classification}; "
        f"import {report.import_id}; {report.seconds:.1f} s"
    )
    for warning in report.warnings:
        err.print(f"  [yellow]warning:[/yellow] {cli_wording(warning)}", highlight=False)
    for rejection in report.rejections[:_SHOWN_REJECTIONS]:
        ident = f" ({rejection.source_id})" if rejection.source_id else ""
        out.print(
            f"  rejected row {rejection.row}{ident}: {rejection.reason}",
            highlight=False,
            markup=False,
        )
    if report.rejected > _SHOWN_REJECTIONS:
        out.print(f"  … and {report.rejected - _SHOWN_REJECTIONS} more (all of them with --json)")


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
