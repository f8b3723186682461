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
import errno
import fcntl
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from twin import guards
from twin.errors import StorageError, TwinBusyError, TwinNotFoundError
from twin.store import schema

log = logging.getLogger(__name__)

HISTORY_SUFFIX = "__history"
_LOCK_TIMEOUT_S = 600.0


def history_table(layer: str) -> str:
    """Name of the table that keeps a layer's replaced versions."""
    return f"{layer}{HISTORY_SUFFIX}"


class GpkgStore:
    """Reads and writes one twin GeoPackage.

    Parameters
    ----------
    path : str or Path
        The twin file (``*.gpkg``).
    """

    def __init__(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        self.path = Path(path)
        self.force = force  # write even a read-only twin file

    # -- reading ---------------------------------------------------------
    def require(self) -> None:
        """Raise :class:`TwinNotFoundError` unless the twin file exists."""
        if not self.path.is_file():
            raise TwinNotFoundError(
                f"no twin at {self.path}: create one with `twin init {self.path}`"
            )

    def connect(self) -> sqlite3.Connection:
        """Open a read-only SQLite connection to the twin file."""
        self.require()
        uri = f"file:{self.path.resolve()}?mode=ro"
        return sqlite3.connect(uri, uri=True)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
        """Run a read-only SQL query on the metadata tables."""
        with contextlib.closing(self.connect()) as con:
            return pd.read_sql_query(sql, con, params=params)

    def tables(self) -> set[str]:
        """Names of all tables registered in ``gpkg_contents``."""
        return set(self.query("SELECT table_name FROM gpkg_contents")["table_name"])

    def read_table(self, table: str, **kwargs: Any) -> gpd.GeoDataFrame:
        """Read a spatial table with pyogrio's Arrow path."""
        self.require()
        return pyogrio.read_dataframe(self.path, layer=table, use_arrow=True, **kwargs)

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
                _fsync_file(work)
                if original is not None:
                    guards.keep_mode_and_owner(work, original)
                os.replace(work, self.path)
                _fsync_dir(self.path.parent)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    work.unlink()

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        with open(lock_path, "a+b") as handle:
            deadline = time.monotonic() + _LOCK_TIMEOUT_S
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() > deadline:
                        raise TwinBusyError(
                            f"{self.path} is being written by another process; try again later"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

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


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
