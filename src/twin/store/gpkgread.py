"""Read-only SQL on a GeoPackage file that is not a twin: a delivery being imported.

The batched import (:mod:`twin.bigimport`) cuts a large GeoPackage layer into fid
ranges and needs to know which integer fields hold a null anywhere (so every batch
gets the same column types). Both are one SQL query on the file, opened read-only;
they live here because ``twin.store`` is the only package that talks SQL.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

__all__ = ["fid_range", "fields_with_nulls"]


def _read_only(path: Path) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True))


def fid_range(path: Path, layer: str, fid: str = "fid") -> tuple[int, int] | None:
    """The smallest and largest feature id of ``layer``; ``None`` when it is empty.

    Examples
    --------
    >>> import geopandas as gpd, shapely, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> frame = gpd.GeoDataFrame({"n": [1, 2, 3]}, geometry=[shapely.Point(i, i) for i in range(3)])
    >>> frame.to_file(folder / "d.gpkg", layer="pts")
    >>> fid_range(folder / "d.gpkg", "pts")
    (1, 3)
    """
    # one min() or max() a SELECT: SQLite reads it off the primary key's b-tree; both
    # in one SELECT read every row (a quarter of a second at a million features)
    table = f'FROM "{layer}"'
    with _read_only(path) as con:
        query = f'SELECT (SELECT min("{fid}") {table}), (SELECT max("{fid}") {table})'
        low, high = con.execute(query).fetchone()
    return None if low is None else (int(low), int(high))


def fields_with_nulls(
    path: Path, layer: str, names: Sequence[str], where: str | None = None
) -> set[str]:
    """Which of the fields ``names`` hold a null in some row of ``layer`` (within ``where``).

    A ``where`` that SQLite cannot run (an OGR-only filter) finds nothing for that field.

    Examples
    --------
    >>> import geopandas as gpd, shapely, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> frame = gpd.GeoDataFrame(
    ...     {"a": [1, None], "b": [1, 2]}, geometry=[shapely.Point(0, 0), shapely.Point(1, 1)]
    ... )
    >>> frame.to_file(folder / "d.gpkg", layer="pts")
    >>> sorted(fields_with_nulls(folder / "d.gpkg", "pts", ["a", "b"]))
    ['a']
    """
    found = set()
    with _read_only(path) as con:
        for name in names:
            test = f'"{name}" IS NULL' + (f" AND ({where})" if where else "")
            with contextlib.suppress(sqlite3.Error):
                if con.execute(f'SELECT 1 FROM "{layer}" WHERE {test} LIMIT 1').fetchone():
                    found.add(name)
    return found
