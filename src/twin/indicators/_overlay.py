"""Shared machinery of the indicators: input checks and clipped zone pieces.

Every indicator overlays features on zones. :func:`clipped_pieces` returns,
for each (zone, feature) pair that intersects, the area or length of the
feature's part inside the zone, computed the fast way: an STRtree query for
the candidate pairs by bounding box, a prepared ``contains_properly`` test
for the (usually many) features lying wholly inside one zone, and vectorised
``shapely.intersection`` only for the features that cross a zone boundary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

from twin.crs import require_projected
from twin.errors import CRSError

log = logging.getLogger(__name__)

Frame: TypeAlias = gpd.GeoDataFrame | gpd.GeoSeries
Geoms: TypeAlias = npt.NDArray[np.object_]


def check_inputs(zones: Frame, others: Mapping[str, Frame]) -> None:
    """Refuse a geographic zone CRS and inputs whose CRS differs from the zones'.

    Parameters
    ----------
    zones : GeoDataFrame or GeoSeries
        The zones; their CRS must be projected.
    others : mapping of str to GeoDataFrame
        The other inputs by the name used in messages ("buildings").

    Raises
    ------
    CRSError
        When the zones' CRS is missing or geographic, or another input is in a
        different CRS (an empty input without a CRS is accepted).
    """
    require_projected(zones.crs, "the zones")
    target = CRS.from_user_input(zones.crs)
    for name, frame in others.items():
        if frame.crs is None:
            if len(frame) == 0:
                continue
            raise CRSError(
                f"the {name} have no CRS while the zones are in {target.name!r}: set it "
                f"with {name}.set_crs(...) and reproject with {name}.to_crs(zones.crs)"
            )
        crs = CRS.from_user_input(frame.crs)
        if not crs.equals(target, ignore_axis_order=True):
            raise CRSError(
                f"the {name} are in {crs.name!r} but the zones are in {target.name!r}: "
                f"reproject with {name}.to_crs(zones.crs)"
            )


def geometry_array(frame: Frame) -> Geoms:
    """The frame's geometries as a numpy object array of shapely geometries."""
    return np.asarray(frame.geometry.array, dtype=np.object_)


@dataclass(frozen=True)
class Pieces:
    """Parts of features inside zones: one entry per intersecting pair.

    ``zone`` and ``feature`` are positions (not labels); ``measure`` is the
    area (polygons) or length (lines) of the feature's part inside the zone.
    """

    zone: npt.NDArray[np.intp]
    feature: npt.NDArray[np.intp]
    measure: npt.NDArray[np.float64]


Clip: TypeAlias = Callable[[Geoms, Geoms, npt.NDArray[np.intp]], npt.NDArray[np.float64]]


def clipped_pieces(
    zones: Geoms,
    features: Geoms,
    measure: Callable[[Any], Any] = shapely.area,
    clip: Clip | None = None,
) -> Pieces:
    """Return the measure of every feature's part inside every zone it meets.

    Parameters
    ----------
    zones, features : ndarray of shapely geometries
        Polygons, and the polygons or lines to clip.
    measure : callable, default shapely.area
        ``shapely.area`` or ``shapely.length``.
    clip : callable, optional
        ``clip(features, zones, zone_positions)``: the measure of each crossing
        pair's clipped part, NaN for those left to ``shapely.intersection``
        (:func:`twin.indicators.lineclip.clip_lengths` for lines).

    Returns
    -------
    Pieces
        Pairs that merely touch are included with measure 0.

    Examples
    --------
    >>> z = np.array([shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)])
    >>> f = np.array([shapely.box(1, 1, 2, 2), shapely.box(6, 0, 16, 1)])
    >>> p = clipped_pieces(z, f)
    >>> sorted(zip(p.zone.tolist(), p.feature.tolist(), p.measure.tolist()))
    [(0, 0, 1.0), (0, 1, 4.0), (1, 1, 6.0)]
    """
    # Candidates by bounding box from a tree of the (few) zones, then the
    # prepared zones settle the common case, a feature wholly inside one zone;
    # only the rest is tested for intersection and clipped.
    feat_i, zone_i = shapely.STRtree(zones).query(features)
    zone_i = zone_i.astype(np.intp)
    feat_i = feat_i.astype(np.intp)
    shapely.prepare(zones)
    inside = shapely.contains_properly(zones[zone_i], features[feat_i])
    rest = np.nonzero(~inside)[0]
    rest = rest[shapely.intersects(zones[zone_i[rest]], features[feat_i[rest]])]
    keep = inside.copy()
    keep[rest] = True
    values = np.zeros(len(zone_i), dtype=np.float64)
    values[inside] = measure(features[feat_i[inside]])
    if clip is not None:
        values[rest] = clip(features[feat_i[rest]], zones, zone_i[rest])
        rest = rest[np.isnan(values[rest])]
    values[rest] = measure(_intersection(features[feat_i[rest]], zones[zone_i[rest]]))
    return Pieces(zone_i[keep], feat_i[keep], values[keep])


def pieces_with_shares(
    zones: Geoms,
    zone_labels: pd.Index,
    features: Geoms,
    zone_of: pd.DataFrame,
) -> Pieces:
    """:func:`clipped_pieces` (areas) using a known largest-share assignment.

    ``zone_of`` (aligned with ``features``: ``zone`` label, ``share``, ``n_zones``,
    e.g. the relation a build stored) settles every feature lying wholly in one
    zone without a spatial query; only the others are clipped.

    Examples
    --------
    >>> z = np.array([shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)])
    >>> f = np.array([shapely.box(1, 1, 2, 2), shapely.box(6, 0, 16, 1)])
    >>> known = pd.DataFrame({"zone": ["a", "b"], "share": [1.0, 0.6], "n_zones": [1, 2]})
    >>> p = pieces_with_shares(z, pd.Index(["a", "b"]), f, known)
    >>> sorted(zip(p.zone.tolist(), p.feature.tolist(), p.measure.tolist()))
    [(0, 0, 1.0), (0, 1, 4.0), (1, 1, 6.0)]
    """
    return pieces_from_areas(
        zones, zone_labels, zone_of, np.asarray(shapely.area(features)), features.__getitem__
    )


def pieces_from_areas(
    zones: Geoms,
    zone_labels: pd.Index,
    zone_of: pd.DataFrame,
    areas: npt.NDArray[np.float64],
    geoms_at: Callable[[npt.NDArray[np.intp]], Geoms],
) -> Pieces:
    """:func:`pieces_with_shares` given the features' areas, and their geometries on demand.

    Only the features not wholly inside one zone are asked for (``geoms_at(positions)``)
    and clipped: footprints kept as WKB need not all be decoded.

    Examples
    --------
    >>> z = np.array([shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)])
    >>> f = np.array([shapely.box(1, 1, 2, 2), shapely.box(6, 0, 16, 1)])
    >>> known = pd.DataFrame({"zone": ["a", "b"], "share": [1.0, 0.6], "n_zones": [1, 2]})
    >>> asked = []
    >>> p = pieces_from_areas(z, pd.Index(["a", "b"]), known, np.array([1.0, 10.0]),
    ...                       lambda i: asked.append(i.tolist()) or f[i])
    >>> sorted(zip(p.zone.tolist(), p.feature.tolist(), p.measure.tolist())), asked
    ([(0, 0, 1.0), (0, 1, 4.0), (1, 1, 6.0)], [[1]])
    """
    position = _zone_positions(zone_labels, zone_of["zone"])
    whole = (
        (position >= 0)
        & (zone_of["n_zones"].to_numpy() == 1)
        & (zone_of["share"].to_numpy(dtype=float) >= 1 - 1e-9)
    )
    inside = np.flatnonzero(whole)
    rest = np.flatnonzero(~whole)
    clipped = clipped_pieces(zones, geoms_at(rest))
    return Pieces(
        np.concatenate([position[inside].astype(np.intp), clipped.zone]),
        np.concatenate([inside.astype(np.intp), rest[clipped.feature].astype(np.intp)]),
        np.concatenate([np.asarray(areas[inside], dtype=np.float64), clipped.measure]),
    )


def _zone_positions(zone_labels: pd.Index, zone: pd.Series) -> npt.NDArray[np.intp]:
    """Position of each label among the zones, -1 for none; a categorical is looked up
    by its categories only (a few thousand zones, not a million labels)."""
    if isinstance(zone.dtype, pd.CategoricalDtype):
        lookup = np.r_[zone_labels.get_indexer(zone.cat.categories), -1].astype(np.intp)
        return lookup[zone.cat.codes.to_numpy()]  # code -1 (missing) takes the last: -1
    return zone_labels.get_indexer(pd.Index(zone.to_numpy(dtype=object))).astype(np.intp)


def _intersection(a: Geoms, b: Geoms) -> Geoms:
    """Vectorised intersection, repairing invalid inputs when GEOS refuses them."""
    try:
        return np.asarray(shapely.intersection(a, b), dtype=object)
    except shapely.errors.GEOSException:
        log.warning("invalid geometries met while clipping: repairing them with make_valid")
        return np.asarray(
            shapely.intersection(shapely.make_valid(a), shapely.make_valid(b)), dtype=object
        )


def largest_share(pieces: Pieces, n_features: int) -> npt.NDArray[np.intp]:
    """Position of the zone holding each feature's largest part, -1 for none.

    Ties go to the zone that comes first; a feature whose parts all measure 0
    (it only touches zones) gets -1.

    Examples
    --------
    >>> p = Pieces(np.array([1, 0, 2]), np.array([0, 0, 1]), np.array([6.0, 4.0, 0.0]))
    >>> largest_share(p, 3).tolist()
    [1, -1, -1]
    """
    owner = np.full(n_features, -1, dtype=np.intp)
    if len(pieces.zone) == 0:
        return owner
    # Most features lie in one zone: settle them without sorting.
    single = np.bincount(pieces.feature, minlength=n_features)[pieces.feature] == 1
    alone = single & (pieces.measure > 0)
    owner[pieces.feature[alone]] = pieces.zone[alone]
    pieces = Pieces(pieces.zone[~single], pieces.feature[~single], pieces.measure[~single])
    if len(pieces.zone) == 0:
        return owner
    order = np.lexsort((pieces.zone, -pieces.measure, pieces.feature))
    feat = pieces.feature[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = feat[1:] != feat[:-1]
    best = order[first]
    positive = pieces.measure[best] > 0
    owner[pieces.feature[best[positive]]] = pieces.zone[best[positive]]
    return owner


def zone_areas(zones: Geoms) -> npt.NDArray[np.float64]:
    """Areas of the zones in square CRS units; missing geometries give NaN."""
    return np.asarray(shapely.area(zones), dtype=np.float64)


def per_area(values: npt.NDArray[Any], area: npt.NDArray[np.float64]) -> Any:
    """``values / area`` with NaN where the area is 0 or missing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(area > 0, values / np.where(area > 0, area, 1.0), np.nan)


def zone_edges(
    zones: Geoms, max_edges: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Every edge of every ring of each zone (start and vector, padded with zero-length
    edges), and whether the zone is polygonal with at most ``max_edges`` edges.

    Examples
    --------
    >>> start, vector, simple = zone_edges(np.array([shapely.box(0, 0, 2, 1)]), 32)
    >>> start.shape, vector[0].tolist(), simple.tolist()
    ((1, 4, 2), [[0.0, 1.0], [-2.0, 0.0], [0.0, -1.0], [2.0, 0.0]], [True])
    """
    m = len(zones)
    kinds = [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON]
    polygonal = np.flatnonzero(np.isin(shapely.get_type_id(zones), kinds))
    parts, part_of = shapely.get_parts(zones[polygonal], return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, coord_of = shapely.get_coordinates(rings, return_index=True)
    same = coord_of[:-1] == coord_of[1:]
    start, vector = coords[:-1][same], (coords[1:] - coords[:-1])[same]
    owner = polygonal[part_of[ring_of[coord_of[:-1][same]]]]
    count = np.bincount(owner, minlength=m)
    simple = (count >= 3) & (count <= max_edges)
    slot = np.arange(len(owner)) - np.r_[0, np.cumsum(count)[:-1]][owner]
    keep = simple[owner]
    k = int(count[simple].max()) if simple.any() else 1
    starts, vectors = np.zeros((m, k, 2)), np.zeros((m, k, 2))
    starts[owner[keep], slot[keep]] = start[keep]
    vectors[owner[keep], slot[keep]] = vector[keep]
    return starts, vectors, simple
