"""Geocode addresses against a twin's standard address layer, and the reverse.

:func:`geocoder_for` loads the twin's ``address`` layer into an
:class:`~twin.address.match.AddressIndex` and joins each address to its
building (the building polygon holding the address point, in every building
layer), grid cell and district (the stored ``feature_grid`` and
``feature_district`` relations of ``twin build``). :func:`geocode` answers a
Series or list of addresses with a GeoDataFrame; :func:`reverse` answers a
point in any CRS (GCJ-02 and BD-09 included) with the nearest standard address.

Examples
--------
>>> import twin
>>> city = twin.Twin.open("out/chengdu.twin.gpkg")  # doctest: +SKIP
>>> coder = geocoder_for(city)  # doctest: +SKIP
>>> geocode(coder, ["锦江区杉江街3号2栋"])[["level", "uid", "building"]]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from twin.address.batch import match_many
from twin.address.match import LEVELS, AddressIndex, AddressMatch
from twin.address.normalise import normalise
from twin.address.parse import parse_address
from twin.errors import TwinError, UsageError
from twin.webcoords import bd09_to_wgs84, gcj02_to_wgs84

__all__ = [
    "RESULT_COLUMNS",
    "Geocoder",
    "geocode",
    "geocoder_for",
    "geocoder_from_frame",
    "level_report",
    "reverse",
]

#: Columns of :func:`geocode`'s answer, besides the geometry.
RESULT_COLUMNS = (
    "query",
    "level",
    "uid",
    "score",
    "address",
    "building",
    "grid",
    "district",
    "reason",
    "candidates",
)
_WEB = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}


@dataclass
class Geocoder:
    """A standard address layer ready to match: the index and each address's links."""

    index: AddressIndex
    points: np.ndarray  # shapely points, twin CRS
    building: list[str | None]
    grid: list[str | None]
    district: list[str | None]
    crs: pyproj.CRS
    layer: str = "addresses"
    classification: str = "public"
    tree: shapely.STRtree | None = field(default=None, repr=False)
    candidates: np.ndarray | None = field(default=None, repr=False)
    roads: dict[str, list[tuple[str, Any, str]]] = field(default_factory=dict, repr=False)
    areas: dict[str, tuple[str, Any, str]] = field(default_factory=dict, repr=False)
    centres: dict[str, Any] = field(default_factory=dict, repr=False)

    def match(self, text: str) -> dict[str, Any]:
        """One address as a dict with its building, grid cell, district and lon/lat."""
        return self.answer(self.index.match(text))

    def answer(self, m: AddressMatch) -> dict[str, Any]:
        """An :class:`AddressMatch` with its links, as a dict."""
        return self.locate(m)[0]

    def locate(self, m: AddressMatch) -> tuple[dict[str, Any], Any]:
        """An :class:`AddressMatch` with its links, and its point in the twin CRS (or None).

        A road-level answer is the road of that name in the road layers
        nearest to the community (else street) typed, and its point the
        nearest point of that road; a community-level answer is the grid cell
        named after the community, where one is.
        """
        if m.level == "road" and m.address in self.roads:
            return self._on_road(m)
        if m.level == "community" and m.address in self.areas:
            uid, cell, _ = self.areas[m.address]
            out = m.to_dict() | {"uid": uid, "building": None, "grid": uid, "district": None}
            return out, shapely.point_on_surface(cell)
        out = self._links(m)
        row = self.index.row_of.get(out["uid"]) if out["uid"] else None
        return out, self.points[row] if row is not None else None

    def _on_road(self, m: AddressMatch) -> tuple[dict[str, Any], Any]:
        road = str(m.address)
        p = parse_address(m.query, table=self.index.table)
        ref = None
        for area in (p.community, p.street, road):
            ref = self.centres.get(area or "")
            if ref is not None:
                break
        lines = self.roads[road]
        uid, line, named = lines[0]
        point = None
        if ref is not None:
            distances = shapely.distance(ref, np.array([g for _, g, _ in lines], dtype=object))
            uid, line, named = lines[int(np.argmin(distances))]
            point = shapely.line_interpolate_point(line, shapely.line_locate_point(line, ref))
        links = {"uid": uid, "address": named, "building": None, "grid": None, "district": None}
        return m.to_dict() | links, point

    def _links(self, m: AddressMatch) -> dict[str, Any]:
        out = m.to_dict()
        row = m.row
        if row is None and m.uid is not None:
            row = self.index.row_of[m.uid]
            out["building"] = None
        else:
            out["building"] = self.building[row] if row is not None else None
        out["grid"] = self.grid[row] if row is not None else None
        out["district"] = self.district[row] if row is not None else None
        return out


def geocoder_from_frame(
    layer: gpd.GeoDataFrame,
    *,
    buildings: gpd.GeoDataFrame | None = None,
    relations: pd.DataFrame | None = None,
    name: str = "addresses",
    classification: str = "public",
    roads: gpd.GeoDataFrame | None = None,
    grids: gpd.GeoDataFrame | None = None,
) -> Geocoder:
    """A geocoder over a standard address GeoDataFrame indexed by uid.

    Parameters
    ----------
    layer : GeoDataFrame
        Address points with the ``address`` kind's level fields.
    buildings : GeoDataFrame, optional
        Building polygons indexed by uid, in the layer's CRS: each address
        belongs to the one holding its point.
    relations : DataFrame, optional
        Stored relations (``relation, from_uid, to_uid``) giving each address
        its ``feature_grid`` and ``feature_district``.
    name, classification : str
        The layer's name and classification (answers are refused above it).
    roads : GeoDataFrame, optional
        Road centre lines indexed by uid with a ``name``, in the layer's CRS:
        road-level answers carry the uid of the road of that name.
    grids : GeoDataFrame, optional
        Grid cells indexed by uid with a ``name``: community-level answers
        carry the uid of the cell named after the community.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> layer = gpd.GeoDataFrame({"road": ["杉江街"], "number": ["3"], "address": ["杉江街3号"]},
    ...     geometry=[shapely.Point(0, 0)], index=["a.1"], crs="EPSG:4544")
    >>> geocoder_from_frame(layer).match("杉江街三号")["uid"]
    'a.1'
    """
    if layer.crs is None:
        raise UsageError("the address layer has no CRS")
    points = shapely.point_on_surface(layer.geometry.to_numpy())
    owner: list[str | None] = [None] * len(layer)
    if buildings is not None and len(buildings):
        pairs = shapely.STRtree(buildings.geometry.to_numpy()).query(points, predicate="within")
        uids = buildings.index.to_numpy(dtype=object)
        for a, b in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
            owner[a] = str(uids[b])
    grid, district = _related(layer.index, relations)
    index = AddressIndex(layer)
    return Geocoder(
        index,
        points,
        owner,
        grid,
        district,
        pyproj.CRS.from_user_input(layer.crs),
        name,
        classification,
        roads=_by_name(roads),
        areas={k: v[0] for k, v in _by_name(grids).items()},
        centres=_centres(layer, index, points),
    )


def _by_name(frame: gpd.GeoDataFrame | None) -> dict[str, list[tuple[str, Any, str]]]:
    """uid, geometry and name of each feature under its normalised ``name``."""
    out: dict[str, list[tuple[str, Any, str]]] = {}
    if frame is None or "name" not in frame or not len(frame):
        return out
    for uid, value, geom in zip(frame.index, frame["name"], frame.geometry, strict=True):
        if isinstance(value, str) and value.strip() and geom is not None:
            out.setdefault(normalise(value), []).append((str(uid), geom, value))
    return out


def _centres(layer: pd.DataFrame, index: AddressIndex, points: np.ndarray) -> dict[str, Any]:
    """The centre of the address points of each community, street and road."""
    xy = shapely.get_coordinates(points)
    keys = {c: [_norm(v) for v in layer[c]] for c in ("community", "street") if c in layer}
    keys["road"] = list(index.roads_col)
    out: dict[str, Any] = {}
    for column in keys.values():
        frame = pd.DataFrame({"key": column, "x": xy[:, 0], "y": xy[:, 1]})
        means = frame[frame["key"] != ""].groupby("key")[["x", "y"]].mean()
        for key, (x, y) in zip(means.index, means.to_numpy(), strict=True):
            out.setdefault(str(key), shapely.Point(x, y))
    return out


def _norm(value: Any) -> str:
    return normalise(value) if isinstance(value, str) else ""


def _related(
    uids: pd.Index, relations: pd.DataFrame | None
) -> tuple[list[str | None], list[str | None]]:
    out: list[list[str | None]] = []
    for relation in ("feature_grid", "feature_district"):
        if relations is None or relations.empty:
            out.append([None] * len(uids))
            continue
        rows = relations[relations["relation"] == relation].drop_duplicates("from_uid")
        mapped = pd.Series(rows["to_uid"].to_numpy(), index=rows["from_uid"].to_numpy())
        values = mapped.reindex(uids).astype(object)
        out.append([v if isinstance(v, str) else None for v in values])
    return out[0], out[1]


def geocoder_for(city: Any, *, layer: str | None = None) -> Geocoder:
    """A geocoder over a twin's standard address layer (its only ``address`` layer by default).

    Parameters
    ----------
    city : twin.Twin
        The twin.
    layer : str, optional
        The address layer; required when the twin has several.

    Raises
    ------
    UsageError
        When the twin has no address layer, or several and none was named.
    """
    names = city.layer_names("address")
    if layer is None:
        if len(names) != 1:
            found = ", ".join(names) if names else "none"
            raise UsageError(f"name the standard address layer (address layers: {found})")
        layer = str(names[0])
    elif layer not in names:
        raise UsageError(f"{layer} is not an address layer (address layers: {', '.join(names)})")
    frame = city.layer(layer)
    buildings = [city.layer(n, columns=[]) for n in city.layer_names("building")]
    polygons = pd.concat(buildings) if buildings else None
    try:
        relations = city.relations(from_layer=layer)
    except TwinError:  # no build yet: no grid cell or district
        relations = None
    info = city.info(layer)
    return geocoder_from_frame(
        frame,
        buildings=polygons,
        relations=relations,
        name=layer,
        classification=str(info.classification),
        roads=_named_layers(city, "road"),
        grids=_named_layers(city, "grid"),
    )


def _named_layers(city: Any, kind: str) -> gpd.GeoDataFrame | None:
    """The named features of every layer of ``kind``, or None."""
    frames = [city.layer(n) for n in city.layer_names(kind)]
    frames = [f[["name", "geometry"]] for f in frames if "name" in f]
    return pd.concat(frames) if frames else None


def geocode(coder: Geocoder, addresses: Any, *, workers: int | None = None) -> gpd.GeoDataFrame:
    """Geocode addresses: one row per input, aligned to it.

    Parameters
    ----------
    coder : Geocoder
        From :func:`geocoder_for` or :func:`geocoder_from_frame`.
    addresses : Series or iterable of str
        The addresses as typed.
    workers : int, optional
        Processes for large inputs (see :func:`twin.address.batch.match_many`).

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`RESULT_COLUMNS`, with the matched address's point (empty when
        unmatched or matched at road or community level), in the twin CRS.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> layer = gpd.GeoDataFrame({"road": ["杉江街"], "number": ["3"], "address": ["杉江街3号"]},
    ...     geometry=[shapely.Point(1, 2)], index=["a.1"], crs="EPSG:4544")
    >>> coder = geocoder_from_frame(layer)
    >>> geocode(coder, ["杉江街3号", "北京市朝阳区建国路88号"])["level"].tolist()
    ['building', 'unmatched']
    """
    index = addresses.index if isinstance(addresses, pd.Series) else None
    texts = [a if isinstance(a, str) else "" for a in addresses]
    located = [coder.locate(m) for m in match_many(coder.index, texts, workers=workers)]
    answers = [a for a, _ in located]
    frame = pd.DataFrame(answers, columns=list(RESULT_COLUMNS), index=index, dtype=object)
    frame["score"] = frame["score"].astype(float)
    frame["candidates"] = frame["candidates"].astype(int)
    return gpd.GeoDataFrame(frame, geometry=[g for _, g in located], crs=coder.crs)


def level_report(result: pd.DataFrame) -> pd.DataFrame:
    """How many answers reached each level, finest first, with shares.

    Examples
    --------
    >>> level_report(pd.DataFrame({"level": ["room", "road", "room"]}))["count"].tolist()
    [2, 0, 0, 1, 0, 0]
    """
    counts = result["level"].value_counts().reindex(list(LEVELS), fill_value=0)
    total = max(int(counts.sum()), 1)
    return pd.DataFrame({"count": counts, "share": (counts / total).round(4)})


def reverse(
    coder: Geocoder, x: float, y: float, *, crs: str = "EPSG:4326", max_distance_m: float = 200.0
) -> dict[str, Any]:
    """The standard address nearest to a point, and its building.

    Parameters
    ----------
    coder : Geocoder
        The geocoder.
    x, y : float
        The point (longitude, latitude for geographic CRSs).
    crs : str, default "EPSG:4326"
        Any CRS pyproj knows, or ``gcj02`` / ``bd09`` for points read off
        Chinese web maps.
    max_distance_m : float, default 200
        Farther than this, the answer is ``None``.

    Returns
    -------
    dict
        ``uid, address, distance_m, building, grid, district``; empty when
        no address lies within ``max_distance_m``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> layer = gpd.GeoDataFrame({"road": ["杉江街"], "number": ["3"], "address": ["杉江街3号"]},
    ...     geometry=[shapely.Point(505700, 3392300)], index=["a.1"], crs="EPSG:4544")
    >>> reverse(geocoder_from_frame(layer), 505710, 3392300, crs="EPSG:4544")["distance_m"]
    10.0
    """
    px, py = _to_twin(coder, x, y, crs)
    point = shapely.Point(px, py)
    tree, candidates = _tree(coder)
    found = tree.query_nearest(point, max_distance=max_distance_m, return_distance=True)
    if len(found[0]) == 0:
        return {}
    best = int(candidates[int(found[0][0])])
    return {
        "uid": coder.index.uids[best],
        "address": coder.index.texts[best] or None,
        "distance_m": round(float(found[1][0]), 2),
        "building": coder.building[best],
        "grid": coder.grid[best],
        "district": coder.district[best],
    }


def _tree(coder: Geocoder) -> tuple[shapely.STRtree, np.ndarray]:
    """A tree over the house-number and building addresses (rooms share their building's point)."""
    if coder.tree is None or coder.candidates is None:
        coder.candidates = np.flatnonzero([not room for room in coder.index.room_col])
        coder.tree = shapely.STRtree(coder.points[coder.candidates])
    return coder.tree, coder.candidates


def _to_twin(coder: Geocoder, x: float, y: float, crs: str) -> tuple[float, float]:
    if not (np.isfinite(x) and np.isfinite(y)):
        raise UsageError("the point's coordinates must be finite numbers")
    key = crs.strip().lower().replace("-", "")
    if key in _WEB:
        lon, lat = _WEB[key](np.array([x]), np.array([y]))
        x, y, source = float(lon[0]), float(lat[0]), pyproj.CRS.from_epsg(4326)
    else:
        try:
            source = pyproj.CRS.from_user_input(crs)
        except pyproj.exceptions.CRSError:
            raise UsageError(f"unknown CRS {crs!r}: give an EPSG code, gcj02 or bd09") from None
    transformer = pyproj.Transformer.from_crs(source, coder.crs, always_xy=True)
    tx, ty = transformer.transform(x, y)
    return float(tx), float(ty)
