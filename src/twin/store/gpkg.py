"""The twin file: one GeoPackage that QGIS and ``ogrinfo`` open as it is.

Layout
------
* one spatial table per layer, in the twin CRS, with an R-tree index:
  ``uid``, the layer's fields, ``valid_from`` and the geometry;
* ``<layer>__history``: replaced and removed versions, with ``valid_to``,
  ``change`` and ``import_id`` (the import that ended the version);
* attribute tables ``twin_meta``, ``twin_layers``, ``twin_imports`` and
  ``twin_changes`` (see :mod:`twin.store.schema`).

Writes are copy-on-write: a transaction works on a copy beside the file and
replaces the file with one atomic ``rename`` at commit. A failed or killed
write leaves the twin byte-identical, and readers that have the file open keep
reading the version they opened.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from twin import guards
from twin.errors import StorageError, TwinBusyError, TwinNotFoundError
from twin.store import relations as relstore
from twin.store._lock import exclusive_lock
from twin.store.damage import maps_file_errors
from twin.store.files import (
    HISTORY_SUFFIX,
    check_twin_file,
    create_file,
    fsync_dir,
    fsync_file,
    history_table,
    quoted,
    write_table,
)
from twin.store.session import GpkgSession
from twin.store.zonerows import read_zone_rows

__all__ = [
    "HISTORY_SUFFIX",
    "GpkgSession",
    "GpkgStore",
    "create_file",
    "history_table",
    "write_table",
]

log = logging.getLogger(__name__)

_LOCK_TIMEOUT_S = 600.0


class GpkgStore:
    """Reads and writes one twin GeoPackage.

    Parameters
    ----------
    path : str or Path
        The twin file (``*.gpkg``).

    Examples
    --------
    >>> store = GpkgStore(sample_twin_path)
    >>> "buildings" in store.tables()
    True
    """

    def __init__(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        self.path = Path(path)
        self.force = force  # write even a read-only twin file

    # -- reading ---------------------------------------------------------
    def require(self) -> None:
        """Raise :class:`TwinNotFoundError` unless the twin file exists."""
        if not self.path.is_file():
            raise TwinNotFoundError(
                f"no twin at {self.path}: create one with Twin.create('{self.path}')"
            )

    def check(self) -> None:
        """Fail with :class:`~twin.errors.TwinFileError` unless the file is a whole twin."""
        check_twin_file(self.path)

    def version(self) -> tuple[int, int, int]:
        """The file's version: ``(inode, size, mtime_ns)``; every commit changes it.

        A commit replaces the file (a new inode), so caches keyed by this never
        serve an answer computed from an older twin.
        """
        self.require()
        stat = self.path.stat()
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def connect(self) -> sqlite3.Connection:
        """Open a read-only SQLite connection to the twin file."""
        self.require()
        uri = f"file:{self.path.resolve()}?mode=ro"
        return sqlite3.connect(uri, uri=True)

    @maps_file_errors("reading the twin's tables")
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
        """Run a read-only SQL query on the metadata tables."""
        with contextlib.closing(self.connect()) as con:
            return pd.read_sql_query(sql, con, params=params)

    @maps_file_errors("reading table {0}")
    def column(self, table: str, column: str) -> pd.Series | None:
        """One attribute column of a table by uid (None when the table has no such column).

        Examples
        --------
        >>> store = GpkgStore(sample_twin_path)
        >>> floors = store.column("buildings", "floors")
        >>> floors.index[0].startswith("buildings."), store.column("buildings", "nothing")
        (True, None)
        """
        with contextlib.closing(self.connect()) as con:
            names = [row[1] for row in con.execute(f'PRAGMA table_info("{quoted(table)}")')]
            if column not in names:
                return None
            rows = con.execute(f'SELECT uid, "{quoted(column)}" FROM "{quoted(table)}"').fetchall()
        uids = np.array([r[0] for r in rows], dtype=object)
        return pd.Series([r[1] for r in rows], index=uids, name=column)

    def tables(self) -> set[str]:
        """Names of all tables registered in ``gpkg_contents``."""
        return set(self.query("SELECT table_name FROM gpkg_contents")["table_name"])

    @maps_file_errors("reading table {0}")
    def read_table(self, table: str, **kwargs: Any) -> gpd.GeoDataFrame:
        """Read a spatial table with pyogrio's Arrow path."""
        self.require()
        return pyogrio.read_dataframe(self.path, layer=table, use_arrow=True, **kwargs)

    @maps_file_errors("reading the fields of {0}")
    def fields(self, table: str) -> list[str]:
        """The attribute columns of a table (geometry excluded)."""
        self.require()
        return [str(f) for f in pyogrio.read_info(self.path, layer=table)["fields"]]

    # -- the twin's bookkeeping (the TwinStore interface) ------------------
    def meta(self) -> dict[str, str]:
        """The twin's settings (``twin_meta``)."""
        rows = self.query("SELECT key, value FROM twin_meta")
        return dict(zip(rows["key"], rows["value"], strict=True))

    def layer_rows(self, name: str | None = None) -> pd.DataFrame:
        """Rows of ``twin_layers`` (one layer's, or every layer's in creation order)."""
        if name is not None:
            return self.query("SELECT * FROM twin_layers WHERE name=?", (name,))
        return self.query("SELECT * FROM twin_layers ORDER BY created")

    def import_rows(self, layer: str | None = None, import_id: int | None = None) -> pd.DataFrame:
        """Rows of ``twin_imports`` (provenance), oldest first; one layer's or one import."""
        sql = "SELECT * FROM twin_imports"
        params: tuple[Any, ...] = ()
        if layer is not None:
            sql, params = sql + " WHERE layer=?", (layer,)
        elif import_id is not None:
            sql, params = sql + " WHERE import_id=?", (int(import_id),)
        return self.query(sql + " ORDER BY import_id", params)

    def change_rows(self, import_id: int) -> pd.DataFrame:
        """The listed changes of one import: ``uid`` and ``change``, in order."""
        return self.query(
            "SELECT uid, change FROM twin_changes WHERE import_id=? ORDER BY rowid",
            (int(import_id),),
        )

    def layer_changes(self, layer: str, after_import: int) -> pd.DataFrame:
        """The listed changes of ``layer`` by imports after ``after_import``.

        Columns ``import_id``, ``uid``, ``change``; oldest import first.

        Examples
        --------
        >>> GpkgStore(sample_twin_path).layer_changes("buildings", 0).columns.tolist()
        ['import_id', 'uid', 'change']
        """
        return self.query(
            "SELECT import_id, uid, change FROM twin_changes WHERE layer=? AND import_id>?"
            " ORDER BY import_id, rowid",
            (layer, int(after_import)),
        )

    @maps_file_errors("reading table {0}")
    def uid_order(self, table: str) -> pd.Index:
        """Every ``uid`` of a table in the order :meth:`read_table` returns its rows.

        Examples
        --------
        >>> uids = GpkgStore(sample_twin_path).uid_order("buildings")
        >>> uids[0].startswith("buildings."), len(uids) == len(set(uids))
        (True, True)
        """
        self.require()
        _, data = pyogrio.read_arrow(self.path, layer=table, columns=["uid"], read_geometry=False)
        return pd.Index(pd.array(data.column("uid"), dtype="str"), name="uid")

    def read_features(self, table: str, uids: Any) -> gpd.GeoDataFrame:
        """The rows of ``table`` whose ``uid`` is one of ``uids``, as :meth:`read_table` reads them.

        Examples
        --------
        >>> store = GpkgStore(sample_twin_path)
        >>> first = store.uid_order("buildings")[:2]
        >>> store.read_features("buildings", first)["uid"].tolist() == list(first)
        True
        """
        listed = ", ".join("'" + str(uid).replace("'", "''") + "'" for uid in uids)
        return self.read_table(table, where=f"uid IN ({listed or 'NULL'})")

    def delta_rows(
        self, table: str, import_id: int, base_import: int
    ) -> tuple[gpd.GeoDataFrame, np.ndarray] | None:
        """None: a GeoPackage keeps no recorded rows of a re-import (its one reader process
        reads the touched rows from the file; PostGIS records them for many workers).

        Examples
        --------
        >>> GpkgStore(sample_twin_path).delta_rows("buildings", 2, 1) is None
        True
        """
        return None

    def read_valid(
        self, table: str, at: str, *, history: bool = False, **kwargs: Any
    ) -> gpd.GeoDataFrame:
        """Versions valid at ``at`` (a stored timestamp): current rows started by then or,
        with ``history``, replaced rows that were valid then."""
        stamp = at.replace("'", "''")
        where = f"valid_from <= '{stamp}'"
        if history:
            where += f" AND valid_to > '{stamp}'"
        return self.read_table(table, where=where, **kwargs)

    def read_started(self, table: str, at: str) -> pd.Series:
        """The uids of the versions of ``table`` that started at ``at``."""
        stamp = at.replace("'", "''")
        frame = self.read_table(
            table, columns=["uid"], where=f"valid_from = '{stamp}'", read_geometry=False
        )
        return frame["uid"]

    def read_uid(self, table: str, uid: str | None) -> gpd.GeoDataFrame:
        """The rows of ``table`` with ``uid`` (every row when ``uid`` is None)."""
        if uid is None:
            return self.read_table(table)
        return self.read_table(table, where=f"uid = '{uid.replace(chr(39), chr(39) * 2)}'")

    @maps_file_errors("reading relations")
    def relations(
        self,
        relation: str | None = None,
        *,
        from_layer: str | None = None,
        to_layer: str | None = None,
        uid: str | None = None,
    ) -> pd.DataFrame:
        """Stored relation rows, filtered (see :meth:`twin.model.Twin.relations`)."""
        from twin.errors import BuildNeeded, BuildNeededError
        from twin.store import relations as relstore

        with contextlib.closing(self.connect()) as con:
            sets = relstore.stored_sets(con)
            if not sets and not relstore.has_relation_tables(con):
                raise BuildNeededError(BuildNeeded("no_build", str(self.path), what="relations"))
            chosen = [
                s
                for s in sets.values()
                if relation in (None, s.relation)
                and from_layer in (None, s.from_layer)
                and to_layer in (None, s.to_layer)
            ]
            if uid is not None:
                return relstore.read_uid_rows(con, uid, chosen)
            return relstore.read_rows(self.path, chosen)

    def create(self, meta: dict[str, str]) -> None:
        """Write a new, empty twin file with ``meta`` (replacing any file there)."""
        with self.transaction() as work:
            work.unlink(missing_ok=True)
            create_file(work, meta)

    @contextlib.contextmanager
    def session(self) -> Iterator[GpkgSession]:
        """A write transaction as a :class:`~twin.store.session.GpkgSession`: all or nothing."""
        with self.transaction() as work:
            session = GpkgSession(work)
            try:
                yield session
            except BaseException:
                session.close(commit=False)
                raise
            session.close()

    @maps_file_errors("reading table {0}")
    def table_rows(self, table: str) -> pd.DataFrame:
        """Every row of a bookkeeping table (``twin_imports``, ``twin_relations``…), in order."""
        if table not in self.tables():
            return pd.DataFrame()
        return self.query(f'SELECT * FROM "{quoted(table)}" ORDER BY rowid')

    # -- relations and builds -----------------------------------------------
    @maps_file_errors("reading relations")
    def relation_sets(self) -> dict[str, relstore.StoredSet]:
        """Every stored relation set by key (``relation:from->to``); empty before a build."""
        with contextlib.closing(self.connect()) as con:
            return relstore.stored_sets(con)

    @maps_file_errors("reading the last build")
    def last_build(self) -> dict[str, object] | None:
        """The inputs of the newest build (``layers``: import per layer, ``options``), if any."""
        with contextlib.closing(self.connect()) as con:
            have = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='twin_builds'"
            ).fetchone()
            if not have:
                return None
            row = con.execute(
                "SELECT inputs FROM twin_builds ORDER BY build_id DESC LIMIT 1"
            ).fetchone()
        if not row:
            return None
        inputs: dict[str, object] = json.loads(row[0])
        return inputs if "layers" in inputs else None  # builds before relation sets kept none

    @maps_file_errors("reading relations")
    def relation_rows(self, sets: list[relstore.StoredSet]) -> pd.DataFrame:
        """Every row of ``sets`` with the relation columns (see :data:`relstore.COLUMNS`)."""
        return relstore.read_rows(self.path, sets)

    @maps_file_errors("reading relations")
    def linked_rows(self, stored: relstore.StoredSet) -> pd.DataFrame:
        """The rows of one set that have a target (``row, from_uid, to_uid, distance_m``)."""
        return relstore.read_linked(self.path, stored)

    @maps_file_errors("reading relations")
    def zone_rows(self, stored: relstore.StoredSet) -> pd.DataFrame:
        """A zone relation's rows by position (``row, zone, share, n_zones``; no uid text)."""
        return read_zone_rows(self.path, stored)

    @maps_file_errors("reading table {0}")
    def distinct(self, table: str, column: str) -> list[str]:
        """The distinct non-null values of one column, as sorted text."""
        with contextlib.closing(self.connect()) as con:
            rows = con.execute(
                f'SELECT DISTINCT "{quoted(column)}" FROM "{quoted(table)}"'
                f' WHERE "{quoted(column)}" IS NOT NULL'
            ).fetchall()
        return sorted(str(row[0]) for row in rows)

    @maps_file_errors("reading table {0}")
    def read_wkb(self, table: str, columns: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """A table's geometries as WKB and some columns, as arrays (no GeoDataFrame built)."""
        self.require()
        meta, data = pyogrio.read_arrow(self.path, layer=table, columns=columns)
        wkb = data.column(meta["geometry_name"] or "wkb_geometry").to_numpy(zero_copy_only=False)
        return wkb, {c: data.column(c).to_numpy(zero_copy_only=False) for c in columns}

    # -- writing ---------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Path]:
        """Yield a private working copy of the twin; commit it atomically.

        The copy lives beside the twin (same file system, so the final
        ``os.replace`` is atomic). Writers are serialised by an advisory lock
        on a sidecar ``.<name>.lock`` file. An exception inside the block, or
        the process dying, leaves the twin untouched.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock():
            self._remove_stale_copies()
            work = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp.gpkg")
            original = self.path.stat() if self.path.exists() else None
            if original is not None:
                guards.check_writable(self.path, original, force=self.force)
                guards.check_free_space(self.path.parent, original.st_size)
            try:
                if original is not None:
                    _copy(self.path, work)
                yield work
                fsync_file(work)
                if original is not None:
                    guards.keep_mode_and_owner(work, original)
                os.replace(work, self.path)
                fsync_dir(self.path.parent)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    work.unlink()

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        lock_path = self.path.with_name(f".{self.path.name}.lock")

        def busy() -> TwinBusyError:
            return TwinBusyError(
                f"{self.path} is being written by another process; try again later"
            )

        with exclusive_lock(lock_path, _LOCK_TIMEOUT_S, busy):
            yield

    def _remove_stale_copies(self) -> None:
        # Only called under the lock: any copy left is from a writer that died.
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp.gpkg"):
            log.info("removing %s left by an interrupted write", stale)
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


def _copy(src: Path, dst: Path) -> None:
    """Copy the twin to its working copy; a failed copy is a :class:`StorageError`."""
    try:
        shutil.copyfile(src, dst)
    except OSError as exc:
        raise StorageError(
            f"cannot copy {src.name} to write it ({exc.strerror or exc}); nothing was changed"
        ) from None
