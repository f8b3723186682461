"""The store interface: everything above ``twin.store`` reaches the twin file through it.

:class:`TwinStore` is what the twin (:class:`twin.model.Twin`) needs of a
backend: open, read a layer (current, as of a moment, one feature), metadata,
provenance and change sets, relations, and a write transaction that yields a
:class:`StoreSession`. :class:`~twin.store.gpkg.GpkgStore` implements it on one
GeoPackage file; a PostGIS store implements the same protocol.

Examples
--------
>>> from twin.store import GpkgStore, TwinStore
>>> isinstance(GpkgStore(sample_twin_path), TwinStore)
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import geopandas as gpd
import numpy as np
import pandas as pd

from twin.store.relations import RelationRows, StoredSet

__all__ = ["RelationSink", "StoreSession", "TwinStore"]


class RelationSink(Protocol):
    """Where a build writes relation sets: drop old sets, put new ones, finish once."""

    def drop(self, sets: Sequence[StoredSet]) -> None: ...

    def put(
        self,
        key: tuple[str, str, str, str | None],
        rows: RelationRows,
        *,
        inputs: Sequence[object],
        build_id: int,
    ) -> int: ...

    def index_now(self) -> None: ...

    def finish(self) -> None: ...


@runtime_checkable
class StoreSession(Protocol):
    """One write transaction: what an import writes, committed all at once or not at all.

    Examples
    --------
    >>> from twin.store import GpkgSession
    >>> issubclass(GpkgSession, StoreSession)
    True
    """

    def next_time(self) -> pd.Timestamp: ...

    def next_import_id(self) -> int: ...

    def has_layer(self, layer: str) -> bool: ...

    def read_table(self, table: str, **kwargs: Any) -> gpd.GeoDataFrame: ...

    def write_table(self, table: str, frame: gpd.GeoDataFrame) -> None: ...

    def append_history(self, layer: str, retired: gpd.GeoDataFrame) -> None: ...

    def record_import(
        self, spec: Any, report: Any, kind: Any, frame: Any, changes: Any
    ) -> None: ...

    def record_delta_rows(
        self, layer: str, import_id: int, current: pd.DataFrame, frame: pd.DataFrame, changes: Any
    ) -> None: ...

    def record_raster_import(self, row: Mapping[str, Any]) -> None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def prepare_relations(self) -> bool: ...

    def relation_sets(self) -> dict[str, StoredSet]: ...

    def relation_writer(self, *, bulk: bool) -> RelationSink: ...

    def record_build(self, time: str, inputs: Mapping[str, object]) -> int: ...

    def set_build_report(self, build_id: int, report: Mapping[str, object]) -> None: ...


@runtime_checkable
class TwinStore(Protocol):
    """The durable twin, whatever holds it (a GeoPackage file today, PostGIS next).

    Examples
    --------
    >>> from twin.store import GpkgStore
    >>> store = GpkgStore(sample_twin_path)
    >>> store.meta()["generator"], "buildings" in list(store.layer_rows()["name"])
    ('citytwin', True)
    """

    path: Path

    def require(self) -> None: ...

    def check(self) -> None: ...

    def version(self) -> tuple[int, int, int]: ...

    def meta(self) -> dict[str, str]: ...

    def layer_rows(self, name: str | None = None) -> pd.DataFrame: ...

    def import_rows(
        self, layer: str | None = None, import_id: int | None = None
    ) -> pd.DataFrame: ...

    def change_rows(self, import_id: int) -> pd.DataFrame: ...

    def layer_changes(self, layer: str, after_import: int) -> pd.DataFrame: ...

    def uid_order(self, table: str) -> pd.Index: ...

    def read_features(self, table: str, uids: Any) -> gpd.GeoDataFrame: ...

    def delta_rows(
        self, table: str, import_id: int, base_import: int
    ) -> tuple[gpd.GeoDataFrame, np.ndarray] | None: ...

    def tables(self) -> set[str]: ...

    def fields(self, table: str) -> list[str]: ...

    def read_table(self, table: str, **kwargs: Any) -> gpd.GeoDataFrame: ...

    def read_valid(
        self, table: str, at: str, *, history: bool, **kwargs: Any
    ) -> gpd.GeoDataFrame: ...

    def read_started(self, table: str, at: str) -> pd.Series: ...

    def read_uid(self, table: str, uid: str | None) -> gpd.GeoDataFrame: ...

    def create(self, meta: dict[str, str]) -> None: ...

    def column(self, table: str, column: str) -> pd.Series | None: ...

    def relations(
        self,
        relation: str | None = None,
        *,
        from_layer: str | None = None,
        to_layer: str | None = None,
        uid: str | None = None,
    ) -> pd.DataFrame: ...

    def session(self) -> AbstractContextManager[StoreSession]: ...

    def relation_sets(self) -> dict[str, StoredSet]: ...

    def last_build(self) -> dict[str, object] | None: ...

    def relation_rows(self, sets: list[StoredSet]) -> pd.DataFrame: ...

    def linked_rows(self, stored: StoredSet) -> pd.DataFrame: ...

    def distinct(self, table: str, column: str) -> list[str]: ...

    def read_wkb(
        self, table: str, columns: list[str]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...
