"""Twin geometries in Web Mercator (EPSG:3857) for vector tiles, a batch at a time.

GEOS holds the interpreter lock for the whole of one call: projecting a
million buildings at once stalled a service's requests for a second, and
freeing them again half a second. :func:`projected` works
:data:`PROJECT_BATCH` geometries at a time; :func:`carried_mercator` gives a
patched layer its older layer's projected geometries (the same objects), only
the rows read projected anew.

Examples
--------
>>> forward = transformer_between("EPSG:4544", WEB_MERCATOR)
>>> [round(v) for v in forward.transform(505700.0, 3392300.0)]
[11695166, 3587527]
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pyproj
import shapely

__all__ = ["PROJECT_BATCH", "WEB_MERCATOR", "carried_mercator", "projected", "transformer_between"]

WEB_MERCATOR = "EPSG:3857"


@lru_cache(maxsize=32)
def transformer_between(source: str, target: str) -> pyproj.Transformer:
    """One ``always_xy`` transformer a CRS pair for the process.

    pyproj makes a transformer's PROJ object once in each thread that uses it
    (0.3 s or more, seconds on a busy machine): one made per snapshot would pay
    that again at every reload, in the thread serving tiles.

    Examples
    --------
    >>> transformer_between("EPSG:4544", WEB_MERCATOR) is transformer_between(
    ...     "EPSG:4544", WEB_MERCATOR)
    True
    """
    return pyproj.Transformer.from_crs(source, target, always_xy=True)


#: Geometries projected to EPSG:3857 in one call (about 10 ms of GEOS for buildings).
PROJECT_BATCH = 8192


def projected(
    geoms: np.ndarray, forward: pyproj.Transformer, pause: Callable[[], object] | None = None
) -> np.ndarray:
    """``geoms`` transformed by ``forward``, :data:`PROJECT_BATCH` at a time (the same
    geometries as one call), ``pause()`` between two batches.

    Examples
    --------
    >>> forward = transformer_between("EPSG:4544", WEB_MERCATOR)
    >>> points = shapely.points(np.arange(3.0) + 505600, np.full(3, 3392200.0))
    >>> one = shapely.transform(points, lambda c: np.column_stack(forward.transform(*c.T)))
    >>> bool(shapely.equals_exact(projected(points, forward), one, tolerance=0).all())
    True
    """

    def project(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(forward.transform(*coords.T))

    if len(geoms) <= PROJECT_BATCH:
        return np.asarray(shapely.transform(geoms, project), dtype=object)
    parts = []
    for start in range(0, len(geoms), PROJECT_BATCH):
        if start and pause is not None:
            pause()
        parts.append(shapely.transform(geoms[start : start + PROJECT_BATCH], project))
    return np.concatenate(parts)


def carried_mercator(
    older: np.ndarray,
    positions: np.ndarray,
    read_rows: np.ndarray,
    geometries: np.ndarray,
    crs: pyproj.CRS,
    pause: Callable[[], object] | None = None,
) -> np.ndarray:
    """A patched layer's geometries in EPSG:3857, the unchanged ones taken from its older
    layer's (the same objects: nothing projected, nor freed, again).

    Row ``i`` of the layer is row ``positions[i]`` of the older layer's rows followed
    by the rows read (:class:`twin.query.delta.Lineage`); ``read_rows`` are the
    layer's positions of the rows read, in their order, and only ``geometries`` (the
    layer's, twin CRS) at those positions are projected. The answer equals
    projecting every geometry of the layer.

    Examples
    --------
    >>> crs = pyproj.CRS("EPSG:4544")
    >>> forward = transformer_between(crs.srs, WEB_MERCATOR)
    >>> old = shapely.points([505600.0, 505700.0, 505800.0], [3392200.0] * 3)
    >>> new = np.array([old[2], shapely.Point(505650.0, 3392250.0), old[0]], dtype=object)
    >>> older = projected(old, forward)
    >>> carried = carried_mercator(older, np.array([2, 3, 0]), np.array([1]), new, crs)
    >>> carried[0] is older[2], carried[2] is older[0]
    (True, True)
    >>> bool(shapely.equals_exact(carried, projected(new, forward), tolerance=0).all())
    True
    """
    base = len(older)
    kept = positions < base
    out = np.empty(len(positions), dtype=object)
    out[kept] = older[positions[kept]]
    read = projected(geometries[read_rows], transformer_between(crs.srs, WEB_MERCATOR), pause)
    out[read_rows] = read
    return out
