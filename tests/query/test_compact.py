"""Compact layers (WKB + packed box tree) answer as whole ones (GeoDataFrame + STRtree)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

import twin
from twin.errors import FeatureNotFoundError, UsageError
from twin.query.compact import BoxTree, CompactParts, WKBGeometries
from twin.query.index import CityIndex, compact_limit


@pytest.fixture(scope="module")
def compact(city: twin.Twin) -> CityIndex:
    return CityIndex.load(city.path, compact_above=0)


def _boxes(bounds: np.ndarray, count: int, seed: int) -> list[tuple[float, float, float, float]]:
    """Random boxes over the layer's extent, from a few metres to a third of it across."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = bounds
    sizes = rng.uniform(2, (x1 - x0) / 3, count)
    xs, ys = rng.uniform(x0 - 50, x1, count), rng.uniform(y0 - 50, y1, count)
    return [(x, y, x + s, y + s * 0.7) for x, y, s in zip(xs, ys, sizes, strict=True)]


def test_every_layer_is_compact_below_the_threshold(index: CityIndex, compact: CityIndex) -> None:
    assert list(compact.layers) == list(index.layers)
    assert all(layer.compact for layer in compact)
    assert not any(layer.compact for layer in index)
    for whole, small in zip(index, compact, strict=True):
        assert len(small) == len(whole) > 0
        assert small.fields == whole.fields
        assert small.columns == whole.columns
        assert small.uids.equals(whole.uids)
        pd.testing.assert_frame_equal(small.attributes[small.fields], whole.frame[whole.fields])


def test_queries_give_the_same_positions(index: CityIndex, compact: CityIndex) -> None:
    checked = 0
    for whole in index:
        small = compact.layer(whole.name)
        for box in _boxes(whole.frame.total_bounds, 40, seed=len(whole)):
            expected = whole.bbox(box)
            assert np.array_equal(small.bbox(box), expected), (whole.name, box)
            area = shapely.box(*box)
            for predicate in (None, "contains", "within", "touches"):
                got = small.query(area, predicate=predicate)
                assert np.array_equal(got, whole.query(area, predicate=predicate))
            point = shapely.Point(box[0], box[1])
            got = small.within_distance(point, 35.0)
            assert np.array_equal(got, whole.within_distance(point, 35.0))
            checked += len(expected)
    assert checked > 1000  # the boxes hit features, not only empty space


def test_geometries_decode_to_the_same_shapes(index: CityIndex, compact: CityIndex) -> None:
    for whole in index:
        small = compact.layer(whole.name)
        rows = np.arange(0, len(whole), 7)
        decoded = small.geometries[rows]
        assert isinstance(decoded, np.ndarray) and decoded.dtype == object
        assert shapely.equals_exact(decoded, whole.geometries[rows], tolerance=0).all()
        assert shapely.equals_exact(small.geometries[int(rows[-1])], whole.geometries[rows[-1]])
        mask = np.zeros(len(whole), dtype=bool)
        mask[rows] = True
        assert shapely.equals_exact(small.geometries[mask], decoded, tolerance=0).all()


def test_the_whole_frame_and_tree_come_back_on_demand(city: twin.Twin) -> None:
    layer = CityIndex.load(city.path, compact_above=0).layer("buildings")
    assert not layer.materialized  # nothing decoded whole by loading or by queries
    layer.bbox((0, 0, 1e9, 1e9))
    assert not layer.materialized
    assert_geodataframe_equal(layer.frame, city.layer("buildings"))
    assert layer.materialized
    box = shapely.box(*layer.frame.total_bounds)
    assert len(layer.tree.query(box)) == len(layer)


def test_position_by_uid(index: CityIndex, compact: CityIndex) -> None:
    whole, small = index.layer("parcels"), compact.layer("parcels")
    uid = str(whole.uids[17])
    assert small.position(uid) == whole.position(uid) == 17
    with pytest.raises(FeatureNotFoundError, match="no feature 'nope'"):
        small.position("nope")


def test_batched_read_equals_the_layer(city: twin.Twin) -> None:
    parts = list(city.layer_batches("buildings", batch_size=100))
    assert len(parts) == -(-len(city.layer("buildings")) // 100)
    assert_geodataframe_equal(pd.concat(parts), city.layer("buildings"))


def test_box_tree_against_brute_force() -> None:
    rng = np.random.default_rng(4)
    low = rng.uniform(0, 1000, (5000, 2))
    bounds = np.column_stack([low, low + rng.uniform(0, 30, (5000, 2))])
    bounds[::97] = np.nan  # empty geometries are never found
    tree = BoxTree(bounds)
    assert len(tree) == 5000 - len(range(0, 5000, 97))
    for x0, y0, x1, y1 in _boxes(np.array([0, 0, 1000, 1000]), 200, seed=5):
        expected = np.flatnonzero(
            (bounds[:, 0] <= x1)
            & (bounds[:, 2] >= x0)
            & (bounds[:, 1] <= y1)
            & (bounds[:, 3] >= y0)
        )
        assert np.array_equal(tree.candidates((x0, y0, x1, y1)), expected)
    edge = bounds[1]  # a box touching another by its edge is found, as in GEOS
    assert 1 in tree.candidates((edge[2], edge[3], edge[2] + 1, edge[3] + 1)).tolist()
    assert BoxTree(np.empty((0, 4))).candidates((0, 0, 1, 1)).tolist() == []


def test_wkb_keeps_missing_and_empty_geometries() -> None:
    shapes = np.array([shapely.Point(1, 2), None, shapely.Polygon(), shapely.box(0, 0, 2, 2)])
    store = WKBGeometries.of(shapes)
    assert store[1] is None and store[2].is_empty
    parts = CompactParts.from_geometries(shapes)
    assert parts.query(shapely.box(-1, -1, 5, 5)).tolist() == [0, 3]
    assert parts.query(shapely.Point(1, 2), predicate="dwithin", distance=0.5).tolist() == [0, 3]
    assert parts.query(shapely.Polygon()).tolist() == []
    with pytest.raises(ValueError, match="needs a distance"):
        parts.query(shapely.Point(0, 0), predicate="dwithin")


def test_threshold_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_COMPACT_ABOVE", "123")
    assert compact_limit() == 123
    monkeypatch.setenv("TWIN_COMPACT_ABOVE", "lots")
    with pytest.raises(UsageError, match="TWIN_COMPACT_ABOVE='lots' must be a whole number"):
        compact_limit()


def _shapes(bounds: np.ndarray, count: int, seed: int) -> list[shapely.Geometry]:
    """Turned rectangles, L shapes and rectangles with a hole over the layer's extent."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = bounds
    shapes = []
    for i in range(count):
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        half = rng.uniform(20, (x1 - x0) / 4)
        square = shapely.box(cx - half, cy - half, cx + half, cy + half * 0.8)
        if i % 3 == 0:  # turned a little, as a lon/lat box in the twin CRS
            corners = shapely.get_coordinates(square)
            turn = np.radians(rng.uniform(-3, 3))
            rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
            shapes.append(shapely.Polygon((corners - (cx, cy)) @ rotation.T + (cx, cy)))
        elif i % 3 == 1:  # an L: its bounds' inner box is not inside it
            shapes.append(square.difference(shapely.box(cx, cy, cx + half, cy + half)))
        else:  # a hole in the middle
            shapes.append(square.difference(shapely.box(cx - 5, cy - 5, cx + 5, cy + 5)))
    return shapes


def test_intersects_skips_no_feature_the_shape_misses(index: CityIndex, compact: CityIndex) -> None:
    checked = 0
    for whole in index:
        small = compact.layer(whole.name)
        for shape in _shapes(whole.frame.total_bounds, 30, seed=len(whole)):
            expected = whole.query(shape)
            assert np.array_equal(small.query(shapely.from_wkb(shapely.to_wkb(shape))), expected)
            checked += len(expected)
    assert checked > 1000
