"""Synthetic sample district: a Chengdu-like city generated from a seed.

:func:`generate_city` returns every layer of a city information model
(parcels, buildings, roads, water and gas networks, sensors, cameras,
districts and grid cells) as GeoDataFrames in EPSG:4544 with the field names
of a municipal delivery; :func:`write_delivery` writes them as such a
delivery (GBK Shapefile, GeoJSON in CGCS2000, FileGDB, GeoPackages, CSV with
GCJ-02 coordinates) with a ``mapping.yaml`` for ``twin import``.

The city is synthetic: no real parcel, building or pipe is depicted.

Examples
--------
>>> from twin.sample import generate_city
>>> city = generate_city(200, seed=3)
>>> len(city["buildings"])
200
"""

from __future__ import annotations

from twin.sample.city import LAYERS, generate_city
from twin.sample.writing import write_delivery

__all__ = ["LAYERS", "generate_city", "write_delivery"]
