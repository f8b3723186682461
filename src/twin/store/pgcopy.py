"""Binary COPY: a frame as PostgreSQL's binary COPY stream, built from Arrow buffers.

PostgreSQL reads binary COPY without parsing text, and PostGIS reads a
geometry sent this way as plain WKB (no hex, half the bytes). The rows are
assembled column-wise: each column becomes two Arrow arrays, its 4-byte
big-endian length prefixes and its values in PostgreSQL's binary format, and
:func:`pyarrow.compute.binary_join_element_wise` joins them row by row in
C++; the joined array's data buffer *is* the COPY stream. No Python object
is made per row (except the WKB that shapely returns).

A frame is encoded in batches (:func:`binary_batches`); :func:`copy_binary`
encodes the next batch in a worker thread while the server parses the last
one, so client and server work at the same time and memory stays bounded by
a few batches.

Examples
--------
Two rows of a bigint and a text column, the second text NULL:

>>> import pandas as pd
>>> frame = pd.DataFrame({"n": [1, 2], "name": ["a", None]})
>>> stream = b"".join(bytes(b) for b in binary_batches(frame, ["bigint", "text"]))
>>> stream[:11] == SIGNATURE[:11], stream.endswith(TRAILER)
(True, True)
>>> stream[len(SIGNATURE):][:19].hex(" ")
'00 02 00 00 00 08 00 00 00 00 00 00 00 01 00 00 00 01 61'
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

__all__ = [
    "SIGNATURE",
    "TRAILER",
    "Unsupported",
    "binary_batches",
    "copy_binary",
    "encodable",
]

#: The binary COPY header: signature, flags, header extension length.
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
#: The binary COPY trailer (a field count of -1).
TRAILER = b"\xff\xff"
#: Rows per batch: a few tens of MB of COPY data for a layer of buildings.
BATCH_ROWS = 100_000
_EPOCH_2000_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in microseconds since 1970
_FIXED = {
    "bigint": ">i8",
    "smallint": ">i2",
    "integer": ">i4",
    "double precision": ">f8",
    "real": ">f4",
}
_TEXT = ("text", "character varying")
_GEOMETRY = ("USER-DEFINED", "geometry")


class Unsupported(TypeError):
    """A column that cannot be encoded for its target type (the caller falls back to CSV)."""


def encodable(frame: pd.DataFrame, types: Sequence[str]) -> bool:
    """Whether every column of ``frame`` can be sent as its PostgreSQL type in ``types``.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"a": [1.5], "b": [2]})
    >>> encodable(frame, ["bigint", "text"]), encodable(frame, ["double precision", "text"])
    (False, True)
    """
    try:
        for column, pg in zip(frame.columns, types, strict=True):
            _check(frame[column], pg)
    except Unsupported:
        return False
    return True


def binary_batches(
    frame: pd.DataFrame, types: Sequence[str], *, rows: int = BATCH_ROWS
) -> Iterator[Any]:
    """The binary COPY stream of ``frame`` (columns in order, typed as ``types``), in pieces.

    ``types`` names each column's PostgreSQL type (``bigint``, ``text``,
    ``geometry``…); a GeoDataFrame's active geometry column is sent as WKB,
    which PostGIS gives the column's SRID. The first piece starts with the
    signature, the last is the trailer. Raises :class:`Unsupported` when a
    column cannot be sent as its type.
    """
    yield SIGNATURE
    for start in range(0, len(frame), rows):
        yield _batch(frame.iloc[start : start + rows], types)
    yield TRAILER


def copy_binary(cursor: Any, statement: str, batches: Iterator[Any]) -> None:
    """Run ``COPY … FROM STDIN (FORMAT binary)``, encoding ahead in a worker thread."""
    pending: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        """Queue ``item`` unless the writer has stopped (then never block on a full queue)."""
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for piece in batches:
                if not offer(piece):
                    return
        except BaseException as exc:  # handed to the writer, raised there
            offer(exc)
            return
        offer(None)

    worker = threading.Thread(target=produce, name="twin-copy-encoder", daemon=True)
    worker.start()
    try:
        with cursor.copy(statement.encode()) as copy:
            while (piece := pending.get()) is not None:
                if isinstance(piece, BaseException):
                    raise piece
                copy.write(memoryview(piece))
    finally:
        stop.set()
        worker.join()


def _batch(frame: pd.DataFrame, types: Sequence[str]) -> Any:
    parts: list[Any] = [pa.scalar(len(frame.columns).to_bytes(2, "big"), pa.large_binary())]
    for column, pg in zip(frame.columns, types, strict=True):
        parts.extend(_encode(frame[column], pg))
    joined = pc.binary_join_element_wise(
        *parts, pa.scalar(b"", pa.large_binary()), null_handling="replace", null_replacement=b""
    )
    if isinstance(joined, pa.ChunkedArray):
        joined = joined.combine_chunks()
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)
    first, last = offsets[joined.offset], offsets[joined.offset + len(joined)]
    return joined.buffers()[2][int(first) : int(last)]


def _encode(values: pd.Series, pg: str) -> list[Any]:
    """A column as [length prefixes, values] Arrow arrays in PostgreSQL's binary format."""
    _check(values, pg)
    if pg in _GEOMETRY:
        wkb = shapely.to_wkb(np.asarray(values.array, dtype=object))
        return _variable(pa.array(wkb, type=pa.large_binary()))
    valid = values.notna().to_numpy()
    if pg in _FIXED:
        kind = np.float64 if _FIXED[pg][1] == "f" else np.int64
        data = values.to_numpy(dtype=kind, na_value=0)
        return _fixed(data.astype(_FIXED[pg]), valid)
    if pg == "boolean":
        return _fixed(values.to_numpy(dtype=np.uint8, na_value=0), valid)
    if pg.startswith("timestamp"):
        naive = values.dt.tz_convert("UTC").dt.tz_localize(None) if _zoned(values) else values
        micros = naive.to_numpy(dtype="datetime64[us]").view(np.int64)
        return _fixed(np.where(valid, micros - _EPOCH_2000_US, 0).astype(">i8"), valid)
    return _variable(_text(values).cast(pa.large_binary()))


def _check(values: pd.Series, pg: str) -> None:
    """Raise :class:`Unsupported` unless ``values`` can be sent as ``pg`` without loss."""
    dtype = values.dtype
    if pg in _GEOMETRY or pg in _TEXT:
        return
    if pg == "boolean":
        ok = pd.api.types.is_bool_dtype(dtype)
    elif pg.startswith("timestamp"):
        ok = pd.api.types.is_datetime64_any_dtype(dtype) and _zoned(values) == ("with " in pg)
    elif pg in _FIXED:
        ok = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        if ok and _FIXED[pg][1] == "i":
            ok = _whole(values, np.iinfo(_FIXED[pg][1:]).max)
    else:
        ok = False
    if not ok:
        raise Unsupported(f"column {values.name!r}: {dtype} cannot be sent as {pg}")


def _zoned(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.DatetimeTZDtype)


def _whole(values: pd.Series, limit: int) -> bool:
    """Whether every value is a whole number within ``±limit``."""
    numbers = values.to_numpy(dtype=np.float64, na_value=0.0)
    if not len(numbers):
        return True
    return bool(np.array_equal(numbers, np.trunc(numbers)) and np.abs(numbers).max() <= limit)


def _text(values: pd.Series) -> pa.Array:
    """A column as Arrow strings (other types as their text, as the CSV writer spells them)."""
    try:
        array = pa.array(values, from_pandas=True)
        if pa.types.is_large_string(array.type) or pa.types.is_string(array.type):
            return array
        if pa.types.is_null(array.type):
            return array.cast(pa.large_string())
        return pc.cast(array, pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        text = values.astype(object).where(values.isna(), values.astype(str))
        return pa.array(text, type=pa.large_string(), from_pandas=True)


def _fixed(data: np.ndarray, valid: np.ndarray) -> list[Any]:
    """Prefixes and values of a fixed-width column (``data`` already big-endian)."""
    n, width = len(data), data.dtype.itemsize
    data = np.ascontiguousarray(data)
    bitmap = None if valid.all() else pa.array(valid).buffers()[1]
    values = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), n, [bitmap, pa.py_buffer(data.view(np.uint8))]
    )
    lengths = np.where(valid, width, -1).astype(">i4")
    return [_prefixes(lengths), values.cast(pa.large_binary())]


def _variable(values: pa.Array) -> list[Any]:
    """Prefixes and values of a variable-width column (bytes, NULL where null)."""
    lengths = pc.fill_null(pc.binary_length(values), -1).to_numpy(zero_copy_only=False)
    return [_prefixes(lengths.astype(">i4")), values]


def _prefixes(lengths: np.ndarray) -> pa.Array:
    buffer = pa.py_buffer(np.ascontiguousarray(lengths).view(np.uint8))
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), len(lengths), [None, buffer])
    return fixed.cast(pa.large_binary())
