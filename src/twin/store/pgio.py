"""Moving frames in and out of PostgreSQL with COPY (CSV, geometries as hex EWKB).

A frame goes in as one ``COPY … FROM STDIN (FORMAT csv)`` stream written by
pandas (vectorised, no row inserts); a table comes out as one
``COPY (SELECT …) TO STDOUT`` stream parsed by :func:`pandas.read_csv` with
the dtypes the table's column types call for, so a layer read from PostGIS has
the same columns and dtypes as the same layer read from the GeoPackage.

Examples
--------
>>> import pandas as pd
>>> pg_type(pd.Series([1, 2]).dtype), pg_type(pd.Series(["a"]).dtype)
('bigint', 'text')
>>> print(ident("建筑 2024"))
"建筑 2024"
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely

from twin.errors import StorageError
from twin.store.relations import StoredSet

__all__ = [
    "GEOM",
    "NULL",
    "copy_frame",
    "copy_out",
    "csv_frame",
    "frame_from_csv",
    "ident",
    "layer_query",
    "pg_type",
    "promoted",
    "read_layer",
    "stored_sets",
    "wkb_from_hex",
]

#: The geometry column of every PostGIS layer table.
GEOM = "geom"
#: How COPY TO spells NULL in what the store reads back.
NULL = r"\N"
_NIBBLES = np.zeros(256, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLES[_c] = _NIBBLES[bytes([_c]).upper()[0]] = _i
_MULTI = {0: shapely.multipoints, 1: shapely.multilinestrings, 3: shapely.multipolygons}


def ident(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def pg_type(dtype: Any) -> str:
    """The PostgreSQL column type of a pandas dtype."""
    kind = getattr(dtype, "kind", "O")
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return (
            "smallint" if np.dtype(getattr(dtype, "numpy_dtype", dtype)).itemsize <= 2 else "bigint"
        )
    if pd.api.types.is_float_dtype(dtype):
        return "double precision"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "timestamptz"
    if kind == "M":
        return "timestamp"
    return "text"


def promoted(geoms: np.ndarray) -> np.ndarray:
    """Single parts made multi when any geometry is multi (as the GeoPackage store writes)."""
    types = shapely.get_type_id(geoms)
    if not np.isin(types, (4, 5, 6)).any():
        return geoms
    out = geoms.copy()
    for single, make in _MULTI.items():
        hit = np.flatnonzero(types == single)
        if len(hit):
            out[hit] = make(geoms[hit], indices=np.arange(len(hit)))
    return out


def csv_frame(frame: gpd.GeoDataFrame | pd.DataFrame, srid: int) -> bytes:
    """``frame`` as COPY CSV (no header), its geometry last as hex EWKB with ``srid``.

    Written by Arrow's C++ CSV writer: every value quoted, NULL an unquoted
    empty field (PostgreSQL's CSV default), so an empty string stays one.
    """
    columns: dict[str, pa.Array] = {}
    for column in frame.columns:
        if isinstance(frame, gpd.GeoDataFrame) and column == frame.geometry.name:
            continue
        columns[str(column)] = _arrow(frame[column])
    if isinstance(frame, gpd.GeoDataFrame):
        geoms = shapely.set_srid(promoted(np.asarray(frame.geometry.array)), srid)
        columns[GEOM] = pa.array(shapely.to_wkb(geoms, hex=True, include_srid=True))
    sink = pa.BufferOutputStream()
    options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    pacsv.write_csv(pa.table(columns), sink, options)
    return bytes(sink.getvalue().to_pybytes())


def _arrow(values: pd.Series) -> pa.Array:
    """One column as Arrow (NaN as null); text of anything Arrow cannot type."""
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        text = values.astype(object).where(values.isna(), values.astype(str))
        return pa.array(text, type=pa.string(), from_pandas=True)


def copy_frame(cursor: Any, table: str, columns: Sequence[str], payload: bytes) -> None:
    """COPY ``payload`` (from :func:`csv_frame`) into ``table``'s ``columns``."""
    names = ", ".join(ident(c) for c in columns)
    statement = f"COPY {ident(table)} ({names}) FROM STDIN (FORMAT csv)"
    with cursor.copy(statement.encode()) as copy:
        step = 1 << 22
        for start in range(0, len(payload), step):
            copy.write(payload[start : start + step])


_READ_DTYPES: dict[str, Any] = {
    "text": "str",
    "character varying": "str",
    "double precision": "float64",
    "real": "float64",
}
_INTS: dict[str, Any] = {"smallint": "int16", "integer": "int64", "bigint": "int64"}


def frame_from_csv(
    payload: bytes, columns: Sequence[tuple[str, str]], *, crs: Any, geometry: bool
) -> gpd.GeoDataFrame | pd.DataFrame:
    """Parse a COPY CSV stream of ``columns`` (name, PostgreSQL type), geometry last as hex WKB."""
    names = [name for name, _ in columns] + ([GEOM] if geometry else [])
    raw = pd.read_csv(
        io.BytesIO(payload),
        header=None,
        names=names,
        dtype=str,
        keep_default_na=False,
        na_values=[NULL],
        encoding="utf-8",
    )
    data = {name: _typed(raw[name], pg) for name, pg in columns}
    if not geometry:
        return pd.DataFrame(data, index=range(len(raw)))
    geoms = shapely.from_wkb(wkb_from_hex(raw[GEOM])) if len(raw) else np.empty(0, dtype=object)
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def wkb_from_hex(hexes: Any) -> np.ndarray:
    """Hex-encoded WKB (strings, None for NULL) as WKB bytes, decoded in bulk with numpy.

    :func:`shapely.from_wkb` reads hex too, but one string at a time through a
    text stream: twenty times slower than decoding here and reading bytes.

    Examples
    --------
    >>> wkb = wkb_from_hex(["0101000000000000000000F03F0000000000000040", None])
    >>> shapely.from_wkb(wkb)[0].wkt, wkb[1]
    ('POINT (1 2)', None)
    """
    text = pa.array(hexes, type=pa.large_string(), from_pandas=True)
    if isinstance(text, pa.ChunkedArray):  # pragma: no cover - pa.array gives one chunk
        text = text.combine_chunks()
    text = pa.concat_arrays([text]) if text.offset else text
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[: len(text) + 1]
    if len(text) == 0 or (offsets & 1).any():  # odd lengths are no hex WKB: let shapely say so
        return np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
    start, end = int(offsets[0]), int(offsets[-1])
    digits = _NIBBLES[np.frombuffer(text.buffers()[2], dtype=np.uint8)[start:end]]
    raw = (digits[0::2] << 4) | digits[1::2]
    halves = pa.py_buffer((offsets - start) // 2)
    binary = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(text), [None, halves, pa.py_buffer(raw)]
    )
    wkb = np.asarray(binary.to_numpy(zero_copy_only=False), dtype=object)
    wkb[text.is_null().to_numpy(zero_copy_only=False)] = None
    return wkb


def _typed(values: pd.Series, pg: str) -> Any:
    if pg in _READ_DTYPES:
        return values.astype(_READ_DTYPES[pg])
    if pg in _INTS:
        if values.isna().any():
            return values.astype("float64")
        return values.astype(_INTS[pg])
    if pg == "boolean":
        mapped = values.map({"t": True, "f": False})
        return mapped.astype(bool) if mapped.notna().all() else mapped.astype(object)
    if pg.startswith("timestamp"):
        return pd.to_datetime(values, utc=True, format="ISO8601").astype(
            pd.DatetimeTZDtype(unit="ms", tz="UTC")
        )
    return values.astype(object)


def read_layer(
    con: Any,
    table: str,
    types: list[tuple[str, str]],
    crs: Any,
    **options: Any,
) -> gpd.GeoDataFrame:
    """COPY a table out and parse it (see :func:`twin.store.pgio.frame_from_csv`)."""
    sql, params, fields = layer_query(table, types, **options)
    payload = copy_out(con, sql, params)
    return frame_from_csv(payload, fields, crs=crs, geometry=options.get("read_geometry", True))


def layer_query(
    table: str,
    types: list[tuple[str, str]],
    *,
    columns: list[str] | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    where: tuple[str, list[Any]] | None = None,
    max_features: int | None = None,
    read_geometry: bool = True,
    **ignored: Any,
) -> tuple[str, list[Any], list[tuple[str, str]]]:
    """The SELECT :func:`read_layer` copies out: its SQL, parameters and attribute columns.

    Examples
    --------
    >>> sql, params, fields = layer_query("b", [("uid", "text"), ("geom", "USER-DEFINED")],
    ...                                   where=("uid = ANY(%s)", [["x"]]))
    >>> print(sql)
    SELECT "uid", encode(ST_AsBinary(geom), 'hex') FROM "b" WHERE uid = ANY(%s) ORDER BY ctid
    >>> params, fields
    ([['x']], [('uid', 'text')])
    """
    if not types:
        raise StorageError(f"the twin has no table {table!r}")
    fields = [(n, t) for n, t in types if n != GEOM]
    if columns is not None:
        wanted = set(columns)
        fields = [(n, t) for n, t in fields if n in wanted]
    select = [_out(n, t) for n, t in fields]
    if read_geometry:
        select.append(f"encode(ST_AsBinary({GEOM}), 'hex')")
    clauses, params = [], []
    if bbox is not None:
        clauses.append(f"{GEOM} && ST_MakeEnvelope(%s, %s, %s, %s, ST_SRID({GEOM}))")
        params += [float(v) for v in bbox]
    if where is not None:
        clauses.append(where[0])
        params += list(where[1])
    sql = f"SELECT {', '.join(select) or '1'} FROM {ident(table)}"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY " + ("fid" if any(n == "fid" for n, _ in types) else "ctid")
    if max_features is not None:
        sql += f" LIMIT {int(max_features)}"
    return sql, params, fields


def copy_out(con: Any, sql: str, params: list[Any] | None = None) -> bytes:
    """The rows of a query as one COPY CSV stream (NULL spelled ``\\N``)."""
    import psycopg

    payload = bytearray()
    query = psycopg.ClientCursor(con).mogrify(sql, params) if params else sql
    with con.cursor() as cursor:
        statement = f"COPY ({query}) TO STDOUT (FORMAT csv, NULL '{NULL}')"
        with cursor.copy(statement.encode()) as copy:
            for block in copy:
                payload += block
    return bytes(payload)


def _out(name: str, pg: str) -> str:
    if pg.startswith("timestamp"):
        return f"""to_char({ident(name)} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
    return ident(name)


def stored_sets(con: Any) -> dict[str, StoredSet]:
    """Every row of ``twin_relation_sets`` by key."""
    rows = con.execute(
        b"SELECT set_id, relation, from_layer, to_layer, network, inputs, build_id, n_rows,"
        b" n_unrelated FROM twin_relation_sets ORDER BY set_id"
    ).fetchall()
    sets = [
        StoredSet(
            set_id=int(r[0]),
            relation=r[1],
            from_layer=r[2],
            to_layer=r[3],
            network=r[4],
            inputs=json.loads(r[5]),
            build_id=int(r[6]),
            n_rows=int(r[7]),
            n_unrelated=int(r[8]),
        )
        for r in rows
    ]
    return {s.key: s for s in sets}
