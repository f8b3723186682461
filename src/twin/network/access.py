"""Access points: buildings and facilities linked to the nearest point on a road edge.

Every feature gets an access point: the nearest point of the nearest edge
(a building from its representative point, a facility from its point). The
edge is not split; instead the access point keeps its position along the
edge, and a trip leaving or reaching it pays exactly the part of the edge's
time between the point and the edge's ends (in the directions the edge
allows). With ``snap="node"`` the access point is the nearer end node of that
edge instead (the usual simplification of node-based tools).

Examples
--------
>>> import geopandas as gpd, pandas as pd
>>> from shapely import LineString, Point
>>> from twin.network.roads import road_network_from_frame
>>> roads = gpd.GeoDataFrame({"road_class": ["支路"]}, geometry=[LineString([(0, 0), (300, 0)])],
...                          index=pd.Index(["R1"], name="uid"), crs="EPSG:4544")
>>> net = road_network_from_frame(roads)
>>> pts = gpd.GeoDataFrame(geometry=[Point(100, 20)], index=pd.Index(["B1"], name="uid"),
...                        crs="EPSG:4544")
>>> acc = access_points(net, pts)
>>> float(acc.position_m[0]), float(acc.distance_m[0])
(100.0, 20.0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from twin.errors import UsageError
from twin.network.roads import BoolArray, FloatArray, IntArray, RoadNetwork
from twin.settings import Direction, Snap

__all__ = [
    "AccessPoints",
    "RoadAccess",
    "access_points",
    "parse_where",
    "road_access",
    "select_facilities",
]

SNAPS = ("edge", "node")
END_M = 1e-6  # an access point this close to an edge's end is at the node


@dataclass
class AccessPoints:
    """Where features meet the road network.

    Attributes
    ----------
    uid : pandas.Index
        The features' uids.
    edge : ndarray of int
        The edge each feature is linked to.
    position_m : ndarray of float
        Distance of the access point from the edge's ``from`` node along it.
    distance_m : ndarray of float
        Straight-line distance from the feature to its access point.
    point : ndarray of shapely Points
        The access points.

    Examples
    --------
    >>> from twin.network import access_points
    >>> points = access_points(city.road_network(), city.layer("facilities"))
    >>> len(points) == len(city.layer("facilities"))
    True
    """

    uid: pd.Index
    edge: IntArray
    position_m: FloatArray
    distance_m: FloatArray
    point: npt.NDArray[np.object_]

    def __len__(self) -> int:
        return len(self.edge)

    def times_to_ends(self, net: RoadNetwork) -> tuple[FloatArray, FloatArray]:
        """Time along the edge to its ``from`` and to its ``to`` node (whatever the direction)."""
        share = self.position_m / np.maximum(net.edge_length_m[self.edge], 1e-12)
        share = np.clip(share, 0.0, 1.0)
        time = net.edge_time_s[self.edge]
        return share * time, (1.0 - share) * time


def access_points(
    net: RoadNetwork, features: gpd.GeoDataFrame, *, snap: Snap = "edge"
) -> AccessPoints:
    """Link every feature to its nearest edge.

    Parameters
    ----------
    net : RoadNetwork
    features : geopandas.GeoDataFrame
        Points, lines or polygons indexed by uid, in the network's CRS
        (reprojected if not).
    snap : {"edge", "node"}, default "edge"
        ``edge``: the nearest point on the nearest edge; ``node``: that edge's nearer end.

    Returns
    -------
    AccessPoints

    Examples
    --------
    >>> points = access_points(city.road_network(), city.layer("buildings").head(3))
    >>> len(points), bool((points.distance_m >= 0).all())
    (3, True)
    """
    if snap not in SNAPS:
        raise UsageError(f"snap must be edge or node, not {snap!r}")
    if features.crs is not None and net.crs is not None and features.crs != net.crs:
        features = features.to_crs(net.crs)
    geoms = features.geometry.to_numpy()
    bad = pd.isna(geoms) | shapely.is_empty(geoms)
    if bad.any():
        raise UsageError(
            f"{int(bad.sum())} feature(s) without geometry (first {features.index[bad][0]!r}): "
            "drop them or fix them before linking to the roads"
        )
    points = geoms.copy()
    shaped = shapely.get_type_id(geoms) != 0  # footprints and lines; points stay themselves
    if shaped.any():
        points[shaped] = shapely.point_on_surface(geoms[shaped])
    tree = net.cache.get("edge_tree")
    if tree is None:
        tree = net.cache["edge_tree"] = shapely.STRtree(net.edge_geometry)
    where, edge = tree.query_nearest(points, all_matches=False, return_distance=False)
    found = np.full(len(points), -1, dtype=np.int64)
    found[where] = edge
    lines = net.edge_geometry[found]
    position = shapely.line_locate_point(lines, points)
    length = shapely.length(lines)
    if snap == "node":
        position = np.where(position * 2 <= length, 0.0, length)
    on_line = shapely.line_interpolate_point(lines, position)
    edge_length = net.edge_length_m[found]
    along = np.clip(position * edge_length / np.maximum(length, 1e-12), 0.0, edge_length)
    along = np.where(
        along <= END_M, 0.0, np.where(edge_length - along <= END_M, edge_length, along)
    )
    return AccessPoints(
        uid=_one_chunk(pd.Index(features.index)),
        edge=found,
        position_m=along,
        distance_m=shapely.distance(points, on_line),
        point=on_line,
    )


def _one_chunk(index: pd.Index) -> pd.Index:
    """``index`` with its Arrow strings in one chunk (as read in batches they are in many).

    Taking a few rows of a chunked Arrow array costs in proportion to all of it; a
    closure takes its changed buildings' uids, so they are joined once here.
    """
    dtype = index.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        return index
    data = index.array.__arrow_array__()  # a ChunkedArray
    if data.num_chunks <= 1:
        return index
    return pd.Index(pd.array(data.combine_chunks(), dtype=dtype), name=index.name)


@dataclass
class RoadAccess:
    """A road network with its buildings and facilities linked to it.

    Built once with :func:`road_access`; every analysis (service areas,
    closures, the cascade) runs on it, and closures only mask edge weights.

    Attributes
    ----------
    net : RoadNetwork
    buildings : AccessPoints
    facilities : AccessPoints
    facility_info : pandas.DataFrame
        The facilities' attributes (name, type…), indexed by uid.
    building_population : ndarray of float or None
        Population per building when the building layer has one.
    direction : str
        ``from_facility`` (a fire engine driving out) or ``to_facility`` (a
        patient driving in): which way trips run on one-way streets.
    cache : dict

    Examples
    --------
    >>> from twin.network import road_access, select_facilities
    >>> fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
    >>> access = road_access(city.road_network(), city.layer("buildings"), fire)
    >>> access.n_virtual >= 0
    True
    """

    net: RoadNetwork
    buildings: AccessPoints
    facilities: AccessPoints
    facility_info: pd.DataFrame
    building_population: FloatArray | None = None
    direction: Direction = "from_facility"
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n_virtual(self) -> int:
        return len(self.facilities)


DIRECTIONS = ("from_facility", "to_facility")


def road_access(
    net: RoadNetwork,
    buildings: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    snap: Snap = "edge",
    direction: Direction = "from_facility",
) -> RoadAccess:
    """Link buildings and facilities to ``net``.

    Parameters
    ----------
    net : RoadNetwork
    buildings, facilities : geopandas.GeoDataFrame
        Indexed by uid (footprints or points; facilities may be any layer,
        see :func:`select_facilities`).
    snap : {"edge", "node"}, default "edge"
    direction : {"from_facility", "to_facility"}, default "from_facility"

    Returns
    -------
    RoadAccess

    Raises
    ------
    UsageError
        Without facilities, or for an unknown ``direction``.

    Examples
    --------
    >>> from twin.network import road_access, select_facilities
    >>> fire = select_facilities(city.layer("facilities"), "poi_type=消防站")
    >>> access = road_access(city.road_network(), city.layer("buildings"), fire)
    >>> len(access.buildings) == len(city.layer("buildings"))
    True
    """
    if direction not in DIRECTIONS:
        raise UsageError(f"direction must be from_facility or to_facility, not {direction!r}")
    if len(facilities) == 0:
        raise UsageError("no facilities: give a facility layer (and filter) that selects some")
    population = None
    if "population" in buildings:
        population = pd.to_numeric(buildings["population"], errors="coerce").to_numpy(
            dtype=float, na_value=0.0
        )
    info = pd.DataFrame(facilities.drop(columns=facilities.geometry.name))
    return RoadAccess(
        net=net,
        buildings=access_points(net, buildings, snap=snap),
        facilities=access_points(net, facilities, snap=snap),
        facility_info=info,
        building_population=population,
        direction=direction,
    )


_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(!?=)\s*(.+?)\s*$")


def parse_where(where: str) -> tuple[str, bool, list[str]]:
    """Parse ``field=value[,value…]`` (or ``field!=…``) into ``(field, negate, values)``.

    Examples
    --------
    >>> parse_where("poi_type=消防站,医院")
    ('poi_type', False, ['消防站', '医院'])
    """
    match = _CONDITION.match(where)
    if not match:
        raise UsageError(
            f"filter {where!r} must look like field=value or field=value1,value2 "
            "(e.g. poi_type=消防站,医院)"
        )
    name, op, values = match.groups()
    return name, op == "!=", [v.strip() for v in values.split(",") if v.strip()]


def select_facilities(frame: gpd.GeoDataFrame, where: str | None = None) -> gpd.GeoDataFrame:
    """The rows of ``frame`` that ``where`` (``field=value[,value…]``) selects; all without it.

    Raises
    ------
    UsageError
        For a malformed filter, a field the layer lacks, or a filter selecting nothing.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> pois = gpd.GeoDataFrame({"poi_type": ["医院", "商店"]}, geometry=shapely.points([(0, 0),
    ...                         (1, 1)]), crs="EPSG:4544")
    >>> len(select_facilities(pois, "poi_type=医院"))
    1
    """
    if where is None:
        return frame
    name, negate, values = parse_where(where)
    if name not in frame:
        fields = ", ".join(c for c in frame.columns if c != frame.geometry.name)
        raise UsageError(f"the facility layer has no field {name!r} (fields: {fields})")
    hit: BoolArray = frame[name].astype(str).isin(values).to_numpy()
    chosen = frame.loc[~hit if negate else hit]
    if chosen.empty:
        found = ", ".join(sorted(set(frame[name].dropna().astype(str)))[:10])
        raise UsageError(f"filter {where!r} selects no facility ({name} values: {found})")
    return chosen
