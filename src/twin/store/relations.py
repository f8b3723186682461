"""Relation storage: ``twin_relation_sets`` and their rows in ``twin_relations``.

A *set* is one stored relation (``building_parcel`` from ``buildings`` to
``parcels``); its rows have fids ``set_id << 32 | row``, so a set is one rowid
range: replacing or dropping it deletes a range, reading it scans a range.
Rows are narrow (``set_id, from_uid, to_uid, share, distance_m, n_candidates``)
and written 256 to an ``INSERT`` statement over columns built by numpy, in
a private working copy of the twin (see :meth:`twin.store.gpkg.GpkgStore.transaction`).
When a build rewrites a large part of the table, the two uid indexes are dropped
first and rebuilt once, near the end (:meth:`BaseRelationWriter.index_now`): sorting
once is far cheaper than keeping them up to date row by row.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyogrio

from twin.store import schema

COLUMNS = [
    "relation",
    "from_layer",
    "from_uid",
    "to_layer",
    "to_uid",
    "share",
    "distance_m",
    "n_candidates",
]
# Rewriting more than this share of the table drops the uid indexes and rebuilds them.
_BULK_SHARE = 0.2
# Rebuilding them: helper threads of SQLite's sorter, and the size of a sorted run.
_SORT_THREADS = 2
_SORT_RUN_KIB = 16384


@dataclass(frozen=True)
class StoredSet:
    """One row of ``twin_relation_sets``."""

    set_id: int
    relation: str
    from_layer: str
    to_layer: str
    network: str | None
    inputs: list[object]
    build_id: int
    n_rows: int
    n_unrelated: int

    @property
    def key(self) -> str:
        return f"{self.relation}:{self.from_layer}->{self.to_layer}"

    @property
    def fids(self) -> tuple[int, int]:
        """The first and last fid this set's rows may have."""
        first = self.set_id << schema.SET_SHIFT
        return first, first + (1 << schema.SET_SHIFT) - 1


@dataclass(frozen=True)
class RelationRows:
    """The rows of one relation, as columns: one per feature of the from layer."""

    from_uid: list[str]
    to_uid: npt.NDArray[np.object_]  # None where the feature has no target (flagged)
    share: npt.NDArray[np.float64]
    distance_m: npt.NDArray[np.float64]
    n_candidates: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.from_uid)

    @cached_property
    def unrelated(self) -> int:
        """Rows without a target (counted once: the build reads it twice per set)."""
        return int(pd.isna(self.to_uid).sum())


def has_relation_tables(con: sqlite3.Connection) -> bool:
    """Whether a build (of this layout) ever ran on the twin."""
    row = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='twin_relation_sets'"
    ).fetchone()
    return row is not None


def stored_sets(con: sqlite3.Connection) -> dict[str, StoredSet]:
    """Every stored set by key (``relation:from->to``); empty before the first build."""
    if not has_relation_tables(con):
        return {}
    rows = con.execute(
        "SELECT set_id, relation, from_layer, to_layer, network, inputs, build_id, n_rows,"
        " n_unrelated FROM twin_relation_sets ORDER BY set_id"
    ).fetchall()
    sets = [
        StoredSet(
            set_id=int(row[0]),
            relation=row[1],
            from_layer=row[2],
            to_layer=row[3],
            network=row[4],
            inputs=json.loads(row[5]),
            build_id=int(row[6]),
            n_rows=int(row[7]),
            n_unrelated=int(row[8]),
        )
        for row in rows
    ]
    return {s.key: s for s in sets}


def tune_for_bulk_writes(con: sqlite3.Connection) -> None:
    """Settings for a connection to a private working copy, before it writes anything.

    The copy is fsynced once at commit and a failed build discards it whole:
    it needs no rollback journal and no per-transaction syncs.
    """
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA cache_size=-262144")  # 256 MiB: index sorts stay in memory
    con.execute("PRAGMA temp_store=MEMORY")


class BaseRelationWriter:
    """What every store's relation writer does; a store says how it runs SQL and loads rows.

    Parameters
    ----------
    con
        The write transaction's connection.
    bulk : bool
        Drop the uid indexes now and rebuild them in :meth:`finish`: one sort
        each costs a fraction of keeping them up to date row by row (measured
        at 1M buildings on SQLite: 4 s against 10 s more of inserts).
    """

    #: The connection's parameter placeholder.
    mark = "?"

    def __init__(self, con: Any, *, bulk: bool) -> None:
        self.con = con
        self.bulk = bulk
        if bulk:
            for name in schema.RELATION_INDEXES:
                self._run(f"DROP INDEX IF EXISTS {name}")

    def drop(self, sets: Sequence[StoredSet]) -> None:
        """Delete these sets and their rows."""
        m = self.mark
        for old in sets:
            self._run(f"DELETE FROM twin_relations WHERE fid BETWEEN {m} AND {m}", old.fids)
            self._run(f"DELETE FROM twin_relation_sets WHERE set_id={m}", (old.set_id,))

    def put(
        self,
        key: tuple[str, str, str, str | None],
        rows: RelationRows,
        *,
        inputs: Sequence[object],
        build_id: int,
    ) -> int:
        """Store one set's rows; returns its ``set_id``."""
        relation, from_layer, to_layer, network = key
        values = (relation, from_layer, to_layer, network, json.dumps(list(inputs)))
        set_id = self._insert_set((*values, build_id, len(rows), rows.unrelated))
        self._insert_rows(set_id, set_id << schema.SET_SHIFT, rows)
        return set_id

    def finish(self) -> None:
        """Rebuild the uid indexes dropped for a bulk write (once)."""
        if self.bulk:
            for ddl in schema.RELATION_INDEXES.values():
                self._run(ddl)
            self.bulk = False

    def index_now(self) -> None:
        """Rebuild the dropped uid indexes before the last sets are put, if the store can.

        The sets put afterwards update them row by row. A build calls this when few
        rows are still to come and the last relations are still being computed: the
        sort then runs beside them instead of after them. A store whose bulk write
        cannot be indexed before it ends (PostGIS loads a new table) keeps it for
        :meth:`finish`.
        """

    # -- what a store provides ----------------------------------------------------
    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.con.execute(sql, tuple(params))

    def _insert_set(self, values: tuple[Any, ...]) -> int:
        """Add the ``twin_relation_sets`` row (:data:`SET_COLUMNS` ``values``); its id."""
        raise NotImplementedError

    def _insert_rows(self, set_id: int, first: int, rows: RelationRows) -> None:
        """Add one set's rows to ``twin_relations`` with fids from ``first``."""
        raise NotImplementedError


#: The columns of a ``twin_relation_sets`` row a writer adds, in order.
SET_COLUMNS = (
    "relation",
    "from_layer",
    "to_layer",
    "network",
    "inputs",
    "build_id",
    "n_rows",
    "n_unrelated",
)
#: The columns of ``twin_relations``, in order.
ROW_COLUMNS = ("fid", "set_id", "from_uid", "to_uid", "share", "distance_m", "n_candidates")


def insert_set_sql(mark: str) -> str:
    """The INSERT of one ``twin_relation_sets`` row with ``mark`` placeholders."""
    marks = ", ".join([mark] * len(SET_COLUMNS))
    return f"INSERT INTO twin_relation_sets ({', '.join(SET_COLUMNS)}) VALUES ({marks})"


class RelationWriter(BaseRelationWriter):
    """Replaces sets in the GeoPackage's working copy; call :meth:`finish` once at the end.

    ``con`` is a connection to the private working copy (relation tables present).
    """

    def _insert_set(self, values: tuple[Any, ...]) -> int:
        return int(self.con.execute(insert_set_sql("?"), values).lastrowid or 0)

    def index_now(self) -> None:
        """Rebuild the uid indexes now (see :meth:`BaseRelationWriter.index_now`)."""
        self.finish()

    def finish(self) -> None:
        """Rebuild the uid indexes, sorting in runs a helper thread sorts while this one reads.

        SQLite sorts an index in runs of about the page cache's size (16 MiB here). Its
        sorter uses the helper thread only when its temporary store is a file (a
        partitioned build spills its sorts to one): with ``temp_store=MEMORY``, as a
        whole-layer build has, it sorts on this thread alone.
        """
        if not self.bulk:
            return
        (cache,) = self.con.execute("PRAGMA cache_size").fetchone()
        self.con.execute(f"PRAGMA threads={_SORT_THREADS}")
        self.con.execute(f"PRAGMA cache_size=-{_SORT_RUN_KIB}")
        try:
            super().finish()
        finally:
            self.con.execute(f"PRAGMA cache_size={int(cache)}")
            self.con.execute("PRAGMA threads=0")

    def _insert_rows(self, set_id: int, first: int, rows: RelationRows) -> None:
        # NaN binds as NULL in SQLite: the float columns need no per-row work. What is the
        # same on every row (the set id, a float column without any value) is written into
        # the statement instead of bound row by row: binding is most of an insert's cost.
        if not len(rows):
            return
        marks = dict.fromkeys(ROW_COLUMNS, "?")
        marks["set_id"] = str(int(set_id))
        for name in ("share", "distance_m"):
            if np.isnan(getattr(rows, name)).all():
                marks[name] = "NULL"
        (top,) = self.con.execute("SELECT max(fid) FROM twin_relations").fetchone()
        if top is None or top < first:
            # The set's rows are the table's last: the first row carries the set's first
            # fid and SQLite gives each following one the next rowid (max + 1).
            self._execute_many(marks, _bound(marks, rows, first, 0, 1))
            del marks["fid"]
            self._execute_many(marks, _bound(marks, rows, first, 1, len(rows)))
            (last,) = self.con.execute("SELECT max(fid) FROM twin_relations").fetchone()
            if last != first + len(rows) - 1:
                raise RuntimeError(f"relation rows of set {set_id} got fids up to {last}")
        else:
            self._execute_many(marks, _bound(marks, rows, first, 0, len(rows)))

    def _execute_many(self, marks: dict[str, str], values: npt.NDArray[np.object_]) -> None:
        """Insert the rows of ``values`` (one column per ``?`` of ``marks``), in order.

        :data:`_ROWS_PER_INSERT` rows go in one ``INSERT … VALUES (…), (…), …``
        statement: a third less time per row than one statement each, as
        SQLite's per-statement work and Python's per-row calls are shared.
        """
        row = f"({', '.join(marks.values())})"
        head = f"INSERT INTO twin_relations ({', '.join(marks)}) VALUES "
        n, width = values.shape
        whole = n - n % _ROWS_PER_INSERT
        if whole:
            chunks = values[:whole].reshape(-1, width * _ROWS_PER_INSERT)
            self.con.executemany(head + ", ".join([row] * _ROWS_PER_INSERT), chunks.tolist())
        if whole < n:
            self.con.execute(head + ", ".join([row] * (n - whole)), values[whole:].ravel().tolist())


#: Rows per INSERT statement (times the bound columns, well under SQLite's 32766 variables).
_ROWS_PER_INSERT = 256


def _bound(
    marks: dict[str, str], rows: RelationRows, first: int, start: int, stop: int
) -> npt.NDArray[np.object_]:
    """Rows ``start:stop`` of the columns ``marks`` binds (``?``), as Python objects."""
    names = [name for name, mark in marks.items() if mark == "?"]
    values = np.empty((stop - start, len(names)), dtype=object)
    for j, name in enumerate(names):
        if name == "fid":
            column: Any = np.arange(first + start, first + stop, dtype=np.int64)
        elif name == "from_uid":
            column = np.asarray(rows.from_uid[start:stop], dtype=object)  # the same str objects
        else:
            column = getattr(rows, name)[start:stop]
        values[:, j] = column.astype(object)  # Python int, float (NaN: NULL), str or None
    return values


def is_bulk(new_rows: int, dropped_rows: int, stored_rows: int) -> bool:
    """Whether a write is large enough to rebuild the indexes rather than maintain them."""
    final = stored_rows - dropped_rows + new_rows
    return new_rows + dropped_rows > _BULK_SHARE * max(final, 1)


def read_rows(path: Path, sets: Sequence[StoredSet]) -> pd.DataFrame:
    """Every row of ``sets``, in set and row order, with the :data:`COLUMNS`.

    Each set is one rowid range read through GDAL's Arrow stream: about
    0.3 s for a million rows, several times faster than SQLite row tuples.
    """
    return _concat([_with_set(_read_range(path, s, _ROW_COLUMNS), s) for s in sets])


def read_uid_rows(con: sqlite3.Connection, uid: str, sets: Sequence[StoredSet]) -> pd.DataFrame:
    """Rows of ``sets`` with ``uid`` at either end (two index lookups)."""
    by_id = {s.set_id: s for s in sets}
    found = con.execute(
        f"SELECT set_id, {_ROW_COLUMNS} FROM twin_relations"
        " WHERE from_uid = ? OR to_uid = ? ORDER BY fid",
        (uid, uid),
    ).fetchall()
    names = _ROW_COLUMNS.split(", ")
    parts = [
        _with_set(pd.DataFrame([row[1:] for row in group], columns=names), by_id[set_id])
        for set_id, group in itertools.groupby(found, key=lambda row: row[0])
        if set_id in by_id
    ]
    return _concat(parts)


def read_linked(path: Path, stored: StoredSet) -> pd.DataFrame:
    """The rows of one set that have a target: ``row`` (position in the from layer),
    ``from_uid``, ``to_uid``, ``distance_m``."""
    first = stored.fids[0]
    columns = f"fid - {first} AS row, from_uid, to_uid, distance_m"
    return _read_range(path, stored, columns, " AND to_uid IS NOT NULL").astype(
        {"row": np.int64, "from_uid": "str", "to_uid": "str", "distance_m": float}
    )


_ROW_COLUMNS = "from_uid, to_uid, share, distance_m, n_candidates"


def _read_range(path: Path, stored: StoredSet, columns: str, where: str = "") -> pd.DataFrame:
    first, last = stored.fids  # integers: safe to format into the SQL
    sql = f"SELECT {columns} FROM twin_relations WHERE fid BETWEEN {first} AND {last}{where}"
    _, table = pyogrio.read_arrow(path, sql=sql)
    return table.to_pandas()


def _with_set(rows: pd.DataFrame, stored: StoredSet) -> pd.DataFrame:
    """``rows`` (the :data:`_ROW_COLUMNS`) with their set's relation and layers."""
    n = len(rows)
    return pd.DataFrame(
        {
            "relation": _constant(stored.relation, n),
            "from_layer": _constant(stored.from_layer, n),
            "from_uid": rows["from_uid"].astype("str").array,
            "to_layer": _constant(stored.to_layer, n),
            "to_uid": rows["to_uid"].astype("str").array,
            "share": rows["share"].to_numpy(dtype=float, na_value=np.nan),
            "distance_m": rows["distance_m"].to_numpy(dtype=float, na_value=np.nan),
            "n_candidates": rows["n_candidates"].to_numpy(dtype=np.int64),
        }
    )


def _constant(value: str, n: int) -> pd.api.extensions.ExtensionArray:
    return pd.array(np.full(n, value, dtype=object), dtype="str")


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        empty = pd.DataFrame({c: pd.Series(dtype="str") for c in _ROW_COLUMNS.split(", ")[:2]})
        empty[["share", "distance_m"]] = np.empty((0, 2))
        empty["n_candidates"] = np.empty(0, dtype=np.int64)
        return _with_set(empty, StoredSet(0, "", "", "", None, [], 0, 0, 0))
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
