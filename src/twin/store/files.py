"""Low-level file operations on a twin GeoPackage (its working copy during a write).

Examples
--------
>>> history_table("buildings")
'buildings__history'
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import pyogrio.raw
import shapely

from twin.errors import TwinFileError
from twin.store import schema
from twin.store.gdalsink import GdalSink

__all__ = [
    "HISTORY_SUFFIX",
    "Encoded",
    "check_twin_file",
    "create_file",
    "fsync_dir",
    "fsync_file",
    "history_table",
    "quoted",
    "write_stream",
    "write_table",
]

HISTORY_SUFFIX = "__history"


def history_table(layer: str) -> str:
    """Name of the table that keeps a layer's replaced versions.

    Examples
    --------
    >>> history_table("buildings")
    'buildings__history'
    """
    return f"{layer}{HISTORY_SUFFIX}"


def quoted(name: str) -> str:
    """An identifier for a double-quoted SQL name (quotes doubled)."""
    return name.replace('"', '""')


def create_file(path: Path, meta: dict[str, str]) -> None:
    """Create an empty twin GeoPackage with its metadata tables at ``path``."""
    # Let GDAL lay down a valid GeoPackage skeleton, then add our tables.
    pyogrio.write_dataframe(
        pd.DataFrame({"key": list(meta), "value": list(meta.values())}),
        path,
        layer="twin_meta",
        driver="GPKG",
        # 1.3 rather than GDAL's newest 1.4: opens without warnings in older QGIS / GDAL.
        dataset_options={"VERSION": "1.3"},
    )
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        schema.create_tables(con)


def write_table(path: Path, table: str, frame: gpd.GeoDataFrame, *, append: bool = False) -> None:
    """Write (or append to) a spatial table of the working copy at ``path``."""
    type_ids = shapely.get_type_id(np.asarray(frame.geometry.array))
    promote = bool(np.isin(type_ids, (4, 5, 6)).any())  # any Multi* part
    with _no_sync_on_private_copy():
        pyogrio.write_dataframe(
            frame,
            path,
            layer=table,
            driver="GPKG",
            append=append,
            promote_to_multi=promote or None,
            use_arrow=True,
            layer_options={"FID": "fid"},
        )


def write_stream(
    path: Path,
    table: str,
    frames: Iterator[gpd.GeoDataFrame | Encoded],
    *,
    multi: bool = False,
    spatial_index: bool = True,
    helper: bool = False,
) -> None:
    """Write (replace) a spatial table from frames made one at a time, in one GDAL write.

    Memory holds one frame; GDAL builds the table's spatial index once at the end,
    where appending frame by frame would update it row by row. Every frame has the
    first one's columns; each is stored as :func:`write_table` would store it (single
    parts as multi-parts when ``multi`` or when the first frame holds one). The first
    frame is made before the table is touched. An exception raised while a frame is
    made is raised here (the table is then half-written: use on a working copy).
    ``spatial_index=False`` skips the R-tree (a scratch table read back in fid order).
    ``helper=True`` has GDAL write in a helper process (:mod:`twin.store.gdalsink`)
    while this one makes the next frame: worth its half-second start for frames of
    tens of thousands of rows (an embedded interpreter without ``sys.executable``
    writes here). A frame given as :class:`Encoded` brings geometries
    already encoded as WKB (GDAL's own, as read), stored as they are.
    """
    sink = _start_helper() if helper and sys.executable else None
    try:
        first, wkb = _unpacked(next(frames))
        types = shapely.get_type_id(np.asarray(first.geometry.array))
        multi = multi or bool(np.isin(types, (4, 5, 6)).any())
        head = _arrow_table(first, wkb, multi=multi)
        options = {
            "layer": table,
            "driver": "GPKG",
            "geometry_name": "geometry",
            "geometry_type": _geometry_type(first, multi),
            "crs": _crs_text(first),
            "layer_options": {"FID": "fid", "SPATIAL_INDEX": "YES" if spatial_index else "NO"},
        }
        rest = (
            _as_schema(_arrow_table(*_unpacked(item), multi=multi), head.schema) for item in frames
        )
        if sink is None:
            _write_here(path, head, rest, options)
            return
        sink.open(path, head.schema, options)
        for part in itertools.chain([head], rest):
            for batch in part.to_batches():
                sink.write(batch)
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    sink.close()


def _as_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``: cast only when a column's type differs (a cast copies
    every column, even to the same types)."""
    if table.schema.equals(schema):
        return table.replace_schema_metadata(schema.metadata)
    return table.cast(schema)


def _start_helper() -> GdalSink | None:
    """A helper process, or None (write here) when the system cannot start one."""
    try:
        return GdalSink()
    except OSError:
        return None


class Encoded(NamedTuple):
    """A frame for :func:`write_stream` with its geometries already encoded.

    ``wkb`` has a row's geometry as WKB, or null where it must be encoded from the
    frame (a geometry changed since it was read).
    """

    frame: gpd.GeoDataFrame
    wkb: pa.Array | None


def _unpacked(item: gpd.GeoDataFrame | Encoded) -> tuple[gpd.GeoDataFrame, pa.Array | None]:
    return (item.frame, item.wkb) if isinstance(item, Encoded) else (item, None)


def _write_here(
    path: Path, head: pa.Table, rest: Iterator[pa.Table], options: dict[str, Any]
) -> None:
    """One ``write_arrow`` in this process, pulling the tables as GDAL asks for them."""
    failures: list[BaseException] = []

    def batches() -> Iterator[pa.RecordBatch]:
        yield from head.to_batches()
        try:
            for part in rest:
                yield from part.to_batches()
        except BaseException as exc:
            failures.append(exc)
            raise

    reader = pa.RecordBatchReader.from_batches(head.schema, batches())
    try:
        with _no_sync_on_private_copy():
            pyogrio.raw.write_arrow(reader, path, **options)
    except Exception:
        if failures:
            raise failures[0] from None
        raise
    if failures:
        raise failures[0]


def _arrow_table(frame: gpd.GeoDataFrame, wkb: pa.Array | None = None, *, multi: bool) -> pa.Table:
    """The frame as pyogrio's ``write_dataframe(use_arrow=True)`` hands it to GDAL.

    ``wkb`` holds rows' geometries already encoded (null: encode the row here);
    single parts are encoded again as multi-parts when ``multi``.
    """
    geoms = np.asarray(frame.geometry.array, dtype=object)
    encode = np.ones(len(geoms), dtype=bool) if wkb is None else _nulls(wkb)
    if multi:
        types = shapely.get_type_id(geoms)
        encode |= np.isin(types, (0, 1, 3))
        geoms = geoms.copy()
        for single, make in (
            (0, shapely.multipoints),
            (1, shapely.multilinestrings),
            (3, shapely.multipolygons),
        ):
            mask = encode & (types == single)
            if mask.any():
                geoms[mask] = make(np.atleast_2d(geoms[mask]), axis=0)
    data = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    for name in data.columns:
        if data[name].dtype == object and pd.api.types.infer_dtype(data[name]) != "string":
            try:
                pa.Schema.from_pandas(data[[name]])
            except pa.ArrowInvalid:
                data[name] = data[name].astype("string")
    table = pa.Table.from_pandas(data, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(
                i, field.with_type(pa.string()), table.column(i).cast(pa.string())
            )
    return table.append_column("geometry", _geometry_column(geoms, encode, wkb))


def _nulls(values: pa.Array) -> np.ndarray:
    return np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _geometry_column(geoms: np.ndarray, encode: np.ndarray, wkb: pa.Array | None) -> pa.Array:
    """WKB of every row: ``wkb`` where given, ``geoms`` encoded where ``encode``."""
    if wkb is None or encode.all():
        return pa.array(shapely.to_wkb(geoms), type=pa.binary())
    if not encode.any():
        return wkb
    fresh = np.full(len(geoms), None, dtype=object)
    fresh[encode] = shapely.to_wkb(geoms[encode])
    return pc.if_else(pa.array(encode), pa.array(fresh, type=pa.binary()), wkb)


def _geometry_type(frame: gpd.GeoDataFrame, multi: bool) -> str:
    """The layer geometry type pyogrio would declare for ``frame`` (multi: promoted)."""
    geoms = frame.geometry
    names = pd.Series(geoms.geom_type.unique()).dropna().tolist()
    if multi:
        names = sorted({n if n.startswith("Multi") else f"Multi{n}" for n in names})
    if len(names) != 1:
        return "Unknown"
    present = geoms[geoms.notna() & ~geoms.is_empty]
    return f"{names[0]} Z" if present.has_z.any() else str(names[0])


def _crs_text(frame: gpd.GeoDataFrame) -> str | None:
    if frame.crs is None:
        return None
    epsg = frame.crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else frame.crs.to_wkt("WKT1_GDAL")


@contextlib.contextmanager
def _no_sync_on_private_copy() -> Iterator[None]:
    """Let SQLite skip its per-transaction fsyncs while GDAL writes the working copy.

    Safe because the copy is private: a crash discards it, and the commit fsyncs
    it once before the atomic rename. It saves about a second per 1M features.
    """
    option = "OGR_SQLITE_SYNCHRONOUS"
    previous = pyogrio.get_gdal_config_option(option)
    pyogrio.set_gdal_config_options({option: "OFF"})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({option: previous})


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    if os.name == "nt":  # Windows cannot open a directory; its rename is durable once done
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_SQLITE_MAGIC = b"SQLite format 3\x00"


def check_twin_file(path: Path) -> None:
    """Fail unless ``path`` is a whole twin GeoPackage (cheap: header and ``twin_meta`` only).

    Catches a file that is not SQLite, a file truncated below the size its
    header declares, and a GeoPackage without the twin's tables.

    Raises
    ------
    TwinFileError
    """
    with open(path, "rb") as handle:
        head = handle.read(100)
    fix = f"restore it from a backup, or create a twin with Twin.create('{path}')"
    if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
        raise TwinFileError(f"{path} is not a twin file (not a GeoPackage, or empty): {fix}")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    size = path.stat().st_size
    if head[24:28] == head[92:96] and pages and size < pages * page_size:
        raise TwinFileError(f"{path} is truncated ({size} of {pages * page_size} bytes): {fix}")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)) as con:
            keys = {row[0] for row in con.execute("SELECT key FROM twin_meta")}
            con.execute("SELECT name FROM twin_layers LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        if "no such table" in str(exc):
            raise TwinFileError(
                f"{path} is a GeoPackage but not a twin (no {str(exc).split()[-1]} table): "
                "import its layers into a twin made with Twin.create()"
            ) from None
        raise TwinFileError(f"{path} is damaged ({exc}): {fix}") from None
    if "crs" not in keys:
        raise TwinFileError(f"{path} has a twin_meta table without a crs: {fix}")
