"""A province-sized synthetic delivery: several generated cities side by side, streamed to disk.

Ten million buildings do not fit in memory as one generated city (the
generator holds every layer of a city at once). A province is generated one
city at a time — each a :func:`~twin.sample.generate_city` of its own seed,
moved onto its own square of a grid of cities, its ids prefixed with the city
number so they stay unique — and each city's layers are appended to one
``city.gpkg`` before the next city is generated. Peak memory is one city's.

Examples
--------
>>> import tempfile
>>> paths = write_province(250, tempfile.mkdtemp(), city_buildings=125, seed=3)
>>> import pyogrio
>>> pyogrio.read_info(paths["buildings"], layer="buildings")["features"]
250
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from twin.errors import UsageError
from twin.sample.city import LAYERS, MIN_BUILDINGS, generate_city
from twin.sample.writing import DELIVERY, mapping_document

__all__ = ["city_sizes", "generate_province", "write_province"]

#: Buildings per city of a province unless told otherwise.
CITY_BUILDINGS = 1_000_000
#: Gap between neighbouring cities, m.
GAP_M = 5_000.0
#: Fields that hold another layer's id (prefixed like that id).
_REFERENCES = {"grids": ("所属街道",)}


def city_sizes(n_buildings: int, city_buildings: int = CITY_BUILDINGS) -> list[int]:
    """Buildings per city: as many cities of ``city_buildings`` as needed, sizes evened out.

    Examples
    --------
    >>> city_sizes(10_000_000)
    [1000000, 1000000, 1000000, 1000000, 1000000, 1000000, 1000000, 1000000, 1000000, 1000000]
    >>> city_sizes(2_500_000)
    [833334, 833333, 833333]
    """
    if n_buildings < MIN_BUILDINGS or city_buildings < MIN_BUILDINGS:
        raise UsageError(f"a province needs at least {MIN_BUILDINGS} buildings a city")
    k = math.ceil(n_buildings / city_buildings)
    base, extra = divmod(n_buildings, k)
    return [base + (1 if i < extra else 0) for i in range(k)]


def generate_province(
    n_buildings: int, *, seed: int = 42, city_buildings: int = CITY_BUILDINGS
) -> Iterator[dict[str, gpd.GeoDataFrame]]:
    """The cities of a province one by one (each city's layers, moved and with unique ids).

    City ``i`` has seed ``seed + i`` and lies on square ``i`` of a grid of cities
    (row by row, ``ceil(sqrt(k))`` to a row), :data:`GAP_M` apart.
    """
    sizes = city_sizes(n_buildings, city_buildings)
    per_row = math.ceil(math.sqrt(len(sizes)))
    pitch = None
    origin = None
    for i, n in enumerate(sizes):
        city = generate_city(n, seed=seed + i)
        bounds = city["roads"].total_bounds
        if pitch is None:  # the first city is the largest: it sets the grid
            pitch = max(bounds[2] - bounds[0], bounds[3] - bounds[1]) + GAP_M
            origin = bounds[:2]
        assert origin is not None
        row, col = divmod(i, per_row)
        target = origin + np.array([col * pitch, row * pitch])
        yield _moved(city, target - bounds[:2], prefix=f"C{i + 1:02d}-")


def _moved(
    city: dict[str, gpd.GeoDataFrame], by: np.ndarray, *, prefix: str
) -> dict[str, gpd.GeoDataFrame]:
    out = {}
    for name in LAYERS:
        frame = city[name]
        geoms = shapely.transform(frame.geometry.to_numpy(), lambda xy: xy + by)
        frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
        for field in (DELIVERY[name]["id"], *_REFERENCES.get(name, ())):
            frame[field] = prefix + frame[field].astype(str)
        out[name] = frame
    return out


def write_province(
    n_buildings: int,
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 42,
    city_buildings: int = CITY_BUILDINGS,
) -> dict[str, Path]:
    """Write a province as ``city.gpkg`` (every layer, EPSG:4544) and its ``mapping.yaml``.

    Each city is appended as soon as it is generated, so memory holds one city.

    Returns
    -------
    dict of str to pathlib.Path
        ``city.gpkg`` for every layer, and ``"mapping"``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "city.gpkg"
    tmp = out / "city.tmp.gpkg"
    tmp.unlink(missing_ok=True)
    for i, city in enumerate(
        generate_province(n_buildings, seed=seed, city_buildings=city_buildings)
    ):
        for name in LAYERS:
            pyogrio.write_dataframe(
                city[name], tmp, layer=name, driver="GPKG", append=i > 0, use_arrow=True
            )
        del city
    tmp.replace(path)
    mapping = out / "mapping.yaml"
    mapping.write_text(mapping_document("gpkg"), encoding="utf-8")
    return {**dict.fromkeys(LAYERS, path), "mapping": mapping}
