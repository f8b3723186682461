"""Geocoding over an in-memory twin snapshot: what the API and the one-map search box call.

:func:`geocode_text` and :func:`reverse_point` take a
:class:`twin.query.index.CityIndex` and the address layers the caller may
read; the geocoder of each (snapshot, layer) is built once and kept while
the snapshot is in force.

See :func:`geocode_text` for a runnable example (docs/addresses.md has
the answer's fields).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from twin.address.geocode import Geocoder, geocoder_from_frame, reverse
from twin.address.parse import parse_address
from twin.errors import LayerNotFoundError, TwinError, UsageError
from twin.query.index import CityIndex
from twin.webcoords import wgs84_to_bd09, wgs84_to_gcj02

__all__ = ["geocode_text", "geocoder_of", "reverse_point"]

_CACHE: OrderedDict[tuple[Any, ...], Geocoder] = OrderedDict()
_LOCK = threading.Lock()
_KEEP = 4
_TO_WEB = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}


def geocoder_of(index: CityIndex, layer: str) -> Geocoder:
    """The geocoder of ``layer`` in this snapshot (built on first use, then kept)."""
    key = (str(index.path), index.identity, layer)
    with _LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
        indexed = index.layers[layer]
        buildings = [lyr.frame for lyr in index.layers.values() if lyr.kind == "building"]
        polygons = None
        if buildings:
            polygons = pd.concat([b[["geometry"]] for b in buildings])
        named = {
            kind: [
                lyr.frame[["name", "geometry"]]
                for lyr in index.layers.values()
                if lyr.kind == kind and "name" in lyr.frame
            ]
            for kind in ("road", "grid")
        }
        try:
            relations = index.twin.relations(from_layer=layer)
        except TwinError:
            relations = None
        coder = geocoder_from_frame(
            indexed.frame,
            buildings=polygons,
            relations=relations,
            name=layer,
            classification=str(indexed.classification),
            roads=pd.concat(named["road"]) if named["road"] else None,
            grids=pd.concat(named["grid"]) if named["grid"] else None,
        )
        _CACHE[key] = coder
        while len(_CACHE) > _KEEP:
            _CACHE.popitem(last=False)
        return coder


def _choose(index: CityIndex, layers: Sequence[str], layer: str | None) -> str:
    names = [n for n in layers if n in index.layers and index.layers[n].kind == "address"]
    if layer is not None:
        if layer not in names:
            raise LayerNotFoundError(
                f"there is no address layer {layer!r}; address layers: {', '.join(names) or 'none'}"
            )
        return layer
    if not names:
        raise LayerNotFoundError(
            "this twin has no standard address layer: import one with kind='address'"
        )
    return names[0]


def _lonlat(index: CityIndex, point: Any, coords: str) -> dict[str, float] | None:
    if point is None:
        return None
    lon, lat = index.from_twin("EPSG:4326").transform(point.x, point.y)
    if coords in _TO_WEB:
        lon_a, lat_a = _TO_WEB[coords](np.array([lon]), np.array([lat]))
        lon, lat = float(lon_a[0]), float(lat_a[0])
    return {"lon": round(float(lon), 7), "lat": round(float(lat), 7)}


def geocode_text(
    index: CityIndex,
    text: str,
    *,
    layers: Sequence[str],
    layer: str | None = None,
    coords: str = "wgs84",
) -> dict[str, Any]:
    """Geocode one address against the first (or the named) address layer of ``layers``.

    Parameters
    ----------
    index : CityIndex
        The snapshot.
    text : str
        The address as typed.
    layers : sequence of str
        The layers the caller may read.
    layer : str, optional
        The address layer to use.
    coords : str, default "wgs84"
        Convention of the answer's ``point``: wgs84, gcj02 or bd09.

    Returns
    -------
    dict
        The match (``level, uid, score, address, building, grid, district,
        reason, candidates``), the ``layer``, the ``parsed`` levels and the
        ``point`` (``{"lon", "lat"}`` in ``coords``, None when unmatched). At
        ``road`` level ``uid`` is the road's (from the twin's road layers), at
        ``community`` level the grid cell's named after the community.

    Raises
    ------
    UsageError
        When ``text`` is empty.
    LayerNotFoundError
        When no address layer (or not the named one) is among ``layers``.

    Examples
    --------
    A twin with three standard addresses, two of them buildings at one number:

    >>> import pathlib, tempfile, geopandas as gpd, shapely, twin
    >>> from twin.query.index import CityIndex
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "city.gpkg"
    >>> city = twin.Twin.create(path, crs="EPSG:4544")
    >>> std = gpd.GeoDataFrame(
    ...     {"addr_id": ["1", "2", "3"], "road": ["杉江街"] * 3, "number": ["3", "5", "5"],
    ...      "building": [None, "1", "2"],
    ...      "address": ["杉江街3号", "杉江街5号1栋", "杉江街5号2栋"]},
    ...     geometry=shapely.points([(505700, 3392300), (505760, 3392300), (505780, 3392300)]),
    ...     crs="EPSG:4544")
    >>> city.import_frame(std, layer="addresses", kind="address", id="addr_id").imported
    3
    >>> index = CityIndex.load(path)
    >>> found = geocode_text(index, "杉江街三号", layers=["addresses"], coords="gcj02")
    >>> found["level"], found["uid"], found["parsed"]
    ('building', 'addresses.1', {'road': '杉江街', 'number': '3'})
    >>> sorted(found["point"])
    ['lat', 'lon']
    >>> found = geocode_text(index, "杉江街5号", layers=["addresses"])
    >>> found["level"], found["candidates"], found["reason"]
    ('house_number', 2, 'no building number typed: 2 buildings at 杉江街 5')
    >>> geocode_text(index, "杉江街5号2栋", layers=["addresses"])["uid"]
    'addresses.3'
    """
    if not text or not text.strip():
        raise UsageError("q is empty: give an address, e.g. q=锦江区杉江街3号")
    name = _choose(index, layers, layer)
    coder = geocoder_of(index, name)
    body, point = coder.locate(coder.index.match(text))
    body["point"] = _lonlat(index, point, coords)
    body["layer"] = name
    parsed = parse_address(text).to_dict()
    body["parsed"] = {k: v for k, v in parsed.items() if v and k not in ("text", "rest")}
    return body


def reverse_point(
    index: CityIndex,
    lon: float,
    lat: float,
    *,
    layers: Sequence[str],
    layer: str | None = None,
    coords: str = "wgs84",
    max_distance_m: float = 200.0,
) -> dict[str, Any]:
    """The standard address nearest a lon/lat point (WGS 84, or ``gcj02`` / ``bd09``).

    Returns
    -------
    dict
        ``uid, address, distance_m, building, grid, district, point, layer``;
        ``uid`` is None when no address lies within ``max_distance_m``.
    """
    name = _choose(index, layers, layer)
    coder = geocoder_of(index, name)
    crs = coords if coords in _TO_WEB else "EPSG:4326"
    found = reverse(coder, lon, lat, crs=crs, max_distance_m=max_distance_m)
    if not found:
        return {"uid": None, "layer": name, "reason": f"no address within {max_distance_m:g} m"}
    row = coder.index.row_of[found["uid"]]
    found["point"] = _lonlat(index, coder.points[row], coords)
    found["layer"] = name
    return found
