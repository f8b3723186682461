"""Point tables: CSV, TSV and delimited text with coordinate or WKT columns.

Municipal deliveries of sensors, POIs, addresses and hydrants often come as
spreadsheets saved as CSV, in GBK with Chinese headers (经度/纬度) or UTF-8
with a byte-order mark (Excel). :func:`read_table` reads them as they are:
every value stays a string, so codes like ``"0012"`` keep their zeros; only
the coordinates are parsed. The CRS is not guessed (``crs=None``): the import
pipeline sets it from ``src_crs``.
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin.errors import SourceError, UsageError

log = logging.getLogger(__name__)

# Column names recognised as coordinates, compared after strip() and lower(),
# in order of preference: (x names, y names).
_XY_NAMES: Final = (
    (
        ("lon", "lng", "long", "longitude", "经度", "wgs84_lon", "lon_wgs84"),
        ("lat", "latitude", "纬度", "wgs84_lat", "lat_wgs84"),
    ),
    (
        ("x", "x_coord", "xcoord", "coord_x", "point_x", "x坐标", "横坐标"),
        ("y", "y_coord", "ycoord", "coord_y", "point_y", "y坐标", "纵坐标"),
    ),
)
_WKT_NAMES: Final = ("wkt", "wkt_geom", "geometry", "geom", "the_geom")
_DELIMITERS: Final = (",", "\t", ";", "|")
_DELIMITER_NAMES: Final = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
_SRID_PREFIX: Final = re.compile(r"^\s*SRID=\d+\s*;\s*", re.IGNORECASE)
_HEX: Final = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
_UNIT_SUFFIX: Final = re.compile(r"\s*[(（\[【].*$")


def read_table(
    path: str | os.PathLike[str],
    *,
    x: str | None = None,
    y: str | None = None,
    wkt: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a delimited text table of points (or WKT geometries) as a GeoDataFrame.

    Parameters
    ----------
    path : path-like
        A ``.csv``, ``.tsv`` or ``.txt`` file.
    x, y : str, optional
        The columns holding longitude/easting and latitude/northing. Found
        by name when not given: ``lon``/``lng``/``longitude``/``经度`` with
        ``lat``/``latitude``/``纬度``, else ``x``/``y``, ``POINT_X``/``POINT_Y``,
        … (any case). Note that Chinese survey tables often call the
        *northing* X: such tables need ``x="Y", y="X"``.
    wkt : str, optional
        A column of WKT (or hex WKB) geometries, found by name when not
        given (``wkt``, ``wkt_geom``, ``geometry``, ``geom``, ``the_geom``);
        preferred over x/y columns when both are found.
    encoding : str, optional
        Text encoding. By default UTF-8 (with or without a byte-order mark),
        falling back to GB18030 (a superset of GBK and GB2312) when the file
        is not valid UTF-8; UTF-16 files with a byte-order mark are detected.
    delimiter : str, optional
        Field separator; ``"\\t"`` or ``"tab"`` for tabs. By default a tab for
        ``.tsv``, else the most frequent of ``, TAB ; |`` in the header line.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per data row, in file order, with every column but the
        coordinate columns kept as strings (empty cells missing), a
        ``geometry`` column, and ``crs=None``. Rows whose coordinates are
        empty or not numbers, or whose WKT does not parse or is empty, have
        a None geometry: they are kept for the caller to count and reject.
        ``attrs["table"]`` records the encoding, delimiter and columns used.

    Raises
    ------
    SourceError
        If the file is missing, cannot be decoded or parsed, or has no
        coordinate columns (the message lists its columns and the
        ``x``/``y``/``wkt`` options), or a named column is missing.
    UsageError
        If ``x`` is given without ``y`` (or the reverse), or with ``wkt``.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = Path(folder) / "sensors.csv"
    >>> _ = path.write_text("编号,经度,纬度\\n0012,104.06,30.67\\n0013,,30.6\\n", encoding="gbk")
    >>> frame = read_table(path)
    >>> frame["编号"].tolist(), frame.geometry.iloc[0].wkt, frame.geometry.iloc[1]
    (['0012', '0013'], 'POINT (104.06 30.67)', None)
    >>> frame.attrs["table"]["encoding"]
    'gb18030'
    """
    if (x is None) != (y is None):
        raise UsageError("x= and y= go together: give both columns or neither")
    if wkt is not None and x is not None:
        raise UsageError("give either wkt= or x=/y=, not both")
    src = Path(path)
    text, used_encoding = _decode(_read_bytes(src), encoding, src.name)
    sep = _delimiter(delimiter, src, text)
    frame = _parse(text, sep, src.name)
    columns = [str(c) for c in frame.columns]
    if x is not None and y is not None:
        chosen = {
            "x": _named(columns, x, "x=", src.name),
            "y": _named(columns, y, "y=", src.name),
        }
    elif wkt is not None:
        chosen = {"wkt": _named(columns, wkt, "wkt=", src.name)}
    else:
        chosen = _detect(frame, src.name)
    geometry = _geometry(frame, chosen)
    log.info(
        "read %s: %d rows, encoding %s, delimiter %r, geometry from %s",
        src.name,
        len(frame),
        used_encoding,
        sep,
        ", ".join(f"{k}={v!r}" for k, v in chosen.items()),
    )
    attributes = frame.drop(columns=list(chosen.values()))
    if "geometry" in attributes.columns:  # a text column of that name that is not WKT
        attributes = attributes.rename(columns={"geometry": "geometry_text"})
    out = gpd.GeoDataFrame(attributes, geometry=geometry, crs=None)
    out.attrs["table"] = {"encoding": used_encoding, "delimiter": sep, "columns": chosen}
    return out


def _read_bytes(src: Path) -> bytes:
    try:
        return src.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"source {src} does not exist") from None
    except OSError as exc:
        raise SourceError(f"cannot read {src}: {exc.strerror or exc}") from None


def _decode(raw: bytes, encoding: str | None, name: str) -> tuple[str, str]:
    """Return the text and the encoding used (given, UTF-16 by BOM, UTF-8, GB18030)."""
    if encoding is not None:
        try:
            return raw.decode(encoding).removeprefix("\ufeff"), encoding
        except LookupError:
            raise SourceError(f"unknown encoding {encoding!r}: try utf-8 or gb18030") from None
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{name} is not valid {encoding} (byte {exc.start}): try encoding='gb18030' "
                "or encoding='utf-8'"
            ) from None
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16").removeprefix("\ufeff"), "utf-16"
    for candidate in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(candidate), candidate
        except UnicodeDecodeError:
            continue
    raise SourceError(f"{name} is neither UTF-8 nor GB18030 text: say which with encoding=")


def _delimiter(delimiter: str | None, src: Path, text: str) -> str:
    if delimiter is not None:
        return _DELIMITER_NAMES.get(delimiter.lower(), delimiter)
    if src.suffix.lower() == ".tsv":
        return "\t"
    header = text.split("\n", 1)[0]
    counts = [header.count(d) for d in _DELIMITERS]
    return _DELIMITERS[int(np.argmax(counts))] if max(counts) else ","


def _parse(text: str, sep: str, name: str) -> pd.DataFrame:
    """Every cell as a string; only empty cells become missing."""
    try:
        return pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[""]
        )
    except pd.errors.EmptyDataError:
        raise SourceError(f"{name} is empty: expected a header line and rows") from None
    except (pd.errors.ParserError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"cannot parse {name} with delimiter {sep!r}: {detail}") from None


def _named(columns: Sequence[str], name: str, option: str, source: str) -> str:
    """The column called ``name``: exactly, else the single one equal ignoring case/space."""
    if name in columns:
        return name
    loose = [c for c in columns if c.strip().lower() == name.strip().lower()]
    if len(loose) == 1:
        return loose[0]
    raise SourceError(f"{source} has no column {name!r} (from {option}); its columns: {columns}")


def _detect(frame: pd.DataFrame, source: str) -> dict[str, str]:
    """Find a WKT column that parses, else an x/y pair, else any WKT column, by name."""
    by_key: dict[str, str] = {}
    for column in map(str, frame.columns):
        by_key.setdefault(_name_key(column), column)
    wkt = [by_key[n] for n in _WKT_NAMES if n in by_key]
    for column in wkt:
        sample = frame[column].dropna().head(100)
        if any(g is not None for g in _parse_geometries(sample)):
            return {"wkt": column}
    for x_names, y_names in _XY_NAMES:
        x = next((by_key[n] for n in x_names if n in by_key), None)
        y = next((by_key[n] for n in y_names if n in by_key), None)
        if x is not None and y is not None:
            return {"x": x, "y": y}
    if wkt:
        return {"wkt": wkt[0]}
    raise SourceError(
        f"{source}: no coordinate columns found among {[str(c) for c in frame.columns]}: name "
        "them with x= and y= (e.g. x='经度', y='纬度') or a WKT column with wkt="
    )


def _name_key(column: str) -> str:
    """Lower case without spaces or a bracketed unit: ``"经度（WGS84）"`` -> ``"经度"``."""
    return _UNIT_SUFFIX.sub("", column).strip().lower().replace(" ", "_")


def _geometry(frame: pd.DataFrame, chosen: dict[str, str]) -> gpd.GeoSeries:
    if "wkt" in chosen:
        values = _parse_geometries(frame[chosen["wkt"]])
    else:
        xs, ys = _numbers(frame[chosen["x"]]), _numbers(frame[chosen["y"]])
        ok = np.isfinite(xs) & np.isfinite(ys)
        values = np.full(len(frame), None, dtype=object)
        values[ok] = shapely.points(xs[ok], ys[ok])
    return gpd.GeoSeries(values, index=frame.index, name="geometry")


def _numbers(column: pd.Series) -> np.ndarray:
    """Floats of a text column; NaN where empty or not a number."""
    parsed = pd.to_numeric(column, errors="coerce")  # surrounding spaces are allowed
    return np.asarray(parsed.to_numpy(dtype=float, na_value=np.nan), dtype=float)


def _parse_geometries(column: pd.Series) -> np.ndarray:
    """WKT, EWKT (``SRID=4326;POINT(…)``) or hex WKB; None where missing, invalid or empty."""
    text = column.fillna("").str.strip().str.replace(_SRID_PREFIX, "", regex=True)
    values = text.to_numpy(dtype=object)
    out = np.full(len(values), None, dtype=object)
    is_hex = text.str.fullmatch(_HEX).to_numpy(dtype=bool)
    is_wkt = (text != "").to_numpy(dtype=bool) & ~is_hex
    out[is_wkt] = shapely.from_wkt(values[is_wkt], on_invalid="ignore")
    out[is_hex] = shapely.from_wkb(values[is_hex], on_invalid="ignore")
    out[shapely.is_empty(out)] = None
    return out
