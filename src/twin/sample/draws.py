"""Random streams and exact-share draws shared by the generator's modules.

Each part of the city draws from its own stream, derived from the seed and
the part's name, so changing how one part is generated leaves the others as
they were.

Examples
--------
>>> a = stream(42, "roads").random()
>>> b = stream(42, "roads").random()
>>> a == b
True
"""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

__all__ = ["exact_mask", "numbered", "stream"]

BoolArray = npt.NDArray[np.bool_]


def stream(seed: int, name: str) -> np.random.Generator:
    """Return the random stream of part ``name`` of the city for ``seed``.

    Parameters
    ----------
    seed : int
        The city's seed.
    name : str
        The part (``"layout"``, ``"roads"``, …).
    """
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def exact_mask(
    rng: np.random.Generator,
    n: int,
    share: float,
    *,
    among: BoolArray | None = None,
    force: BoolArray | None = None,
) -> BoolArray:
    """Return a mask with exactly ``round(share * n)`` True values, placed at random.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random stream.
    n : int
        Length of the mask.
    share : float
        Share of True values.
    among : ndarray of bool, optional
        Only these positions may be True.
    force : ndarray of bool, optional
        These positions are True (and count towards the total).

    Examples
    --------
    >>> import numpy as np
    >>> int(exact_mask(np.random.default_rng(0), 200, 0.03).sum())
    6
    """
    mask = np.zeros(n, dtype=bool) if force is None else force.copy()
    allowed = np.ones(n, dtype=bool) if among is None else among.copy()
    allowed &= ~mask
    extra = max(0, round(share * n) - int(mask.sum()))
    pool = np.flatnonzero(allowed)
    mask[rng.choice(pool, size=min(extra, pool.size), replace=False)] = True
    return mask


def numbered(prefix: str, n: int, width: int = 6) -> npt.NDArray[np.str_]:
    """Return ids ``prefix000001`` … for ``n`` features (zero-padded to ``width``).

    Examples
    --------
    >>> numbered("JS", 2).tolist()
    ['JS000001', 'JS000002']
    """
    width = max(width, len(str(n)))
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width))
