"""A digest of a layer's uids in their stored order, recorded by every import.

A layer is stored in the order its last delivery gave (both backends write the
imported rows in that order). A service holding the layer in memory can
predict the new order from the change sets (old order less the removed uids,
changed ones in place, added ones at the end) but not know that the delivery
kept it; reading every uid again to check costs seconds at a million
features. Each import therefore records, in ``twin_meta`` under
:func:`order_key`, the import's id and a digest of the uids as written
(:class:`UidDigest`, fed batch by batch by a streamed import); a reader
compares it with the digest of its prediction, and reads the stored order
only when they differ.

Examples
--------
>>> digest = UidDigest()
>>> digest.update(["b1", "b2"]); digest.update(["b3"])
>>> digest.hexdigest() == uid_digest(["b1", "b2", "b3"])
True
>>> uid_digest(["b1", "b2", "b3"]) == uid_digest(["b2", "b1", "b3"])
False
>>> order_value(7, ["b1"]).startswith("7:1:")
True
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["ORDER_PREFIX", "UidDigest", "order_key", "order_value", "uid_digest"]

#: ``twin_meta`` keys of the order digests: ``uid_order:<layer>``.
ORDER_PREFIX = "uid_order:"


def order_key(layer: str) -> str:
    """The ``twin_meta`` key holding ``layer``'s order digest.

    Examples
    --------
    >>> order_key("buildings")
    'uid_order:buildings'
    """
    return ORDER_PREFIX + layer


class UidDigest:
    """SHA-1 of uids in order (their UTF-8 lengths and bytes), fed a batch at a time."""

    def __init__(self) -> None:
        self._lengths = hashlib.sha1(usedforsecurity=False)
        self._data = hashlib.sha1(usedforsecurity=False)
        self.count = 0

    def update(self, uids: Any) -> None:
        """Add ``uids`` (a sequence, Series, Index or Arrow array of strings) in order."""
        for chunk in _chunks(uids):
            if len(chunk) == 0:
                continue
            if chunk.null_count:
                raise ValueError("a uid is missing: every feature of a layer has one")
            offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)
            offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1]
            self._lengths.update(np.diff(offsets).astype("<i8").tobytes())
            data = chunk.buffers()[2]
            if data is not None:
                self._data.update(memoryview(data)[int(offsets[0]) : int(offsets[-1])])
            self.count += len(chunk)

    def hexdigest(self) -> str:
        """``"<count>:<lengths sha1><bytes sha1>"`` (the count first: a quick tell)."""
        return f"{self.count}:{self._lengths.hexdigest()}{self._data.hexdigest()}"


def uid_digest(uids: Any) -> str:
    """:meth:`UidDigest.hexdigest` of ``uids`` in one go."""
    digest = UidDigest()
    digest.update(uids)
    return digest.hexdigest()


def order_value(import_id: int, uids: Any) -> str:
    """What an import records under :func:`order_key`: ``"<import_id>:<digest>"``."""
    return f"{int(import_id)}:{uid_digest(uids)}"


def _chunks(uids: Any) -> list[pa.LargeStringArray]:
    values = getattr(uids, "array", uids)  # a Series or Index: its array (Arrow kept)
    if isinstance(values, pa.Array | pa.ChunkedArray):
        array: pa.Array | pa.ChunkedArray = values
        if array.type != pa.large_string():
            array = array.cast(pa.large_string())
    elif isinstance(values, np.ndarray | list | tuple):
        array = pa.array(values, type=pa.large_string())
    else:
        array = pa.array(values)
        if array.type != pa.large_string():
            array = array.cast(pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        return list(array.chunks)
    return [array]
