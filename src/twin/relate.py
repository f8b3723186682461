"""Cross-layer relations: which parcel holds a building, which building a sensor…

Pure functions on GeoDataFrames indexed by ``uid`` (as :meth:`twin.Twin.layer`
returns them); each returns a DataFrame indexed like its first argument, so a
result joins straight back onto the layer. :meth:`twin.Twin.build` stores them.

Polygons and lines go to the zone holding the *largest share* of them (area for
polygons, length for lines), not the zone under their centroid: a building that
straddles a parcel boundary goes to the parcel holding most of its footprint,
with that share, and one on no parcel is flagged, not dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from geopandas import GeoDataFrame, GeoSeries

from twin.crs import require_projected
from twin.errors import CRSError


def largest_share(features: GeoDataFrame, zones: GeoDataFrame) -> pd.DataFrame:
    """The zone holding the largest share of each feature.

    Parameters
    ----------
    features : GeoDataFrame
        Points, lines or polygons; the index identifies them.
    zones : GeoDataFrame
        Polygons in the same CRS; the index identifies them.

    Returns
    -------
    DataFrame
        Indexed like ``features``: ``zone`` (index label of the zone, missing
        when no zone touches the feature), ``share`` (fraction of the feature's area,
        length or — for points — 1.0 inside the zone) and ``n_zones`` (how many
        zones it touches).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> parcels = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)],
    ...                            index=["p1", "p2"], crs="EPSG:4544")
    >>> buildings = gpd.GeoDataFrame(geometry=[shapely.box(4, 2, 14, 4), shapely.box(30, 0, 31, 1)],
    ...                              index=["b1", "b2"], crs="EPSG:4544")
    >>> largest_share(buildings, parcels)
       zone  share  n_zones
    b1   p1    0.6        2
    b2  NaN    0.0        0
    """
    _check_crs(features, zones, "largest_share")
    best_zone, share, n_zones = largest_share_positions(
        np.asarray(features.geometry.array), np.asarray(zones.geometry.array)
    )
    labels = np.asarray(zones.index, dtype=object)
    zone = np.where(best_zone >= 0, labels[np.maximum(best_zone, 0)], None)
    return pd.DataFrame({"zone": zone, "share": share, "n_zones": n_zones}, index=features.index)


def largest_share_positions(
    geoms: np.ndarray, zone_geoms: np.ndarray, *, inner: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`largest_share` on geometry arrays: positions instead of labels.

    ``inner`` takes the zones' :func:`inner_boxes` when the caller keeps them for
    several feature layers; without it they are found here if worth it.

    Returns
    -------
    tuple of ndarray
        ``best_zone`` (position in ``zone_geoms``, -1 for none), ``share`` and
        ``n_zones``, one each per geometry of ``geoms``.
    """
    shapely.prepare(zone_geoms)
    # Bounding boxes only: a predicate here would prepare every feature (3x slower).
    fi, zi = shapely.STRtree(zone_geoms).query(geoms)
    total = _size(geoms)
    inside = _inside_inner_boxes(geoms, zone_geoms, fi, zi, inner)
    measure = _measure(geoms[fi], zone_geoms[zi], total[fi], inside)
    held = measure > 0
    fi, zi, measure = fi[held], zi[held], measure[held]
    n_zones = np.bincount(fi, minlength=len(geoms))
    best_zone = np.full(len(geoms), -1)
    best = np.zeros(len(geoms))
    # Sort pairs by measure so the last write per feature is its largest share; on an
    # exact tie (a point on a shared edge) the first zone wins, whatever the tree's order.
    order = np.lexsort((-zi, measure))
    best_zone[fi[order]] = zi[order]
    best[fi[order]] = measure[order]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, best / total, 0.0)
    return best_zone, np.clip(share, 0.0, 1.0), n_zones


def _measure(
    geoms: np.ndarray, zones: np.ndarray, sizes: np.ndarray, inside: np.ndarray
) -> np.ndarray:
    """Area, length (or 1 for points) of each feature inside a candidate zone.

    ``sizes`` are the features' own (:func:`_size`): what a covering zone holds;
    ``inside`` marks the pairs already known to be covered (:func:`_inside_inner_boxes`).

    Only pairs that a prepared zone neither covers nor misses are intersected:
    the common cases (a building inside its parcel, a road along the boundary
    of two grid cells, a candidate found by bounding box only) cost one
    prepared predicate each.
    """
    result = np.zeros(len(geoms))
    covered = inside.copy()
    unknown = np.flatnonzero(~inside)
    covered[unknown] = shapely.covers(zones[unknown], geoms[unknown])
    result[covered] = sizes[covered]
    rest = np.flatnonzero(~covered)
    rest = rest[shapely.intersects(zones[rest], geoms[rest])]
    dims = shapely.get_dimensions(geoms[rest])
    result[rest] = _size(shapely.intersection(geoms[rest], zones[rest]), dims)
    return result


def _inside_inner_boxes(
    geoms: np.ndarray, zones: np.ndarray, fi: np.ndarray, zi: np.ndarray, inner: np.ndarray | None
) -> np.ndarray:
    """Which pairs (``geoms[fi]``, ``zones[zi]``) have the feature's box in the zone's inner box.

    Such a feature is covered by its zone (box inside a box the zone covers): no
    GEOS predicate needed. Without ``inner``, inner boxes are only looked for when
    zones have many candidates each (grid cells, districts): they cost a few
    predicates per zone.
    """
    if inner is None:
        if len(fi) < _PAIRS_PER_INNER_BOX * len(zones):
            return np.zeros(len(fi), dtype=bool)
        inner = inner_boxes(zones)
    held = inner[zi]
    box = shapely.bounds(geoms)[fi]
    with np.errstate(invalid="ignore"):  # NaN: an empty feature, or a zone with no box
        return (box[:, :2] >= held[:, :2]).all(axis=1) & (box[:, 2:] <= held[:, 2:]).all(axis=1)


def inner_boxes(zone_geoms: np.ndarray) -> np.ndarray:
    """An axis-aligned box inside each zone, as bounds (NaN where none was found).

    The zone's bounding box shrunk about its centre by the largest of
    :data:`INNER_SCALES` (searched by halving) that the zone covers, as GEOS's
    exact predicate says: any feature whose box lies in it is inside the zone.

    Parameters
    ----------
    zone_geoms : ndarray of shapely geometries

    Returns
    -------
    ndarray
        ``(n, 4)``: ``xmin, ymin, xmax, ymax`` per zone.

    Examples
    --------
    >>> cell = shapely.Polygon([(0, 0), (10, 0), (10, 10), (1, 9), (0, 0)])
    >>> inner_boxes(np.array([cell])).round(2).tolist()
    [[1.0, 1.0, 9.0, 9.0]]
    """
    shapely.prepare(zone_geoms)
    bounds = shapely.bounds(zone_geoms)
    centre = (bounds[:, :2] + bounds[:, 2:]) / 2
    half = (bounds[:, 2:] - bounds[:, :2]) / 2
    inner = np.full_like(bounds, np.nan)
    scales = np.asarray(INNER_SCALES)
    # Per zone: scales[low] is covered (-1: none yet), scales[high] is not (len: none yet).
    low = np.full(len(bounds), -1)
    high = np.where(np.isfinite(bounds).all(axis=1), len(scales), 0)
    while (todo := np.flatnonzero(high - low > 1)).size:
        mid = (low[todo] + high[todo]) // 2
        step = half[todo] * scales[mid, None]
        boxes = np.hstack([centre[todo] - step, centre[todo] + step])
        fits = shapely.covers(zone_geoms[todo], shapely.box(*boxes.T))
        inner[todo[fits]] = boxes[fits]
        low[todo[fits]], high[todo[~fits]] = mid[fits], mid[~fits]
    return inner


# Inner boxes are looked for when the candidate pairs are at least this many per zone.
_PAIRS_PER_INNER_BOX = 8
#: The scales of a zone's bounding box tried for its inner box, in increasing order.
INNER_SCALES = (0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)


def _size(geoms: np.ndarray, dim: np.ndarray | None = None) -> np.ndarray:
    """Area for polygons, length for lines, 1 for points, 0 for empty geometries.

    ``dim`` measures in the features' own dimension: where a building meets a
    parcel only along an edge, the intersection is a line, and its share is 0.
    """
    if dim is None:
        dim = shapely.get_dimensions(geoms)
    size = np.where(dim == 2, shapely.area(geoms), shapely.length(geoms))
    size = np.where(dim == 0, 1.0, size)
    return np.where(shapely.is_empty(geoms) | shapely.is_missing(geoms), 0.0, size)


def nearest_within(
    points: GeoDataFrame, targets: GeoDataFrame, *, max_distance_m: float
) -> pd.DataFrame:
    """The target each point stands in, else the nearest one within ``max_distance_m``.

    Returns
    -------
    DataFrame
        Indexed like ``points``: ``target`` (index label, missing when nothing is
        near enough), ``distance_m`` (0 inside) and ``how`` ("inside" or "nearest").

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> houses = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10)], index=["h1"],
    ...                           crs="EPSG:4544")
    >>> sensors = gpd.GeoDataFrame(geometry=shapely.points([5, 13, 99], [5, 5, 5]),
    ...                            index=["s1", "s2", "s3"], crs="EPSG:4544")
    >>> nearest_within(sensors, houses, max_distance_m=30)
       target  distance_m      how
    s1     h1         0.0   inside
    s2     h1         3.0  nearest
    s3    NaN         NaN      NaN
    """
    _check_crs(points, targets, "nearest_within")
    if max_distance_m < 0:
        raise ValueError(f"max_distance_m must be >= 0, not {max_distance_m}")
    target, distance = nearest_positions(
        np.asarray(points.geometry.array),
        np.asarray(targets.geometry.array),
        max_distance_m=max_distance_m,
    )
    labels = np.asarray(targets.index, dtype=object)
    how = np.full(len(target), None, dtype=object)
    how[distance > 0] = "nearest"
    how[distance == 0] = "inside"
    return pd.DataFrame(
        {
            "target": np.where(target >= 0, labels[np.maximum(target, 0)], None),
            "distance_m": distance,
            "how": how,
        },
        index=points.index,
    )


def nearest_positions(
    geoms: np.ndarray, target_geoms: np.ndarray, *, max_distance_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_within` on geometry arrays: the nearest target's position.

    Candidates are the targets whose bounding box comes within ``max_distance_m``
    of a geometry's bounding box; their exact distances decide. For many
    geometries this is several times faster than ``STRtree.query_nearest``
    with ``max_distance``, and gives the same answer; ties go to the first target.

    Returns
    -------
    tuple of ndarray
        ``target`` (position in ``target_geoms``, -1 when none is within
        ``max_distance_m``) and ``distance`` (NaN when none), per geometry.
    """
    target = np.full(len(geoms), -1)
    distance = np.full(len(geoms), np.nan)
    if len(target_geoms) == 0 or len(geoms) == 0:
        return target, distance
    if not np.isfinite(max_distance_m):
        tree = shapely.STRtree(target_geoms)
        (fi, ti), dist = tree.query_nearest(geoms, return_distance=True, all_matches=False)
        target[fi], distance[fi] = ti, dist
        return target, distance
    # Boxes of the smaller side grown by the reach: a box query finds every candidate.
    if len(geoms) <= len(target_geoms):
        fi, ti = shapely.STRtree(target_geoms).query(_grown_boxes(geoms, max_distance_m))
    else:
        fi, ti = shapely.STRtree(_grown_boxes(target_geoms, max_distance_m)).query(geoms)
    dist = shapely.distance(geoms[fi], target_geoms[ti])
    near = dist <= max_distance_m
    fi, ti, dist = fi[near], ti[near], dist[near]
    if not len(fi):
        return target, distance
    if np.any(fi[1:] < fi[:-1]):  # STRtree.query lists pairs by input geometry
        order = np.argsort(fi, kind="stable")
        fi, ti, dist = fi[order], ti[order], dist[order]
    starts = np.flatnonzero(np.r_[True, fi[1:] != fi[:-1]])
    nearest = np.minimum.reduceat(dist, starts)
    is_nearest = dist == np.repeat(nearest, np.diff(np.r_[starts, len(fi)]))
    first = np.minimum.reduceat(np.where(is_nearest, ti, len(target_geoms)), starts)
    target[fi[starts]], distance[fi[starts]] = first, nearest
    return target, distance


def _grown_boxes(geoms: np.ndarray, by: float) -> np.ndarray:
    return shapely.box(*(shapely.bounds(geoms) + np.array([-by, -by, by, by])).T)


def single_parts(frame: GeoDataFrame) -> GeoDataFrame:
    """Replace one-part multi-geometries by their part.

    A GeoPackage layer has one geometry type, so a few multi-part footprints make
    every footprint a MultiPolygon on disk; GEOS predicates and overlays are
    markedly slower on those than on the plain polygons they really are.
    """
    values = np.asarray(frame.geometry.array)
    parts = single_part_geoms(values)
    if parts is values:
        return frame
    return frame.set_geometry(GeoSeries(parts, index=frame.index, crs=frame.crs))


def single_part_geoms(values: np.ndarray) -> np.ndarray:
    """:func:`single_parts` on a geometry array (the same array when nothing changes)."""
    one_part = np.isin(shapely.get_type_id(values), (4, 5, 6))
    one_part &= shapely.get_num_geometries(values) == 1
    if not one_part.any():
        return values
    values = values.copy()
    values[one_part] = shapely.get_geometry(values[one_part], 0)
    return values


# The head of the WKB of a one-part MultiPoint, MultiLineString or MultiPolygon (2D,
# little-endian, as GDAL writes it): byte order, type, one part. The part's own WKB follows.
_ONE_PART_HEADS = frozenset(
    b"\x01" + kind.to_bytes(4, "little") + (1).to_bytes(4, "little") for kind in (4, 5, 6)
)
_HEAD = 9


def geoms_from_wkb(wkb: np.ndarray) -> np.ndarray:
    """Geometries from WKB, a one-part multi-geometry decoded as its part.

    The same geometries as ``single_part_geoms(shapely.from_wkb(wkb))``, but
    the part of a one-part multi-geometry is decoded straight from its own
    WKB (the bytes after the 9-byte head): about twice as fast for a layer
    that a few multi-part footprints made all MultiPolygons on disk.

    Parameters
    ----------
    wkb : ndarray of bytes (or None)

    Returns
    -------
    ndarray of shapely geometries

    Examples
    --------
    >>> one = shapely.to_wkb(shapely.MultiPolygon([shapely.box(0, 0, 1, 1)]))
    >>> two = shapely.to_wkb(shapely.MultiPoint([(0, 0), (1, 1)]))
    >>> [g.geom_type for g in geoms_from_wkb(np.array([one, two, None], dtype=object))[:2]]
    ['Polygon', 'MultiPoint']
    """
    heads = _ONE_PART_HEADS
    parts = np.empty(len(wkb), dtype=object)
    parts[:] = [w[_HEAD:] if w is not None and w[:_HEAD] in heads else w for w in wkb]
    return single_part_geoms(shapely.from_wkb(parts))


def _check_crs(a: GeoDataFrame, b: GeoDataFrame, what: str) -> None:
    require_projected(a.crs, what)
    if b.crs is None or not b.crs.equals(a.crs):
        raise CRSError(
            f"{what}: the two layers are in different CRSs ({a.crs} and {b.crs}); "
            "reproject one with .to_crs(other.crs)"
        )
