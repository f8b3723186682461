"""A twin in PostgreSQL + PostGIS: one schema per twin, the same tables as the GeoPackage.

A twin is named by a URL, ``postgresql://user@host:port/db?schema=chengdu``.
Readers use one autocommit connection; a write is one transaction
(:class:`~twin.store.pgsession.PostgisSession`) that first takes a
``pg_advisory_xact_lock`` on the twin, so writers of one twin queue up and a
reader sees the twin before or after a commit, never half of one. Layers are
loaded with COPY, never row by row.

Examples
--------
>>> parse_url("postgresql://analyst@db.local:5433/cim?schema=chengdu")
('postgresql://analyst@db.local:5433/cim', 'chengdu')
>>> is_url("postgresql://db/cim?schema=x"), is_url("city.gpkg")
(True, False)
>>> from twin.store.base import TwinStore
>>> isinstance(PostgisStore("postgresql://db/cim?schema=x"), TwinStore)  # no connection yet
True
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyproj

from twin.errors import (
    BuildNeeded,
    BuildNeededError,
    DatabaseUnavailableError,
    TwinFileError,
    TwinNotFoundError,
    UsageError,
)
from twin.store import pgschema
from twin.store.pgio import GEOM, frame_from_csv, ident, read_layer, stored_sets
from twin.store.pgsession import PostgisSession
from twin.store.relations import COLUMNS, StoredSet

__all__ = ["PostgisStore", "is_url", "parse_url"]

_SCHEMES = ("postgresql://", "postgres://")
_LOCK_TIMEOUT_S = 600.0


def is_url(name: object) -> bool:
    """Whether a twin name is a PostgreSQL URL (else it is a GeoPackage path).

    Examples
    --------
    >>> is_url("postgresql://analyst@localhost/cim?schema=chengdu"), is_url("city.twin.gpkg")
    (True, False)
    """
    return isinstance(name, str) and name.startswith(_SCHEMES)


def parse_url(url: str) -> tuple[str, str]:
    """Split a twin URL into the connection URL and the twin's schema."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    schemas = query.pop("schema", [])
    if len(schemas) != 1 or not schemas[0]:
        raise UsageError(
            f"{url} names no twin: add its schema, e.g. "
            "postgresql://user@host:5432/db?schema=chengdu"
        )
    # %20, not "+", for spaces: libpq decodes percent escapes only (options=-c%20a=b)
    rest = urllib.parse.urlencode(
        {k: v[-1] for k, v in query.items()}, quote_via=urllib.parse.quote
    )
    return urllib.parse.urlunsplit(parts._replace(query=rest)), schemas[0]


class PostgisStore:
    """Reads and writes one twin held in a PostGIS schema.

    Parameters
    ----------
    url : str
        ``postgresql://user@host:port/db?schema=NAME``.
    lock_timeout_s : float, default 600
        How long a writer waits for another writer of the same twin.

    Examples
    --------
    Nothing connects until the store is used; a password never shows:

    >>> store = PostgisStore("postgresql://analyst:secret@localhost:5432/cim?schema=chengdu")
    >>> store.schema, store.location
    ('chengdu', 'postgresql://analyst:***@localhost:5432/cim?schema=chengdu')
    """

    def __init__(self, url: str, *, lock_timeout_s: float = _LOCK_TIMEOUT_S) -> None:
        self.url = url
        self.conninfo, self.schema = parse_url(url)
        self.path = Path(self.schema)  # for messages that name the twin by its file name
        self.lock_timeout_s = lock_timeout_s
        self._con: Any = None
        self._guard = threading.RLock()

    def __repr__(self) -> str:
        return f"PostgisStore({self.location!r})"

    @property
    def location(self) -> str:
        """The twin's URL without a password."""
        parts = urllib.parse.urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    # -- connections -------------------------------------------------------------
    def connect(self, *, autocommit: bool = True) -> Any:
        """A new connection with the twin's schema first on the search path, times in UTC."""
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        # Settings in the URL (connect_timeout=, options=-c statement_timeout=…) are kept.
        given = conninfo_to_dict(self.conninfo)
        options = f"-c search_path={ident(self.schema)},public -c TimeZone=UTC"
        options = f"{given.get('options') or ''} {options}".strip()
        timeout = given.get("connect_timeout") or 10
        try:
            return psycopg.connect(
                self.conninfo, autocommit=autocommit, options=options, connect_timeout=timeout
            )
        except psycopg.OperationalError as exc:
            reason = " ".join(str(exc).split())
            raise DatabaseUnavailableError(
                f"cannot reach the twin database {self.location} ({reason}): "
                "check the URL and that PostgreSQL runs"
            ) from None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Any]:
        """The shared read connection (reopened once when the server dropped it)."""
        import psycopg

        with self._guard:
            if self._con is None or self._con.closed or self._con.broken:
                self._con = self.connect()
            try:
                yield self._con
            except psycopg.OperationalError as exc:
                self._con.close()
                self._con = None
                reason = " ".join(str(exc).split())
                raise DatabaseUnavailableError(
                    f"lost the twin database {self.location} ({reason}); try again shortly"
                ) from None

    def close(self) -> None:
        """Close the read connection."""
        with self._guard:
            if self._con is not None:
                self._con.close()
                self._con = None

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one read query; its rows."""
        with self._reading() as con:
            return list(con.execute(sql.encode(), params).fetchall())

    def frame(self, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
        """Run one read query; a DataFrame with its columns."""
        with self._reading() as con:
            cursor = con.execute(sql.encode(), params)
            names = [c.name for c in cursor.description or []]
            return pd.DataFrame(cursor.fetchall(), columns=names)

    # -- reading ---------------------------------------------------------------
    def exists(self) -> bool:
        """Whether the schema holds a twin."""
        found = self.rows(
            "SELECT 1 FROM information_schema.tables WHERE table_schema=%s AND table_name="
            "'twin_meta'",
            (self.schema,),
        )
        return bool(found)

    def require(self) -> None:
        """Raise :class:`TwinNotFoundError` unless the schema holds a twin."""
        if not self.exists():
            raise TwinNotFoundError(
                f"no twin at {self.location}: create one with Twin.create('{self.location}')"
            )

    def check(self) -> None:
        """Fail unless the schema holds a twin with a CRS setting."""
        if "crs" not in self.meta():
            raise TwinFileError(f"{self.location} has a twin_meta table without a crs")

    def version(self) -> tuple[int, int, int]:
        """``(0, 0, commits)``: every commit changes it."""
        return (0, 0, int(self.rows(f"SELECT n FROM {pgschema.VERSION_TABLE}")[0][0]))

    def meta(self) -> dict[str, str]:
        """The twin's settings (``twin_meta``)."""
        return {k: v for k, v in self.rows("SELECT key, value FROM twin_meta ORDER BY key")}

    def layer_rows(self, name: str | None = None) -> pd.DataFrame:
        """Rows of ``twin_layers`` (one layer's, or every layer's in creation order)."""
        if name is not None:
            return self.frame("SELECT * FROM twin_layers WHERE name=%s", (name,))
        return self.frame("SELECT * FROM twin_layers ORDER BY created")

    def import_rows(self, layer: str | None = None, import_id: int | None = None) -> pd.DataFrame:
        """Rows of ``twin_imports`` (provenance), oldest first; one layer's or one import."""
        sql, params = "SELECT * FROM twin_imports", tuple[Any, ...]()
        if layer is not None:
            sql, params = sql + " WHERE layer=%s", (layer,)
        elif import_id is not None:
            sql, params = sql + " WHERE import_id=%s", (int(import_id),)
        return self.frame(sql + " ORDER BY import_id", params)

    def change_rows(self, import_id: int) -> pd.DataFrame:
        """The listed changes of one import: ``uid`` and ``change``, in order."""
        return self.frame(
            "SELECT uid, change FROM twin_changes WHERE import_id=%s ORDER BY seq",
            (int(import_id),),
        )

    def layer_changes(self, layer: str, after_import: int) -> pd.DataFrame:
        """The listed changes of ``layer`` by imports after ``after_import``.

        Columns ``import_id``, ``uid``, ``change``; oldest import first.
        """
        frame = self.frame(
            "SELECT import_id, uid, change FROM twin_changes WHERE layer=%s AND import_id>%s"
            " ORDER BY import_id, seq",
            (layer, int(after_import)),
        )
        if frame.empty:
            return pd.DataFrame({"import_id": [], "uid": [], "change": []})
        return frame

    def uid_order(self, table: str) -> pd.Index:
        """Every ``uid`` of a table in the order :meth:`read_table` returns its rows.

        Fetched as two values, the uids' UTF-8 bytes end to end and their
        lengths, which become one Arrow string array without a copy: a COPY
        stream would hand them over one row at a time (seconds at a million).
        """
        order = "fid" if "fid" in self.fields(table) else "ctid"
        sql = (
            f"SELECT string_agg(convert_to(uid, 'UTF8'), ''::bytea ORDER BY {order}),"
            f" string_agg(int4send(octet_length(convert_to(uid, 'UTF8'))), ''::bytea"
            f" ORDER BY {order}) FROM {ident(table)}"
        )
        with self._reading() as con, con.transaction():
            con.execute(b"SET LOCAL work_mem = '256MB'")  # the sort by row in memory, not on disk
            data, lengths = con.cursor(binary=True).execute(sql.encode()).fetchone()
        if data is None:
            return pd.Index([], dtype="str", name="uid")
        sizes = np.frombuffer(bytes(lengths), dtype=">i4").astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        array = pa.LargeStringArray.from_buffers(
            len(sizes), pa.py_buffer(offsets), pa.py_buffer(bytes(data))
        )
        return pd.Index(pd.array(array, dtype="str"), name="uid")

    def read_features(self, table: str, uids: Any) -> gpd.GeoDataFrame:
        """The rows of ``table`` whose ``uid`` is in ``uids``, as :meth:`read_table` reads them."""
        return self.read_table(table, where=("uid = ANY(%s)", [[str(u) for u in uids]]))

    def delta_rows(
        self, table: str, import_id: int, base_import: int
    ) -> tuple[gpd.GeoDataFrame, np.ndarray] | None:
        """The rows import ``import_id`` added or changed in ``table``, as its importer
        read them (:meth:`read_features` of them), and where each row of the layer now
        comes from: its row at import ``base_import``, or ``len(that layer) + i`` for
        row ``i`` of these (see ``pgschema.DELTA_ROWS``). None when not recorded for
        that pair (the layer's last import only; a twin copied or made before them), or
        the table's columns changed since. One value read: no per-row work in PostgreSQL."""
        import psycopg

        params = (table, int(import_id), int(base_import))
        sql = b"SELECT columns, rows, positions FROM twin_delta_rows"
        sql += b" WHERE layer=%s AND import_id=%s AND base_import=%s"
        try:
            with self._reading() as con:  # binary: the bytes as stored, no hex both ways
                cursor = con.execute(sql, params, binary=True)
                found = cursor.fetchall()
        except psycopg.errors.UndefinedTable:
            return None
        if not found:
            return None
        types = self.column_types(table)
        if [list(t) for t in types] != json.loads(found[0][0]):
            return None  # the table's columns changed since: read the rows
        fields = [(n, t) for n, t in types if n != GEOM]
        frame = frame_from_csv(bytes(found[0][1]), fields, crs=self.crs(), geometry=True)
        positions = np.frombuffer(bytes(found[0][2]), dtype="<i8").astype(np.intp)
        return frame, positions

    def tables(self) -> set[str]:
        """Every table and view of the twin's schema."""
        rows = self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema=%s",
            (self.schema,),
        )
        return {r[0] for r in rows} - {pgschema.VERSION_TABLE}

    def column_types(self, table: str) -> list[tuple[str, str]]:
        """``(name, type)`` of a table's columns in order (geometry included)."""
        rows = self.rows(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema=%s AND table_name=%s ORDER BY ordinal_position",
            (self.schema, table),
        )
        return [(str(a), str(b)) for a, b in rows]

    def fields(self, table: str) -> list[str]:
        """The attribute columns of a table (geometry excluded)."""
        return [name for name, pg in self.column_types(table) if name != GEOM]

    def crs(self) -> pyproj.CRS | None:
        text = self.meta().get("crs", "auto")
        return None if text == "auto" else pyproj.CRS.from_user_input(text)

    def read_table(self, table: str, **kwargs: Any) -> gpd.GeoDataFrame:
        """A layer or history table as a GeoDataFrame (``columns``, ``bbox``,
        ``max_features``, ``read_geometry`` as pyogrio takes them)."""
        types, crs = self.column_types(table), self.crs()
        with self._reading() as con:
            return read_layer(con, table, types, crs, **kwargs)

    def read_valid(
        self, table: str, at: str, *, history: bool = False, **kwargs: Any
    ) -> gpd.GeoDataFrame:
        """Versions valid at ``at``: current rows started by then or, with ``history``,
        replaced rows that were valid then."""
        where, params = "valid_from <= %s::timestamptz", [at]
        if history:
            where, params = where + " AND valid_to > %s::timestamptz", [at, at]
        return self.read_table(table, where=(where, params), **kwargs)

    def read_started(self, table: str, at: str) -> pd.Series:
        """The uids of the versions of ``table`` that started at ``at``."""
        rows = self.rows(
            f"SELECT uid FROM {ident(table)} WHERE valid_from = %s::timestamptz ORDER BY ctid",
            (at,),
        )
        return pd.Series([r[0] for r in rows], dtype="str", name="uid")

    def read_uid(self, table: str, uid: str | None) -> gpd.GeoDataFrame:
        """The rows of ``table`` with ``uid`` (every row when ``uid`` is None)."""
        if uid is None:
            return self.read_table(table)
        return self.read_table(table, where=("uid = %s", [uid]))

    def column(self, table: str, column: str) -> pd.Series | None:
        """One attribute column of a table by uid (None when the table has no such column)."""
        if column not in self.fields(table):
            return None
        rows = self.rows(f"SELECT uid, {ident(column)} FROM {ident(table)} ORDER BY ctid")
        uids = np.array([r[0] for r in rows], dtype=object)
        return pd.Series([r[1] for r in rows], index=uids, name=column)

    def distinct(self, table: str, column: str) -> list[str]:
        """The distinct non-null values of one column, as sorted text."""
        rows = self.rows(
            f"SELECT DISTINCT {ident(column)} FROM {ident(table)} WHERE {ident(column)} IS NOT NULL"
        )
        return sorted(str(r[0]) for r in rows)

    def read_wkb(self, table: str, columns: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """A table's geometries as WKB bytes and some columns, as object arrays.

        Fetched in binary (bytea as bytes, decoded by psycopg's C loaders):
        several times faster than a COPY stream, which psycopg hands over one
        row at a time.
        """
        names = ", ".join(ident(c) for c in columns)
        sql = f"SELECT {names}, ST_AsBinary({GEOM}) FROM {ident(table)} ORDER BY ctid"
        with self._reading() as con:
            rows = con.cursor(binary=True).execute(sql.encode()).fetchall()
        values = list(zip(*rows, strict=True)) or [()] * (len(columns) + 1)
        arrays = [_objects(v) for v in values]
        return arrays[-1], dict(zip(columns, arrays[:-1], strict=True))

    def table_rows(self, table: str) -> pd.DataFrame:
        """Every row of a bookkeeping table (``twin_imports``, ``twin_relations``…), in order."""
        keys = {"twin_changes": "seq", "twin_meta": "key", "twin_layers": "created"}
        first = self.column_types(table)
        if not first:
            return pd.DataFrame()
        frame = self.frame(f"SELECT * FROM {ident(table)} ORDER BY {keys.get(table, first[0][0])}")
        return frame.drop(columns=["seq"], errors="ignore")

    # -- relations and builds ----------------------------------------------------
    def relation_sets(self) -> dict[str, StoredSet]:
        """Every stored relation set by key (``relation:from->to``)."""
        with self._reading() as con:
            return stored_sets(con)

    def last_build(self) -> dict[str, object] | None:
        """The inputs of the newest build, if any."""
        rows = self.rows("SELECT inputs FROM twin_builds ORDER BY build_id DESC LIMIT 1")
        if not rows:
            return None
        inputs: dict[str, object] = json.loads(rows[0][0])
        return inputs if "layers" in inputs else None

    def relation_rows(self, sets: list[StoredSet]) -> pd.DataFrame:
        """Every row of ``sets``, in set and row order, with the relation columns."""
        parts = [self._set_rows(s) for s in sets]
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype="str") for c in COLUMNS[:5]}).assign(
                share=np.empty(0), distance_m=np.empty(0), n_candidates=np.empty(0, np.int64)
            )
        return pd.concat(parts, ignore_index=True)

    def _set_rows(self, stored: StoredSet, where: str = "", params: tuple[Any, ...] = ()) -> Any:
        first, last = stored.fids
        rows = self.frame(
            "SELECT from_uid, to_uid, share, distance_m, n_candidates FROM twin_relations"
            f" WHERE fid BETWEEN %s AND %s{where} ORDER BY fid",
            (first, last, *params),
        )
        return _with_set(rows, stored)

    def linked_rows(self, stored: StoredSet) -> pd.DataFrame:
        """The rows of one set that have a target: ``row, from_uid, to_uid, distance_m``."""
        first, last = stored.fids
        rows = self.frame(
            "SELECT fid - %s AS row, from_uid, to_uid, distance_m FROM twin_relations"
            " WHERE fid BETWEEN %s AND %s AND to_uid IS NOT NULL ORDER BY fid",
            (first, first, last),
        )
        return rows.astype({"row": np.int64, "from_uid": "str", "to_uid": "str"}).astype(
            {"distance_m": float}
        )

    def relations(
        self,
        relation: str | None = None,
        *,
        from_layer: str | None = None,
        to_layer: str | None = None,
        uid: str | None = None,
    ) -> pd.DataFrame:
        """Stored relation rows, filtered (see :meth:`twin.model.Twin.relations`)."""
        sets = self.relation_sets()
        if not sets and self.last_build() is None:
            raise BuildNeededError(BuildNeeded("no_build", self.location, what="relations"))
        chosen = [
            s
            for s in sets.values()
            if relation in (None, s.relation)
            and from_layer in (None, s.from_layer)
            and to_layer in (None, s.to_layer)
        ]
        if uid is None:
            return self.relation_rows(chosen)
        by_id = {s.set_id: s for s in chosen}
        found = self.frame(
            "SELECT set_id, from_uid, to_uid, share, distance_m, n_candidates FROM twin_relations"
            " WHERE from_uid = %s OR to_uid = %s ORDER BY fid",
            (uid, uid),
        )
        parts = [
            _with_set(group.drop(columns="set_id"), by_id[set_id])
            for set_id, group in found.groupby(found["set_id"].astype(int), sort=False)
            if set_id in by_id
        ]
        return pd.concat(parts, ignore_index=True) if parts else self.relation_rows([])

    # -- writing -----------------------------------------------------------------
    def create(self, meta: dict[str, str]) -> None:
        """Create the twin's schema and bookkeeping tables (replacing any twin there)."""
        with self.session() as session:
            session.create_schema(meta)

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """A write transaction (:class:`~twin.store.pgsession.PostgisSession`): all or nothing."""
        con = self.connect(autocommit=False)
        try:
            session = PostgisSession(self, con)
            session.lock()
            yield session
            session.commit()
        finally:
            con.close()


def _objects(values: tuple[Any, ...]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _with_set(rows: pd.DataFrame, stored: StoredSet) -> pd.DataFrame:
    n = len(rows)

    def constant(value: str) -> Any:
        return pd.array(np.full(n, value, dtype=object), dtype="str")

    return pd.DataFrame(
        {
            "relation": constant(stored.relation),
            "from_layer": constant(stored.from_layer),
            "from_uid": rows["from_uid"].astype("str").array,
            "to_layer": constant(stored.to_layer),
            "to_uid": rows["to_uid"].astype("str").array,
            "share": rows["share"].to_numpy(dtype=float, na_value=np.nan),
            "distance_m": rows["distance_m"].to_numpy(dtype=float, na_value=np.nan),
            "n_candidates": rows["n_candidates"].to_numpy(dtype=np.int64),
        }
    )
