"""The CRS area-of-use guard answers point by point as before, also when it proves a whole
delivery inside at once (the import of a million footprints transforms none of them)."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from twin.guards import outside_area_of_use

GK = pyproj.CRS("EPSG:4544")  # CGCS2000 3-degree Gauss-Kruger CM 105E: 103.5E to 106.5E


def _expected(points: np.ndarray, crs: pyproj.CRS, margin: float = 1.0) -> np.ndarray:
    """Independently: every point transformed with pyproj and compared with the box."""
    area = crs.area_of_use
    to_geo = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    lon, lat = to_geo.transform(points[:, 0], points[:, 1], errcheck=False)
    with np.errstate(invalid="ignore"):
        inside = (
            (np.asarray(lon) >= area.west - margin)
            & (np.asarray(lon) <= area.east + margin)
            & (np.asarray(lat) >= area.south - margin)
            & (np.asarray(lat) <= area.north + margin)
        )
    return ~np.isfinite(points).all(axis=1) | ~inside


@pytest.mark.parametrize(
    ("centre_x", "spread_m", "outside"),
    [
        (505_700.0, 30_000.0, 0),  # a city in the middle of its zone: proven inside at once
        (505_700.0, 100_000.0, 0),  # 200 km wide, still within the zone and its 1° margin
        (700_000.0, 150_000.0, None),  # reaches past 107.5E: checked point by point
    ],
)
def test_same_answer_as_point_by_point(centre_x: float, spread_m: float, outside) -> None:
    rng = np.random.default_rng(7)
    points = np.column_stack(
        [
            rng.uniform(centre_x - spread_m, centre_x + spread_m, 5000),
            rng.uniform(3_392_300.0 - spread_m, 3_392_300.0 + spread_m, 5000),
        ]
    )
    points[17] = [np.nan, 3_392_300.0]
    expected = _expected(points, GK)
    got = outside_area_of_use(points, GK)
    assert got.tolist() == expected.tolist()
    assert got[17]
    if outside == 0:
        assert got.sum() == 1  # only the NaN row
    else:
        assert 1 < got.sum() < len(points)  # some points really are outside


def test_points_given_in_degrees_to_a_projected_crs_are_all_outside() -> None:
    degrees = np.array([[104.06, 30.66], [104.07, 30.67]])
    assert outside_area_of_use(degrees, GK).tolist() == [True, True]
    assert _expected(degrees, GK).tolist() == [True, True]
