"""Texts kept LZ4-compressed in small blocks, read back a few features at a time.

A province's prepared CRS84 GeoJSON geometries (about 250 bytes a building,
see :func:`twin_api.geojson.prepare_geometry_texts`) would hold 2.5 GB at
10,000,000 buildings as plain strings. Neighbouring features (consecutive fids)
share most of their leading digits, so :data:`BLOCK` consecutive texts
compressed together with LZ4 (Arrow's ``lz4_raw`` codec) take about half of
that, and a page of 100 buildings decompresses a few dozen blocks of about
2 KB in microseconds each: far less work than projecting and writing its
geometries again. (zstd would take a third, but decompresses several times
slower.)

Examples
--------
>>> texts = PackedTexts.pack([["a", None, *"bcdefg"], ["ccc"]])
>>> len(texts), texts.take(np.array([8, 0, 1, 2]))
(9, [b'ccc', b'a', None, b'b'])
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa

__all__ = ["BLOCK", "CODEC", "PackedTexts"]

#: Consecutive texts compressed together (a batch handed to :meth:`PackedTexts.pack`
#: holds a multiple of this, its last one aside).
BLOCK = 8
#: Arrow's compression codec for the blocks.
CODEC = "lz4_raw"
_SEPARATOR = b"\n"  # never inside a GeoJSON text written without indentation

_LOCAL = threading.local()


def _codec() -> pa.Codec:
    """This thread's codec."""
    found = getattr(_LOCAL, "codec", None)
    if found is None:
        found = _LOCAL.codec = pa.Codec(CODEC)
    return found


class PackedTexts:
    """One text (or None) a feature, in blocks of :data:`BLOCK` compressed with LZ4.

    Parameters
    ----------
    chunks : list of pyarrow.Array
        The compressed blocks (``large_binary``, one block a value), in as
        many arrays as they were packed in (never concatenated: that would
        hold them twice for a moment). A block is its texts joined by a
        newline, a missing text written as an empty one.
    sizes : numpy.ndarray
        Each block's size before compression (bytes).
    count : int
        Number of texts.
    """

    def __init__(self, chunks: list[pa.Array], sizes: np.ndarray, count: int) -> None:
        needed = -(-count // BLOCK)
        held = sum(len(chunk) for chunk in chunks)
        if held != needed or len(sizes) != needed:
            raise ValueError(f"{count} texts need {needed} blocks, not {held}")
        self.chunks = chunks
        self.sizes = sizes
        self.count = count
        # Each chunk's bytes and offsets, sliced without Arrow's take.
        self._data = [memoryview(chunk.buffers()[2] or b"") for chunk in chunks]
        self._offsets = [
            np.frombuffer(chunk.buffers()[1], dtype=np.int64)[
                chunk.offset : chunk.offset + len(chunk) + 1
            ]
            for chunk in chunks
        ]
        self._firsts = np.cumsum([0] + [len(chunk) for chunk in chunks])[:-1]

    @classmethod
    def pack(cls, batches: Iterable[Sequence[str | None] | np.ndarray]) -> PackedTexts:
        """Texts given in batches (every batch but the last a multiple of :data:`BLOCK`)."""
        codec = _codec()
        chunks: list[pa.Array] = []
        sizes: list[np.ndarray] = []
        count = 0
        for batch in batches:
            if count % BLOCK:
                raise ValueError(f"only the last batch may hold other than a multiple of {BLOCK}")
            encoded = [b"" if text is None else text.encode() for text in batch]
            raw = [
                _SEPARATOR.join(encoded[start : start + BLOCK])
                for start in range(0, len(encoded), BLOCK)
            ]
            if raw:
                chunks.append(_binary([codec.compress(block, asbytes=True) for block in raw]))
                sizes.append(np.array([len(block) for block in raw], dtype=np.int64))
            count += len(encoded)
        return cls(chunks, np.concatenate(sizes) if sizes else np.empty(0, np.int64), count)

    def __len__(self) -> int:
        return self.count

    @property
    def nbytes(self) -> int:
        """Bytes held (compressed blocks, their offsets and sizes)."""
        return int(sum(chunk.nbytes for chunk in self.chunks) + self.sizes.nbytes)

    def take(self, positions: np.ndarray) -> list[bytes | None]:
        """The texts at ``positions`` (UTF-8 bytes; None where missing), in that order."""
        positions = np.asarray(positions, dtype=np.int64)
        if not len(positions):
            return []
        if positions.min() < 0 or positions.max() >= self.count:
            raise IndexError(f"positions must lie in 0..{self.count - 1}")
        blocks, which = _blocks_of(positions)
        decompress = _codec().decompress
        chunks = np.searchsorted(self._firsts, blocks, side="right") - 1
        local = (blocks - self._firsts[chunks]).tolist()
        texts = [
            decompress(
                self._data[c][self._offsets[c][b] : self._offsets[c][b + 1]],
                decompressed_size=size,
                asbytes=True,
            ).split(_SEPARATOR)
            for c, b, size in zip(chunks.tolist(), local, self.sizes[blocks].tolist(), strict=True)
        ]
        slots = (positions % BLOCK).tolist()
        return [texts[b][s] or None for b, s in zip(which, slots, strict=True)]


def _binary(values: list[bytes]) -> pa.Array:
    """``values`` as one ``large_binary`` array whose buffers are exactly their size
    (an Arrow builder would leave up to half of its buffers' capacity unused)."""
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum([len(value) for value in values], out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(values))]
    return pa.Array.from_buffers(pa.large_binary(), len(values), buffers)


def _blocks_of(positions: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The blocks holding ``positions`` (each once) and, by position, which of those."""
    blocks = positions // BLOCK
    if len(blocks) > 1 and (blocks[1:] >= blocks[:-1]).all():  # sorted: no sort needed
        first = np.empty(len(blocks), dtype=bool)
        first[0] = True
        np.not_equal(blocks[1:], blocks[:-1], out=first[1:])
        return blocks[first], (np.cumsum(first) - 1).tolist()
    unique, which = np.unique(blocks, return_inverse=True)
    return unique, which.tolist()
