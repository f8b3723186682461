"""Match many addresses at once, on several cores.

The index is built once in the parent; worker processes are forked from it
(so the index is shared copy-on-write, never pickled) and each matches a
contiguous chunk of the input. Answers come back in input order.

Examples
--------
>>> import pandas as pd
>>> from twin.address.match import AddressIndex
>>> layer = pd.DataFrame({"road": ["杉江街"], "number": ["3"]}, index=["a.1"])
>>> [m.uid for m in match_many(AddressIndex(layer), ["杉江街3号", "杉江街9号"], workers=1)]
['a.1', None]
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Sequence
from typing import Any

from twin.address.match import AddressIndex, AddressMatch

__all__ = ["match_many"]

_INDEX: AddressIndex | None = None
_TEXTS: Sequence[str] = ()
_MIN_PARALLEL = 20_000


def _chunk(bounds: tuple[int, int]) -> list[tuple[Any, ...]]:
    """Match one chunk; answers as plain tuples (cheap to send back)."""
    assert _INDEX is not None
    match = _INDEX.match
    out = []
    for text in _TEXTS[bounds[0] : bounds[1]]:
        m = match(text)
        out.append((m.level, m.uid, m.score, m.address, m.row, m.reason))
    return out


def match_many(
    index: AddressIndex, texts: Sequence[str], *, workers: int | None = None
) -> list[AddressMatch]:
    """Match every text; with ``workers`` > 1 (default: the CPUs available) on forked processes.

    Parameters
    ----------
    index : AddressIndex
        The standard address index.
    texts : sequence of str
        Addresses as typed.
    workers : int, optional
        Processes to use; inputs under 20,000 addresses, or platforms without
        ``fork``, run in this process.

    Returns
    -------
    list of AddressMatch
        One per text, in order.
    """
    global _INDEX, _TEXTS
    n = len(texts)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    fork = "fork" in multiprocessing.get_all_start_methods()
    if workers <= 1 or n < _MIN_PARALLEL or not fork:
        return [index.match(t) for t in texts]
    _INDEX, _TEXTS = index, texts
    gc.freeze()  # the workers then leave the index's pages shared
    try:
        pieces = workers * 8
        bounds = [(n * i // pieces, n * (i + 1) // pieces) for i in range(pieces)]
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            chunks = pool.map(_chunk, bounds, chunksize=1)
    finally:
        _INDEX, _TEXTS = None, ()
        gc.unfreeze()
    return [
        AddressMatch(text, *answer)
        for text, answer in zip(texts, (a for chunk in chunks for a in chunk), strict=True)
    ]
