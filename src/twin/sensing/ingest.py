"""The one validated ingest path: files, HTTP batches and MQTT messages all come here.

A batch is a DataFrame with columns ``sensor`` (uid or delivery id),
``time`` (ISO 8601 or a datetime; no zone means UTC), ``value`` and
optionally ``property``, ``unit``, ``quality``. Every row is either stored
or kept in the dead-letter table with its reason:

=============== ==============================================================
reason          meaning
=============== ==============================================================
unknown sensor  the twin has no sensor of that uid or id
non-numeric     the value is not a finite number
bad time        the time is missing or cannot be parsed
future time     the time is more than ``future_tolerance_s`` ahead of now
duplicate       a reading of that datastream at that time is stored already
                (or twice in the batch)
=============== ==============================================================

Re-sending a batch stores nothing twice (the observation key is datastream ×
phenomenon time). The batch is one transaction: observations, the latest
table and the dead letters are committed together or not at all.

Examples
--------
>>> frame = pd.DataFrame({"sensor": ["WP1"], "time": ["2026-05-18T08:00:00Z"], "value": ["x"]})
>>> list(normalise(frame).columns)
['sensor', 'time', 'property', 'unit', 'value', 'quality']
"""

from __future__ import annotations

import os
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import SourceError, UsageError
from twin.sensing.sensors import SensorRegistry
from twin.sensing.store import LiveStore, to_ms

__all__ = ["COLUMNS", "IngestReport", "ingest", "normalise", "read_readings"]

COLUMNS = ("sensor", "time", "property", "unit", "value", "quality")
REQUIRED = ("sensor", "time", "value")


@dataclass
class IngestReport:
    """What one batch did.

    Attributes
    ----------
    received, stored : int
        Rows in the batch, and observations stored.
    rejected : dict
        Rows kept as dead letters, by reason.
    sensors : list of str
        Uids of the sensors with new observations (for the rules).
    """

    received: int = 0
    stored: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    sensors: list[str] = field(default_factory=list)

    def add(self, other: IngestReport) -> None:
        """Add another batch's counts to this one."""
        self.received += other.received
        self.stored += other.stored
        for reason, n in other.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + n
        self.sensors = sorted(set(self.sensors) | set(other.sensors))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts."""
        return {
            "received": self.received,
            "stored": self.stored,
            "rejected": dict(self.rejected),
            "sensors": len(self.sensors),
        }


def normalise(frame: pd.DataFrame, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Rename mapped columns (``{"sensor": "设备编号", …}``) and add the optional ones.

    Raises
    ------
    SchemaError
        When ``sensor``, ``time`` or ``value`` is missing.
    """
    from twin.errors import SchemaError

    renamed = frame.rename(columns={v: k for k, v in (mapping or {}).items()})
    missing = [c for c in REQUIRED if c not in renamed.columns]
    if missing:
        raise SchemaError(
            f"readings lack column(s) {', '.join(missing)} "
            f"(have {', '.join(map(str, frame.columns))})"
            "; map them with --column sensor=设备编号 etc."
        )
    out = pd.DataFrame({c: renamed[c] if c in renamed.columns else None for c in COLUMNS})
    return out.reset_index(drop=True)


def read_readings(
    path: str | os.PathLike[str], mapping: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Read a CSV or Parquet file of readings (every column as it is) and :func:`normalise` it."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"readings file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".txt"):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        else:
            raise SourceError(f"{path.name}: readings must be .csv or .parquet, not {suffix!r}")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, SourceError):
            raise
        raise SourceError(f"cannot read {path.name}: {exc}") from None
    return normalise(frame, mapping)


def _parse_times(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
    else:
        text = values.astype(object).where(values.notna(), None)
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    return parsed


def out_dtype_is_text(column: pd.Series) -> bool:
    """Whether a column holds strings in an extension dtype (pyarrow or pandas strings)."""
    return isinstance(column.dtype, pd.StringDtype) or str(column.dtype).startswith("string")


def _checked(
    batch: pd.DataFrame, registry: SensorRegistry, now_ms: int, future_tolerance_s: float
) -> tuple[pd.DataFrame, pd.Series]:
    """The batch with ``uid``, ``ms`` and ``number`` columns, and each row's reason (None: ok)."""
    text = [c for c in ("sensor", "property", "unit", "quality") if out_dtype_is_text(batch[c])]
    out = batch.astype({c: object for c in text})  # arrow-backed strings iterate slowly
    out["uid"] = registry.resolve(out["sensor"]).to_numpy()
    number = pd.to_numeric(out["value"], errors="coerce")
    out["number"] = number.where(np.isfinite(number.astype(float)))
    stamps = _parse_times(out["time"])
    out["ms"] = to_ms(stamps.fillna(pd.Timestamp(0, tz="UTC"))).to_numpy()
    reason = pd.Series(None, index=out.index, dtype=object)
    reason[out["uid"].isna()] = "unknown sensor"
    reason[reason.isna() & out["number"].isna()] = "non-numeric"
    reason[reason.isna() & stamps.isna()] = "bad time"
    ahead = out["ms"] > now_ms + int(future_tolerance_s * 1000)
    reason[reason.isna() & ahead] = "future time"
    defaults = registry.frame["property"]
    prop = out["property"].where(out["property"].notna() & (out["property"] != ""))
    out["property"] = prop.fillna(out["uid"].map(defaults)).fillna("value")
    unit = out["unit"].where(out["unit"].notna() & (out["unit"] != ""))
    out["unit"] = unit.fillna(out["uid"].map(registry.frame["unit"]))
    return out, reason


def ingest(
    store: LiveStore,
    registry: SensorRegistry,
    readings: pd.DataFrame,
    *,
    source: str = "api",
    now: pd.Timestamp | None = None,
    future_tolerance_s: float = 300.0,
) -> IngestReport:
    """Validate and store one batch of readings (one transaction); reject the rest with reasons.

    Parameters
    ----------
    store : LiveStore
    registry : SensorRegistry
        The twin's sensors.
    readings : pandas.DataFrame
        Columns as :func:`normalise` returns them.
    source : str
        Where the batch came from (``file:…``, ``api``, ``mqtt``), kept with dead letters.
    now : Timestamp, optional
        The reference for "future" (default: the wall clock).
    future_tolerance_s : float, default 300
        Clock skew accepted before a time counts as in the future.

    Returns
    -------
    IngestReport
    """
    if future_tolerance_s < 0:
        raise UsageError(f"future tolerance {future_tolerance_s} s must be >= 0")
    now_ms = to_ms(now) if now is not None else int(_time.time() * 1000)
    batch = normalise(readings)
    report = IngestReport(received=len(batch))
    if batch.empty:
        return report
    checked, reason = _checked(batch, registry, now_ms, future_tolerance_s)
    good = checked[reason.isna()]
    codes, _ = pd.factorize(good["uid"].astype(str) + "\x1f" + good["property"].astype(str))
    first = np.unique(codes, return_index=True)[1] if len(good) else np.zeros(0, dtype=int)
    keys = list(
        zip(
            good["uid"].to_numpy(dtype=object)[first].tolist(),
            good["property"].to_numpy(dtype=object)[first].tolist(),
            good["unit"].to_numpy(dtype=object)[first].tolist(),
            strict=True,
        )
    )
    with store.lock:
        found = np.asarray(store.datastream_ids(keys), dtype="int64")
        good = good.assign(ds=found[codes] if len(good) else np.array([], dtype="int64"))
        twice = good.duplicated(["ds", "ms"], keep="first")
        reason[twice[twice].index] = "duplicate"
        good = good[~twice]
        _commit(store, good, checked, reason, source, now_ms, report)
    return report


def _commit(
    store: LiveStore,
    good: pd.DataFrame,
    checked: pd.DataFrame,
    reason: pd.Series,
    source: str,
    now_ms: int,
    report: IngestReport,
) -> None:
    con = store.con
    quality = good["quality"]
    qualities = (
        [None] * len(good)
        if quality.isna().all()
        else quality.where(quality.notna(), None).tolist()
    )
    rows = list(
        zip(
            good["ds"].to_numpy(dtype="int64").tolist(),
            good["ms"].to_numpy(dtype="int64").tolist(),
            [now_ms] * len(good),
            good["number"].to_numpy(dtype=float).tolist(),
            qualities,
            strict=True,
        )
    )
    con.execute("BEGIN IMMEDIATE")
    try:
        before = con.total_changes
        con.executemany("INSERT OR IGNORE INTO observations VALUES (?, ?, ?, ?, ?)", rows)
        if con.total_changes - before != len(rows):
            # Some were stored already: find them (rare path), keep them as duplicates.
            con.execute("ROLLBACK")
            con.execute("BEGIN IMMEDIATE")
            stored = _already_stored(con, good)
            reason[good.index[stored]] = "duplicate"
            good = good[~stored]
            rows = [r for r, s in zip(rows, stored, strict=True) if not s]
            con.executemany("INSERT INTO observations VALUES (?, ?, ?, ?, ?)", rows)
        _update_latest(con, good)
        _dead_letters(con, checked, reason, source, now_ms, report)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    report.stored = len(rows)
    report.sensors = sorted(pd.unique(good["uid"].to_numpy(dtype=object)).tolist())


def _already_stored(con: Any, good: pd.DataFrame) -> np.ndarray:
    found = np.zeros(len(good), dtype=bool)
    query = "SELECT 1 FROM observations WHERE datastream = ? AND phenomenon_ms = ?"
    for i, (ds, ms) in enumerate(zip(good["ds"].tolist(), good["ms"].tolist(), strict=True)):
        found[i] = con.execute(query, (ds, ms)).fetchone() is not None
    return found


def _update_latest(con: Any, good: pd.DataFrame) -> None:
    if good.empty:
        return
    newest = good.loc[good.groupby("ds")["ms"].idxmax(), ["ds", "ms", "number"]]
    batch = con.execute(
        "INSERT INTO counters (name, value) VALUES ('latest', 1) "
        "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value"
    ).fetchone()[0]
    con.executemany(
        "INSERT INTO latest VALUES (?, ?, ?, ?) ON CONFLICT(datastream) DO UPDATE SET "
        "phenomenon_ms = excluded.phenomenon_ms, value = excluded.value, batch = excluded.batch "
        "WHERE excluded.phenomenon_ms >= latest.phenomenon_ms",
        list(
            zip(
                newest["ds"].tolist(),
                newest["ms"].tolist(),
                newest["number"].astype(float).tolist(),
                [batch] * len(newest),
                strict=True,
            )
        ),
    )


def _dead_letters(
    con: Any,
    checked: pd.DataFrame,
    reason: pd.Series,
    source: str,
    now_ms: int,
    report: IngestReport,
) -> None:
    bad = checked[reason.notna()]
    if bad.empty:
        return
    why = reason[bad.index]
    report.rejected = {str(k): int(v) for k, v in why.value_counts().items()}

    def text(column: str) -> list[str | None]:
        values = bad[column]
        return [
            None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
            for v in values.tolist()
        ]

    con.executemany(
        "INSERT INTO dead_letters (received_ms, source, reason, sensor, time, property, value) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        list(
            zip(
                [now_ms] * len(bad),
                [source] * len(bad),
                why.tolist(),
                text("sensor"),
                text("time"),
                text("property"),
                text("value"),
                strict=True,
            )
        ),
    )
