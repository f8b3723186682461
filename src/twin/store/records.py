"""Bookkeeping inside a write transaction: import rows, change sets, layer rows.

Every function here works on the private working copy of a twin (see
:meth:`twin.store.gpkg.GpkgStore.transaction`), never on the live file.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin import history
from twin.kinds import LayerKind
from twin.mapping import ImportSpec
from twin.reports import MAX_STORED_REJECTIONS, ImportReport
from twin.store.files import history_table, write_table

_GEOMETRY_NAMES = {
    "POINT": "Point",
    "LINESTRING": "LineString",
    "POLYGON": "Polygon",
    "MULTILINESTRING": "MultiLineString",
    "MULTIPOLYGON": "MultiPolygon",
}
_MULTI = {"point": "Point", "line": "MultiLineString", "polygon": "MultiPolygon"}


def next_time(work: Path) -> pd.Timestamp:
    """Now, in milliseconds, strictly after the twin's previous import."""
    now = pd.Timestamp.now(tz="UTC").floor("ms")
    with contextlib.closing(sqlite3.connect(work)) as con:
        last = con.execute("SELECT max(time) FROM twin_imports").fetchone()[0]
    if last is not None:
        previous = pd.Timestamp(last)
        if now <= previous:
            now = previous + pd.Timedelta(milliseconds=1)
    return now


def next_import_id(work: Path) -> int:
    with contextlib.closing(sqlite3.connect(work)) as con:
        last = con.execute("SELECT max(import_id) FROM twin_imports").fetchone()[0]
    return int(last or 0) + 1


def has_layer(work: Path, layer: str) -> bool:
    with contextlib.closing(sqlite3.connect(work)) as con:
        row = con.execute("SELECT 1 FROM twin_layers WHERE name=?", (layer,)).fetchone()
    return row is not None


def append_history(work: Path, layer: str, retired: gpd.GeoDataFrame) -> None:
    table = history_table(layer)
    with contextlib.closing(sqlite3.connect(work)) as con, con:
        exists = con.execute("SELECT 1 FROM gpkg_contents WHERE table_name=?", (table,)).fetchone()
        if exists:
            have = {row[1] for row in con.execute(f'PRAGMA table_info("{table}")')}
            for column in retired.columns:
                if column not in have and column != "geometry":
                    con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}"')
    write_table(work, table, retired, append=bool(exists))


def fill_counts(report: ImportReport, changes: history.ChangeSet | None, count: int) -> None:
    if changes is None:
        report.added = count
        return
    report.added, report.changed = len(changes.added), len(changes.changed)
    report.removed, report.unchanged = len(changes.removed), len(changes.unchanged)


def record_import(
    con: sqlite3.Connection, spec: ImportSpec, report: ImportReport, *, initial: bool
) -> None:
    """Insert the provenance row of one import."""
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in spec.options().items()}
    body = report.to_dict(max_rejections=MAX_STORED_REJECTIONS)
    con.execute(
        "INSERT INTO twin_imports (import_id, layer, time, source, source_format, checksum,"
        " src_crs, options, field_mapping, n_read, n_imported, n_repaired, n_rejected, n_added,"
        " n_changed, n_removed, n_unchanged, initial, report)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            report.import_id,
            spec.layer,
            report.time,
            report.source,
            report.source_format,
            report.checksum,
            report.src_crs,
            json.dumps(options, ensure_ascii=False, default=str),
            json.dumps(spec.fields, ensure_ascii=False),
            report.read,
            report.imported,
            report.repaired,
            report.rejected,
            report.added,
            report.changed,
            report.removed,
            report.unchanged,
            int(initial),
            json.dumps(body, ensure_ascii=False, default=str),
        ),
    )


def record_raster_import(con: sqlite3.Connection, row: Mapping[str, Any]) -> None:
    """Insert the provenance row of one raster import (counts in cells, options as JSON)."""
    con.execute(
        "INSERT INTO twin_imports (import_id, layer, time, source, source_format, checksum,"
        " src_crs, options, field_mapping, n_read, n_imported, n_repaired, n_rejected, n_added,"
        " n_changed, n_removed, n_unchanged, initial, report)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, 0, 0, ?, ?, ?, ?, ?, ?)",
        (
            int(row["import_id"]),
            row["layer"],
            row["time"],
            row["source"],
            row["source_format"],
            row["checksum"],
            row["src_crs"],
            json.dumps(row["options"], ensure_ascii=False, default=str),
            int(row["n_read"]),
            int(row["n_imported"]),
            int(row["n_added"]),
            int(row["n_changed"]),
            int(row["n_removed"]),
            int(row["n_unchanged"]),
            int(bool(row["initial"])),
            json.dumps(row["report"], ensure_ascii=False, default=str),
        ),
    )


def record_changes(
    con: sqlite3.Connection, import_id: int, layer: str, changes: history.ChangeSet
) -> None:
    rows = [
        (import_id, layer, str(uid), change)
        for change, uids in (
            ("added", changes.added),
            ("changed", changes.changed),
            ("removed", changes.removed),
        )
        for uid in uids
    ]
    con.executemany(
        "INSERT INTO twin_changes (import_id, layer, uid, change) VALUES (?, ?, ?, ?)", rows
    )


@dataclass
class LayerSummary:
    """What ``twin_layers`` records of a layer's features: count, extent, geometry types.

    A layer written in batches adds each batch's summary instead of keeping its rows.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> one = LayerSummary.of(gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)]))
    >>> two = one + LayerSummary.of(gpd.GeoDataFrame(geometry=[shapely.Point(3, 4)]))
    >>> two.count, two.bounds.tolist(), two.type_ids.tolist()
    (2, [0.0, 0.0, 3.0, 4.0], [0])
    """

    count: int
    bounds: np.ndarray
    type_ids: np.ndarray

    @classmethod
    def of(cls, frame: gpd.GeoDataFrame) -> LayerSummary:
        values = np.asarray(frame.geometry.array)
        bounds = shapely.total_bounds(values) if len(frame) else np.full(4, np.nan)
        type_ids = np.unique(shapely.get_type_id(values))
        return cls(len(frame), np.asarray(bounds, dtype=float), type_ids)

    def __add__(self, other: LayerSummary) -> LayerSummary:
        both = np.vstack([self.bounds, other.bounds])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: an empty side
            bounds = np.concatenate([np.nanmin(both[:, :2], 0), np.nanmax(both[:, 2:], 0)])
        type_ids = np.union1d(self.type_ids, other.type_ids)
        return LayerSummary(self.count + other.count, bounds, type_ids)


def record_layer(
    con: sqlite3.Connection,
    spec: ImportSpec,
    kind: LayerKind,
    frame: gpd.GeoDataFrame | LayerSummary,
    report: ImportReport,
) -> None:
    """Insert or update the layer's row in ``twin_layers``."""
    summary = frame if isinstance(frame, LayerSummary) else LayerSummary.of(frame)
    bounds, type_ids = summary.bounds, summary.type_ids
    names = [shapely.GeometryType(int(t)).name for t in type_ids if t >= 0]
    geometry_type = _GEOMETRY_NAMES[names[0]] if len(names) == 1 else _MULTI[kind.geometry]
    extent = [None if np.isnan(v) else float(v) for v in bounds]
    updated = con.execute(
        "UPDATE twin_layers SET feature_count=?, min_x=?, min_y=?, max_x=?, max_y=?,"
        " geometry_type=?, id_field=?, source=?, updated=?, last_import=?, classification=?"
        " WHERE name=?",
        (
            summary.count,
            *extent,
            geometry_type,
            spec.id,
            report.source,
            report.time,
            report.import_id,
            report.classification,
            spec.layer,
        ),
    ).rowcount
    if not updated:
        con.execute(
            "INSERT INTO twin_layers (name, kind, category, classification, id_field,"
            " geometry_type, feature_count, min_x, min_y, max_x, max_y, source, created,"
            " updated, last_import) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                spec.layer,
                kind.name,
                kind.category.value,
                report.classification,
                spec.id,
                geometry_type,
                summary.count,
                *extent,
                report.source,
                report.time,
                report.time,
                report.import_id,
            ),
        )
