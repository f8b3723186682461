"""A write transaction on a PostGIS twin: the session :meth:`PostgisStore.session` yields.

Everything happens in one PostgreSQL transaction that starts by taking the
twin's advisory lock (``pg_advisory_xact_lock``): a second writer of the same
twin waits for the first to commit, or gives up with :class:`TwinBusyError`
after the store's ``lock_timeout_s``. A layer is loaded into a fresh table with
binary COPY (:mod:`twin.store.pgcopy`; ``FREEZE``, as the table is new in this
transaction) and swapped in for the old one just before the commit, so readers
keep reading the old layer meanwhile and then see the new one whole. A
failure, or the process dying, rolls everything back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin.errors import StorageError, TwinBusyError, UsageError
from twin.settings import MAX_CHANGED_SHARE
from twin.store import pgcopy, pgschema, records, relations, schema
from twin.store.files import history_table
from twin.store.pgio import (
    GEOM,
    copy_frame,
    copy_out,
    csv_frame,
    ident,
    layer_query,
    pg_type,
    promoted,
    read_layer,
    stored_sets,
)
from twin.store.relations import RelationRows, StoredSet

if TYPE_CHECKING:
    from twin.store.postgis import PostgisStore

__all__ = ["PgRelationWriter", "PostgisSession", "delta_positions"]

#: Memory for the index builds of one write (PostgreSQL's default is 64MB).
_MAINTENANCE_MEM = "256MB"
_GEOMETRY_TYPES = {
    0: "Point",
    1: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
}


class _Qmark:
    """A psycopg connection that takes the ``?`` placeholders of :mod:`twin.store.records`."""

    def __init__(self, con: Any) -> None:
        self.con = con

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.con.execute(sql.replace("?", "%s").encode(), tuple(params))


class PostgisSession:
    """The write side of a PostGIS twin: one transaction, under the twin's advisory lock."""

    def __init__(self, store: PostgisStore, con: Any) -> None:
        self.store = store
        self.con = con

    # -- the transaction ----------------------------------------------------------
    def lock(self) -> None:
        """Take the twin's writer lock, waiting up to the store's ``lock_timeout_s``."""
        import psycopg

        timeout_ms = max(int(self.store.lock_timeout_s * 1000), 1)
        self.con.execute(f"SET LOCAL lock_timeout = {timeout_ms}".encode())
        try:
            self.con.execute(
                b"SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"citytwin:{self.store.schema}",),
            )
        except psycopg.errors.LockNotAvailable:
            self.con.rollback()
            raise TwinBusyError(
                f"{self.store.location} is being written by another process "
                f"(waited {self.store.lock_timeout_s:g} s); try again later"
            ) from None
        self.con.execute(b"SET LOCAL lock_timeout = 0")
        # index builds (primary keys, GiST, relation uids) sort in memory
        self.con.execute(f"SET LOCAL maintenance_work_mem = '{_MAINTENANCE_MEM}'".encode())

    def commit(self) -> None:
        """Bump the twin's version, tell listeners, commit."""
        self.con.execute(f"UPDATE {pgschema.VERSION_TABLE} SET n = n + 1".encode())
        self.con.execute(b"SELECT pg_notify('citytwin', %s)", (self.store.schema,))
        self.con.commit()

    def create_schema(self, meta: dict[str, str]) -> None:
        """Replace the schema with an empty twin holding ``meta``."""
        schema_name = ident(self.store.schema)
        self.con.execute(b"CREATE EXTENSION IF NOT EXISTS postgis SCHEMA public")
        self.con.execute(f"DROP SCHEMA IF EXISTS {schema_name} CASCADE".encode())
        self.con.execute(f"CREATE SCHEMA {schema_name}".encode())
        for ddl in (*pgschema.TABLES.values(), *pgschema.INDEXES):
            self.con.execute(ddl.encode())
        for key, value in meta.items():
            self.con.execute(b"INSERT INTO twin_meta (key, value) VALUES (%s, %s)", (key, value))

    # -- the StoreSession protocol ------------------------------------------------
    def next_time(self) -> pd.Timestamp:
        """Now (milliseconds), strictly after the twin's previous import."""
        now = pd.Timestamp.now(tz="UTC").floor("ms")
        last = self.con.execute(b"SELECT max(time) FROM twin_imports").fetchone()[0]
        if last is not None and now <= pd.Timestamp(last):
            now = pd.Timestamp(last) + pd.Timedelta(milliseconds=1)
        return now

    def next_import_id(self) -> int:
        last = self.con.execute(b"SELECT max(import_id) FROM twin_imports").fetchone()[0]
        return int(last or 0) + 1

    def has_layer(self, layer: str) -> bool:
        row = self.con.execute(b"SELECT 1 FROM twin_layers WHERE name=%s", (layer,)).fetchone()
        return row is not None

    def read_table(self, table: str, **kwargs: Any) -> gpd.GeoDataFrame:
        """A table as this transaction sees it."""
        types = self._types(table)
        return read_layer(self.con, table, types, self._crs(), **kwargs)

    def write_table(self, table: str, frame: gpd.GeoDataFrame) -> None:
        """Replace a layer table: COPY into a new table, then swap it in."""
        stage = f"{table}__load"
        self._create(stage, frame, geometry_type=_geometry_type(frame))
        self._copy(stage, frame, fresh=True)
        self.con.execute(f"DROP TABLE IF EXISTS {ident(table)} CASCADE".encode())
        self.con.execute(f"ALTER TABLE {ident(stage)} RENAME TO {ident(table)}".encode())
        self._index(table, unique=True)

    def append_history(self, layer: str, retired: gpd.GeoDataFrame) -> None:
        """Keep replaced and removed versions in the layer's history table."""
        table = history_table(layer)
        have = [name for name, _ in self._types(table)]
        if not have:
            self._create(table, retired, geometry_type="Geometry")
            self._index(table, unique=False)
        else:
            for column in retired.columns:
                if column not in have and column != retired.geometry.name:
                    kind = pg_type(retired[column].dtype)
                    self.con.execute(
                        f"ALTER TABLE {ident(table)} ADD COLUMN {ident(column)} {kind}".encode()
                    )
        self._copy(table, retired)

    def record_import(self, spec: Any, report: Any, kind: Any, frame: Any, changes: Any) -> None:
        """Provenance, change set and the layer's row of one import."""
        con = cast(Any, _Qmark(self.con))
        records.record_import(con, spec, report, initial=changes is None)
        if changes is not None:
            rows = pd.DataFrame(
                [
                    (report.import_id, spec.layer, str(uid), change)
                    for change, uids in (
                        ("added", changes.added),
                        ("changed", changes.changed),
                        ("removed", changes.removed),
                    )
                    for uid in uids
                ],
                columns=["import_id", "layer", "uid", "change"],
            )
            with self.con.cursor() as cursor:
                copy_frame(cursor, "twin_changes", list(rows.columns), csv_frame(rows, 0))
        records.record_layer(con, spec, kind, frame, report)

    def record_delta_rows(
        self, layer: str, import_id: int, current: pd.DataFrame, frame: pd.DataFrame, changes: Any
    ) -> None:
        """Record what every reader of this re-import would otherwise read row by row:
        the added and changed rows as :meth:`PostgisStore.read_features` reads them, and
        where each row of the layer comes from (``pgschema.DELTA_ROWS``). Call after the
        layer is written and before :meth:`record_import` (which moves ``last_import``)."""
        for ddl in pgschema.DELTA_ROWS:
            self.con.execute(ddl.encode())
        base = self.con.execute(
            b"SELECT last_import FROM twin_layers WHERE name=%s", (layer,)
        ).fetchone()
        self.con.execute(b"DELETE FROM twin_delta_rows WHERE layer=%s", (layer,))
        if base is None or base[0] is None:
            return
        read = [str(u) for u in (*changes.added, *changes.changed)]
        if len(read) > MAX_CHANGED_SHARE * len(frame):  # readers read such a layer whole
            return
        if _order_kept(current["uid"], frame["uid"], changes):
            positions = delta_positions(current["uid"], frame["uid"], read)
        else:  # a reader reads the stored order (see twin.store.order)
            positions = np.empty(0, dtype=np.int64)
        types = self._types(layer)
        sql, params, _ = layer_query(layer, types, where=("uid = ANY(%s)", [read]))
        payload = copy_out(self.con, sql, params)
        self.con.execute(
            b"INSERT INTO twin_delta_rows (layer, import_id, base_import, columns, rows, positions)"
            b" VALUES (%s, %s, %s, %s, %s, %s)",
            (
                layer,
                int(import_id),
                int(base[0]),
                json.dumps(types),
                payload,
                positions.astype("<i8").tobytes(),
            ),
        )

    def record_raster_import(self, row: Mapping[str, Any]) -> None:
        """Raster layers live beside a GeoPackage twin only (see :func:`twin.raster.raster_dir`)."""
        raise UsageError("raster layers live beside a GeoPackage twin, not in PostGIS")

    def set_meta(self, key: str, value: str) -> None:
        schema.set_meta(cast(Any, _Qmark(self.con)), key, value)

    def replace_rows(self, table: str, rows: pd.DataFrame) -> None:
        """Replace every row of a bookkeeping table with COPY (copying a twin)."""
        self.con.execute(f"DELETE FROM {ident(table)}".encode())
        if rows.empty:
            return
        types = dict(self._types(table))
        typed = rows.copy()
        for column in rows.columns:
            if types.get(column) == "bigint":
                typed[column] = pd.to_numeric(rows[column]).astype("Int64")
        with self.con.cursor() as cursor:
            copy_frame(cursor, table, list(typed.columns), csv_frame(typed, 0))
        for column, _default in self.con.execute(
            b"SELECT column_name, column_default FROM information_schema.columns"
            b" WHERE table_schema=%s AND table_name=%s AND column_default LIKE 'nextval%%'",
            (self.store.schema, table),
        ).fetchall():
            if column in rows.columns:
                self.con.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                    f" greatest(max({ident(column)}), 1)) FROM {ident(table)}".encode()
                )

    # -- relations (twin build) -----------------------------------------------
    def prepare_relations(self) -> bool:
        """The relation tables exist from the start: nothing to upgrade."""
        return False

    def relation_sets(self) -> dict[str, StoredSet]:
        return stored_sets(self.con)

    def relation_writer(self, *, bulk: bool) -> PgRelationWriter:
        return PgRelationWriter(self.con, bulk=bulk)

    def record_build(self, time: str, inputs: Mapping[str, object]) -> int:
        row = self.con.execute(
            b"INSERT INTO twin_builds (time, inputs, report) VALUES (%s, %s, '{}')"
            b" RETURNING build_id",
            (time, json.dumps(inputs, ensure_ascii=False)),
        ).fetchone()
        return int(row[0])

    def set_build_report(self, build_id: int, report: Mapping[str, object]) -> None:
        self.con.execute(
            b"UPDATE twin_builds SET report=%s WHERE build_id=%s",
            (json.dumps(report, ensure_ascii=False), build_id),
        )

    # -- helpers -------------------------------------------------------------------
    def _types(self, table: str) -> list[tuple[str, str]]:
        rows = self.con.execute(
            b"SELECT column_name, data_type FROM information_schema.columns"
            b" WHERE table_schema=%s AND table_name=%s ORDER BY ordinal_position",
            (self.store.schema, table),
        ).fetchall()
        return [(str(a), str(b)) for a, b in rows]

    def _crs(self) -> Any:
        row = self.con.execute(b"SELECT value FROM twin_meta WHERE key='crs'").fetchone()
        return None if row is None or row[0] == "auto" else row[0]

    def _srid(self, frame: gpd.GeoDataFrame) -> int:
        return int(frame.crs.to_epsg() or 0) if frame.crs is not None else 0

    def _create(self, table: str, frame: gpd.GeoDataFrame, *, geometry_type: str) -> None:
        columns = [
            f"{ident(c)} {pg_type(frame[c].dtype)}"
            for c in frame.columns
            if c != frame.geometry.name
        ]
        columns.append(f"{GEOM} geometry({geometry_type}, {self._srid(frame)})")
        self.con.execute(f"DROP TABLE IF EXISTS {ident(table)}".encode())
        self.con.execute(f"CREATE TABLE {ident(table)} ({', '.join(columns)})".encode())

    def _copy(self, table: str, frame: gpd.GeoDataFrame, *, fresh: bool = False) -> None:
        """COPY ``frame`` into ``table``: binary when every column encodes as the table's
        type, else CSV; ``fresh`` (a table made in this transaction) loads it frozen."""
        names = [c for c in frame.columns if c != frame.geometry.name]
        types = dict(self._types(table))
        rows = pd.DataFrame({c: frame[c] for c in names}, index=frame.index)
        rows[GEOM] = promoted(np.asarray(frame.geometry.array))
        column_types = [types.get(str(c), "text") for c in rows.columns]
        binary = pgcopy.encodable(rows, column_types)
        columns = ", ".join(ident(str(c)) for c in rows.columns)
        freeze = ", FREEZE" if fresh else ""
        statement = f"COPY {ident(table)} ({columns}) FROM STDIN (FORMAT binary{freeze})"
        with self.con.cursor() as cursor:
            try:
                if binary:
                    pgcopy.copy_binary(cursor, statement, pgcopy.binary_batches(rows, column_types))
                else:
                    payload = csv_frame(frame, self._srid(frame))
                    copy_frame(cursor, table, list(rows.columns), payload)
            except Exception as exc:
                raise StorageError(
                    f"cannot load {table} into {self.store.location}: {exc}"
                ) from exc

    def _index(self, table: str, *, unique: bool) -> None:
        name = ident(table)
        if unique:  # a layer: as-of reads keep most rows, a valid_from index would not serve
            self.con.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (uid)".encode())
        else:  # a history: one feature's versions, and the versions valid at a moment
            self.con.execute(f"CREATE INDEX ON {name} (uid)".encode())
            self.con.execute(f"CREATE INDEX ON {name} (valid_to)".encode())
            self.con.execute(f"CREATE INDEX ON {name} (valid_from)".encode())
        self.con.execute(f"CREATE INDEX ON {name} USING gist ({GEOM})".encode())
        self.con.execute(f"ANALYZE {name}".encode())


def _geometry_type(frame: gpd.GeoDataFrame) -> str:
    types = np.unique(shapely.get_type_id(promoted(np.asarray(frame.geometry.array))))
    types = types[types >= 0]
    return _GEOMETRY_TYPES.get(int(types[0]), "Geometry") if len(types) == 1 else "Geometry"


class PgRelationWriter(relations.BaseRelationWriter):
    """Replaces relation sets in the transaction (rows loaded by binary COPY).

    A bulk write (most of the table rewritten, as by ``twin build --force``)
    does not delete millions of rows and then add as many beside them: it
    loads a new table (``FREEZE``, no indexes), copies the kept sets' rows
    into it, indexes it once and swaps it in for the old one in
    :meth:`finish`, as a layer is swapped in. Other sessions read the old
    rows until the commit.
    """

    mark = "%s"
    _TYPES = ("bigint", "bigint", "text", "text", "double precision", "double precision", "bigint")
    _LOAD = "twin_relations__load"

    def __init__(self, con: Any, *, bulk: bool) -> None:
        self.con = con
        self.bulk = bulk
        self.table = self._LOAD if bulk else "twin_relations"
        self.added: list[int] = []
        if bulk:
            self._run(f"DROP TABLE IF EXISTS {self._LOAD}")
            self._run(f"CREATE TABLE {self._LOAD} (LIKE twin_relations INCLUDING DEFAULTS)")

    def drop(self, sets: Sequence[StoredSet]) -> None:
        if not self.bulk:
            super().drop(sets)
            return
        for old in sets:  # their rows are left behind with the old table
            self._run("DELETE FROM twin_relation_sets WHERE set_id=%s", (old.set_id,))

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.con.execute(sql.encode(), tuple(params))

    def _insert_set(self, values: tuple[Any, ...]) -> int:
        sql = relations.insert_set_sql(self.mark) + " RETURNING set_id"
        self.added.append(int(self._run(sql, values).fetchone()[0]))
        return self.added[-1]

    def _insert_rows(self, set_id: int, first: int, rows: RelationRows) -> None:
        frame = pd.DataFrame(
            {
                "fid": np.arange(first, first + len(rows), dtype=np.int64),
                "set_id": np.full(len(rows), set_id, dtype=np.int64),
                "from_uid": pd.Series(rows.from_uid, dtype=object),
                "to_uid": pd.Series(rows.to_uid, dtype=object),
                "share": rows.share,
                "distance_m": rows.distance_m,
                "n_candidates": rows.n_candidates,
            }
        )
        columns = ", ".join(relations.ROW_COLUMNS)
        freeze = ", FREEZE" if self.bulk else ""  # the load table is new in this transaction
        statement = f"COPY {self.table} ({columns}) FROM STDIN (FORMAT binary{freeze})"
        with self.con.cursor() as cursor:
            pgcopy.copy_binary(cursor, statement, pgcopy.binary_batches(frame, self._TYPES))

    def finish(self) -> None:
        if self.bulk:
            self._swap()
            self.bulk = False
        self.con.execute(b"ANALYZE twin_relations")

    def _swap(self) -> None:
        """Keep the sets not replaced, index the new table, put it in the old one's place."""
        columns = ", ".join(relations.ROW_COLUMNS)
        kept = self._run(
            "SELECT set_id FROM twin_relation_sets WHERE NOT (set_id = ANY(%s)) ORDER BY set_id",
            (self.added,),
        ).fetchall()
        for (set_id,) in kept:  # one primary-key range each
            first = int(set_id) << schema.SET_SHIFT
            self._run(
                f"INSERT INTO {self._LOAD} ({columns}) SELECT {columns} FROM twin_relations"
                " WHERE fid BETWEEN %s AND %s ORDER BY fid",
                (first, first + (1 << schema.SET_SHIFT) - 1),
            )
        self._run("DROP VIEW twin_relation_rows")
        self._run("DROP TABLE twin_relations")  # fails loudly if anything else depends on it
        self._run(f"ALTER TABLE {self._LOAD} RENAME TO twin_relations")
        self._run("ALTER TABLE twin_relations ADD PRIMARY KEY (fid)")
        for ddl in schema.RELATION_INDEXES.values():
            self._run(ddl)
        self._run(pgschema.RELATION_VIEW)


def delta_positions(old: Any, new: Any, read: Any) -> np.ndarray:
    """For each uid of ``new``, its row in ``old`` followed by the rows of ``new`` whose
    uid is in ``read`` (in their order in ``new``): how a reader holding ``old`` makes ``new``.

    Examples
    --------
    >>> delta_positions(["a", "b", "c"], ["c", "a", "d", "b"], ["b", "d"]).tolist()
    [2, 0, 3, 4]
    """
    uids = pd.Index(np.asarray(new, dtype=object))
    is_read = np.asarray(uids.isin(list(read)), dtype=bool)
    positions = pd.Index(np.asarray(old, dtype=object)).get_indexer(uids).astype(np.int64)
    positions[is_read] = len(old) + np.arange(int(is_read.sum()), dtype=np.int64)
    if (positions < 0).any():
        raise StorageError("a feature of the new layer is neither in the old one nor read")
    return positions


def _order_kept(old: Any, new: Any, changes: Any) -> bool:
    """Whether ``new`` is ``old`` less the removed uids plus the added ones at the end, in
    the order the change set lists them: the order :func:`twin.query.delta.predicted` gives."""
    old_uids = np.asarray(old, dtype=object)
    kept = old_uids[~pd.Index(old_uids).isin(list(changes.removed))]
    expected = np.concatenate([kept, np.asarray(changes.added, dtype=object)])
    return bool(np.array_equal(expected, np.asarray(new, dtype=object)))
