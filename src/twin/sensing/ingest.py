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
    rows : pandas.DataFrame or None
        With ``ingest(..., keep_rows=True)``: the observations stored (``ds, uid,
        pos, property, ms, value, prior_ms``; ``prior_ms`` is the datastream's
        newest time before the batch), for the rules; not in :meth:`to_dict`.
    """

    received: int = 0
    stored: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    sensors: list[str] = field(default_factory=list)
    rows: pd.DataFrame | None = field(default=None, repr=False, compare=False)

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
    """The batch with ``uid``, ``ms`` and ``number`` columns, and each row's reason (None: ok).

    Sensor names are resolved once per distinct name (factorised), defaults
    for property and unit taken by position in the registry.
    """
    out = batch.copy()
    codes, names = pd.factorize(out["sensor"], use_na_sentinel=True)
    unique_uids = registry.resolve(pd.Series(np.asarray(names, dtype=object)))
    known = pd.Index(registry.frame.index).get_indexer(unique_uids.to_numpy(dtype=object))
    pos = np.where(codes >= 0, known[np.maximum(codes, 0)] if len(known) else -1, -1)
    index = registry.frame.index.to_numpy(dtype=object)
    uid = np.full(len(out), None, dtype=object)
    uid[pos >= 0] = index[pos[pos >= 0]]
    out["uid"] = uid
    number = pd.to_numeric(out["value"], errors="coerce")
    number = pd.Series(np.asarray(number, dtype=float), index=out.index)
    out["number"] = number.where(np.isfinite(number))
    stamps = _parse_times(out["time"])
    out["ms"] = to_ms(stamps.fillna(pd.Timestamp(0, tz="UTC"))).to_numpy()
    reason: np.ndarray = np.full(len(out), None, dtype=object)
    bad_number = out["number"].isna().to_numpy()
    ahead = out["ms"].to_numpy() > now_ms + int(future_tolerance_s * 1000)
    for mask, why in (
        (pos < 0, "unknown sensor"),
        (bad_number, "non-numeric"),
        (stamps.isna().to_numpy(), "bad time"),
        (ahead, "future time"),
    ):
        reason[mask & (reason == None)] = why  # noqa: E711 (elementwise)
    out["property"] = _filled(out["property"], registry.frame["property"], pos, "value")
    out["unit"] = _filled(out["unit"], registry.frame["unit"], pos, None)
    out["pos"] = pos
    return out, pd.Series(reason, index=out.index, dtype=object)


def _filled(given: pd.Series, defaults: pd.Series, pos: np.ndarray, last: Any) -> np.ndarray:
    """``given`` where set (not null, not empty), else the sensor's default, else ``last``."""
    values: np.ndarray = np.asarray(given.astype(object).where(given.notna(), None))
    fallback: np.ndarray = np.full(len(values), None, dtype=object)
    fallback[pos >= 0] = defaults.to_numpy(dtype=object)[pos[pos >= 0]]
    fallback = np.where(pd.isna(fallback), last, fallback)
    unset = pd.isna(values) | (values == "")
    out: np.ndarray = np.where(unset, fallback, values)
    return out


def ingest(
    store: LiveStore,
    registry: SensorRegistry,
    readings: pd.DataFrame,
    *,
    source: str = "api",
    now: pd.Timestamp | None = None,
    future_tolerance_s: float = 300.0,
    keep_rows: bool = False,
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
    keep_rows : bool, default False
        Put the stored observations in the report's ``rows`` (for the rules).

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
    good = checked[reason.isna().to_numpy()]
    prop_codes, _ = pd.factorize(good["property"])
    pairs = good["pos"].to_numpy(dtype="int64") * (int(prop_codes.max(initial=0)) + 1) + prop_codes
    _, first, codes = np.unique(pairs, return_index=True, return_inverse=True)
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
        ds = found[codes.reshape(-1)] if len(good) else np.zeros(0, dtype="int64")
        twice = _repeated(ds, good["ms"].to_numpy(dtype="int64"))
        reason[good.index[twice]] = "duplicate"
        good = good[~twice].assign(ds=ds[~twice])
        _commit(store, good, checked, reason, source, now_ms, report, keep_rows)
    return report


def _repeated(ds: np.ndarray, ms: np.ndarray) -> np.ndarray:
    """Rows whose (datastream, time) came earlier in the batch."""
    order = np.lexsort((ms, ds))  # stable: the first of equal keys stays first
    same = (ds[order][1:] == ds[order][:-1]) & (ms[order][1:] == ms[order][:-1])
    out = np.zeros(ds.size, dtype=bool)
    out[order[1:][same]] = True
    return out


def _commit(
    store: LiveStore,
    good: pd.DataFrame,
    checked: pd.DataFrame,
    reason: pd.Series,
    source: str,
    now_ms: int,
    report: IngestReport,
    keep_rows: bool,
) -> None:
    quality = good["quality"]
    qualities = None if quality.isna().all() else quality.where(quality.notna(), None).tolist()
    ds = good["ds"].to_numpy(dtype="int64")
    ms = good["ms"].to_numpy(dtype="int64")
    value = good["number"].to_numpy(dtype=float)
    with store.batch() as tx:
        already = tx.insert_observations(ds, ms, value, result_ms=now_ms, quality=qualities)
        if already.any():  # stored by an earlier batch: a resend
            reason[good.index[already]] = "duplicate"
            good, ds, ms, value = good[~already], ds[~already], ms[~already], value[~already]
        prior = tx.update_latest(ds, ms, value, prior=keep_rows)
        tx.dead_letters(_dead_rows(checked, reason, source, now_ms, report))
    report.stored = len(good)
    uids = good["uid"].to_numpy(dtype=object)
    report.sensors = sorted(pd.unique(uids).tolist())
    if keep_rows:
        report.rows = pd.DataFrame(
            {
                "ds": ds,
                "uid": uids,
                "pos": good["pos"].to_numpy(dtype="int64"),
                "property": good["property"].to_numpy(dtype=object),
                "ms": ms,
                "value": value,
                "prior_ms": prior,
            }
        )


def _dead_rows(
    checked: pd.DataFrame, reason: pd.Series, source: str, now_ms: int, report: IngestReport
) -> list[tuple[Any, ...]]:
    bad = checked[reason.notna().to_numpy()]
    if bad.empty:
        return []
    why = reason[bad.index]
    report.rejected = {str(k): int(v) for k, v in why.value_counts().items()}

    def text(column: str) -> list[str | None]:
        values = bad[column]
        return [
            None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
            for v in values.tolist()
        ]

    return list(
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
    )
