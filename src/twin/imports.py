"""The import pipeline: read, map, validate, identify, reproject.

:func:`prepare_import` turns one source into features ready for the twin and
an :class:`ImportReport`; :class:`twin.Twin` then compares them with the layer
already stored and commits the change set atomically (:mod:`twin.history`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
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
    report = ImportReport(
        layer=spec.layer,
        kind=kind.name,
        source=str(spec.source),
        source_format=data.format,
        encoding=data.encoding,
        read=len(data.frame),
    )
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
        guards.check_something_imported(report.read, report.imported, spec.layer, report.source)
    report.classification = _classification(spec, kind, frame, report)
    report.seconds = time.perf_counter() - started
    if spec.strict and report.rejected:
        first = report.rejections[0]
        report.checksum = digest.result()
        raise RejectedFeaturesError(
            f"strict import of {spec.layer}: {report.rejected} of {report.read} features "
            f"rejected (first: row {first.row}: {first.reason}); nothing was written",
            report,
        )
    return PreparedImport(frame, kind, crs, report, spec, digest)


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
    data: SourceData, spec: ImportSpec, kind: LayerKind, report: ImportReport
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
        _check_ids(frame[spec.id], reasons, report)
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


def _check_ids(ids: pd.Series, reasons: np.ndarray, report: ImportReport) -> None:
    text = (ids if pd.api.types.is_string_dtype(ids) else ids.astype(str)).str.strip()
    blank = (ids.isna() | text.isin(["", "nan", "None"])).to_numpy()
    note(reasons, blank, f"empty id in field {ids.name}")
    candidates = text.where(pd.isna(reasons))
    dup = candidates.notna() & candidates.duplicated(keep="first")
    report.duplicates = int(dup.sum())
    if report.duplicates:
        first_row = {v: i for i, v in reversed(list(enumerate(candidates.tolist())))}
        for i in np.flatnonzero(dup.to_numpy()):
            value = candidates.iloc[i]
            reasons[i] = f"duplicate id {value!r} (first at row {first_row[value] + 1})"


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
    frame.insert(0, "uid", _uids(frame, spec, uid_source))
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
    bounds = tuple(float(v) for v in frame.geometry[kept].total_bounds)
    guards.check_near_twin(bounds, twin_extent, what=spec.source.name)


def _centres(geoms: gpd.GeoSeries) -> np.ndarray:
    bounds = shapely.bounds(np.asarray(geoms.array, dtype=object))
    with np.errstate(invalid="ignore", over="ignore"):
        return np.column_stack(
            ((bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2)
        )


def _uids(frame: gpd.GeoDataFrame, spec: ImportSpec, source_geoms: gpd.GeoSeries) -> np.ndarray:
    """``<layer>.<source id>``; without an id field, a hash of the source geometry."""
    if _EXPORT_UID in frame.columns:
        return frame.pop(_EXPORT_UID).to_numpy(dtype=object)
    if spec.id is not None:
        ids = frame[spec.id]
        if pd.api.types.is_float_dtype(ids) and (ids.dropna() == ids.dropna().round()).all():
            ids = ids.astype("Int64")
        return (spec.layer + "." + ids.astype(str).str.strip()).to_numpy(dtype=object)
    wkb = shapely.to_wkb(np.asarray(source_geoms.array), hex=True)
    wkb = np.where(pd.isna(wkb), "", wkb).astype(object)
    hashes = pd.util.hash_array(wkb, hash_key=_UID_HASH_KEY)
    base = pd.Series([f"{spec.layer}.g{h:016x}" for h in hashes.tolist()])
    occurrence = base.groupby(base).cumcount()
    suffix = np.where(occurrence > 0, "-" + (occurrence + 1).astype(str), "")
    return (base + suffix).to_numpy(dtype=object)


def _record_rejections(
    report: ImportReport,
    frame: gpd.GeoDataFrame,
    reasons: np.ndarray,
    spec: ImportSpec,
    data: SourceData,
) -> None:
    rows = np.flatnonzero(~pd.isna(reasons))
    report.rejected = len(rows)
    ids = frame[spec.id].to_numpy(dtype=object) if spec.id is not None else None
    report.rejections = [
        Rejection(
            int(i) + 1, None if ids is None or pd.isna(ids[i]) else str(ids[i]), str(reasons[i])
        )
        for i in rows
    ]
    if rows.size:
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
