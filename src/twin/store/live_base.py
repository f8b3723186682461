"""What sensing and the API need of a live store: :class:`LiveStoreProtocol`.

Two backends implement it: :class:`~twin.store.live.LiveStore` (SQLite, a file
beside a GeoPackage twin) and :class:`~twin.store.pglive.PgLiveStore` (tables
in the database of a ``postgresql://…?schema=NAME`` twin).
:meth:`LiveStore.beside <twin.store.live.LiveStore.beside>` opens the right
one for a twin's name, so nothing above ``twin.store`` knows which it has.

Examples
--------
>>> import tempfile, pathlib
>>> from twin.store.live import LiveStore
>>> live = LiveStore(pathlib.Path(tempfile.mkdtemp()) / "x.live.sqlite")
>>> isinstance(live, LiveStoreProtocol)
True
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

__all__ = ["NO_TIME", "LiveBatchProtocol", "LiveStoreProtocol"]

#: The time a datastream without any reading has (in ``update_latest(prior=True)``).
NO_TIME = int(np.iinfo("int64").min)


class LiveBatchProtocol(Protocol):
    """The writes of one ingest transaction."""

    def insert_observations(
        self,
        datastream: Any,
        phenomenon_ms: Any,
        value: Any,
        *,
        result_ms: int,
        quality: Sequence[str | None] | None = None,
    ) -> np.ndarray: ...

    def update_latest(
        self, datastream: Any, phenomenon_ms: Any, value: Any, *, prior: bool = False
    ) -> np.ndarray | None: ...

    def dead_letters(self, rows: Iterable[tuple[Any, ...]]) -> None: ...


@runtime_checkable
class LiveStoreProtocol(Protocol):
    """A twin's live store: observations, latest values, dead letters, events, leases."""

    lock: threading.RLock
    #: This store's identity (ids of datastreams are cached per store).
    store_id: str

    # -- life -------------------------------------------------------------------
    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...

    # -- observations ---------------------------------------------------------------
    def batch(self) -> AbstractContextManager[Any]: ...

    def datastream_ids(self, keys: Iterable[tuple[str, str, str | None]]) -> list[int]: ...

    def datastreams(self, sensors: Sequence[str] | None = None) -> pd.DataFrame: ...

    def latest(self, sensors: Sequence[str] | None = None) -> pd.DataFrame: ...

    def window(
        self,
        sensor_uid: str,
        prop: str | None = None,
        *,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
    ) -> pd.DataFrame: ...

    def windows(
        self, streams: Sequence[int], lo: int | None = None, hi: int | None = None
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]: ...

    def latest_ms(self) -> dict[int, int]: ...

    def last_before(self, datastream: int, clock: int | None) -> int | None: ...

    def observations_of(
        self, datastream: int, *, skip: int = 0, top: int = 100, newest_first: bool = True
    ) -> pd.DataFrame: ...

    def count_observations(self, datastream: int | None = None) -> int: ...

    def dead_letters(self, reason: str | None = None) -> pd.DataFrame: ...

    def clock_ms(self) -> int | None: ...

    def readings_between(self, lo_ms: int, hi_ms: int) -> pd.DataFrame: ...

    def observation_page(
        self,
        sensors: Sequence[str] | None,
        conditions: Sequence[tuple[str, Sequence[Any]]],
        *,
        order: str,
        top: int,
        skip: int,
    ) -> tuple[pd.DataFrame, int]: ...

    def max_datastream_id(self) -> int: ...

    # -- events ---------------------------------------------------------------------
    def max_seq(self) -> int: ...

    def alarming_pairs(self) -> set[tuple[str, str]]: ...

    def event_state(
        self, rule: str, sensor_uid: str
    ) -> tuple[tuple[int, int, Any] | None, Any]: ...

    def events_frame(
        self,
        filters: Mapping[str, Any],
        *,
        open_only: bool = False,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> pd.DataFrame: ...

    def event_changes_frame(self, after_seq: int, limit: int) -> pd.DataFrame: ...

    def event_row(self, event_id: int) -> pd.DataFrame: ...

    def event_history(self, event_id: int) -> pd.DataFrame: ...

    def unescalated_new(self) -> list[tuple[int, str, int]]: ...

    def resolved_ms(self) -> dict[int, int]: ...

    def nearest_incident(
        self, event_type: str, x: float, y: float, radius: float
    ) -> tuple[int, str] | None: ...

    def insert_event(
        self, fields: Mapping[str, Any], history: Sequence[tuple[Any, ...]]
    ) -> int: ...

    def update_event(
        self,
        event_id: int,
        *,
        last_ms: int,
        value: float | None,
        repeated: bool,
        cleared_ms: int | None,
        now_ms: int,
        history: Sequence[tuple[Any, ...]],
    ) -> None: ...

    def clear_event(
        self, rule: str, sensor_uid: str, at_ms: int | None, now_ms: int, who: str
    ) -> int | None: ...

    def set_event_status(
        self,
        event_id: int,
        allowed: Sequence[str],
        target: str,
        *,
        assignee: str | None,
        at_ms: int,
        action: str,
        who: str,
        note: str | None,
    ) -> str | None: ...

    def mark_escalated(self, event_id: int, at_ms: int, note: str) -> bool: ...

    # -- dead letters, leases -------------------------------------------------------
    def add_dead_letters(self, rows: Iterable[Sequence[Any]]) -> None: ...

    def take_lease(self, name: str, holder: str, *, until_ms: int, now_ms: int) -> bool: ...

    def release_lease(self, name: str, holder: str) -> None: ...
