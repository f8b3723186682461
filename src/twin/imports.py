"""The import pipeline: read, map, validate, identify, reproject.

:func:`prepare_import` turns one source into features ready for the twin and
an :class:`ImportReport`; :class:`twin.Twin` then compares them with the layer
already stored and commits the change set atomically (:mod:`twin.history`).
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyproj
import shapely

from twin import guards
from twin.crs import auto_crs_for, resolve_crs
from twin.errors import CRSError, RejectedFeaturesError, SchemaError, UsageError
from twin.history import BOOKKEEPING
from twin.io import SourceData, checksum, read_source
from twin.kinds import RESTRICTED_SENSOR_TYPES, Classification, LayerKind, get_kind
from twin.mapping import ImportSpec, check_layer_name
from twin.reports import ImportReport, Rejection
from twin.validate import (
    check_geometries,
    convert_fields,
    new_reasons,
    note,
    valid_geometries,
)

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
RESERVED_COLUMNS = (*BOOKKEEPING, "fid")  # names the twin writes itself
_DEFAULT_ID_FIELDS = {"osm": "osm_id", "epanet": "id"}
_UID_HASH_KEY = "citytwin-uid-v01"  # 16 bytes: SipHash key for geometry-derived uids
_EXPORT_UID = "\x00twin_uid"  # the uids an export of the layer carries (never a field name)


@dataclass
class PreparedImport:
    """Features ready to store, in the twin CRS, with their report."""

    frame: gpd.GeoDataFrame  # columns: uid, fields…, geometry
    kind: LayerKind
    crs: pyproj.CRS
    report: ImportReport
    spec: ImportSpec
    digest: Future[str]  # the source's checksum, still being computed

    def finish_report(self) -> ImportReport:
        """Wait for the checksum and return the completed report."""
        self.report.checksum = self.digest.result()
        return self.report

    def release(self) -> None:
        """Let go of the features once they are written (``frame`` keeps its columns only).

        At a million features they are a million geometries: freeing them takes
        a good part of a second, which a caller should not spend after its commit.

        Examples
        --------
        >>> import twin
        >>> spec = twin.read_mapping("data/samples/mapping.yaml")["districts"]
        >>> prepared = prepare_import(spec, None)
        >>> columns = list(prepared.frame.columns)
        >>> prepared.release()
        >>> len(prepared.frame), list(prepared.frame.columns) == columns
        (0, True)
        """
        self.frame = self.frame.iloc[:0].copy()  # a copy: a slice would keep them alive


def prepare_import(
    spec: ImportSpec,
    twin_crs: pyproj.CRS | None,
    progress: Progress | None = None,
    *,
    frame: gpd.GeoDataFrame | None = None,
    twin_extent: tuple[float, float, float, float] | None = None,
) -> PreparedImport:
    """Read and check one source; nothing is written.

    Raises
    ------
    SourceError, SchemaError, CRSError
        When the source cannot be imported at all.
    RejectedFeaturesError
        When ``spec.strict`` and any feature had to be rejected.
    """
    started = time.perf_counter()
    step = progress or (lambda stage, fraction: None)
    kind = get_kind(spec.kind)
    check_layer_name(spec.layer)
    guards.check_classification(spec.classification)
    step("reading", 0.0)
    if frame is not None:
        data = _in_memory_source(frame)
        digest: Future[str] = Future()
        digest.set_result(frame_checksum(frame))
    else:
        digest = _checksum_in_background(spec)
        data = read_source(
            spec.source,
            kind=kind.name,
            source_layer=spec.source_layer,
            encoding=spec.encoding,
            where=spec.where,
            x=spec.x,
            y=spec.y,
            wkt=spec.wkt,
        )
    report = _report_for(spec, kind.name, data)
    if report.read == 0:
        guards.check_something_imported(0, 0, spec.layer, report.source)
    step("validating", 0.3)
    frame, reasons, repaired = _map_and_validate(data, spec, kind, report)
    src_crs = _source_crs(data, spec, report)
    step("reprojecting", 0.5)
    if data.format == "epanet":
        spec.local_coords = True  # INP coordinates are drawing units as often as metres
    _reject_outside_area_of_use(frame, src_crs, spec, reasons)
    frame, crs = _to_twin_crs(frame, src_crs, spec, twin_crs, reasons)
    _check_near_twin(frame, reasons, twin_extent, spec)
    report.src_crs, report.crs = src_crs.to_string(), crs.to_string()
    kept = pd.isna(reasons)
    _record_rejections(report, frame, reasons, spec, data)
    report.repaired = int((repaired & kept).sum())
    if not kept.all():
        frame = frame.loc[kept].reset_index(drop=True)
    report.imported = len(frame)
    if not spec.strict or not report.rejected:
        guards.check_something_imported(
            report.read, report.imported, spec.layer, report.source,
            [r.reason for r in report.rejections],
        )  # fmt: skip
    report.classification = _classification(spec, kind, frame, report)
    report.seconds = time.perf_counter() - started
    refuse_strict_rejections(report, spec, digest)
    return PreparedImport(frame, kind, crs, report, spec, digest)


def refuse_strict_rejections(report: ImportReport, spec: ImportSpec, digest: Future[str]) -> None:
    """Raise :class:`RejectedFeaturesError` when a ``strict`` import rejected any feature
    (the report, with the source's checksum, travels with the error)."""
    if spec.strict and report.rejected:
        first = report.rejections[0]
        report.checksum = digest.result()
        raise RejectedFeaturesError(
            f"strict import of {spec.layer}: {report.rejected} of {report.read} features "
            f"rejected (first: row {first.row}: {first.reason}); nothing was written",
            report,
        )


class SeenKeys:
    """64-bit keys met in earlier batches, each with its first row and count (sorted arrays).

    Examples
    --------
    >>> seen = SeenKeys()
    >>> seen.add(np.array([7, 3, 7], dtype=np.uint64), np.array([0, 1, 2]))
    >>> seen.lookup(np.array([3, 5, 7], dtype=np.uint64)), seen.count.tolist()
    (array([ 0, -1,  1]), [1, 2])
    """

    def __init__(self) -> None:
        self.keys = np.empty(0, dtype=np.uint64)
        self.first = np.empty(0, dtype=np.int64)
        self.count = np.empty(0, dtype=np.int64)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Position of each key in the sorted arrays; -1 when never seen."""
        if not len(self.keys):
            return np.full(len(keys), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[at] == keys, at, -1)

    def counts(self, keys: np.ndarray) -> np.ndarray:
        """How often each key was seen (0 for never)."""
        seen = self.lookup(keys)
        out = np.zeros(len(keys), dtype=np.int64)
        out[seen >= 0] = self.count[seen[seen >= 0]]
        return out

    def add(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Count ``keys`` once more; keys not seen before start at ``rows``."""
        unique, at, counts = np.unique(keys, return_index=True, return_counts=True)
        seen = self.lookup(unique)
        np.add.at(self.count, seen[seen >= 0], counts[seen >= 0])
        new = seen < 0
        where = np.searchsorted(self.keys, unique[new])  # both sorted: a linear merge
        self.keys = np.insert(self.keys, where, unique[new])
        self.first = np.insert(self.first, where, np.asarray(rows)[at[new]])
        self.count = np.insert(self.count, where, counts[new])

    def add_new(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Add ``keys`` never seen before (sorted, distinct), each seen once, at ``rows``.

        Examples
        --------
        >>> seen = SeenKeys()
        >>> seen.add(np.array([7, 3], dtype=np.uint64), np.array([0, 1]))
        >>> seen.add_new(np.array([1, 5], dtype=np.uint64), np.array([2, 3]))
        >>> seen.keys.tolist(), seen.first.tolist(), seen.count.tolist()
        ([1, 3, 5, 7], [2, 1, 3, 0], [1, 1, 1, 1])
        """
        where = np.searchsorted(self.keys, keys)
        self.keys = np.insert(self.keys, where, keys)
        self.first = np.insert(self.first, where, rows)
        self.count = np.insert(self.count, where, 1)


@dataclass
class BatchState:
    """What a batch of a streamed import must know of the batches before it.

    ``ids`` holds a 64-bit hash of every id met so far (16 bytes a feature,
    never the features themselves), so duplicates across batches are found.
    """

    first_row: int = 0  # the delivery's row number of the batch's first feature
    ids: SeenKeys = dataclasses.field(default_factory=SeenKeys)
    geometries: SeenKeys = dataclasses.field(default_factory=SeenKeys)


class PreparedBatch(NamedTuple):
    """One batch of a delivery read in batches, ready to store."""

    frame: gpd.GeoDataFrame  # the kept features: uid, fields…, geometry
    report: ImportReport  # the batch's report
    spec: ImportSpec  # as the batch used it (``id`` follows a renamed id field)
    wkb: pa.Array | None  # each kept feature's geometry as read (WKB); null: changed


def prepare_batch(
    data: SourceData,
    spec: ImportSpec,
    twin_crs: pyproj.CRS,
    earlier: BatchState,
    *,
    twin_extent: tuple[float, float, float, float] | None = None,
) -> PreparedBatch:
    """Map, validate, identify and reproject one batch of a delivery read in batches.

    The same steps as :func:`prepare_import`, with rows numbered in the whole
    delivery and ids checked against the earlier batches (``earlier``, updated).
    The checks over the whole delivery (something imported, ``strict``) are the
    caller's, once every batch is done. When the batch came with its WKB
    (:attr:`SourceData.wkb`), the result has it for every feature whose geometry
    no step changed (not repaired, unwrapped nor reprojected), so it is stored
    without being encoded again.
    """
    read = np.array(data.frame.geometry.array, dtype=object)  # keeps them alive: see _as_read
    spec = dataclasses.replace(spec, fields=dict(spec.fields), set=dict(spec.set))
    kind = get_kind(spec.kind)
    report = _report_for(spec, kind.name, data)
    frame, reasons, repaired = _map_and_validate(data, spec, kind, report, earlier)
    src_crs = _source_crs(data, spec, report)
    _reject_outside_area_of_use(frame, src_crs, spec, reasons)
    frame, crs = _to_twin_crs(frame, src_crs, spec, twin_crs, reasons, earlier)
    _check_near_twin(frame, reasons, twin_extent, spec)
    report.src_crs, report.crs = src_crs.to_string(), crs.to_string()
    kept = pd.isna(reasons)
    _record_rejections(report, frame, reasons, spec, data, earlier.first_row)
    report.repaired = int((repaired & kept).sum())
    if not kept.all():
        frame = frame.loc[kept].reset_index(drop=True)
    report.imported = len(frame)
    report.classification = _classification(spec, kind, frame, report)
    earlier.first_row += report.read
    wkb = _as_read(data.wkb, read, kept, frame) if data.wkb is not None else None
    return PreparedBatch(frame, report, spec, wkb)


_PLAIN_WKB = (*range(1, 8), *range(1001, 1008))  # ISO 2D and Z simple-feature types


def _as_read(
    wkb: pa.Array, read: np.ndarray, kept: np.ndarray, frame: gpd.GeoDataFrame
) -> pa.Array:
    """The source WKB of each row of ``frame`` (the ``kept`` rows of the batch) whose
    geometry is the very object read (``read``: holding them, it keeps every ``id``
    unique); null where a step made a new geometry, and where the WKB is not
    little-endian 2D or Z (M values, curves: shapely encodes those as before)."""
    rows = np.flatnonzero(kept)
    final = np.asarray(frame.geometry.array, dtype=object)
    same = _ids(final) == _ids(read[rows])
    if len(rows) < len(wkb):
        wkb = wkb.take(pa.array(rows))
    same &= _plain_wkb(wkb)
    if same.all():
        return wkb
    return pc.if_else(pa.array(same), wkb, pa.nulls(len(wkb), wkb.type))


def _ids(values: np.ndarray) -> np.ndarray:
    """Which object each item of an object array is: its address, read from the array's
    own memory (references) without a Python call per item.

    Examples
    --------
    >>> a, b = object(), object()
    >>> (_ids(np.array([a, b, a], dtype=object)) == _ids(np.array([a, a, a]))).tolist()
    [True, False, True]
    """
    values = np.ascontiguousarray(values, dtype=object)
    if not len(values):
        return np.empty(0, dtype=np.uintp)
    references = (ctypes.c_void_p * len(values)).from_address(values.ctypes.data)
    return np.frombuffer(memoryview(references), dtype=np.uintp).copy()  # values may go


def _plain_wkb(wkb: pa.Array) -> np.ndarray:
    """Which values are WKB of a little-endian 2D or Z point, line, polygon or collection.

    Examples
    --------
    >>> import shapely, struct
    >>> values = [shapely.Point(1, 2), shapely.Point(1, 2, 3), shapely.box(0, 0, 1, 1)]
    >>> point_m = struct.pack("<BIddd", 1, 2001, 1, 2, 3)  # ISO Point M
    >>> big_endian = struct.pack(">BIdd", 0, 1, 1, 2)
    >>> wkb = list(shapely.to_wkb(values, flavor="iso")) + [point_m, big_endian, None]
    >>> _plain_wkb(pa.array(wkb, pa.binary())).tolist()
    [True, True, True, False, False, False]
    """
    wide = pa.types.is_large_binary(wkb.type)
    window = np.frombuffer(wkb.buffers()[1], dtype=np.int64 if wide else np.int32)
    offsets = np.asarray(window[wkb.offset : wkb.offset + len(wkb) + 1], dtype=np.int64)
    out = np.zeros(len(wkb), dtype=bool)
    data = wkb.buffers()[2]
    if data is None:
        return out
    raw = np.frombuffer(data, dtype=np.uint8)
    starts = offsets[:-1]
    long = (offsets[1:] - starts >= 5) & ~_nulls(wkb)
    at = starts[long].astype(np.int64)
    code = sum(raw[at + k].astype(np.uint32) << np.uint32(8 * (k - 1)) for k in range(1, 5))
    out[long] = (raw[at] == 1) & np.isin(code, _PLAIN_WKB)
    return out


def _nulls(values: pa.Array) -> np.ndarray:
    return np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _in_memory_source(frame: gpd.GeoDataFrame) -> SourceData:
    if not isinstance(frame, gpd.GeoDataFrame):
        raise UsageError("import_frame takes a GeoDataFrame (with an active geometry column)")
    crs = pyproj.CRS.from_user_input(frame.crs) if frame.crs is not None else None
    return SourceData(frame.reset_index(drop=True), crs, "geodataframe")


def frame_checksum(frame: gpd.GeoDataFrame) -> str:
    """A content hash of an in-memory GeoDataFrame (attributes and WKB geometry)."""
    attributes = pd.DataFrame(frame.drop(columns=frame.geometry.name)).astype(str)
    rows = pd.util.hash_pandas_object(attributes, index=False).to_numpy()
    wkb = shapely.to_wkb(np.asarray(frame.geometry.array))
    geoms = pd.util.hash_array(np.where(pd.isna(wkb), b"", wkb).astype(object))
    digest = hashlib.sha256(rows.tobytes() + geoms.tobytes())
    return "frame-sha256:" + digest.hexdigest()


def _checksum_in_background(spec: ImportSpec) -> Future[str]:
    """Hash the source on another core while it is read, validated and written."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-checksum")
    try:
        return pool.submit(checksum, spec.source)
    finally:
        pool.shutdown(wait=False)


def _map_and_validate(
    data: SourceData,
    spec: ImportSpec,
    kind: LayerKind,
    report: ImportReport,
    earlier: BatchState | None = None,
) -> tuple[gpd.GeoDataFrame, np.ndarray, np.ndarray]:
    frame = _recognise_export(data.frame, spec, report)
    id_field = spec.id or _DEFAULT_ID_FIELDS.get(data.format)
    if id_field is not None and id_field not in frame.columns:
        raise SchemaError(
            f"id field {id_field!r} is not in {spec.source.name}; its fields are: "
            f"{_field_list(frame)}"
        )
    # The id may also be renamed (地块编码 -> parcel_code): follow it to its new name.
    spec.id = spec.fields.get(id_field, id_field) if id_field is not None else None
    frame = _apply_mapping(frame, spec, kind, report)
    reasons = new_reasons(len(frame))
    values = np.asarray(frame.geometry.array, dtype=object)
    valid = valid_geometries(values)  # computed once: the guard and the repair both read it
    nonfinite = guards.nonfinite_geometries(values, valid=valid)
    if nonfinite.any():
        note(reasons, nonfinite, "a coordinate is not a finite number (inf or NaN)")
        values[nonfinite] = None
        frame = frame.set_geometry(gpd.GeoSeries(values, index=frame.index, crs=frame.crs))
    geoms, repaired = check_geometries(frame.geometry, kind, reasons, valid=valid)
    frame = convert_fields(frame, kind, reasons)
    frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
    if spec.id is not None:
        _check_ids(frame[spec.id], reasons, report, earlier)
    return frame, reasons, repaired


def _recognise_export(
    frame: gpd.GeoDataFrame, spec: ImportSpec, report: ImportReport
) -> gpd.GeoDataFrame:
    """A twin export of this layer carries its uids: keep them, drop the bookkeeping columns.

    Without ``--id`` the uids come from the ``uid`` column, so re-importing an
    unedited export is a change set of zero.
    """
    if "uid" not in frame.columns or spec.id == "uid":
        return frame
    uids = frame["uid"]
    text = uids.dropna().astype(str)
    if text.empty or not text.str.startswith(spec.layer + ".").all():
        return frame
    if spec.id is None and uids.notna().all() and not text.duplicated().any():
        frame = frame.assign(**{_EXPORT_UID: text.to_numpy(dtype=object)})
    if spec.source.suffix.lower() in (".csv", ".tsv", ".txt"):
        frame = _numbers_back(_unescape(frame))  # CSV keeps no types: numbers come back as text
    drop = [c for c in ("uid", "valid_from") if c in frame.columns]
    report.warnings.append(
        f"{spec.source.name} is an export of layer {spec.layer}: its uids are kept and "
        f"its {' and '.join(drop)} columns are the twin's own bookkeeping"
    )
    return frame.drop(columns=drop)


def _unescape(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Undo the ``'`` a CSV export puts before text a spreadsheet would run as a formula."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if column == out.geometry.name or not pd.api.types.is_string_dtype(values):
            continue
        escaped = values.str.match(r"^'[=+\-@\t\r]").fillna(False).astype(bool)
        if escaped.any():
            out[column] = values.where(~escaped, values.str[1:])
    return out


def _numbers_back(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Text columns whose every value is a plain number (no leading zero) as numbers."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if column == out.geometry.name or not pd.api.types.is_string_dtype(values):
            continue
        text = values.dropna().astype(str).str.strip()
        if text.empty or text.str.match(r"^-?0\d").any():
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().sum() == len(text):
            out[column] = numbers
    return out


def _apply_mapping(
    frame: gpd.GeoDataFrame, spec: ImportSpec, kind: LayerKind, report: ImportReport
) -> gpd.GeoDataFrame:
    missing = [src for src in spec.fields if src not in frame.columns]
    if missing:
        raise SchemaError(
            f"field {missing[0]!r} (mapped to {spec.fields[missing[0]]}) is not in "
            f"{spec.source.name}; its fields are: {_field_list(frame)}"
        )
    geometry_name = frame.geometry.name
    frame = frame.rename(columns=spec.fields)
    if geometry_name != "geometry":
        frame = frame.rename_geometry("geometry")
    for name, value in spec.set.items():
        if name in frame.columns and name != "geometry":
            frame = frame.drop(columns=name)
        frame[name] = value
    renames = {**frame.attrs.get("renamed", {}), **guards.safe_field_names(frame.columns)}
    if renames:
        frame = frame.rename(columns={k: v for k, v in renames.items() if k != "geometry"})
        if spec.id in renames:
            spec.id = renames[spec.id]
        listing = ", ".join(f"{old} -> {new}" for old, new in renames.items())
        report.warnings.append(
            f"fields renamed ({listing}): the twin reserves uid, valid_from, fid, geom and "
            "geometry in any case, and GeoPackage field names ignore case"
        )
    for spec_field in kind.fields:
        if spec_field.name not in frame.columns and spec_field.default is not None:
            frame[spec_field.name] = spec_field.default
            report.warnings.append(
                f"no {spec_field.name} field: every feature set to {spec_field.default!r}"
            )
    absent = [name for name in kind.required_fields if name not in frame.columns]
    if absent:
        raise SchemaError(
            f"kind {kind.name} needs field {absent[0]!r}: map a source field to it with "
            f"fields={{'SOURCE_FIELD': '{absent[0]}'}} or give a constant with "
            f"set={{'{absent[0]}': VALUE}} "
            f"(source fields: {_field_list(frame)})"
        )
    for group in kind.require_one_of:
        if not any(name in frame.columns for name in group):
            report.warnings.append(
                f"none of {', '.join(group)} present: map one with "
                f"fields={{'SOURCE_FIELD': '{group[0]}'}}"
            )
    return frame


def _check_ids(
    ids: pd.Series, reasons: np.ndarray, report: ImportReport, earlier: BatchState | None = None
) -> None:
    text = (ids if pd.api.types.is_string_dtype(ids) else ids.astype(str)).str.strip()
    blank = (ids.isna() | text.isin(["", "nan", "None"])).to_numpy()
    note(reasons, blank, f"empty id in field {ids.name}")
    open_rows = pd.isna(reasons)
    candidates = text if open_rows.all() else text.where(open_rows)
    first_at = _first_rows(candidates, earlier)
    offset = earlier.first_row if earlier is not None else 0
    present = candidates.notna().to_numpy()
    duplicate = present & (first_at != np.arange(len(candidates)) + offset)
    report.duplicates = int(duplicate.sum())
    for i in np.flatnonzero(duplicate):
        value = candidates.iloc[i]
        reasons[i] = f"duplicate id {value!r} (first at row {first_at[i] + 1})"


def _first_rows(candidates: pd.Series, earlier: BatchState | None) -> np.ndarray:
    """For each id, the row (of the whole delivery) where it first occurs; -1 for none."""
    if earlier is not None:
        hashed = _first_rows_distinct(candidates, earlier)
        if hashed is not None:
            return hashed
    codes, uniques = pd.factorize(candidates)
    present = codes >= 0
    if not len(uniques):  # no id at all in this batch (every one blank)
        return np.full(len(codes), -1, dtype=np.int64)
    offset = earlier.first_row if earlier is not None else 0
    first = np.full(len(uniques), -1, dtype=np.int64)
    unique_codes, at = np.unique(codes[present], return_index=True)
    first[unique_codes] = np.flatnonzero(present)[at] + offset
    if earlier is not None and len(uniques):  # an earlier batch of the same delivery
        # the values are unique: categorizing first (the default) would only cost time
        keys = pd.util.hash_array(np.asarray(uniques, dtype=object), categorize=False)
        seen = earlier.ids.lookup(keys)
        known = seen >= 0
        first[known] = earlier.ids.first[seen[known]]
        earlier.ids.add(keys[~known], first[~known])
    return np.where(present, first[np.maximum(codes, 0)], -1)


def _first_rows_distinct(candidates: pd.Series, earlier: BatchState) -> np.ndarray | None:
    """:func:`_first_rows` of a batch whose ids are all distinct, told by their 64-bit
    hashes (the keys the earlier batches keep); None when two hashes are equal, for
    the exact path to say which ids repeat."""
    rows = np.flatnonzero(candidates.notna().to_numpy())
    keys = pd.util.hash_array(candidates.to_numpy(dtype=object)[rows], categorize=False)
    order = np.argsort(keys)
    keys, rows = keys[order], rows[order]
    if (keys[1:] == keys[:-1]).any():
        return None
    first = rows + earlier.first_row
    seen = earlier.ids.lookup(keys)
    known = seen >= 0
    first[known] = earlier.ids.first[seen[known]]
    earlier.ids.add_new(keys[~known], first[~known])
    out = np.full(len(candidates), -1, dtype=np.int64)
    out[rows] = first
    return out


def _source_crs(data: SourceData, spec: ImportSpec, report: ImportReport) -> pyproj.CRS:
    if spec.src_crs is not None:
        given = resolve_crs(spec.src_crs)
        if data.crs is not None and not given.equals(data.crs):
            report.warnings.append(
                f"src_crs={spec.src_crs!r} overrides the source's own CRS {data.crs.to_string()}"
            )
        return given
    if data.crs is None and spec.coords:
        return pyproj.CRS.from_epsg(4326)  # GCJ-02 and BD-09 are offsets of WGS 84 lon/lat
    if data.crs is None:
        raise CRSError(
            f"{spec.source.name} declares no CRS: say which with src_crs= "
            "(e.g. src_crs='EPSG:4490' for CGCS2000 lon/lat, src_crs='EPSG:4326' for WGS 84)"
        )
    return data.crs


def _to_twin_crs(
    frame: gpd.GeoDataFrame,
    src_crs: pyproj.CRS,
    spec: ImportSpec,
    twin_crs: pyproj.CRS | None,
    reasons: np.ndarray,
    earlier: BatchState | None = None,
) -> tuple[gpd.GeoDataFrame, pyproj.CRS]:
    frame = frame.set_crs(src_crs, allow_override=True)
    if spec.coords:
        if not src_crs.is_geographic:
            raise CRSError(
                f"coords={spec.coords!r} converts web-map lon/lat, but the source CRS "
                f"{src_crs.to_string()} is projected: drop coords= or fix src_crs="
            )
        from twin.webcoords import geometries_to_wgs84

        frame = frame.set_geometry(geometries_to_wgs84(frame.geometry, spec.coords))
    if twin_crs is None:
        twin_crs = auto_crs_for(frame.geometry[pd.isna(reasons)], src_crs)
    uid_source = frame.geometry
    if not src_crs.equals(twin_crs):
        frame = frame.to_crs(twin_crs)
        values = np.asarray(frame.geometry.array)
        bad = ~np.isfinite(shapely.bounds(values)).all(axis=1) & ~shapely.is_missing(values)
        note(reasons, bad, f"coordinates cannot be projected to {twin_crs.to_string()}")
    frame.insert(0, "uid", _uids(frame, spec, uid_source, earlier))
    return frame, twin_crs


def _reject_outside_area_of_use(
    frame: gpd.GeoDataFrame, src_crs: pyproj.CRS, spec: ImportSpec, reasons: np.ndarray
) -> None:
    """Reject features outside the source CRS's area of use; fail when most of them are."""
    kept = pd.isna(reasons)
    if spec.local_coords or not kept.any():
        return
    points = _centres(frame.geometry[kept])
    outside = guards.outside_area_of_use(points, src_crs)
    if outside.sum() * 2 > len(points):
        raise guards.crs_mismatch_error(points, src_crs, what=spec.source.name)
    mask = np.zeros(len(frame), dtype=bool)
    mask[np.flatnonzero(kept)[outside]] = True
    note(reasons, mask, f"outside the area of use of {src_crs.to_string()}")


def _check_near_twin(
    frame: gpd.GeoDataFrame,
    reasons: np.ndarray,
    twin_extent: tuple[float, float, float, float] | None,
    spec: ImportSpec,
) -> None:
    kept = pd.isna(reasons)
    if spec.local_coords or twin_extent is None or not kept.any():
        return
    values = np.asarray(frame.geometry.array, dtype=object)
    bounds = tuple(float(v) for v in shapely.total_bounds(values[kept]))
    guards.check_near_twin(bounds, twin_extent, what=spec.source.name)


def _centres(geoms: gpd.GeoSeries) -> np.ndarray:
    bounds = shapely.bounds(np.asarray(geoms.array, dtype=object))
    with np.errstate(invalid="ignore", over="ignore"):
        return np.column_stack(
            ((bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2)
        )


def _uids(
    frame: gpd.GeoDataFrame,
    spec: ImportSpec,
    source_geoms: gpd.GeoSeries,
    earlier: BatchState | None = None,
) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """``<layer>.<source id>``; without an id field, a hash of the source geometry.

    Source ids give the text column pandas would make of them (kept as Arrow text,
    never converted to Python strings and back)."""
    if _EXPORT_UID in frame.columns:
        return frame.pop(_EXPORT_UID).to_numpy(dtype=object)
    if spec.id is not None:
        ids = frame[spec.id]
        if pd.api.types.is_float_dtype(ids) and (ids.dropna() == ids.dropna().round()).all():
            ids = ids.astype("Int64")
        return (spec.layer + "." + ids.astype(str).str.strip()).array
    wkb = shapely.to_wkb(np.asarray(source_geoms.array), hex=True)
    wkb = np.where(pd.isna(wkb), "", wkb).astype(object)
    hashes = pd.util.hash_array(wkb, hash_key=_UID_HASH_KEY, categorize=False)  # same hashes
    base = pd.Series([f"{spec.layer}.g{h:016x}" for h in hashes.tolist()])
    occurrence = base.groupby(base).cumcount()
    if earlier is not None:  # the same geometry in an earlier batch: count on from there
        occurrence += earlier.geometries.counts(hashes)
        earlier.geometries.add(hashes, np.arange(len(hashes)) + earlier.first_row)
    suffix = np.where(occurrence > 0, "-" + (occurrence + 1).astype(str), "")
    return (base + suffix).to_numpy(dtype=object)


def _record_rejections(
    report: ImportReport,
    frame: gpd.GeoDataFrame,
    reasons: np.ndarray,
    spec: ImportSpec,
    data: SourceData,
    first_row: int = 0,
) -> None:
    rows = np.flatnonzero(~pd.isna(reasons))
    report.rejected = len(rows)
    if not rows.size:
        report.rejections = []
        return
    ids = frame[spec.id].to_numpy(dtype=object) if spec.id is not None else None
    report.rejections = [
        Rejection(
            int(i) + first_row + 1,
            None if ids is None or pd.isna(ids[i]) else str(ids[i]),
            str(reasons[i]),
        )
        for i in rows
    ]
    log.info("%s: %d of %d features rejected", spec.layer, rows.size, len(frame))


def _classification(
    spec: ImportSpec, kind: LayerKind, frame: gpd.GeoDataFrame, report: ImportReport
) -> str:
    if spec.classification is not None:
        return Classification(spec.classification).value
    if kind.name == "sensor" and "sensor_type" in frame.columns:
        types = set(frame["sensor_type"].dropna().astype(str).str.lower())
        cameras = types & set(RESTRICTED_SENSOR_TYPES)
        if cameras:
            report.warnings.append(
                f"layer holds {', '.join(sorted(cameras))} locations: classified restricted"
            )
            return Classification.RESTRICTED.value
    return kind.classification.value


def _field_list(frame: pd.DataFrame) -> str:
    names = [str(c) for c in frame.columns if c != frame.geometry.name]
    return ", ".join(names) if names else "(none)"


def _report_for(spec: ImportSpec, kind: str, data: SourceData) -> ImportReport:
    """An empty report of importing ``data`` (as read) by ``spec``."""
    return ImportReport(
        layer=spec.layer,
        kind=kind,
        source=str(spec.source),
        source_format=data.format,
        encoding=data.encoding,
        read=len(data.frame),
    )
