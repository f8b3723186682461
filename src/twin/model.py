"""The twin: named layers in one projected CRS, with provenance and history."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Self

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from twin import bigimport, guards, history
from twin.crs import require_projected, resolve_crs
from twin.errors import FeatureNotFoundError, LayerNotFoundError, TwinExistsError, UsageError
from twin.imports import ImportReport, PreparedImport, Progress, prepare_import
from twin.kinds import Category, get_kind
from twin.mapping import ImportSpec, read_mapping
from twin.store import (
    GpkgStore,
    PostgisStore,
    StoreSession,
    gpkgread,
    open_store,
    records,
    schema,
)
from twin.store.gpkg import history_table
from twin.store.order import order_key, order_value

__all__ = ["LayerInfo", "Twin"]

DateLike = str | date | datetime | pd.Timestamp
_MS_UTC = pd.DatetimeTZDtype(unit="ms", tz="UTC")  # what a GeoPackage DATETIME holds


@dataclass(frozen=True)
class LayerInfo:
    """Metadata of one layer.

    Examples
    --------
    >>> info = city.info("buildings")
    >>> info.kind, info.category_zh
    ('building', '时空基础')
    """

    name: str
    kind: str
    category: str
    classification: str
    feature_count: int
    extent: tuple[float, float, float, float] | None
    geometry_type: str | None
    id_field: str | None
    source: str | None
    created: str
    updated: str
    last_import: int | None

    @property
    def category_zh(self) -> str:
        return Category(self.category).label_zh


class Twin:
    """A city information model stored in one GeoPackage: its layers, provenance and history.

    This is the store-level twin; :class:`twin.Twin` (:class:`twin.analyses.Twin`)
    adds the relations build and the one-call analyses on top of it.

    Examples
    --------
    >>> import tempfile, pathlib, twin
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> city = twin.Twin.create(folder / "city.gpkg", crs="EPSG:4544")
    >>> report = city.import_layer("data/samples/networks.gpkg", layer="valves",
    ...                            kind="valve", source_layer="valves", id="valve_id")
    >>> city.layers
    ['valves']
    >>> city.layer("valves").crs.to_epsg()
    4544
    """

    def __init__(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        self.store: GpkgStore | PostgisStore = open_store(path, force=force)
        self.store.require()
        self.store.check()

    # -- creating and opening -------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        crs: Any = "auto",
        name: str | None = None,
        overwrite: bool = False,
    ) -> Self:
        """Create an empty twin: a GeoPackage file, or a schema in PostGIS.

        Parameters
        ----------
        path : path-like or str
            Where to write the GeoPackage, or a PostGIS URL
            (``postgresql://user@host:5432/db?schema=chengdu``).
        crs : str, int or pyproj.CRS, default "auto"
            The twin's one projected CRS. ``"auto"`` picks it at the first
            import: the CGCS2000 3-degree Gauss-Krüger zone for data in China,
            the UTM zone elsewhere.
        name : str, optional
            A title for the twin (defaults to the file name).
        overwrite : bool, default False
            Replace an existing file.
        """
        store = open_store(path)
        exists = store.exists() if isinstance(store, PostgisStore) else store.path.exists()
        if exists and not overwrite:
            raise TwinExistsError(f"{_location(store)} exists: pass overwrite=True to replace it")
        crs_text = "auto"
        if not (isinstance(crs, str) and crs.lower() == "auto"):
            resolved = resolve_crs(crs)
            require_projected(resolved, "a twin")
            crs_text = _crs_text(resolved)
        meta = {
            "name": name or store.path.stem,
            "crs": crs_text,
            "created": schema.now_utc(),
            "schema_version": schema.SCHEMA_VERSION,
            "generator": "citytwin",
        }
        store.create(meta)
        return cls(path)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, force: bool = False) -> Self:
        """Open an existing twin file.

        Parameters
        ----------
        path : path-like
            The twin GeoPackage.
        force : bool, default False
            Let writes replace the file even when it is read-only (its mode,
            owner and group are kept either way).
        """
        return cls(path, force=force)

    @property
    def path(self) -> Path:
        """The twin file (for a PostGIS twin, a path named after its schema: see ``location``)."""
        return self.store.path

    @property
    def location(self) -> str:
        """Where the twin lives: its file, or its PostGIS URL (password hidden)."""
        return _location(self.store)

    def __repr__(self) -> str:
        return f"<Twin {self.path.name}: {len(self.layers)} layers, {self.crs_text}>"

    # -- metadata ---------------------------------------------------------
    @property
    def meta(self) -> dict[str, str]:
        """The twin's settings (``twin_meta``)."""
        return self.store.meta()

    @property
    def crs_text(self) -> str:
        return self.meta["crs"]

    @property
    def crs(self) -> pyproj.CRS | None:
        """The twin CRS, or None while it is ``auto`` and no layer was imported."""
        text = self.crs_text
        return None if text == "auto" else pyproj.CRS.from_user_input(text)

    @property
    def layers(self) -> list[str]:
        """Layer names, in the order they were first imported."""
        return list(self.store.layer_rows()["name"])

    def layer_names(self, kind: str | None = None) -> list[str]:
        """Layer names, optionally only those of one kind (``layer_names("grid")``)."""
        return [i.name for i in self.layer_infos() if kind is None or i.kind == kind]

    def info(self, layer: str) -> LayerInfo:
        """Metadata of ``layer``: kind, category, classification, count, extent…"""
        rows = self.store.layer_rows(layer)
        if rows.empty:
            raise self._no_layer(layer)
        return _layer_info(rows.iloc[0])

    def layer_infos(self) -> list[LayerInfo]:
        """Metadata of every layer."""
        rows = self.store.layer_rows()
        return [_layer_info(row) for _, row in rows.iterrows()]

    def fields(self, layer: str) -> list[str]:
        """The attribute columns ``layer`` stores (``uid`` and geometry excluded)."""
        if layer not in self.layers:
            raise self._no_layer(layer)
        return [f for f in self.store.fields(layer) if f != "uid"]

    # -- reading layers ---------------------------------------------------
    def layer(
        self,
        name: str,
        *,
        as_of: DateLike | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        columns: list[str] | None = None,
    ) -> gpd.GeoDataFrame:
        """The layer as a GeoDataFrame indexed by ``uid``, in the twin CRS.

        Parameters
        ----------
        name : str
            Layer name.
        as_of : str, date or datetime, optional
            Return the layer as it was at that moment (UTC when no time zone is
            given): replaced and removed versions come back from the history.
        bbox : tuple, optional
            ``(minx, miny, maxx, maxy)`` in the twin CRS.
        columns : list of str, optional
            Read only these attribute columns.
        """
        info = self.info(name)
        kwargs: dict[str, Any] = {"bbox": bbox}
        if columns is not None:
            kwargs["columns"] = list(dict.fromkeys(["uid", "valid_from", *columns]))
        if as_of is None:
            frame = self.store.read_table(name, **kwargs)
        else:
            frame = self._as_of(name, _timestamp(as_of), kwargs)
        return _restore_types(frame, info.kind).set_index("uid")

    def layer_batches(self, name: str, *, batch_size: int = 200_000) -> Iterator[gpd.GeoDataFrame]:
        """The layer as :meth:`layer` gives it, ``batch_size`` rows at a time, in its order.

        A GeoPackage twin is read by ranges of its fid (one indexed range scan
        a batch), so memory holds one batch; a PostGIS twin is read whole, as
        one batch. Concatenated, the batches equal :meth:`layer`. A twin file
        replaced between two batches is the caller's to detect (its identity).

        Examples
        --------
        >>> parts = list(city.layer_batches("roads", batch_size=50))
        >>> sum(len(p) for p in parts) == len(city.layer("roads")), len(parts) > 1
        (True, True)
        """
        kind = self.info(name).kind
        if not isinstance(self.store, GpkgStore):
            yield _restore_types(self.store.read_table(name), kind).set_index("uid")
            return
        fids = gpkgread.fid_range(self.path, name)
        if fids is None:  # an empty layer
            yield _restore_types(self.store.read_table(name), kind).set_index("uid")
            return
        for start in range(fids[0], fids[1] + 1, batch_size):
            where = f"fid >= {start} AND fid < {start + batch_size}"
            frame = self.store.read_table(name, where=where)
            yield _restore_types(frame, kind).set_index("uid")

    def _as_of(self, name: str, moment: pd.Timestamp, kwargs: dict[str, Any]) -> gpd.GeoDataFrame:
        stamp = _sql_time(moment)
        current = self.store.read_valid(name, stamp, **kwargs)
        parts = [current]
        if history_table(name) in self.store.tables():
            hist_kwargs = dict(kwargs)
            if "columns" in hist_kwargs:
                hist_kwargs["columns"] = [*hist_kwargs["columns"], "valid_to"]
            old = self.store.read_valid(history_table(name), stamp, history=True, **hist_kwargs)
            parts.append(old.drop(columns=["change", "import_id"], errors="ignore"))
        frames = [p for p in parts if len(p)]
        if not frames:
            return current
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=current.crs)

    def feature(self, layer: str, uid: str) -> pd.Series:
        """One feature of ``layer`` by its uid."""
        frame = self.store.read_uid(layer, uid)
        if frame.empty:
            raise FeatureNotFoundError(f"layer {layer} has no feature {uid!r}")
        return _restore_types(frame, self.info(layer).kind).set_index("uid").iloc[0]

    def features(self, layer: str, uids: Iterable[str]) -> gpd.GeoDataFrame:
        """The features of ``layer`` whose uid is in ``uids``, as :meth:`layer` reads them.

        Rows come in the layer's stored order, indexed by ``uid``; uids the
        layer does not hold are left out. With no uid, an empty frame with the
        layer's columns and dtypes.

        Examples
        --------
        >>> some = list(city.layer("buildings").index[:3])
        >>> city.features("buildings", some[::-1]).index.tolist() == some
        True
        """
        kind = self.info(layer).kind
        frame = self.store.read_features(layer, list(uids))
        return _restore_types(frame, kind).set_index("uid")

    def delta_rows(
        self, layer: str, import_id: int, base_import: int
    ) -> tuple[gpd.GeoDataFrame, np.ndarray] | None:
        """The features import ``import_id`` added or changed, as :meth:`features` reads
        them, and for each feature of the layer now its row in the layer as import
        ``base_import`` left it followed by these; written once by the importer.

        None unless the store keeps them (PostGIS, the layer's last import, when the
        import before it was ``base_import``): read :meth:`features` then.

        Examples
        --------
        >>> last = city.info("buildings").last_import
        >>> city.delta_rows("buildings", last, last - 1) is None  # a GeoPackage keeps none
        True
        """
        found = self.store.delta_rows(layer, import_id, base_import)
        if found is None:
            return None
        frame, positions = found
        return _restore_types(frame, self.info(layer).kind).set_index("uid"), positions

    # -- importing ---------------------------------------------------------
    def import_layer(
        self,
        source: str | os.PathLike[str],
        *,
        layer: str,
        kind: str,
        progress: Progress | None = None,
        **options: Any,
    ) -> ImportReport:
        """Import one source into ``layer``; a re-import records a change set.

        Parameters
        ----------
        source : path-like
            The delivery: GeoPackage, Shapefile (or zip), GeoJSON, FileGDB,
            GeoParquet, CSV, OSM PBF or EPANET INP.
        layer : str
            The twin layer to create or update.
        kind : str
            The layer kind (see :data:`twin.kinds.KINDS`).
        progress : callable, optional
            Called as ``progress(stage, fraction)`` while the import runs.
        **options
            Any field of :class:`twin.mapping.ImportSpec`: ``id``, ``fields``,
            ``set``, ``source_layer``, ``encoding``, ``where``, ``src_crs``,
            ``coords``, ``x``, ``y``, ``wkt``, ``classification``, ``strict``.

        Returns
        -------
        ImportReport
        """
        spec = ImportSpec(source=Path(source), layer=layer, kind=kind, **options)
        return self.import_spec(spec, progress=progress)

    def import_frame(
        self,
        frame: gpd.GeoDataFrame,
        *,
        layer: str,
        kind: str,
        source: str = "GeoDataFrame",
        progress: Progress | None = None,
        **options: Any,
    ) -> ImportReport:
        """Import a GeoDataFrame exactly as a file would be imported.

        Parameters
        ----------
        frame : GeoDataFrame
            The features, in any CRS (``src_crs`` when it has none).
        layer, kind, progress, **options
            As for :meth:`import_layer`.
        source : str, default "GeoDataFrame"
            How provenance names the origin (e.g. ``"generated: 500 m grid"``).

        Examples
        --------
        >>> import tempfile, pathlib, geopandas as gpd, shapely, twin
        >>> city = twin.Twin.create(pathlib.Path(tempfile.mkdtemp()) / "c.gpkg", crs="EPSG:4544")
        >>> frame = gpd.GeoDataFrame({"id": ["p1"]}, geometry=[shapely.Point(505700, 3392300)],
        ...                          crs="EPSG:4544")
        >>> city.import_frame(frame, layer="pois", kind="poi", id="id").imported
        1
        """
        spec = ImportSpec(source=Path(source), layer=layer, kind=kind, **options)
        return self.import_spec(spec, progress=progress, frame=frame)

    def import_spec(
        self,
        spec: ImportSpec,
        *,
        progress: Progress | None = None,
        frame: gpd.GeoDataFrame | None = None,
    ) -> ImportReport:
        """Import as described by an :class:`~twin.mapping.ImportSpec` (or from ``frame``)."""
        self._check_kind(spec)
        if frame is None and bigimport.streams(self, spec):  # memory bounded by a batch
            return bigimport.import_streamed(self, spec, progress=progress)
        prepared = prepare_import(
            spec, self.crs, progress, frame=frame, twin_extent=self._extent(spec.layer)
        )
        if progress:
            progress("writing", 0.7)
        self._commit(prepared)
        if progress:
            progress("done", 1.0)
        return prepared.report

    def rollback(self, import_id: int) -> ImportReport:
        """Restore the layer import ``import_id`` changed to its state just before it.

        Recorded as a new import (see :func:`twin.rollback.rollback_import`).
        """
        from twin.rollback import rollback_import

        return rollback_import(self, import_id)

    def import_mapping(
        self,
        mapping: str | os.PathLike[str],
        *,
        layers: Iterable[str] | None = None,
        progress: Progress | None = None,
    ) -> list[ImportReport]:
        """Import every layer of a mapping file (or the ones named in ``layers``)."""
        specs = read_mapping(mapping)
        wanted = list(layers) if layers is not None else list(specs)
        unknown = [name for name in wanted if name not in specs]
        if unknown:
            raise UsageError(
                f"mapping file has no layer {unknown[0]!r}; it has: {', '.join(specs)}"
            )
        return [self.import_spec(specs[name], progress=progress) for name in wanted]

    def _check_kind(self, spec: ImportSpec) -> None:
        get_kind(spec.kind)
        existing = self.store.layer_rows(spec.layer)
        if not existing.empty and existing["kind"].iloc[0] != spec.kind:
            raise UsageError(
                f"layer {spec.layer} holds kind {existing['kind'].iloc[0]}: import it with "
                f"kind={existing['kind'].iloc[0]!r}, or choose another layer name"
            )

    def _commit(self, prepared: PreparedImport) -> None:
        with self.store.session() as session:
            self._write_import(session, prepared)
            # The old and the new layer (millions of geometries at a million features)
            # are freed here, before the commit: after it, readers that waited for it
            # (a service's workers) get the CPU, and the import returns at once.
            prepared.release()

    def _write_import(self, session: StoreSession, prepared: PreparedImport) -> None:
        report, spec = prepared.report, prepared.spec
        now = session.next_time()
        report.import_id = session.next_import_id()
        frame = prepared.frame
        exists = session.has_layer(spec.layer)
        if exists:
            current = session.read_table(spec.layer)
            changes = history.compare(current, frame, now)
            matched = len(changes.changed) + len(changes.unchanged)
            self._check_same_delivery(prepared, matched / max(len(current), 1))
            guards.check_removals(
                spec.layer,
                len(current),
                len(changes.removed),
                allow=spec.allow_removals,
                max_share=spec.max_removed_share,
            )
            starts = pd.to_datetime(pd.Series(changes.valid_from, index=frame.index), utc=True)
            frame = frame.assign(valid_from=starts.astype(_MS_UTC))
        else:
            changes = None
            frame = frame.assign(valid_from=pd.Series(now, index=frame.index).astype(_MS_UTC))
        session.write_table(spec.layer, frame)
        if changes is not None and len(changes.retired):
            retired = changes.retired.assign(valid_to=now, import_id=report.import_id)
            session.append_history(spec.layer, retired)
        if changes is not None:  # PostGIS records them for its workers: see Twin.delta_rows
            session.record_delta_rows(spec.layer, report.import_id, current, frame, changes)
        prepared.finish_report()
        report.time = _sql_time(now)
        records.fill_counts(report, changes, len(frame))
        session.record_import(spec, report, prepared.kind, frame, changes)
        session.set_meta(order_key(spec.layer), order_value(report.import_id, frame["uid"]))
        if self.crs_text == "auto":
            session.set_meta("crs", _crs_text(prepared.crs))

    def _extent(self, exclude: str) -> tuple[float, float, float, float] | None:
        """The extent of every layer but ``exclude`` (None while there is none)."""
        boxes = [i.extent for i in self.layer_infos() if i.name != exclude and i.extent]
        if not boxes:
            return None
        mins = [min(b[k] for b in boxes) for k in (0, 1)]
        maxs = [max(b[k] for b in boxes) for k in (2, 3)]
        return (mins[0], mins[1], maxs[0], maxs[1])

    def _check_same_delivery(self, prepared: PreparedImport, matched_share: float) -> None:
        info = self.info(prepared.spec.layer)
        guards.check_same_delivery(
            prepared.spec.layer,
            stored_id=info.id_field,
            stored_source=info.source,
            new_id=prepared.spec.id,
            new_source=prepared.report.source,
            matched_share=matched_share,
            replace=prepared.spec.replace,
        )

    # -- relations -----------------------------------------------------------
    def relations(
        self,
        relation: str | None = None,
        *,
        from_layer: str | None = None,
        to_layer: str | None = None,
        uid: str | None = None,
    ) -> pd.DataFrame:
        """Stored relations, filtered; ``uid`` matches either end.

        Columns: ``relation, from_layer, from_uid, to_layer, to_uid, share,
        distance_m, n_candidates``. A missing ``to_uid`` is a flagged row
        (a building on no parcel, a sensor with no building near). A ``uid``
        lookup uses the uid indexes; a relation is read as one range of rows.
        """
        return self.store.relations(relation, from_layer=from_layer, to_layer=to_layer, uid=uid)

    # -- provenance and history ---------------------------------------------
    def imports(self, layer: str | None = None) -> pd.DataFrame:
        """Every import (provenance), newest last; optionally for one layer."""
        frame = self.store.import_rows(layer)
        for column in ("options", "field_mapping", "report"):
            frame[column] = frame[column].map(json.loads)
        return frame.set_index("import_id")

    def changes(self, import_id: int) -> pd.DataFrame:
        """The change set of one import: a ``uid`` and a ``change`` per feature."""
        imports = self.store.import_rows(import_id=import_id)[["layer", "time", "initial"]]
        if imports.empty:
            raise UsageError(f"no import {import_id}: Twin.imports() lists them")
        layer, stamp, initial = imports.iloc[0]
        if not initial or layer not in self.store.tables():
            # A raster import has no features: its change set is counted in cells.
            return self.store.change_rows(import_id)
        # A first import adds every feature; they are not listed one by one.
        uids = [
            self.store.read_started(table, stamp)
            for table in (layer, history_table(layer))
            if table in self.store.tables()
        ]
        added = pd.concat(uids, ignore_index=True).drop_duplicates()
        return pd.DataFrame({"uid": added.to_numpy(), "change": "added"})

    def history(self, layer: str, uid: str | None = None) -> gpd.GeoDataFrame:
        """Replaced and removed versions of a layer (of one feature, given ``uid``)."""
        self.info(layer)
        if history_table(layer) not in self.store.tables():
            current = self.store.read_table(layer, max_features=0)
            return current.assign(valid_to=pd.Series(dtype=object), change=pd.Series(dtype=object))
        return self.store.read_uid(history_table(layer), uid)

    # -- exporting -----------------------------------------------------------
    def export(
        self,
        layer: str,
        path: str | os.PathLike[str],
        *,
        as_of: DateLike | None = None,
        crs: Any = None,
        encoding: str | None = None,
        raw: bool = False,
    ) -> Path:
        """Write a layer (optionally as of a date, in another CRS) to a file.

        The format follows the suffix: ``.gpkg``, ``.geojson``, ``.parquet``,
        ``.shp``, ``.fgb`` or ``.csv`` (WKT geometry). Every feature keeps its
        ``uid``, so re-importing an unedited export changes nothing. CSV text
        that a spreadsheet would run as a formula is escaped unless ``raw``.
        """
        from twin.io.export import write_layer

        frame = self.layer(layer, as_of=as_of)
        if crs is not None:
            frame = frame.to_crs(resolve_crs(crs))
        return write_layer(frame.reset_index(), Path(path), layer=layer, encoding=encoding, raw=raw)

    def _no_layer(self, name: str) -> LayerNotFoundError:
        names = self.layers
        listing = ", ".join(names) if names else "none yet: import one with Twin.import_layer()"
        return LayerNotFoundError(f"the twin has no layer {name!r}; its layers: {listing}")


def _location(store: GpkgStore | PostgisStore) -> str:
    return store.location if isinstance(store, PostgisStore) else str(store.path)


def _layer_info(row: pd.Series) -> LayerInfo:
    extent = None
    if pd.notna(row["min_x"]):
        extent = (
            float(row["min_x"]),
            float(row["min_y"]),
            float(row["max_x"]),
            float(row["max_y"]),
        )
    return LayerInfo(
        name=row["name"],
        kind=row["kind"],
        category=row["category"],
        classification=row["classification"],
        feature_count=int(row["feature_count"]),
        extent=extent,
        geometry_type=row["geometry_type"],
        id_field=row["id_field"],
        source=row["source"],
        created=row["created"],
        updated=row["updated"],
        last_import=None if pd.isna(row["last_import"]) else int(row["last_import"]),
    )


def _restore_types(frame: gpd.GeoDataFrame, kind_name: str) -> gpd.GeoDataFrame:
    """Give declared integer and boolean fields back their nullable dtypes."""
    kind = get_kind(kind_name)
    for spec in kind.fields:
        if spec.name not in frame.columns:
            continue
        if spec.dtype == "int":
            frame[spec.name] = frame[spec.name].astype("Int64")
        elif spec.dtype == "oneway":
            frame[spec.name] = frame[spec.name].astype("Int8")
        elif spec.dtype == "bool":
            frame[spec.name] = frame[spec.name].astype("boolean")
    return frame


def _crs_text(crs: pyproj.CRS) -> str:
    code = crs.to_epsg()
    return f"EPSG:{code}" if code else crs.to_wkt()


def _timestamp(value: DateLike) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise UsageError(
            f"as_of {value!r} is not a date: use e.g. 2026-05-01 or 2026-05-01T12:00Z"
        ) from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _sql_time(stamp: pd.Timestamp) -> str:
    """Timestamps as GDAL stores them in a GeoPackage: millisecond ISO 8601, UTC."""
    return (
        stamp.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    )
