"""Building indicators per zone: footprint, gross floor area, FAR, coverage, height.

FAR (容积率) is gross floor area over zone area; coverage (建筑密度) is
footprint area over zone area. Footprints are clipped to the zones: a
building straddling two parcels adds its part inside each to each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import shapely

from twin.errors import UsageError
from twin.indicators._overlay import (
    Frame,
    Pieces,
    check_inputs,
    clipped_pieces,
    geometry_array,
    largest_share,
    per_area,
    pieces_from_areas,
    pieces_with_shares,
    zone_areas,
)
from twin.indicators.wkbarea import wkb_areas
from twin.relate import geoms_from_wkb

__all__ = [
    "building_heights",
    "building_indicators",
    "building_indicators_from_wkb",
    "building_indicators_in_batches",
    "floor_counts",
]


def _positive(frame: pd.DataFrame, column: str) -> npt.NDArray[np.float64]:
    """The column as floats, NaN where missing, non-numeric, not finite or <= 0."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def _check_floor_height(floor_height_m: float) -> float:
    value = float(floor_height_m)
    if not (np.isfinite(value) and value > 0):
        raise UsageError(
            f"floor_height_m must be a positive number of metres, not {floor_height_m}"
        )
    return value


def floor_counts(buildings: pd.DataFrame, *, floor_height_m: float = 3.0) -> pd.DataFrame:
    """Floors used for each building, and where the number came from.

    ``floors`` where it is known (a number above 0); otherwise
    ``height_m / floor_height_m`` rounded half up, at least 1; otherwise NaN.

    Parameters
    ----------
    buildings : DataFrame
        Buildings with ``floors`` and/or ``height_m`` (either column may be
        absent; 0, negative and non-numeric values count as missing).
    floor_height_m : float, default 3.0
        Storey height used to derive floors from a height.

    Returns
    -------
    DataFrame
        Indexed like ``buildings``: ``floors`` (float, NaN when unknown) and
        ``floors_source``, one of ``"floors"``, ``"height"``, ``"unknown"``.

    Raises
    ------
    UsageError
        When ``floor_height_m`` is not a positive number.

    Examples
    --------
    >>> b = pd.DataFrame({"floors": [4, None, None, 0], "height_m": [30.0, 10.6, 1.0, None]})
    >>> floor_counts(b)
       floors floors_source
    0     4.0        floors
    1     4.0        height
    2     1.0        height
    3     NaN       unknown
    """
    fh = _check_floor_height(floor_height_m)
    floors = _positive(buildings, "floors")
    height = _positive(buildings, "height_m")
    known = ~np.isnan(floors)
    from_height = ~known & ~np.isnan(height)
    source = np.where(known, "floors", np.where(from_height, "height", "unknown"))
    return pd.DataFrame(
        {"floors": _floors_used(floors, height, fh), "floors_source": source},
        index=buildings.index,
    )


def _floors_used(
    floors: npt.NDArray[np.float64], height: npt.NDArray[np.float64], fh: float
) -> npt.NDArray[np.float64]:
    """Known floors, else height / storey height rounded half up (at least 1), else NaN."""
    derived = np.maximum(np.floor(height / fh + 0.5), 1.0)
    return np.where(np.isnan(floors), derived, floors)


def _heights_used(
    floors: npt.NDArray[np.float64], height: npt.NDArray[np.float64], fh: float
) -> npt.NDArray[np.float64]:
    """Known height, else floors times storey height, else NaN."""
    return np.where(np.isnan(height), floors * fh, height)


def building_heights(buildings: pd.DataFrame, *, floor_height_m: float = 3.0) -> pd.DataFrame:
    """Height of each building, and where the number came from.

    ``height_m`` where it is known (above 0); otherwise ``floors *
    floor_height_m``; otherwise NaN.

    Parameters
    ----------
    buildings : DataFrame
        Buildings with ``height_m`` and/or ``floors``.
    floor_height_m : float, default 3.0
        Storey height used to derive a height from floors.

    Returns
    -------
    DataFrame
        Indexed like ``buildings``: ``height_m`` (float, NaN when unknown) and
        ``height_source``, one of ``"height"``, ``"floors"``, ``"unknown"``.

    Examples
    --------
    >>> b = pd.DataFrame({"floors": [4, 6, None], "height_m": [30.0, None, None]})
    >>> building_heights(b)
       height_m height_source
    0      30.0        height
    1      18.0        floors
    2       NaN       unknown
    """
    fh = _check_floor_height(floor_height_m)
    floors = _positive(buildings, "floors")
    height = _positive(buildings, "height_m")
    known = ~np.isnan(height)
    from_floors = ~known & ~np.isnan(floors)
    source = np.where(known, "height", np.where(from_floors, "floors", "unknown"))
    return pd.DataFrame(
        {"height_m": _heights_used(floors, height, fh), "height_source": source},
        index=buildings.index,
    )


def building_indicators(
    zones: Frame,
    buildings: gpd.GeoDataFrame,
    *,
    floor_height_m: float = 3.0,
    zone_of: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Building count, footprint, gross floor area, FAR, coverage and height per zone.

    Areas are clipped: a building straddling zones adds the part of its
    footprint inside each zone to that zone's ``footprint_m2``, ``gfa_m2``
    and ``population``. Counts and heights are not split: a building is
    *counted* in one zone, the one holding the largest part of its footprint
    (ties: the zone that comes first in ``zones``); buildings lying in no
    zone, or only touching zones, are not counted.

    Parameters
    ----------
    zones : GeoDataFrame or GeoSeries
        Polygons (parcels, grid cells, districts) in a projected CRS.
    buildings : GeoDataFrame
        Footprints (polygons or multipolygons, holes allowed) in the zones'
        CRS, with ``floors`` and/or ``height_m``, optionally ``population``.
    floor_height_m : float, default 3.0
        Storey height linking floors and height (see :func:`floor_counts`,
        :func:`building_heights`).
    zone_of : DataFrame, optional
        A known largest-share assignment of the buildings (indexed by building,
        ``zone`` label, ``share``, ``n_zones``; the relation ``twin build``
        stores): buildings wholly inside one zone skip the overlay. The answer
        is the same as without it.

    Returns
    -------
    DataFrame
        Indexed like ``zones``, one row per zone:

        - ``building_count``: buildings counted in the zone (largest share);
        - ``footprint_m2``: footprint area inside the zone;
        - ``gfa_m2``: gross floor area inside the zone, clipped footprint
          times floors; buildings whose floors are unknown add nothing;
        - ``far``: ``gfa_m2 / zone area`` (容积率);
        - ``coverage``: ``footprint_m2 / zone area`` (建筑密度);
        - ``height_mean_m``, ``height_max_m``: over the counted buildings of
          known height (NaN when none);
        - ``floors_from_height``: counted buildings whose floors were derived
          from their height; ``height_from_floors``: counted buildings whose
          height was derived from their floors; ``floors_unknown``: counted
          buildings with neither (left out of ``gfa_m2``);
        - ``population``, only when ``buildings`` has that column: the sum
          of building populations weighted by the share of each footprint
          inside the zone (missing values count as 0).

        A zone with no buildings has 0 counts and areas, 0 FAR and coverage,
        NaN heights; a zone of area 0 has NaN FAR and coverage.

    Raises
    ------
    CRSError
        When the zones are not in a projected CRS or the buildings are in
        another CRS.
    UsageError
        When ``floor_height_m`` is not a positive number.

    Examples
    --------
    >>> import shapely
    >>> zones = gpd.GeoDataFrame(
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)],
    ...     index=["A", "B"], crs="EPSG:4544")
    >>> buildings = gpd.GeoDataFrame(
    ...     {"floors": [2, None], "height_m": [None, 30.0]},
    ...     geometry=[shapely.box(10, 10, 30, 30), shapely.box(90, 0, 100, 50)],
    ...     crs="EPSG:4544")
    >>> out = building_indicators(zones, buildings)
    >>> out[["building_count", "footprint_m2", "gfa_m2", "far", "coverage"]]
       building_count  footprint_m2  gfa_m2   far  coverage
    A               2         900.0  5800.0  0.58      0.09
    B               0           0.0     0.0  0.00      0.00
    >>> out.loc["A", ["height_max_m", "floors_from_height", "height_from_floors"]].tolist()
    [30.0, 1.0, 1.0]
    """
    check_inputs(zones, {"buildings": buildings})
    totals = _Totals(zones, floor_height_m, population="population" in buildings.columns)
    totals.add(buildings, zone_of)
    return totals.table()


def building_indicators_in_batches(
    zones: Frame,
    batches: Iterable[gpd.GeoDataFrame],
    *,
    floor_height_m: float = 3.0,
) -> pd.DataFrame:
    """:func:`building_indicators` over buildings read in batches, with memory bounded.

    Each batch is overlaid on the zones and added to running per-zone totals
    in the order the whole layer would be (the same sums, bit for bit); only
    the counted zone and height of each building (12 bytes) are kept for the
    height statistics. The answer equals ``building_indicators(zones,
    pd.concat(batches))``.

    Parameters
    ----------
    zones : GeoDataFrame or GeoSeries
        Polygons in a projected CRS.
    batches : iterable of GeoDataFrame
        The buildings, a batch at a time, every batch in the zones' CRS with
        the same columns.
    floor_height_m : float, default 3.0
        As for :func:`building_indicators`.

    Examples
    --------
    >>> import shapely
    >>> zones = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 100, 100)], crs="EPSG:4544")
    >>> b = gpd.GeoDataFrame({"floors": [2, 3]}, crs="EPSG:4544",
    ...     geometry=[shapely.box(0, 0, 10, 10), shapely.box(50, 50, 60, 70)])
    >>> out = building_indicators_in_batches(zones, [b.iloc[:1], b.iloc[1:]])
    >>> out[["building_count", "gfa_m2"]]
       building_count  gfa_m2
    0               2   800.0
    """
    totals: _Totals | None = None
    for batch in batches:
        if totals is None:
            check_inputs(zones, {"buildings": batch})
            totals = _Totals(zones, floor_height_m, population="population" in batch.columns)
        totals.add(batch)
    if totals is None:
        empty = gpd.GeoDataFrame(geometry=[], crs=zones.crs)
        totals = _Totals(zones, floor_height_m, population=False)
        totals.add(empty)
    return totals.table()


def building_indicators_from_wkb(
    zones: Frame,
    wkb: Any,
    values: pd.DataFrame,
    zone_of: pd.DataFrame,
    *,
    floor_height_m: float = 3.0,
) -> pd.DataFrame:
    """:func:`building_indicators` for footprints kept as WKB, with their stored zones.

    The footprints' areas are read from the WKB bytes (:func:`~twin.indicators.wkbarea.
    wkb_areas`, equal to shapely's); only the buildings not wholly inside one zone are
    decoded and clipped. The answer equals ``building_indicators(zones, buildings,
    zone_of=zone_of)`` for the same buildings as a GeoDataFrame in the zones' CRS.

    Parameters
    ----------
    zones : GeoDataFrame or GeoSeries
        Polygons in a projected CRS.
    wkb : ndarray of bytes, or pyarrow binary array
        The footprints, in the zones' CRS.
    values : DataFrame
        One row per footprint, in the same order: ``floors`` and/or ``height_m``,
        optionally ``population``.
    zone_of : DataFrame
        One row per footprint, in the same order: ``zone`` label, ``share``, ``n_zones``.
    floor_height_m : float, default 3.0
        As for :func:`building_indicators`.

    Examples
    --------
    >>> import shapely
    >>> zones = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 100, 100),
    ...     shapely.box(100, 0, 200, 100)], index=["A", "B"], crs="EPSG:4544")
    >>> wkb = shapely.to_wkb([shapely.box(0, 0, 10, 10), shapely.box(95, 0, 105, 10)])
    >>> known = pd.DataFrame({"zone": ["A", "A"], "share": [1.0, 0.5], "n_zones": [1, 2]})
    >>> out = building_indicators_from_wkb(zones, wkb, pd.DataFrame({"floors": [2, 3]}), known)
    >>> out[["building_count", "footprint_m2", "gfa_m2"]]
       building_count  footprint_m2  gfa_m2
    A               2         150.0   350.0
    B               0          50.0   150.0
    """
    check_inputs(zones, {})
    if not len(wkb) == len(values) == len(zone_of):
        raise UsageError(
            f"{len(wkb)} footprints, {len(values)} rows of values and {len(zone_of)} rows of "
            "zone_of: give one row of each per footprint, in the same order"
        )
    totals = _Totals(zones, floor_height_m, population="population" in values.columns)
    areas = wkb_areas(wkb)
    pieces = pieces_from_areas(
        totals.zone_geoms, zones.index, zone_of, areas, lambda rows: _decoded(wkb, rows)
    )
    totals.add_pieces(values, pieces, lambda: areas)
    return totals.table()


def _decoded(wkb: Any, rows: npt.NDArray[np.intp]) -> Any:
    """The geometries of some WKB rows, decoded as the build decodes them."""
    if isinstance(wkb, pa.ChunkedArray | pa.Array):
        chosen = wkb.take(pa.array(rows, type=pa.int64())).to_numpy(zero_copy_only=False)
    else:
        chosen = np.asarray(wkb, dtype=object)[rows]
    return geoms_from_wkb(chosen)


class _Totals:
    """Per-zone sums of the buildings added so far (see :func:`building_indicators`)."""

    def __init__(self, zones: Frame, floor_height_m: float, *, population: bool) -> None:
        self.zones = zones
        self.zone_geoms = geometry_array(zones)
        self.n = n = len(self.zone_geoms)
        self.fh = _check_floor_height(floor_height_m)
        sums = ["footprint_m2", "gfa_m2", *(["population"] if population else [])]
        self.sums = {name: np.zeros(n, dtype=np.float64) for name in sums}
        counts = ("building_count", "floors_from_height", "height_from_floors", "floors_unknown")
        self.counts = {name: np.zeros(n, dtype=np.int64) for name in counts}
        self.owners: list[npt.NDArray[np.intp]] = []
        self.heights: list[npt.NDArray[np.float64]] = []

    def add(self, buildings: gpd.GeoDataFrame, zone_of: pd.DataFrame | None = None) -> None:
        """Overlay one batch of buildings and add it to the totals."""
        geoms = geometry_array(buildings)
        if zone_of is None:
            pieces = clipped_pieces(self.zone_geoms, geoms)
        else:
            known = zone_of.reindex(buildings.index)
            pieces = pieces_with_shares(self.zone_geoms, self.zones.index, geoms, known)
        self.add_pieces(buildings, pieces, lambda: np.asarray(shapely.area(geoms)))

    def add_pieces(
        self, buildings: pd.DataFrame, pieces: Pieces, footprints: Callable[[], Any]
    ) -> None:
        """Add the buildings' clipped pieces (``footprints()``: each one's whole area)."""
        n_buildings = len(buildings)
        floors_given = _positive(buildings, "floors")
        height_given = _positive(buildings, "height_m")
        no_floors, no_height = np.isnan(floors_given), np.isnan(height_given)
        owner = largest_share(pieces, n_buildings)
        # np.add.at adds piece by piece in order, as np.bincount does over the whole layer.
        np.add.at(self.sums["footprint_m2"], pieces.zone, pieces.measure)
        floor_values = _floors_used(floors_given, height_given, self.fh)[pieces.feature]
        np.add.at(self.sums["gfa_m2"], pieces.zone, np.nan_to_num(pieces.measure * floor_values))
        if "population" in self.sums:
            people = _population(buildings, footprints(), pieces)
            np.add.at(self.sums["population"], pieces.zone, people)
        for name, mask in (
            ("building_count", np.ones(n_buildings, dtype=bool)),
            ("floors_from_height", no_floors & ~no_height),
            ("height_from_floors", no_height & ~no_floors),
            ("floors_unknown", no_floors & no_height),
        ):
            self.counts[name] += _count(owner, mask, self.n)
        self.owners.append(owner.astype(np.int32))
        self.heights.append(_heights_used(floors_given, height_given, self.fh))

    def table(self) -> pd.DataFrame:
        """The indicators of the buildings added, one row per zone."""
        area = zone_areas(self.zone_geoms)
        footprint, gfa = self.sums["footprint_m2"], self.sums["gfa_m2"]
        out: dict[str, Any] = {
            "building_count": self.counts["building_count"],
            "footprint_m2": footprint,
            "gfa_m2": gfa,
            "far": per_area(gfa, area),
            "coverage": per_area(footprint, area),
        }
        owner = np.concatenate(self.owners).astype(np.intp)
        out.update(_height_stats(owner, np.concatenate(self.heights), self.n))
        for name in ("floors_from_height", "height_from_floors", "floors_unknown"):
            out[name] = self.counts[name]
        if "population" in self.sums:
            out["population"] = self.sums["population"]
        return pd.DataFrame(out, index=self.zones.index)


def _count(owner: npt.NDArray[np.intp], mask: npt.NDArray[np.bool_], n: int) -> Any:
    """Number of features per owning zone among those where ``mask`` holds."""
    chosen = owner[mask & (owner >= 0)]
    return np.bincount(chosen, minlength=n).astype(np.int64)


def _height_stats(
    owner: npt.NDArray[np.intp], height: npt.NDArray[np.float64], n: int
) -> dict[str, Any]:
    keep = (owner >= 0) & ~np.isnan(height)
    grouped = pd.Series(height[keep]).groupby(owner[keep])
    index = pd.RangeIndex(n)
    return {
        "height_mean_m": grouped.mean().reindex(index).to_numpy(dtype=np.float64),
        "height_max_m": grouped.max().reindex(index).to_numpy(dtype=np.float64),
    }


def _population(buildings: pd.DataFrame, footprints: Any, pieces: Pieces) -> Any:
    """Each piece's people: its building's population times the piece's share of the footprint."""
    people = pd.to_numeric(buildings["population"], errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    share = per_area(pieces.measure, np.asarray(footprints, dtype=np.float64)[pieces.feature])
    return np.nan_to_num(people[pieces.feature] * share)
