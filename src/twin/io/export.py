"""Writing a layer to the formats analysts hand on."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from twin.errors import UsageError

log = logging.getLogger(__name__)

_DRIVERS = {
    ".gpkg": "GPKG",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".shp": "ESRI Shapefile",
    ".fgb": "FlatGeobuf",
}
EXPORT_SUFFIXES = (*_DRIVERS, ".parquet", ".csv")


def write_layer(
    frame: gpd.GeoDataFrame,
    path: Path,
    *,
    layer: str,
    encoding: str | None = None,
    raw: bool = False,
) -> Path:
    """Write ``frame`` to ``path``; the suffix picks the format.

    Parameters
    ----------
    frame : GeoDataFrame
        Features with a ``uid`` column.
    path : Path
        ``.gpkg``, ``.geojson``, ``.shp``, ``.fgb``, ``.parquet`` (GeoParquet)
        or ``.csv`` (geometry as WKT).
    layer : str
        Layer name inside a GeoPackage.
    encoding : str, optional
        Shapefile text encoding (default UTF-8, with a ``.cpg``); ``GBK`` for
        legacy Chinese desktop GIS.
    raw : bool, default False
        Write CSV text cells as they are. By default a cell starting with
        ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
        ``'`` so that a spreadsheet shows it instead of running it as a formula.
    """
    suffix = path.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise UsageError(f"cannot export to {path.name}: use one of {', '.join(EXPORT_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = _plain_types(frame)
    if suffix == ".parquet":
        frame.to_parquet(path)
    elif suffix == ".csv":
        table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        if not raw:
            table = escape_formulas(table)
        table["wkt"] = shapely.to_wkt(frame.geometry.array, rounding_precision=-1)
        table.to_csv(path, index=False, encoding="utf-8-sig")
    else:
        kwargs = {}
        if suffix == ".shp":
            kwargs["encoding"] = encoding or "UTF-8"
            short = shapefile_names(list(frame.columns), kwargs["encoding"])
            frame = frame.rename(columns=short)
            write_field_names(path, short)
        elif encoding:
            raise UsageError("encoding= applies to Shapefile exports only")
        with warnings.catch_warnings():
            # Shapefile field names are cut to 10 characters; GDAL says so per field.
            warnings.simplefilter("ignore", RuntimeWarning)
            pyogrio.write_dataframe(
                frame,
                path,
                layer=layer if suffix == ".gpkg" else None,
                driver=_DRIVERS[suffix],
                promote_to_multi=_has_multi(frame) or None,
                **kwargs,
            )
    log.info("wrote %d features to %s", len(frame), path)
    return path


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula, prefixed with ``'``.

    Examples
    --------
    >>> escape_formulas(pd.DataFrame({"a": ["=1+1", "ok", "-x"], "n": [-1, 2, 3]}))
           a  n
    0  '=1+1 -1
    1     ok  2
    2    '-x  3
    """
    out = table.copy()
    for column in out.columns:
        values = out[column]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        text = values.astype(object)
        risky = text.map(lambda v: isinstance(v, str) and v.startswith(_FORMULA_STARTS))
        if risky.any():
            out[column] = text.where(~risky, "'" + text.astype(str))
    return out


FIELD_NAMES_SUFFIX = ".fieldnames.json"


def write_field_names(shp: Path, short: dict[str, str]) -> None:
    """Beside a Shapefile, the full name of every field the format shortened (if any)."""
    sidecar = shp.with_name(shp.stem + FIELD_NAMES_SUFFIX)
    renamed = {new: str(old) for old, new in short.items() if new != old}
    if renamed:
        sidecar.write_text(json.dumps(renamed, ensure_ascii=False, indent=1), encoding="utf-8")
    elif sidecar.exists():
        sidecar.unlink()


def read_field_names(shp: Path) -> dict[str, str]:
    """The ``{short: full}`` field names written by :func:`write_field_names` ({} if none)."""
    sidecar = shp.with_name(shp.stem + FIELD_NAMES_SUFFIX)
    if not sidecar.is_file():
        return {}
    try:
        names = json.loads(sidecar.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    return {str(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}


def shapefile_names(columns: list[str], encoding: str) -> dict[str, str]:
    """Rename fields whose encoded name exceeds the DBF limit of 10 bytes.

    GDAL cuts at 10 bytes, which can split a multi-byte character (建筑编码 is
    12 bytes in UTF-8); cut whole characters instead and keep names unique.
    """
    renames: dict[str, str] = {}
    taken = {c for c in columns if len(str(c).encode(encoding)) <= 10}
    for column in columns:
        name = str(column)
        if column == "geometry" or len(name.encode(encoding)) <= 10:
            continue
        for n in range(2, 100):
            short = _cut(name, encoding, 10)
            if short not in taken:
                break
            short = _cut(name, encoding, 10 - len(str(n)) - 1) + f"_{n}"
            if short not in taken:
                break
        taken.add(short)
        renames[column] = short
        log.warning("Shapefile field %r written as %r (DBF names hold 10 bytes)", name, short)
    return renames


def _cut(name: str, encoding: str, limit: int) -> str:
    while len(name.encode(encoding)) > limit:
        name = name[:-1]
    return name


def _has_multi(frame: gpd.GeoDataFrame) -> bool:
    return bool(frame.geom_type.dropna().str.startswith("Multi").any())


def _plain_types(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Nullable pandas dtypes become types every writer knows."""
    out = frame.copy()
    for name in out.columns:
        dtype = out[name].dtype
        if isinstance(dtype, pd.BooleanDtype):
            out[name] = out[name].astype(object).where(out[name].notna(), None)
        elif isinstance(dtype, pd.api.extensions.ExtensionDtype) and pd.api.types.is_integer_dtype(
            dtype
        ):
            out[name] = (
                out[name].astype("float64") if out[name].isna().any() else out[name].astype("int64")
            )
    return out
