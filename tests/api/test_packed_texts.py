"""PackedTexts gives back every text it was given, by position, in the order asked."""

from __future__ import annotations

import numpy as np
import pytest

from twin_api.packed_texts import BLOCK, PackedTexts


def _texts(count: int) -> list[str | None]:
    """Texts of varied lengths, some missing, some non-ASCII, none with a newline."""
    rng = np.random.default_rng(count)
    return [
        None if i % 11 == 3 else f'{{"n":{i},"名":"{"楼" * int(rng.integers(0, 5))}"}}'
        for i in range(count)
    ]


@pytest.mark.parametrize("count", [0, 1, BLOCK, BLOCK + 1, 203])
def test_every_text_comes_back_by_position(count: int) -> None:
    texts = _texts(count)
    batches = [texts[i : i + 3 * BLOCK] for i in range(0, count, 3 * BLOCK)]
    packed = PackedTexts.pack(batches)
    assert len(packed) == count
    assert sum(map(len, packed.chunks)) == len(packed.sizes) == -(-count // BLOCK)
    assert len(packed.chunks) == len(batches)
    expected = [None if t is None else t.encode() for t in texts]
    assert packed.take(np.arange(count)) == expected
    rng = np.random.default_rng(1)
    shuffled = rng.permutation(count)
    assert packed.take(shuffled) == [expected[i] for i in shuffled]
    if count:
        assert packed.take(np.array([count - 1, 0, count - 1])) == [
            expected[-1],
            expected[0],
            expected[-1],
        ]
    assert packed.take(np.empty(0, dtype=np.intp)) == []


def test_packed_texts_are_smaller_than_the_texts() -> None:
    coordinates = np.random.default_rng(2).uniform(103.8, 103.9, (4000, 2)).round(9)
    texts = [f'{{"type":"Point","coordinates":[{x!r},{y!r}]}}' for x, y in coordinates]
    packed = PackedTexts.pack([texts])
    assert packed.nbytes < 0.6 * sum(len(t) for t in texts)


def test_bad_positions_and_batches_are_refused() -> None:
    packed = PackedTexts.pack([_texts(20)])
    with pytest.raises(IndexError, match=r"positions must lie in 0\.\.19"):
        packed.take(np.array([20]))
    with pytest.raises(IndexError, match=r"positions must lie in 0\.\.19"):
        packed.take(np.array([-1]))
    with pytest.raises(ValueError, match="only the last batch may hold other than a multiple"):
        PackedTexts.pack([_texts(BLOCK + 1), _texts(2)])
    with pytest.raises(ValueError, match="20 texts need 3 blocks, not 2"):
        PackedTexts([packed.chunks[0].slice(0, 2)], packed.sizes[:2], 20)


def test_blocks_in_any_chunks_read_the_same() -> None:
    texts = _texts(100)
    packed = PackedTexts.pack([texts])
    (whole,) = packed.chunks
    cut = [whole.slice(0, 1), whole.slice(1, 4), whole.slice(5, 1), whole.slice(6)]
    again = PackedTexts(cut, packed.sizes, 100)  # chunks at offsets inside one buffer
    every = np.arange(100)
    assert again.take(every) == packed.take(every) == [t and t.encode() for t in texts]
