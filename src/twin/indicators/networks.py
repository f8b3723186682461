"""Network lengths per zone: road km, pipe km by network."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin.errors import UsageError
from twin.indicators._overlay import Frame, check_inputs, clipped_pieces, geometry_array
from twin.indicators.lineclip import clip_lengths

__all__ = ["network_lengths"]


def network_lengths(
    zones: Frame, lines: gpd.GeoDataFrame, *, by: str | None = None
) -> pd.DataFrame:
    """Kilometres of lines inside each zone, in total and optionally by a column.

    Lines are clipped to the zones: a pipe crossing three grid cells adds the
    length of its part inside each to each. A line lying exactly along a
    boundary shared by two zones counts in both (as with
    ``geopandas.overlay``); parts outside every zone count nowhere.

    Parameters
    ----------
    zones : GeoDataFrame or GeoSeries
        Polygons in a projected CRS (metres).
    lines : GeoDataFrame
        Lines or multilines in the zones' CRS (roads, pipes).
    by : str, optional
        Column to split by, such as ``network`` for pipes or ``road_class``
        for roads. Missing values are grouped as ``"unknown"``.

    Returns
    -------
    DataFrame
        Indexed like ``zones``: ``length_km``, then with ``by`` one column
        ``{value}_km`` per value (sorted). Zones without lines have 0.

    Raises
    ------
    CRSError
        When the zones are not in a projected CRS or the lines are in
        another CRS.
    UsageError
        When ``by`` is not a column of ``lines``.

    Examples
    --------
    >>> zones = gpd.GeoDataFrame(
    ...     geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(1000, 0, 2000, 1000)],
    ...     index=["A", "B"], crs="EPSG:4544")
    >>> pipes = gpd.GeoDataFrame({"network": ["water", "gas"]},
    ...     geometry=[shapely.LineString([(500, 500), (1500, 500)]),
    ...               shapely.LineString([(100, 100), (100, 900)])], crs="EPSG:4544")
    >>> network_lengths(zones, pipes, by="network")
       length_km  gas_km  water_km
    A        1.3     0.8       0.5
    B        0.5     0.0       0.5
    """
    check_inputs(zones, {"lines": lines})
    if by is not None and by not in lines.columns:
        raise UsageError(
            f"the lines have no column {by!r} to split by: use one of "
            f"{', '.join(map(str, lines.columns))} or by=None"
        )
    zone_geoms = geometry_array(zones)
    n = len(zone_geoms)
    lines_geoms = geometry_array(lines)
    pieces = clipped_pieces(zone_geoms, lines_geoms, measure=shapely.length, clip=clip_lengths)
    km = pieces.measure / 1000.0
    total = np.bincount(pieces.zone, weights=km, minlength=n).astype(np.float64)
    out: dict[str, Any] = {"length_km": total}
    if by is not None:
        labels = lines[by].astype(object).where(lines[by].notna(), "unknown").astype(str)
        codes, values = pd.factorize(labels, sort=True)
        of_piece = codes[pieces.feature]
        for code, value in enumerate(values):
            mask = of_piece == code
            out[f"{value}_km"] = np.bincount(
                pieces.zone[mask], weights=km[mask], minlength=n
            ).astype(np.float64)
    return pd.DataFrame(out, index=zones.index)
