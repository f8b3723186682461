"""What a partitioned build needs from a GeoPackage: feature boxes, fids, and sets written in parts.

A partitioned build (:mod:`twin.partition`) assigns each feature to one tile
from its box in the layer's R-tree, reads tiles through GDAL's spatial filter,
and writes each tile's rows of a relation set as soon as they are computed. A
row's fid is still ``set_id << 32 | position`` (its position in the from
layer, in fid order), so a set written in parts is the same rows, row for row,
as a set written whole by :class:`~twin.store.relations.RelationWriter`.

Examples
--------
>>> import contextlib
>>> fid, box = feature_boxes(sample_twin_path, "buildings")
>>> len(fid) == len(layer_fids(sample_twin_path, "buildings")), box.shape[1]
(True, 4)
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyogrio

from twin.store import schema
from twin.store.gpkg import GpkgStore
from twin.store.relations import RelationRows

__all__ = [
    "Connection",
    "close_set",
    "con_path",
    "feature_boxes",
    "layer_fids",
    "open_set",
    "pack_parts",
    "put_packed",
    "put_part",
    "release_packed",
    "session_connection",
    "spill_sorts_to_file",
    "unboxed_fids",
]

#: The connection relation parts are written with (for callers' type hints).
Connection = sqlite3.Connection


def session_connection(session: object) -> sqlite3.Connection:
    """The SQLite connection a GeoPackage write session writes relations with.

    Raises
    ------
    UsageError
        When the session is not a GeoPackage's: a partitioned build reads tiles
        through the GeoPackage's R-tree.
    """
    from twin.errors import UsageError
    from twin.store.session import GpkgSession

    if not isinstance(session, GpkgSession):
        raise UsageError(
            "a partitioned build (tile_features= or engine='dask') needs a GeoPackage twin; "
            "build a PostGIS twin whole, or twin copy it to a GeoPackage first"
        )
    return session.relations_connection()


def spill_sorts_to_file(con: sqlite3.Connection) -> None:
    """Let SQLite's index sorts spill to a temporary file (a province's uids do not fit)."""
    con.execute("PRAGMA temp_store=FILE")


def con_path(path: Path) -> sqlite3.Connection:
    """A read-only connection to the twin at ``path`` (close it after use)."""
    return GpkgStore(path).connect()


def _rtree(con: sqlite3.Connection, layer: str) -> str | None:
    row = con.execute(
        "SELECT column_name FROM gpkg_geometry_columns WHERE table_name=?", (layer,)
    ).fetchone()
    if row is None:
        return None
    name = f"rtree_{layer}_{row[0]}"
    have = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
    ).fetchone()
    return name if have else None


def feature_boxes(path: Path, layer: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Fid and box (``minx, miny, maxx, maxy``, rounded outwards) of every feature in the R-tree.

    Read as Arrow columns (about 40 bytes a feature). Features with an empty or missing
    geometry have no box (see :func:`unboxed_fids`).

    Raises
    ------
    LookupError
        When the layer has no spatial index.
    """
    with contextlib.closing(con_path(path)) as con:
        rtree = _rtree(con, layer)
    if rtree is None:
        raise LookupError(f"{layer} has no spatial index")
    table = _arrow(path, f'SELECT id, minx, miny, maxx, maxy FROM "{rtree}"')
    columns = [table.column(i).to_numpy(zero_copy_only=False) for i in range(5)]
    return columns[0].astype(np.int64), np.column_stack(columns[1:]).astype(float)


def layer_fids(path: Path, layer: str) -> npt.NDArray[np.int64]:
    """Every fid of ``layer`` in order: a feature's position in the layer is its rank here."""
    table = _arrow(path, f'SELECT fid * 1 AS n FROM "{layer}" ORDER BY fid')
    return table.column(0).to_numpy(zero_copy_only=False).astype(np.int64)


def unboxed_fids(path: Path, layer: str) -> npt.NDArray[np.int64]:
    """Fids of the features the R-tree does not hold (empty or missing geometries)."""
    with contextlib.closing(con_path(path)) as con:
        rtree = _rtree(con, layer)
        sql = f'SELECT fid FROM "{layer}"'
        if rtree is not None:
            sql += f' WHERE fid NOT IN (SELECT id FROM "{rtree}")'
        return np.array([r[0] for r in con.execute(sql).fetchall()], dtype=np.int64)


def _arrow(path: Path, sql: str) -> pa.Table:
    _, table = pyogrio.read_arrow(path, sql=sql)
    return table


def open_set(
    con: sqlite3.Connection,
    key: tuple[str, str, str, str | None],
    *,
    inputs: Sequence[object],
    build_id: int,
) -> int:
    """Insert a set's row (counts filled by :func:`close_set`); returns its ``set_id``."""
    relation, from_layer, to_layer, network = key
    cursor = con.execute(
        "INSERT INTO twin_relation_sets (relation, from_layer, to_layer, network, inputs,"
        " build_id, n_rows, n_unrelated) VALUES (?, ?, ?, ?, ?, ?, 0, 0)",
        (relation, from_layer, to_layer, network, json.dumps(inputs), build_id),
    )
    return int(cursor.lastrowid or 0)


def put_part(
    con: sqlite3.Connection, set_id: int, positions: npt.NDArray[np.int64], rows: RelationRows
) -> None:
    """Write rows of a set at their positions in the from layer."""
    first = set_id << schema.SET_SHIFT
    columns = (
        (first + positions).tolist(),
        itertools.repeat(set_id),
        rows.from_uid,
        rows.to_uid.tolist(),
        rows.share.tolist(),
        rows.distance_m.tolist(),
        rows.n_candidates.tolist(),
    )
    con.executemany(
        "INSERT INTO twin_relations (fid, set_id, from_uid, to_uid, share, distance_m,"
        " n_candidates) VALUES (?, ?, ?, ?, ?, ?, ?)",
        zip(*columns, strict=False),
    )


def close_set(con: sqlite3.Connection, set_id: int, n_rows: int, n_unrelated: int) -> None:
    """Record a set's row counts once every part is written."""
    con.execute(
        "UPDATE twin_relation_sets SET n_rows=?, n_unrelated=? WHERE set_id=?",
        (n_rows, n_unrelated, set_id),
    )


# --------------------------------------------------------------------------- packed parts

#: The schema name a packed part is attached under on the writer's connection.
_PACKED = "twin_packed"
_PACKED_DDL = (
    "CREATE TABLE part (fid INTEGER PRIMARY KEY, from_uid TEXT NOT NULL, to_uid TEXT,"
    " share REAL, distance_m REAL, n_candidates INTEGER)"
)


def pack_parts(parts_: Iterable[tuple[int, npt.NDArray[np.int64], RelationRows]]) -> bytes:
    """A tile's rows as one small SQLite database image, built where the tile was computed.

    ``parts_`` holds ``(plan, positions, rows)``: each row is stored at fid
    ``plan << 32 | position``. Binding the rows (the Python side of an insert) happens
    here, on the worker; the writer copies the image into the twin in one
    ``INSERT … SELECT`` per set (:func:`put_packed`) that runs in SQLite alone. The
    image is one bytes object: sent between processes without pickling any row.
    Rows go in :data:`_PACK_ROWS` at a time (one statement binds them all), and a float
    column without any value is written as ``NULL`` in the statement, not bound row by
    row: about 40% less time than one bound row per statement.

    Examples
    --------
    >>> rows = RelationRows(["b.1", "b.2"], np.array(["p.1", None], dtype=object),
    ...                     np.array([1.0, np.nan]), np.array([np.nan, np.nan]),
    ...                     np.array([1, 0]))
    >>> image = pack_parts([(0, np.array([0, 1]), rows)])
    >>> isinstance(image, bytes) and image[:15] == b"SQLite format 3"
    True
    """
    con = sqlite3.connect(":memory:")
    try:
        con.execute(_PACKED_DDL)
        for plan, positions, rows in parts_:
            _pack_part(con, ((plan << schema.SET_SHIFT) + positions).tolist(), rows)
        con.commit()
        return con.serialize()
    finally:
        con.close()


#: Rows a packing statement inserts at once (6 values a row at most: under SQLite's
#: 32,766 bound values).
_PACK_ROWS = 1000


def _pack_part(con: sqlite3.Connection, fids: list[int], rows: RelationRows) -> None:
    """Insert one part's rows into the packing database, :data:`_PACK_ROWS` a statement."""
    columns: list[Sequence[object]] = [fids, rows.from_uid, rows.to_uid.tolist()]
    marks = ["?", "?", "?"]
    for values in (rows.share, rows.distance_m):
        if len(values) and np.isnan(values).all():
            marks.append("NULL")  # NaN binds as NULL too, as in the whole-layer writer
        else:
            marks.append("?")
            columns.append(values.tolist())
    columns.append(rows.n_candidates.tolist())
    marks.append("?")
    one, width, n = f"({', '.join(marks)})", len(columns), len(fids)
    flat = list(itertools.chain.from_iterable(zip(*columns, strict=True)))
    whole = n - n % _PACK_ROWS
    step = _PACK_ROWS * width
    con.executemany(
        f"INSERT INTO part VALUES {', '.join([one] * _PACK_ROWS)}",
        (flat[i : i + step] for i in range(0, whole * width, step)),
    )
    if n > whole:
        con.execute(
            f"INSERT INTO part VALUES {', '.join([one] * (n - whole))}", flat[whole * width :]
        )


def put_packed(con: sqlite3.Connection, image: bytes, set_ids: dict[int, int]) -> None:
    """Copy a :func:`pack_parts` image into ``twin_relations``: plan ``i``'s rows into set
    ``set_ids[i]`` at the same positions (one rowid-range ``INSERT … SELECT`` per set).

    The image is attached to ``con`` under one schema name for the whole build (a
    database cannot be detached inside the write transaction); call
    :func:`release_packed` once the last part is in.
    """
    if not con.execute(f"SELECT 1 FROM pragma_database_list WHERE name='{_PACKED}'").fetchone():
        con.execute(f"ATTACH ':memory:' AS {_PACKED}")
    con.deserialize(image, name=_PACKED)
    for plan, set_id in set_ids.items():
        low = plan << schema.SET_SHIFT
        shift = (set_id << schema.SET_SHIFT) - low
        con.execute(
            "INSERT INTO main.twin_relations (fid, set_id, from_uid, to_uid, share, distance_m,"
            f" n_candidates) SELECT fid + ?, ?, from_uid, to_uid, share, distance_m,"
            f" n_candidates FROM {_PACKED}.part WHERE fid BETWEEN ? AND ?",
            (shift, set_id, low, low + (1 << schema.SET_SHIFT) - 1),
        )


def release_packed(con: sqlite3.Connection) -> None:
    """Free the last packed image's memory (the schema stays attached until the commit)."""
    if con.execute(f"SELECT 1 FROM pragma_database_list WHERE name='{_PACKED}'").fetchone():
        con.deserialize(_empty_image(), name=_PACKED)


@functools.cache
def _empty_image() -> bytes:
    con = sqlite3.connect(":memory:")
    try:
        con.execute(_PACKED_DDL)
        return con.serialize()
    finally:
        con.close()
