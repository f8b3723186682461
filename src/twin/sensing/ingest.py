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
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import SourceError, UsageError
from twin.sensing.sensors import SensorRegistry
from twin.sensing.store import LiveStoreProtocol, to_ms

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

    renamed = frame.rename(columns={v: k for k, v in mapping.items()}) if mapping else frame
    missing = [c for c in REQUIRED if c not in renamed.columns]
    if missing:
        raise SchemaError(
            f"readings lack column(s) {', '.join(missing)} "
            f"(have {', '.join(map(str, frame.columns))})"
            "; map them with mapping={'sensor': '设备编号'} etc."
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
    if frame.empty:  # a header-only or truncated delivery is an error, not "0 stored"
        raise SourceError(f"{path.name} holds no readings: check it is the file you meant")
    return normalise(frame, mapping)


def _parse_times(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    codes, distinct = pd.factorize(pd.Series(_objects(values), dtype=object))
    text = np.asarray(distinct, dtype=object)  # readings of one moment share their time
    utc = _utc_iso(text)
    if utc is not None:
        parsed = pd.DatetimeIndex(pd.to_datetime(utc, utc=True))
    else:
        parsed = pd.DatetimeIndex(
            pd.to_datetime(
                pd.Series(text, dtype=object), utc=True, errors="coerce", format="ISO8601"
            )
        )
    if not len(parsed):
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    out = pd.Series(parsed.take(np.maximum(codes, 0)), index=values.index)
    return out.where(codes >= 0)


def _utc_iso(text: np.ndarray) -> np.ndarray | None:
    """Times that all end in ``Z`` or ``+00:00`` (what sensors send), parsed by numpy;
    None when some do not (pandas parses those, zones and all)."""
    bare = []
    for t in text.tolist():
        if not isinstance(t, str):
            return None
        if t.endswith("Z"):
            bare.append(t[:-1])
        elif t.endswith("+00:00"):
            bare.append(t[:-6])
        else:
            return None
    try:
        parsed: np.ndarray = np.array(bare, dtype="datetime64[ms]")
    except ValueError:
        return None
    if np.isnat(parsed).any():
        return None
    return parsed


def _objects(column: pd.Series) -> np.ndarray:
    """A column as a numpy object array, missing values as None (one conversion)."""
    if column.dtype == object:
        values: np.ndarray = column.to_numpy()
        missing = pd.isna(values)
        if missing.any():
            values = values.copy()
            values[missing] = None
        return values
    out: np.ndarray = column.to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]
    return out


def _numbers(column: pd.Series) -> np.ndarray:
    """Finite float values (NaN where the value is not a finite number)."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        number = column.to_numpy(dtype=float, na_value=np.nan)
    else:
        parsed = pd.to_numeric(pd.Series(_objects(column), dtype=object), errors="coerce")
        number = np.asarray(parsed, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(number), number, np.nan)


#: Why a reading is a dead letter, by its code (0: stored).
REASONS = ("", "unknown sensor", "non-numeric", "bad time", "future time", "duplicate")
_DUPLICATE = REASONS.index("duplicate")


@dataclass
class _Checked:
    """A batch as arrays: what validation made of each reading."""

    batch: pd.DataFrame  # the batch as given (dead letters quote it)
    pos: np.ndarray  # the sensor's position in the registry (-1: unknown)
    number: np.ndarray
    ms: np.ndarray
    code: np.ndarray  # why the reading is rejected: an index into REASONS (0: it is good)


def _checked(
    batch: pd.DataFrame, registry: SensorRegistry, now_ms: int, future_tolerance_s: float
) -> _Checked:
    """Each reading's sensor, number and time, and its reason code (0: ok).

    Numpy arrays throughout: one conversion per column, each distinct sensor
    name looked up once in the registry.
    """
    codes, names = pd.factorize(batch["sensor"], use_na_sentinel=True)
    known_names = registry.positions(np.asarray(names, dtype=object))
    pos = np.where(codes >= 0, known_names[np.maximum(codes, 0)] if names.size else -1, -1)
    number = _numbers(batch["value"])
    stamps = _parse_times(batch["time"])
    bad_time = stamps.isna().to_numpy()
    ms = to_ms(stamps.fillna(pd.Timestamp(0, tz="UTC"))).to_numpy(dtype="int64")
    code = np.zeros(len(batch), dtype="int8")
    ahead = ms > now_ms + int(future_tolerance_s * 1000)
    masks = (pos < 0, np.isnan(number), bad_time, ahead)  # in REASONS order
    for why, mask in reversed(list(enumerate(masks, start=1))):  # the first reason wins
        code[mask] = why
    return _Checked(batch=batch, pos=pos, number=number, ms=ms, code=code)


def _given(column: pd.Series, rows: np.ndarray) -> np.ndarray | None:
    """The column's values at ``rows`` (objects, None where missing), or None when no
    row sets it (missing or empty everywhere)."""
    if not column.count():  # missing everywhere (the column was not delivered)
        return None
    values = _objects(column)[rows]
    if (pd.isna(values) | (values == "")).all():
        return None
    return values


def _defaulted(values: np.ndarray | None, defaults: np.ndarray) -> np.ndarray:
    """``values`` where set (not null, not empty), else ``defaults``."""
    if values is None:
        return defaults
    out: np.ndarray = np.where(pd.isna(values) | (values == ""), defaults, values)
    return out


def _properties(
    batch: pd.DataFrame, registry: SensorRegistry, pos: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each good reading's property, as codes into distinct names: the one given, else
    its sensor's default property, else ``value``."""
    defaults = registry.arrays["property"]
    default_codes, default_names = pd.factorize(np.where(pd.isna(defaults), "value", defaults))
    given = _given(batch["property"], rows)
    if given is None:  # the usual delivery: each sensor's own property
        return default_codes[pos], np.asarray(default_names, dtype=object)
    named = _defaulted(given, np.asarray(default_names, dtype=object)[default_codes[pos]])
    codes, names = pd.factorize(named)
    return codes, np.asarray(names, dtype=object)


def _streams(
    store: LiveStoreProtocol,
    registry: SensorRegistry,
    batch: pd.DataFrame,
    good: dict[str, np.ndarray],
    names: np.ndarray,
) -> np.ndarray:
    """The datastream of each good reading: known ones by sensor position, the others
    looked up (or made) in the store by ``(uid, property, unit)``."""
    pos, codes = good["pos"], good["prop"]
    ds = np.empty(pos.size, dtype="int64")
    for code, name in enumerate(names.tolist()):
        sel = np.flatnonzero(codes == code) if len(names) > 1 else np.arange(pos.size)
        slots = registry.stream_slots(store.store_id, name)
        found = slots[pos[sel]]
        new = sel[found < 0]
        if new.size:
            fresh, first = np.unique(pos[new], return_index=True)
            units = _units(batch, registry, good["row"][new[first]], fresh)
            keys = zip(registry.arrays["uid"][fresh].tolist(), repeat(name), units, strict=False)
            slots[fresh] = store.datastream_ids(keys)
            found = slots[pos[sel]]
        ds[sel] = found
    return ds


def _units(
    batch: pd.DataFrame, registry: SensorRegistry, rows: np.ndarray, pos: np.ndarray
) -> list[Any]:
    """The unit of new datastreams: the reading's own, else its sensor's, else None."""
    defaults = registry.arrays["unit"][pos]
    units = _defaulted(_given(batch["unit"], rows), defaults)
    units = units.astype(object)  # a copy: the registry's defaults stay as they are
    units[pd.isna(units)] = None
    out: list[Any] = units.tolist()
    return out


def ingest(
    store: LiveStoreProtocol,
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
    checked = _checked(batch, registry, now_ms, future_tolerance_s)
    rows = np.flatnonzero(checked.code == 0)
    good = {"row": rows, "pos": checked.pos[rows], "ms": checked.ms[rows]}
    good["number"] = checked.number[rows]
    good["prop"], names = _properties(batch, registry, good["pos"], rows)
    with store.lock:
        good["ds"] = _streams(store, registry, batch, good, names)
        twice, order = _repeated(good["ds"], good["ms"])
        checked.code[rows[twice]] = _DUPLICATE
        keep = order[~twice[order]]  # in key order (datastream, time), as the store writes
        good = {k: v[keep] for k, v in good.items()}
        _commit(store, registry, good, names, checked, source, now_ms, report, keep_rows)
    return report


def _repeated(ds: np.ndarray, ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose (datastream, time) came earlier in the batch, and the key order."""
    order = np.lexsort((ms, ds))  # stable: the first of equal keys stays first
    same = (ds[order][1:] == ds[order][:-1]) & (ms[order][1:] == ms[order][:-1])
    out = np.zeros(ds.size, dtype=bool)
    out[order[1:][same]] = True
    return out, order


def _commit(
    store: LiveStoreProtocol,
    registry: SensorRegistry,
    good: dict[str, np.ndarray],
    names: np.ndarray,
    checked: _Checked,
    source: str,
    now_ms: int,
    report: IngestReport,
    keep_rows: bool,
) -> None:
    quality = _given(checked.batch["quality"], good["row"])
    with store.batch() as tx:
        already = tx.insert_observations(
            good["ds"],
            good["ms"],
            good["number"],
            result_ms=now_ms,
            quality=None if quality is None else quality.tolist(),
        )
        if already.any():  # stored by an earlier batch: a resend
            checked.code[good["row"][already]] = _DUPLICATE
            good = {k: v[~already] for k, v in good.items()}
        prior = tx.update_latest(good["ds"], good["ms"], good["number"], prior=keep_rows)
        tx.dead_letters(_dead_rows(checked, source, now_ms, report))
    report.stored = len(good["ds"])
    report.sensors = registry.sorted_uids(good["pos"])
    if keep_rows:
        report.rows = pd.DataFrame(
            {
                "ds": good["ds"],
                "uid": registry.arrays["uid"][good["pos"]],
                "pos": good["pos"].astype("int64"),
                "property": names[good["prop"]],
                "ms": good["ms"],
                "value": good["number"],
                "prior_ms": prior,
            }
        )


def _dead_rows(
    checked: _Checked, source: str, now_ms: int, report: IngestReport
) -> list[tuple[Any, ...]]:
    bad = np.flatnonzero(checked.code != 0)
    if not bad.size:
        return []
    counts = np.bincount(checked.code[bad], minlength=len(REASONS))
    report.rejected = {REASONS[i]: int(n) for i, n in enumerate(counts.tolist()) if n}
    why = np.asarray(REASONS, dtype=object)[checked.code[bad]]

    def text(column: str) -> list[str | None]:
        values = _objects(checked.batch[column].iloc[bad])
        return [
            None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
            for v in values.tolist()
        ]

    return list(
        zip(
            [now_ms] * bad.size,
            [source] * bad.size,
            why.tolist(),
            text("sensor"),
            text("time"),
            text("property"),
            text("value"),
            strict=True,
        )
    )
