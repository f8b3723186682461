"""``twin geocode``: locate a CSV of Chinese addresses on the twin's standard address layer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import geopandas as gpd
import pandas as pd
import typer
from rich.table import Table

from twin.address.geocode import RESULT_COLUMNS, geocode, geocoder_for, level_report
from twin.analyses import Twin
from twin.cli._common import JsonOpt, TwinArg, out, print_json
from twin.errors import SourceError, UsageError

_ENCODINGS = ("utf-8-sig", "gb18030")
_SUFFIXES = (".gpkg", ".parquet", ".csv")


def read_addresses(path: Path, field: str) -> pd.DataFrame:
    """Read a CSV (UTF-8 or GBK/GB18030) and check it has ``field``."""
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    for encoding in _ENCODINGS:
        try:
            frame = pd.read_csv(path, dtype=str, encoding=encoding, keep_default_na=False)
            break
        except UnicodeDecodeError:
            continue
        except pd.errors.ParserError as exc:
            raise SourceError(f"{path} is not a readable CSV: {exc}") from None
    else:
        raise SourceError(f"{path} is neither UTF-8 nor GBK text")
    if field not in frame.columns:
        columns = ", ".join(map(str, frame.columns)) or "none"
        raise UsageError(
            f"{path.name} has no column {field!r}: use --address-field (columns: {columns})"
        )
    return frame


def _write(result: gpd.GeoDataFrame, target: Path) -> None:
    """Write beside the target, then move it in place: a failed write leaves nothing behind."""
    tmp = target.with_name(f".{target.stem}.tmp{target.suffix}")
    tmp.unlink(missing_ok=True)
    if target.suffix == ".gpkg":
        result.to_file(tmp, layer=target.stem, driver="GPKG")
    elif target.suffix == ".parquet":
        result.to_parquet(tmp)
    else:
        frame = pd.DataFrame(result.drop(columns="geometry"))
        frame["wkt"] = result.geometry.to_wkt()
        frame.to_csv(tmp, index=False, encoding="utf-8-sig")
    os.replace(tmp, target)


def geocode_cmd(
    twin_path: TwinArg,
    source: Annotated[Path, typer.Argument(help="CSV of addresses (UTF-8 or GBK).")],
    address_field: Annotated[
        str, typer.Option("--address-field", "-f", help="Column holding the address.")
    ] = "地址",
    out_path: Annotated[
        Path,
        typer.Option("--out", "-o", help="Output: .gpkg, .parquet or .csv (with WKT)."),
    ] = Path("located.gpkg"),
    layer: Annotated[
        str | None,
        typer.Option("--layer", "-l", help="Standard address layer (default: the only one)."),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Match every address of a CSV against the twin's standard address layer (标准地址)
    and write each row with the matched uid, level (room / building / house_number / road /
    community / unmatched), score, building, grid cell, district and reason.

    Example: [bold]twin geocode city.gpkg 12345.csv --address-field 地址 --out located.gpkg[/bold]
    """
    if out_path.suffix not in _SUFFIXES:
        raise UsageError(f"--out must end in {', '.join(_SUFFIXES)}, not {out_path.name!r}")
    city = Twin.open(twin_path)
    coder = geocoder_for(city, layer=layer)
    frame = read_addresses(source, address_field)
    located = geocode(coder, frame[address_field])
    kept = frame.drop(columns=[c for c in RESULT_COLUMNS if c in frame.columns and c != "query"])
    result = gpd.GeoDataFrame(
        pd.concat([kept, located.drop(columns=["query", "geometry"])], axis=1),
        geometry=located.geometry,
        crs=located.crs,
    )
    _write(result, out_path)
    report = level_report(located)
    if json_output:
        print_json(
            {
                "rows": len(result),
                "layer": coder.layer,
                "out": str(out_path),
                "levels": {k: int(v) for k, v in report["count"].items()},
            }
        )
        return
    table = Table(title=f"{len(result):,} addresses against {coder.layer} → {out_path}")
    table.add_column("level")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for level, row in report.iterrows():
        table.add_row(str(level), f"{int(row['count']):,}", f"{row['share']:.1%}")
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("geocode")(geocode_cmd)
