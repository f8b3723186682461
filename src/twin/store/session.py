"""A write transaction on a twin GeoPackage: the session :meth:`GpkgStore.session` yields.

Every method works on the transaction's private working copy; the twin file is
replaced by it at commit, or left as it was.

Examples
--------
>>> import shutil, tempfile, pathlib
>>> from twin.store import GpkgStore
>>> path = pathlib.Path(tempfile.mkdtemp()) / "copy.gpkg"
>>> _ = shutil.copy(sample_twin_path, path)
>>> with GpkgStore(path).session() as session:
...     session.has_layer("buildings"), session.next_import_id() > 1
(True, True)
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from twin.store import records, schema
from twin.store import relations as relstore
from twin.store.files import write_table

__all__ = ["GpkgSession"]


class GpkgSession:
    """The write side of the twin store on a GeoPackage working copy.

    Parameters
    ----------
    work : Path
        The transaction's private copy of the twin file.

    Examples
    --------
    >>> import shutil, tempfile, pathlib
    >>> from twin.store import GpkgStore
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "copy.gpkg"
    >>> _ = shutil.copy(sample_twin_path, path)
    >>> with GpkgStore(path).session() as session:
    ...     session.set_meta("name", "renamed")
    >>> GpkgStore(path).meta()["name"]
    'renamed'
    """

    def __init__(self, work: Path) -> None:
        self.work = work
        self._con: sqlite3.Connection | None = None  # the relations' one connection (a build)

    def close(self, *, commit: bool = True) -> None:
        """Commit (or drop) and close the build's connection, if one was opened."""
        if self._con is None:
            return
        try:
            if commit:
                self._con.commit()
        finally:
            self._con.close()
            self._con = None

    def relations_connection(self) -> sqlite3.Connection:
        """The session's one connection for relation writes (a partitioned build's parts)."""
        return self._relations_con()

    def _relations_con(self) -> sqlite3.Connection:
        if self._con is None:
            self._con = sqlite3.connect(self.work)
            relstore.tune_for_bulk_writes(self._con)
        return self._con

    def next_time(self) -> pd.Timestamp:
        """Now (milliseconds), strictly after the twin's previous import."""
        return records.next_time(self.work)

    def next_import_id(self) -> int:
        """The id the next import gets."""
        return records.next_import_id(self.work)

    def has_layer(self, layer: str) -> bool:
        """Whether the twin already has ``layer``."""
        return records.has_layer(self.work, layer)

    def read_table(self, table: str, **kwargs: Any) -> gpd.GeoDataFrame:
        """A table of the working copy."""
        return pyogrio.read_dataframe(self.work, layer=table, use_arrow=True, **kwargs)

    def write_table(self, table: str, frame: gpd.GeoDataFrame) -> None:
        """Write (replace) a spatial table."""
        write_table(self.work, table, frame)

    def append_history(self, layer: str, retired: gpd.GeoDataFrame) -> None:
        """Keep replaced and removed versions in the layer's history table."""
        records.append_history(self.work, layer, retired)

    def record_import(self, spec: Any, report: Any, kind: Any, frame: Any, changes: Any) -> None:
        """Provenance, change set and the layer's row of one import, in one SQL transaction."""
        with contextlib.closing(sqlite3.connect(self.work)) as con, con:
            records.record_import(con, spec, report, initial=changes is None)
            if changes is not None:
                records.record_changes(con, report.import_id, spec.layer, changes)
            records.record_layer(con, spec, kind, frame, report)

    def record_delta_rows(
        self, layer: str, import_id: int, current: pd.DataFrame, frame: pd.DataFrame, changes: Any
    ) -> None:
        """Nothing: a GeoPackage's readers read a re-import's touched rows themselves
        (:meth:`GpkgStore.delta_rows` is always None; see the PostGIS session's)."""

    def record_raster_import(self, row: Mapping[str, Any]) -> None:
        """Provenance of one raster import (the raster itself is a file beside the twin)."""
        with contextlib.closing(sqlite3.connect(self.work)) as con, con:
            records.record_raster_import(con, row)

    def set_meta(self, key: str, value: str) -> None:
        """Set one of the twin's settings (``twin_meta``)."""
        with contextlib.closing(sqlite3.connect(self.work)) as con, con:
            schema.set_meta(con, key, value)

    # -- relations (twin build) -----------------------------------------------
    def prepare_relations(self) -> bool:
        """Create the relation tables if missing; True when old-layout relations were dropped."""
        return schema.ensure_relation_tables(self._relations_con())

    def relation_sets(self) -> dict[str, relstore.StoredSet]:
        """The stored relation sets of the working copy, by key."""
        return relstore.stored_sets(self._relations_con())

    def relation_writer(self, *, bulk: bool) -> relstore.RelationWriter:
        """A writer that drops and stores relation sets in this transaction."""
        return relstore.RelationWriter(self._relations_con(), bulk=bulk)

    def record_build(self, time: str, inputs: Mapping[str, object]) -> int:
        """Add a ``twin_builds`` row (its report comes later); returns its ``build_id``."""
        cursor = self._relations_con().execute(
            "INSERT INTO twin_builds (time, inputs, report) VALUES (?, ?, '{}')",
            (time, json.dumps(inputs, ensure_ascii=False)),
        )
        return int(cursor.lastrowid or 0)

    def set_build_report(self, build_id: int, report: Mapping[str, object]) -> None:
        """Store the finished report of build ``build_id``."""
        self._relations_con().execute(
            "UPDATE twin_builds SET report=? WHERE build_id=?",
            (json.dumps(report, ensure_ascii=False), build_id),
        )

    def replace_rows(self, table: str, rows: pd.DataFrame) -> None:
        """Replace every row of a bookkeeping table (copying a twin)."""
        con = self._relations_con()
        con.execute(f'DELETE FROM "{table}"')
        if rows.empty:
            return
        names = ", ".join(f'"{c}"' for c in rows.columns)
        marks = ", ".join("?" * len(rows.columns))
        columns = [rows[c].astype(object).where(rows[c].notna(), None).tolist() for c in rows]
        con.executemany(
            f'INSERT INTO "{table}" ({names}) VALUES ({marks})', zip(*columns, strict=True)
        )
