"""The one-map search box (一张图搜索) with the standard-address matcher behind it.

:func:`search_places` is :func:`twin.query.search.search` for a query that
looks like an address (the parser finds a road and a house number, or a
building, unit or room in it): the geocoder's answer comes back beside the
hits (``result.address``), and the building it matched (or, failing that, the
standard address, road or grid cell) is a hit of ``how="address"``, merged
with the name hits and first when the match reached house-number level or
below. Any other query is searched by name only.

See :func:`search_places` for a runnable example.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from twin.address.parse import parse_address
from twin.address.service import geocode_text
from twin.query.common import GeometryOut, feature_dict
from twin.query.index import CityIndex
from twin.query.search import SearchHit, SearchResult, search

__all__ = ["address_like", "search_places"]

#: Match levels precise enough to put the matched building before every name hit.
FIRST_LEVELS = ("room", "building", "house_number")


def address_like(text: str) -> bool:
    """Whether ``text`` reads as a street address (road + number, or building / unit / room).

    Examples
    --------
    >>> [address_like(t) for t in ("杉江街3号", "锦江区天阳花园2栋1单元", "天阳花园", "杉江街")]
    [True, True, False, False]
    """
    parsed = parse_address(text)
    return bool((parsed.road and parsed.number) or parsed.building or parsed.unit or parsed.room)


def _hit(
    index: CityIndex, uid: str | None, body: dict[str, Any], out: GeometryOut | None
) -> SearchHit | None:
    """The search hit of feature ``uid`` (None when its layer is not in the snapshot)."""
    if not uid:
        return None
    layer = index.layers.get(uid.split(".", 1)[0])
    if layer is None or uid not in layer.frame.index:
        return None
    row = int(layer.frame.index.get_loc(uid))
    feature = feature_dict(index, layer, [row], out)[0]
    value = body.get("address") or feature["properties"].get("name")
    score = round(float(body.get("score") or 0.0), 2)
    return SearchHit(layer.name, layer.kind, uid, "address", value, score, "address", feature)


def _address_hits(
    index: CityIndex, body: dict[str, Any], out: GeometryOut | None
) -> list[SearchHit]:
    """The building matched, then the standard address (or road / grid cell) itself."""
    hits = [_hit(index, body.get("building"), body, out), _hit(index, body.get("uid"), body, out)]
    return [h for h in hits if h is not None]


def _hide(body: dict[str, Any], readable: Collection[str]) -> None:
    """Drop links into layers the caller may not read."""
    for key in ("uid", "building", "grid", "district"):
        uid = body.get(key)
        if uid and str(uid).split(".", 1)[0] not in readable:
            body[key] = None


def search_places(
    index: CityIndex,
    text: str | None = None,
    *,
    where: Mapping[str, str] | None = None,
    layers: Collection[str] | None = None,
    fuzzy: bool = False,
    limit: int = 20,
    coords: str | None = None,
    geometry: bool = True,
    **options: Any,
) -> SearchResult:
    """Search by name, and, for an address-like ``text``, by the standard-address matcher.

    Parameters
    ----------
    index : CityIndex
        The twin snapshot.
    text : str, optional
        What was typed in the search box.
    where, layers, fuzzy, limit, coords, geometry, **options
        As :func:`twin.query.search.search` (``options``: ``fields``, ``min_score``).
        ``layers`` also bounds the address layers used and the links answered.

    Returns
    -------
    SearchResult
        The name hits merged with the address hits (``how="address"``, scored
        by the matcher); ``address`` is the geocoder's answer
        (:func:`twin.address.service.geocode_text`) or None when the text is
        not address-like, attribute filters are given or no address layer is
        readable.

    Examples
    --------
    >>> import pathlib, tempfile, geopandas as gpd, shapely, twin
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "city.gpkg"
    >>> city = twin.Twin.create(path, crs="EPSG:4544")
    >>> houses = gpd.GeoDataFrame({"bid": ["B1", "B2"], "name": ["杉江大厦", "杉江小区"]},
    ...     geometry=[shapely.box(505690, 3392290, 505710, 3392310),
    ...               shapely.box(505750, 3392290, 505770, 3392310)], crs="EPSG:4544")
    >>> city.import_frame(houses, layer="buildings", kind="building", id="bid").imported
    2
    >>> std = gpd.GeoDataFrame({"addr_id": ["1", "2"], "road": ["杉江街"] * 2,
    ...     "number": ["3", "5"], "address": ["杉江街3号", "杉江街5号"]},
    ...     geometry=shapely.points([(505700, 3392300), (505760, 3392300)]), crs="EPSG:4544")
    >>> city.import_frame(std, layer="addresses", kind="address", id="addr_id").imported
    2
    >>> _ = city.build()
    >>> from twin.query.index import CityIndex
    >>> found = search_places(CityIndex.load(path), "杉江街５号附近")
    >>> found.address["level"], found.address["building"]
    ('building', 'buildings.B2')
    >>> [(h.uid, h.how) for h in found.hits]
    [('buildings.B2', 'address'), ('addresses.2', 'address')]
    """
    result = search(
        index,
        text,
        where=where,
        layers=layers,
        fuzzy=fuzzy,
        limit=limit,
        coords=coords,
        geometry=geometry,
        **options,
    )
    if text is None or where or not address_like(text.strip()):
        return result
    readable = [item.name for item in index if layers is None or item.name in layers]
    names = [n for n in readable if index.layers[n].kind == "address"]
    if not names:
        return result
    body = geocode_text(index, text.strip(), layers=names, coords=coords or "wgs84")
    _hide(body, readable)
    result.address = body
    _merge(result, _address_hits(index, body, GeometryOut(index, coords) if geometry else None))
    del result.hits[limit:]
    return result


def _merge(result: SearchResult, found: list[SearchHit]) -> None:
    """Put the address hits among (before, when precise) the name hits, once each."""
    if not found:
        return
    seen = {(h.layer, h.uid) for h in found}
    named = [h for h in result.hits if (h.layer, h.uid) not in seen]
    result.count += len(found) - (len(result.hits) - len(named))
    if result.address is not None and result.address["level"] in FIRST_LEVELS:
        result.hits = found + named
    else:
        result.hits = sorted(found + named, key=lambda h: -h.score)
