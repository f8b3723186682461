"""Management grids (网格) generated from district boundaries.

Cells are squares on a grid anchored at the CRS origin, so a cell's id depends
only on where it is: regenerating the grid after a district boundary moves
keeps the id of every cell that is still there. Cells are clipped to the
districts; a square cut by a district boundary gives one cell per district.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from geopandas import GeoDataFrame

from twin.crs import require_projected
from twin.errors import UsageError

MAX_CELLS = 5_000_000


def grid_from_districts(
    districts: GeoDataFrame, *, cell_m: float = 500.0, district_field: str | None = None
) -> GeoDataFrame:
    """Square cells of ``cell_m`` clipped to the districts, with stable ids.

    Parameters
    ----------
    districts : GeoDataFrame
        District polygons in a projected CRS, indexed by uid.
    cell_m : float, default 500
        Cell side in metres.
    district_field : str, optional
        The district code to put in ids and in ``district_code`` (default: the
        ``district_code`` column when present, else the district's uid).

    Returns
    -------
    GeoDataFrame
        ``grid_code`` (``<district>-<cell_m>-<column>-<row>``, column and row
        counted from the CRS origin), ``district_code``, ``district_uid``,
        ``area_m2`` and the clipped geometry.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> d = gpd.GeoDataFrame({"district_code": ["A"]}, geometry=[shapely.box(0, 0, 1000, 600)],
    ...                      index=["districts.A"], crs="EPSG:4544")
    >>> grid = grid_from_districts(d, cell_m=500)
    >>> grid["grid_code"].tolist()
    ['A-500-0-0', 'A-500-0-1', 'A-500-1-0', 'A-500-1-1']
    >>> grid["area_m2"].tolist()
    [250000.0, 50000.0, 250000.0, 50000.0]
    """
    require_projected(districts.crs, "grid generation")
    if not cell_m > 0:
        raise UsageError(f"cell_m= must be a positive number of metres, not {cell_m}")
    codes = _district_codes(districts, district_field)
    pieces = [
        _cells_of(geom, code, uid, cell_m)
        for geom, code, uid in zip(districts.geometry, codes, districts.index, strict=True)
        if geom is not None and not geom.is_empty
    ]
    frame = pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()
    return GeoDataFrame(frame, geometry="geometry", crs=districts.crs)


def _district_codes(districts: GeoDataFrame, field: str | None) -> list[str]:
    if field is not None and field not in districts.columns:
        raise UsageError(
            f"districts have no field {field!r}: {', '.join(map(str, districts.columns))}"
        )
    column = field or ("district_code" if "district_code" in districts.columns else None)
    values = districts[column] if column else pd.Series(districts.index, index=districts.index)
    return [
        str(v) if pd.notna(v) else str(uid) for v, uid in zip(values, districts.index, strict=True)
    ]


def _cells_of(district: shapely.Geometry, code: str, uid: object, cell_m: float) -> pd.DataFrame:
    x0, y0, x1, y1 = district.bounds
    cols = np.arange(np.floor(x0 / cell_m), np.ceil(x1 / cell_m), dtype=np.int64)
    rows = np.arange(np.floor(y0 / cell_m), np.ceil(y1 / cell_m), dtype=np.int64)
    if len(cols) * len(rows) > MAX_CELLS:
        raise UsageError(
            f"{len(cols) * len(rows):,} cells of {cell_m:g} m for district {code}: "
            "use a larger cell_m="
        )
    cc, rr = (a.ravel() for a in np.meshgrid(cols, rows, indexing="ij"))
    squares = shapely.box(cc * cell_m, rr * cell_m, (cc + 1) * cell_m, (rr + 1) * cell_m)
    shapely.prepare(district)
    hit = shapely.intersects(district, squares)
    clipped = shapely.intersection(squares[hit], district)
    clipped = np.array([_polygonal(g) for g in clipped], dtype=object)
    keep = ~shapely.is_empty(clipped) & (shapely.area(clipped) > 0)
    cc, rr, clipped = cc[hit][keep], rr[hit][keep], clipped[keep]
    return pd.DataFrame(
        {
            "grid_code": [f"{code}-{cell_m:g}-{c}-{r}" for c, r in zip(cc, rr, strict=True)],
            "district_code": code,
            "district_uid": str(uid),
            "area_m2": shapely.area(clipped),
            "geometry": clipped,
        }
    )


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Keep the polygonal part of a clip (edges and corners touching are dropped)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
