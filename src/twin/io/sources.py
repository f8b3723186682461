"""Format detection and reading of one source into a GeoDataFrame."""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyarrow
import pyogrio
import pyogrio.raw
import pyproj
import shapely

from twin import guards
from twin.errors import SourceError, UsageError
from twin.io.gcpause import paused_gc
from twin.store.gpkgread import fid_range, fields_with_nulls

log = logging.getLogger(__name__)

# Suffix -> format name. Directories ending in .gdb are FileGDB.
_SUFFIXES = {
    ".gpkg": "gpkg",
    ".shp": "shapefile",
    ".zip": "shapefile-zip",
    ".geojson": "geojson",
    ".json": "geojson",
    ".fgb": "flatgeobuf",
    ".parquet": "geoparquet",
    ".geoparquet": "geoparquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".pbf": "osm",
    ".inp": "epanet",
}
_GDAL_FORMATS = {"gpkg", "shapefile", "shapefile-zip", "geojson", "flatgeobuf", "filegdb"}
_MULTI_LAYER = {"gpkg", "filegdb", "shapefile-zip"}
# Formats read in batches without rereading the file per batch (fid ranges, record index).
STREAMED_FORMATS = frozenset({"gpkg", "shapefile", "shapefile-zip", "flatgeobuf", "filegdb"})


@dataclass
class SourceData:
    """A source as read: its features, CRS (None when it declares none) and format."""

    frame: gpd.GeoDataFrame
    crs: pyproj.CRS | None
    format: str
    source_layer: str | None = None
    encoding: str | None = None
    wkb: pyarrow.Array | None = None  # each row's geometry as read (WKB), when kept


def detect_format(path: Path) -> str:
    """Return the format name of ``path`` from its suffix (``.gdb`` folders are FileGDB)."""
    if path.suffix.lower() == ".gdb":
        return "filegdb"
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(
            f"{path.name}: unknown format {path.suffix!r}; twin reads "
            ".gpkg, .shp, .zip (zipped Shapefile), .geojson, .gdb, .fgb, .parquet, .csv, "
            ".osm.pbf and .inp"
        )
    return fmt


def read_source(
    path: str | os.PathLike[str],
    *,
    kind: str,
    source_layer: str | None = None,
    encoding: str | None = None,
    where: str | None = None,
    x: str | None = None,
    y: str | None = None,
    wkt: str | None = None,
) -> SourceData:
    """Read one source file into a GeoDataFrame, fields and CRS as the source has them.

    Parameters
    ----------
    path : path-like
        The source: a file, a zipped Shapefile or a ``.gdb`` folder.
    kind : str
        The layer kind; OSM and EPANET sources hold several kinds and use it to
        pick which features to read.
    source_layer : str, optional
        The layer inside a GeoPackage, FileGDB or zip holding several.
    encoding : str, optional
        Text encoding of a Shapefile or CSV (``GBK`` for many Chinese deliveries).
    where : str, optional
        An OGR SQL attribute filter (GDAL formats only).
    x, y, wkt : str, optional
        Coordinate columns of a CSV (auto-detected when not given).

    Returns
    -------
    SourceData

    Examples
    --------
    >>> data = read_source("data/samples/networks.gpkg", kind="valve", source_layer="valves")
    >>> data.format, data.crs.to_epsg()
    ('gpkg', 4544)
    """
    src = Path(path)
    if not src.exists():
        raise SourceError(f"source {src} does not exist")
    fmt = detect_format(src)
    guards.check_encoding(encoding)
    if where and fmt not in _GDAL_FORMATS:
        raise UsageError(f"where= works on GDAL formats (GeoPackage, Shapefile, …), not {fmt}")
    if fmt in _GDAL_FORMATS:
        return _read_gdal(src, fmt, source_layer, encoding, where)
    if fmt == "geoparquet":
        return _read_parquet(src)
    if fmt == "csv":
        from twin.io.table import read_table

        frame = read_table(src, x=x, y=y, wkt=wkt, encoding=encoding)
        used = frame.attrs.get("table", {}).get("encoding", encoding)
        return SourceData(frame, None, fmt, encoding=used)
    if fmt == "osm":
        from twin.io.osm import read_osm

        frame = read_osm(src, kind)
        return SourceData(frame, pyproj.CRS.from_epsg(4326), fmt)
    from twin.io.epanet import read_epanet

    return SourceData(read_epanet(src, kind), None, fmt)


def streamable_count(
    path: str | os.PathLike[str], *, source_layer: str | None = None
) -> int | None:
    """The feature count of a source :func:`read_source_batches` can read; None otherwise.

    None for formats read whole (CSV, GeoJSON, GeoParquet, OSM, EPANET), for a
    layer with a field named ``uid`` (a twin export: its uids are checked over
    the whole file) or ``geometry``, and whenever the source cannot be opened
    (the whole-file read then says why).

    Examples
    --------
    >>> streamable_count("data/samples/networks.gpkg", source_layer="valves") > 0
    True
    >>> streamable_count("data/samples/networks.gpkg") is None  # several layers: say which
    True
    """
    src = Path(path)
    try:
        fmt = detect_format(src)
        if fmt not in STREAMED_FORMATS or not src.exists():
            return None
        dataset = f"/vsizip/{src}" if fmt == "shapefile-zip" else str(src)
        layer = _pick_layer(dataset, src, fmt, source_layer)
        info = pyogrio.read_info(dataset, layer=layer)
    except (SourceError, UsageError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError):
        return None
    fields = {str(f).lower() for f in info["fields"]}
    if fields & {"uid", "geometry"} or info["geometry_type"] is None:
        return None
    count = int(info["features"])
    return count if count >= 0 else None


def read_source_batches(
    path: str | os.PathLike[str],
    *,
    batch_size: int | Sequence[int],
    source_layer: str | None = None,
    encoding: str | None = None,
    where: str | None = None,
    columns: list[str] | None = None,
    keep_wkb: bool = False,
) -> Iterator[SourceData]:
    """Read a large GDAL source in batches of about ``batch_size`` features, in file order.

    ``batch_size`` may be a sequence of sizes, one a batch, the last one repeated
    (:func:`ramped_sizes`). A GeoPackage is read by ranges of its fid (one indexed
    range scan each), other formats by record index. Concatenated, the batches are
    what :func:`read_source` returns, so memory holds one batch, never the file.
    ``keep_wkb`` keeps each batch's geometries as GDAL read them
    (:attr:`SourceData.wkb`, WKB) where the layer has no date-time or JSON field
    (those are read as :func:`read_source` reads them, without it): a writer can
    store unchanged geometries without encoding them again.

    Examples
    --------
    >>> batches = read_source_batches(
    ...     "data/samples/networks.gpkg", source_layer="valves", batch_size=10)
    >>> [len(b.frame) for b in batches][:3]
    [10, 10, 10]
    """
    src = Path(path)
    fmt = detect_format(src)
    if fmt not in STREAMED_FORMATS:
        raise UsageError(f"{src.name}: {fmt} is read whole, not in batches")
    guards.check_encoding(encoding)
    dataset = f"/vsizip/{src}" if fmt == "shapefile-zip" else str(src)
    layer = _pick_layer(dataset, src, fmt, source_layer)
    if fmt == "shapefile" and encoding is None:
        encoding = sniff_dbf_encoding(src)
    kwargs: dict[str, Any] = {"layer": layer, "use_arrow": True, "on_invalid": "ignore"}
    if encoding:
        kwargs["encoding"] = encoding
    if columns is not None:
        kwargs["columns"] = columns
    renames: dict[str, str] = {}
    if fmt == "shapefile":
        from twin.io.export import read_field_names

        renames = read_field_names(src)
    total = 0
    floats = _integers_with_nulls(src, fmt, layer, where)
    keep_wkb = keep_wkb and _plain_fields(dataset, layer)
    for window in _windows(dataset, src, fmt, layer, batch_size, where):
        frame, wkb = _read_frame(dataset, src, fmt, {**kwargs, **window}, keep_wkb=keep_wkb)
        if len(frame) == 0 and total:
            continue
        for name in floats & set(frame.columns):  # as one read of the whole layer gives them
            frame[name] = frame[name].astype("float64")
        full = {k: v for k, v in renames.items() if k in frame.columns}
        frame = frame.rename(columns=full) if full else frame
        total += len(frame)
        crs = pyproj.CRS.from_user_input(frame.crs) if frame.crs is not None else None
        yield SourceData(frame, crs, fmt, source_layer=layer, encoding=encoding, wkb=wkb)
    if not where:
        guards.check_rows_read(total, _declared_count(dataset, src, fmt, layer), src)


def _plain_fields(dataset: str, layer: str | None) -> bool:
    """Whether the layer's fields convert from Arrow to pandas as they are (pyogrio
    parses date-time and JSON fields after that conversion)."""
    info = pyogrio.read_info(dataset, layer=layer)
    times = [t for t in info["dtypes"] if str(t).startswith("datetime") and t != "datetime64[D]"]
    return not times and "OFSTJSON" not in list(info["ogr_subtypes"])


def _integers_with_nulls(src: Path, fmt: str, layer: str | None, where: str | None) -> set[str]:
    """Integer fields holding a null somewhere in a GeoPackage layer.

    One read of the whole layer gives them as floats (NaN for null); a batch
    without a null would give integers. Other formats: none are known.
    """
    if fmt != "gpkg":
        return set()
    info = pyogrio.read_info(str(src), layer=layer)
    names = [str(n) for n, t in zip(info["fields"], info["dtypes"], strict=True) if "int" in str(t)]
    return fields_with_nulls(src, str(layer), names, where)


def _windows(
    dataset: str,
    src: Path,
    fmt: str,
    layer: str | None,
    size: int | Sequence[int],
    where: str | None,
) -> Iterator[dict[str, Any]]:
    """The read options of each batch: fid ranges in a GeoPackage, record windows elsewhere."""
    if fmt == "gpkg":
        info = pyogrio.read_info(dataset, layer=layer)
        fid = info.get("fid_column") or "fid"
        span = fid_range(src, str(layer), fid)
        if span is None:
            yield {"where": where} if where else {}
            return
        for start, end in _ranges(span[0], span[1] + 1, size):
            window = f"{fid} >= {start} AND {fid} < {end}"
            yield {"where": f"({where}) AND {window}" if where else window}
        return
    count = int(pyogrio.read_info(dataset, layer=layer)["features"])
    if count < 0:  # not declared: count once
        count = len(pyogrio.read_dataframe(dataset, layer=layer, read_geometry=False, columns=[]))
    extra = {"where": where} if where else {}
    for start, end in _ranges(0, max(count, 1), size):
        yield {"skip_features": start, "max_features": end - start, **extra}


def _ranges(start: int, stop: int, sizes: int | Sequence[int]) -> Iterator[tuple[int, int]]:
    """``[start, stop)`` cut into consecutive ranges of ``sizes`` (the last size repeated).

    Examples
    --------
    >>> list(_ranges(0, 10, 4)), list(_ranges(5, 15, [1, 2, 3]))
    ([(0, 4), (4, 8), (8, 10)], [(5, 6), (6, 8), (8, 11), (11, 14), (14, 15)])
    """
    steps = [sizes] if isinstance(sizes, int) else list(sizes)
    at, k = start, 0
    while at < stop:
        step = max(int(steps[min(k, len(steps) - 1)]), 1)
        yield at, min(at + step, stop)
        at, k = at + step, k + 1


def ramped_sizes(count: int, size: int, *, first: int) -> list[int]:
    """Batch sizes for ``count`` features: doubling from ``first`` up to ``size``, then
    ``size``, and halving back towards ``first`` for the last batches.

    A pipeline that writes batch k while it makes batch k+1 idles its writer while
    the first batch is made and its maker while the last is written: small first
    and last batches shorten both waits, large middle ones keep the per-batch costs
    low. The sizes add up to at least ``count``.

    Examples
    --------
    >>> ramped_sizes(1_000_000, 200_000, first=25_000)
    [25000, 50000, 100000, 50000, 200000, 200000, 200000, 100000, 50000, 25000]
    >>> ramped_sizes(60, 200, first=25)
    [25, 50]
    """
    up: list[int] = []
    step = max(min(first, size), 1)
    while step < size:
        up.append(step)
        step *= 2
    middle = max(count - 2 * sum(up), 0)
    rest = [middle % size] if middle % size else []
    sizes = up + rest + [size] * (middle // size) + up[::-1]
    out, total = [], 0
    for step in sizes:
        if total >= count:
            break
        out.append(step)
        total += step
    return out or [size]


def _read_gdal(
    src: Path, fmt: str, source_layer: str | None, encoding: str | None, where: str | None
) -> SourceData:
    dataset = f"/vsizip/{src}" if fmt == "shapefile-zip" else str(src)
    if fmt == "geojson":
        _check_utf8(src)
        guards.check_geojson_crs(src)
    layer = _pick_layer(dataset, src, fmt, source_layer)
    if fmt == "shapefile" and encoding is None:
        encoding = sniff_dbf_encoding(src)
    kwargs: dict[str, Any] = {"layer": layer, "use_arrow": True, "on_invalid": "ignore"}
    if encoding:
        kwargs["encoding"] = encoding
    if where:
        kwargs["where"] = where
    frame, _ = _read_frame(dataset, src, fmt, kwargs)
    frame = _keep_field_named_geometry(frame, dataset, kwargs)
    if fmt == "shapefile":
        from twin.io.export import read_field_names

        full = {k: v for k, v in read_field_names(src).items() if k in frame.columns}
        if full:  # an export whose field names the Shapefile format shortened
            frame = frame.rename(columns=full)
    if not where:
        guards.check_rows_read(len(frame), _declared_count(dataset, src, fmt, layer), src)
    crs = pyproj.CRS.from_user_input(frame.crs) if frame.crs is not None else None
    return SourceData(frame, crs, fmt, source_layer=layer, encoding=encoding)


def _read_frame(
    dataset: str, src: Path, fmt: str, kwargs: dict[str, Any], *, keep_wkb: bool = False
) -> tuple[gpd.GeoDataFrame, pyarrow.Array | None]:
    """One ``read_dataframe`` call (or, ``keep_wkb``, its Arrow read keeping the WKB),
    its errors worded for the user."""
    layer, where = kwargs.get("layer"), kwargs.get("where")
    wkb = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if keep_wkb:
                frame, wkb = _read_keeping_wkb(dataset, kwargs)
            else:
                with paused_gc():  # it decodes every geometry: see twin.io.gcpause
                    frame = pyogrio.read_dataframe(dataset, **kwargs)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise SourceError(f"cannot read {src.name}: {_first_line(exc)}") from None
    except UnicodeDecodeError:
        raise guards.undecodable_text_error(src, fmt, kwargs.get("encoding")) from None
    except pyarrow.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "utf-8" in str(exc).lower():
            raise guards.undecodable_text_error(src, fmt, kwargs.get("encoding")) from None
        raise SourceError(f"cannot read {src.name}: {_first_line(exc)}") from None
    except ValueError as exc:
        if where and "SQL" in str(exc):
            raise UsageError(
                f"where={where!r} is not a valid OGR SQL filter on {src.name}: "
                f"write e.g. \"类型 = 'camera'\" (fields: {_field_names(dataset, layer)})"
            ) from None
        raise
    if not isinstance(frame, gpd.GeoDataFrame):
        raise SourceError(f"{src.name} layer {layer!r} has no geometry column")
    return frame, wkb


def _read_keeping_wkb(
    dataset: str, kwargs: dict[str, Any]
) -> tuple[gpd.GeoDataFrame | pd.DataFrame, pyarrow.Array | None]:
    """What ``pyogrio.read_dataframe(use_arrow=True)`` returns for a layer without
    date-time or JSON fields, and the geometry column as read (WKB)."""
    options = {k: v for k, v in kwargs.items() if k not in ("use_arrow", "on_invalid")}
    meta, table = pyogrio.raw.read_arrow(dataset, datetime_as_string=True, **options)
    name = meta["geometry_name"] or "wkb_geometry"
    if name not in table.column_names:
        return table.to_pandas(), None
    column = table.column(name).combine_chunks()
    wkb = column.storage if isinstance(column, pyarrow.ExtensionArray) else column
    frame = table.drop_columns([name]).to_pandas()
    values = wkb.to_numpy(zero_copy_only=False)
    with paused_gc():  # see twin.io.gcpause
        frame["geometry"] = shapely.from_wkb(values, on_invalid=kwargs.get("on_invalid", "raise"))
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=meta["crs"]), wkb


def _keep_field_named_geometry(
    frame: gpd.GeoDataFrame, dataset: str, kwargs: dict[str, Any]
) -> gpd.GeoDataFrame:
    """Keep an attribute named ``geometry``, which pyogrio's geometry column would hide."""
    fields = [str(f) for f in pyogrio.read_info(dataset, layer=kwargs.get("layer"))["fields"]]
    if "geometry" not in fields:
        return frame
    options = {k: v for k, v in kwargs.items() if k != "on_invalid"}
    attrs = pyogrio.read_dataframe(dataset, **options, columns=["geometry"], read_geometry=False)
    frame = frame.copy()
    frame["src_geometry"] = attrs["geometry"].to_numpy()
    frame.attrs["renamed"] = {"geometry": "src_geometry"}
    return frame


def _check_utf8(src: Path) -> None:
    """GeoJSON is UTF-8 (RFC 7946): fail early and clearly when it is not."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(src, "rb") as handle:
            while chunk := handle.read(1 << 22):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise guards.undecodable_text_error(src, "geojson", None) from None


def _declared_count(dataset: str, src: Path, fmt: str, layer: str | None) -> int | None:
    """The feature count the format declares (DBF header, GeoPackage contents…), if cheap."""
    if fmt == "shapefile":
        return guards.dbf_record_count(src)
    try:
        count = int(pyogrio.read_info(dataset, layer=layer)["features"])
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError):
        return None
    return count if count >= 0 else None


def _field_names(dataset: str, layer: str | None) -> str:
    return ", ".join(str(f) for f in pyogrio.read_info(dataset, layer=layer)["fields"])


def _pick_layer(dataset: str, src: Path, fmt: str, source_layer: str | None) -> str | None:
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(dataset)]
    except pyogrio.errors.DataSourceError as exc:
        raise SourceError(f"cannot open {src.name}: {_first_line(exc)}") from None
    if source_layer is not None:
        if source_layer not in layers:
            raise UsageError(
                f"{src.name} has no layer {source_layer!r}; its layers are: {', '.join(layers)}"
            )
        return source_layer
    if len(layers) == 1 or fmt not in _MULTI_LAYER:
        return layers[0] if layers else None
    raise UsageError(
        f"{src.name} holds {len(layers)} layers ({', '.join(layers)}): say which with source_layer="
    )


def _read_parquet(src: Path) -> SourceData:
    try:
        frame = gpd.read_parquet(src)
    except (ValueError, OSError) as exc:
        raise SourceError(f"cannot read {src.name} as GeoParquet: {_first_line(exc)}") from None
    crs = pyproj.CRS.from_user_input(frame.crs) if frame.crs is not None else None
    return SourceData(frame, crs, "geoparquet")


def sniff_dbf_encoding(shp: Path) -> str | None:
    """Guess the encoding of a Shapefile that has no ``.cpg`` and no DBF code page.

    GDAL reads such files as ISO-8859-1, which garbles Chinese text. When the
    DBF bytes are not ASCII, try UTF-8, then GB18030 (a superset of GBK).

    Returns
    -------
    str or None
        The encoding to pass to GDAL, or None to let GDAL decide.
    """
    if any(shp.with_suffix(s).exists() for s in (".cpg", ".CPG")):
        return None
    dbf = next((p for p in (shp.with_suffix(".dbf"), shp.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return None
    raw = dbf.read_bytes()[: 1 << 20]
    if len(raw) < 32 or raw[29] != 0:
        return None  # the DBF declares its code page (LDID): GDAL honours it
    text = _dbf_text(raw)
    if text.isascii():
        return None
    for candidate in ("utf-8", "gb18030"):
        try:
            text.decode(candidate)
        except UnicodeDecodeError:
            continue
        log.warning("%s has no .cpg; its text looks like %s", shp.name, candidate.upper())
        return candidate.upper()
    return None


def _dbf_text(raw: bytes) -> bytes:
    """The field names and record bytes of a DBF, without its binary header."""
    header_len = int.from_bytes(raw[8:10], "little")
    names = b"".join(
        raw[offset : offset + 11].rstrip(b"\0")
        for offset in range(32, min(header_len, len(raw)) - 1, 32)
        if raw[offset] != 0x0D
    )
    records = raw[header_len:]
    # Cut at a record boundary so a multi-byte character is never split.
    record_len = int.from_bytes(raw[10:12], "little") or 1
    records = records[: len(records) - len(records) % record_len].rstrip(b"\x1a")
    return names + records


def checksum(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a source: the file, or every file of a Shapefile set or ``.gdb`` folder."""
    src = Path(path)
    if src.is_dir():
        parts = sorted(p for p in src.rglob("*") if p.is_file())
    elif src.suffix.lower() == ".shp":
        parts = sorted(p for p in src.parent.glob(src.stem + ".*") if p.is_file())
    else:
        parts = [src]
    digest = hashlib.sha256()
    for part in parts:
        with open(part, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
