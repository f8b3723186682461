"""Importing very large deliveries in batches, with memory bounded by the batch.

:meth:`twin.Twin.import_spec` sends a GDAL source (GeoPackage, Shapefile,
FlatGeobuf, FileGDB) holding more than :data:`STREAM_ABOVE` features here.
The delivery is read :data:`BATCH_SIZE` features at a time
(:func:`twin.io.read_source_batches`); each batch is mapped, validated,
identified and reprojected (:func:`twin.imports.prepare_batch`) and written
to the working copy before the next is read. Ids are checked for duplicates
across batches by their 64-bit hashes, never by holding the features.

A re-import compares batch by batch too: the stored layer is read once in
batches into a uid-hash → fingerprint table (about 34 bytes a feature) while its
rows are copied aside to a scratch GeoPackage beside the working copy; the new
batches are then compared with that table and written, and the stored
versions that end (changed, removed) are moved from the scratch copy to the
layer's history. The result — uids, geometries, fields, ``valid_from``,
change set, history, provenance — is the one-frame import's
(``tests/test_bigimport.py`` compares them).

Examples
--------
>>> import tempfile, pathlib, twin
>>> city = twin.Twin.create(pathlib.Path(tempfile.mkdtemp()) / "c.gpkg", crs="EPSG:4544")
>>> spec = twin.ImportSpec(source=pathlib.Path("data/samples/networks.gpkg"), layer="valves",
...                        kind="valve", id="valve_id", source_layer="valves")
>>> import_streamed(city, spec, batch_size=50).imported == len(city.layer("valves"))
True
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from twin import guards, history
from twin.imports import BatchState, Progress, prepare_batch, refuse_strict_rejections
from twin.io import checksum, ramped_sizes, read_source_batches, streamable_count
from twin.kinds import Classification, get_kind
from twin.mapping import ImportSpec, check_layer_name
from twin.reports import ImportReport
from twin.store import GpkgSession, GpkgStore, records
from twin.store.files import Encoded, fsync_file, write_stream
from twin.store.gdalsink import spare_core
from twin.store.order import UidDigest, order_key
from twin.store.records import LayerSummary

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = ["BATCH_SIZE", "STREAM_ABOVE", "import_streamed", "streams"]

STREAM_ABOVE = 500_000  # features: larger deliveries are imported in batches
BATCH_SIZE = 200_000  # features a batch
HELPER_BATCH = 50_000  # batches this large are written by GDAL in a helper process (idle core)
_MS_UTC = pd.DatetimeTZDtype(unit="ms", tz="UTC")
_MULTI_TYPES = (4, 5, 6)  # shapely type ids of MultiPoint, MultiLineString, MultiPolygon


def streams(city: Twin, spec: ImportSpec) -> bool:
    """Whether ``spec`` is imported in batches: a large GDAL source into a GeoPackage twin.

    Examples
    --------
    >>> import twin, pathlib
    >>> spec = twin.ImportSpec(source=pathlib.Path("data/samples/networks.gpkg"),
    ...                        layer="valves", kind="valve", source_layer="valves")
    >>> streams(city, spec)  # a few hundred valves: read whole
    False
    """
    if not isinstance(city.store, GpkgStore) or city.crs is None:
        return False
    count = streamable_count(spec.source, source_layer=spec.source_layer)
    return count is not None and count > STREAM_ABOVE


def import_streamed(
    city: Twin,
    spec: ImportSpec,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> ImportReport:
    """Import ``spec`` into ``city`` in batches of ``batch_size`` features; all or nothing.

    Parameters
    ----------
    city : Twin
        A GeoPackage twin with a CRS (not ``auto``).
    spec : ImportSpec
        The delivery; its source must be one :func:`twin.io.streamable_count` accepts.
    batch_size : int, default BATCH_SIZE
        Features read, checked and written at a time.
    progress : callable, optional
        Called as ``progress(stage, fraction)``.

    Returns
    -------
    ImportReport
        The same report as the one-frame import's.
    """
    started = time.perf_counter()
    step = progress or (lambda stage, fraction: None)
    kind = get_kind(spec.kind)
    check_layer_name(spec.layer)
    guards.check_classification(spec.classification)
    step("reading", 0.0)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-checksum") as pool:
        digest = pool.submit(checksum, spec.source)
        writer = _Writer(city, spec, batch_size, step)
        with city.store.session() as session:
            try:
                report = writer.run(session, started, digest)
                # the layer is written: its pages go to disk while the records are made,
                # so the commit's fsync has little left to write
                flushed = pool.submit(fsync_file, session.work)
                report.time = _sql_time(writer.now)
                changes = writer.changes()
                assert writer.summary is not None
                records.fill_counts(report, changes, writer.summary.count)
                session.record_import(writer.spec, report, kind, writer.summary, changes)
                order = f"{report.import_id}:{writer.order.hexdigest()}"
                session.set_meta(order_key(writer.spec.layer), order)
                flushed.result()
            finally:
                writer.drop_scratch()
    step("done", 1.0)
    return report


class _Writer:
    """One streamed import: its batches, merged report and change set so far."""

    def __init__(self, city: Twin, spec: ImportSpec, batch_size: int, step: Progress) -> None:
        self.city, self.spec, self.batch_size, self.step = city, spec, batch_size, step
        self.delivery = spec  # as given: every batch maps its source field names
        self.total = streamable_count(spec.source, source_layer=spec.source_layer) or 1
        self.earlier = BatchState()
        self.summary: LayerSummary | None = None
        self.stored: _Stored | None = None
        self.added: list[np.ndarray] = []
        self.changed: list[np.ndarray] = []
        self.unchanged = 0
        self.removed = np.empty(0, dtype=object)
        self.now = pd.Timestamp.now(tz="UTC")
        self.single = False  # a batch was written with single parts only
        self.order = UidDigest()  # the uids as written (see twin.store.order)
        # GDAL writes in a helper process when batches are large and a core is idle
        self.helper = batch_size >= HELPER_BATCH and spare_core()

    def run(self, session: GpkgSession, started: float, digest: Future[str]) -> ImportReport:
        """Prepare, compare and write every batch; returns the merged report."""
        self.now = session.next_time()
        import_id = session.next_import_id()
        report = ImportReport(layer=self.spec.layer, kind=self.spec.kind, source="")
        with warnings.catch_warnings():  # a multi-part after single parts: see _promote
            warnings.filterwarnings("ignore", "A geometry of type", RuntimeWarning)
            frames = self._frames(session, report)
            write_stream(session.work, self.spec.layer, frames, helper=self.helper)
        assert self.summary is not None  # read_source_batches yields at least one batch
        if self.single and np.isin(self.summary.type_ids, _MULTI_TYPES).any():
            self._promote(session)
        report.import_id = import_id
        report.seconds = time.perf_counter() - started
        _check_whole(report, self.spec, digest)
        report.checksum = digest.result()
        if self.stored is not None:
            self._retire(session, report)
        return report

    def _frames(self, session: GpkgSession, report: ImportReport) -> Iterator[Encoded]:
        """Each batch prepared, compared with the stored layer, with its ``valid_from``
        and the WKB of its geometries as read (stored as they are where unchanged).

        The first batch's report becomes ``report``; the stored layer (a re-import)
        is read before the first batch is handed over, so before it is replaced.
        """
        exists = session.has_layer(self.spec.layer)
        extent = _extent(self.city, self.spec.layer)
        crs = self.city.crs
        assert crs is not None  # streams() sends only twins with a CRS
        sizes = [self.batch_size]  # with a helper, small first and last batches: see ramped_sizes
        if self.helper:
            sizes = ramped_sizes(self.total, self.batch_size, first=self.batch_size // 8)
        batches = read_source_batches(
            self.spec.source,
            batch_size=sizes,
            source_layer=self.spec.source_layer,
            encoding=self.spec.encoding,
            where=self.spec.where,
            keep_wkb=True,
        )
        for n, data in enumerate(batches):
            frame, part, used, wkb = prepare_batch(
                data, self.delivery, crs, self.earlier, twin_extent=extent
            )
            if n == 0:
                vars(report).update(vars(part))
                self.spec = dataclasses.replace(self.spec, id=used.id)
                if exists:
                    self.stored = _Stored.read(session, self.spec.layer, frame, self.helper)
            else:
                _merge(report, part)
            frame = self._dated(frame)
            if n == 0 and self.summary is not None:  # the layer is made single-part?
                self.single = not np.isin(self.summary.type_ids, _MULTI_TYPES).any()
            yield Encoded(frame, wkb)
            self.step("writing", min(0.9, 0.9 * self.earlier.first_row / self.total))

    def _dated(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """The batch with its ``valid_from``: kept for unchanged features, now for the others."""
        now_ms = self.now.value // 1_000_000
        if self.stored is not None:
            starts, same, known = self.stored.compare(frame, now_ms)
            self.added.append(frame["uid"].to_numpy()[~known])
            self.changed.append(frame["uid"].to_numpy()[known & ~same])
            self.unchanged += int(same.sum())
        else:
            starts = np.full(len(frame), now_ms, dtype=np.int64)
        valid_from = pd.Series(pd.to_datetime(starts, unit="ms", utc=True), index=frame.index)
        frame = frame.assign(valid_from=valid_from.astype(_MS_UTC))
        self.order.update(frame["uid"])
        summary = LayerSummary.of(frame)
        self.summary = summary if self.summary is None else self.summary + summary
        return frame

    def _promote(self, session: GpkgSession) -> None:
        """Rewrite the layer with multi-parts only, as the one-frame write stores a layer
        holding any multi-part (a repair can make one in a late batch)."""
        layer = self.spec.layer
        scratch = session.work.with_name(session.work.name.replace(".tmp.gpkg", "-multi.tmp.gpkg"))
        try:
            for source, target in ((session.work, scratch), (scratch, session.work)):
                batches = read_source_batches(
                    source, batch_size=self.batch_size, source_layer=layer
                )
                frames = (d.frame for d in batches)
                write_stream(target, layer, frames, multi=True, spatial_index=target != scratch)
        finally:
            scratch.unlink(missing_ok=True)

    def _retire(self, session: GpkgSession, report: ImportReport) -> None:
        """Guards on the whole change set, then the ended versions to the history table."""
        assert self.stored is not None
        stored = self.stored
        n_removed = int((~stored.matched).sum())
        info = self.city.info(self.spec.layer)
        guards.check_same_delivery(
            self.spec.layer,
            stored_id=info.id_field,
            stored_source=info.source,
            new_id=self.spec.id,
            new_source=report.source,
            matched_share=(len(stored) - n_removed) / max(len(stored), 1),
            replace=self.spec.replace,
        )
        guards.check_removals(
            self.spec.layer,
            len(stored),
            n_removed,
            allow=self.spec.allow_removals,
            max_share=self.spec.max_removed_share,
        )
        removed = []
        for ended in stored.retired(self.now, report.import_id, self.batch_size):
            removed.append(ended["uid"].to_numpy()[ended["change"].to_numpy() == "removed"])
            session.append_history(self.spec.layer, ended)
        self.removed = np.concatenate(removed) if removed else np.empty(0, dtype=object)

    def changes(self) -> history.ChangeSet | None:
        """The change set (its retired rows are in the history table already)."""
        if self.stored is None:
            return None
        return history.ChangeSet(
            added=_joined(self.added),
            changed=_joined(self.changed),
            removed=self.removed,
            unchanged=np.empty(self.unchanged, dtype=object),
            retired=gpd.GeoDataFrame(),
            valid_from=np.empty(0, dtype=object),
        )

    def drop_scratch(self) -> None:
        if self.stored is not None:
            self.stored.scratch.unlink(missing_ok=True)


class _Stored:
    """The stored layer of a re-import: a uid-hash → fingerprint table and a scratch copy.

    The keys are sorted; ``rows`` gives each key's position in the stored layer.
    """

    def __init__(self, scratch: Path, layer: str, columns: list[str]) -> None:
        self.scratch, self.layer, self.columns = scratch, layer, columns
        self.keys = np.empty(0, dtype=np.uint64)
        self.prints = np.empty(0, dtype=np.uint64)
        self.starts = np.empty(0, dtype=np.int64)
        self.rows = np.empty(0, dtype=np.int64)
        self.matched = np.empty(0, dtype=bool)
        self.changed = np.empty(0, dtype=bool)

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def read(
        cls, session: GpkgSession, layer: str, first: gpd.GeoDataFrame, helper: bool
    ) -> _Stored:
        """Fingerprint the stored layer batch by batch, copying its rows aside (written by
        a helper process when ``helper``)."""
        skip = (*history.BOOKKEEPING, "geometry")
        fields = pyogrio.read_info(session.work, layer=layer)["fields"]
        columns = sorted({str(c) for c in (*fields, *first.columns) if c not in skip})
        scratch = session.work.with_name(session.work.name.replace(".tmp.gpkg", "-old.tmp.gpkg"))
        stored = cls(scratch, layer, columns)
        keys, prints, starts = [], [], []

        def parts() -> Iterator[gpd.GeoDataFrame]:
            batches = read_source_batches(session.work, batch_size=BATCH_SIZE, source_layer=layer)
            for data in batches:
                part = data.frame
                keys.append(_uid_keys(part["uid"]))
                prints.append(history.fingerprints(part, columns))
                starts.append(_millis(part["valid_from"]))
                yield part

        write_stream(scratch, layer, parts(), spatial_index=False, helper=helper)
        order = np.argsort(np.concatenate(keys), kind="stable")
        stored.keys = np.concatenate(keys)[order]
        stored.prints = np.concatenate(prints)[order]
        stored.starts = np.concatenate(starts)[order]
        stored.rows = order
        stored.matched = np.zeros(len(order), dtype=bool)
        stored.changed = np.zeros(len(order), dtype=bool)
        return stored

    def compare(
        self, frame: gpd.GeoDataFrame, now_ms: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For a new batch: each feature's ``valid_from`` (ms), whether unchanged, whether known."""
        keys = _uid_keys(frame["uid"])
        if not len(self.keys):
            none = np.zeros(len(keys), dtype=bool)
            return np.full(len(keys), now_ms, dtype=np.int64), none, none
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        known = self.keys[at] == keys
        same = known & (self.prints[at] == history.fingerprints(frame, self.columns))
        self.matched[at[known]] = True
        self.changed[at[known & ~same]] = True
        return np.where(same, self.starts[at], now_ms), same, known

    def retired(
        self, now: pd.Timestamp, import_id: int | None, batch_size: int
    ) -> Iterator[gpd.GeoDataFrame]:
        """The stored versions that end now (changed, removed), in layer order, batch by batch."""
        ends = np.zeros(len(self.keys), dtype=bool)
        removed = np.zeros(len(self.keys), dtype=bool)
        ends[self.rows] = self.changed | ~self.matched
        removed[self.rows] = ~self.matched
        if not ends.any():
            return
        first_row = 0
        for data in read_source_batches(
            self.scratch, batch_size=batch_size, source_layer=self.layer
        ):
            rows = np.arange(first_row, first_row + len(data.frame))
            first_row += len(data.frame)
            pick = ends[rows]
            if pick.any():
                out = data.frame.loc[pick].copy()
                out["change"] = np.where(removed[rows][pick], "removed", "changed")
                yield out.assign(valid_to=now, import_id=import_id)


def _merge(report: ImportReport, part: ImportReport) -> None:
    """Add one batch's report to the delivery's."""
    for name in ("read", "imported", "repaired", "rejected", "duplicates"):
        setattr(report, name, getattr(report, name) + getattr(part, name))
    report.rejections.extend(part.rejections)
    report.warnings.extend(w for w in part.warnings if w not in report.warnings)
    if part.classification == Classification.RESTRICTED.value:
        report.classification = part.classification


def _check_whole(report: ImportReport, spec: ImportSpec, digest: Future[str]) -> None:
    """The checks over the whole delivery: something imported; ``strict`` rejects nothing."""
    if report.read == 0 or not spec.strict or not report.rejected:
        guards.check_something_imported(
            report.read, report.imported, spec.layer, report.source,
            [r.reason for r in report.rejections],
        )  # fmt: skip
    refuse_strict_rejections(report, spec, digest)


def _extent(city: Twin, exclude: str) -> tuple[float, float, float, float] | None:
    """The extent of every layer but ``exclude`` (None while there is none)."""
    boxes = [i.extent for i in city.layer_infos() if i.name != exclude and i.extent]
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _uid_keys(uids: pd.Series) -> np.ndarray:
    return pd.util.hash_array(uids.to_numpy(dtype=object), categorize=False)  # uids: unique


def _millis(stamps: pd.Series) -> np.ndarray:
    utc = pd.to_datetime(stamps, utc=True).dt.tz_convert(None)
    return utc.to_numpy(dtype="datetime64[ms]").astype(np.int64)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def _sql_time(stamp: pd.Timestamp) -> str:
    """Millisecond ISO 8601 in UTC, as GDAL stores a GeoPackage DATETIME."""
    utc = stamp.tz_convert("UTC")
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
