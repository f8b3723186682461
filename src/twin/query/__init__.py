"""City one-map queries (城市一张图) over a twin held in memory.

:mod:`twin.query.index` loads a twin once and indexes every layer
(:class:`~twin.query.index.CityIndex`), and keeps a service's copy current
while the twin file is re-imported (:class:`~twin.query.live.LiveIndex`).

Examples
--------
>>> from twin.query import CityIndex
>>> snapshot = CityIndex.load(sample_twin_path)
>>> snapshot.layer("parcels").kind
'parcel'
"""

from twin.query.index import CityIndex, IndexedLayer, file_identity, transformer
from twin.query.live import LiveIndex

__all__ = ["CityIndex", "IndexedLayer", "LiveIndex", "file_identity", "transformer"]
