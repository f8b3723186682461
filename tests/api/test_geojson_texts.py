"""Pages written from the prepared CRS84 geometry texts are the bytes written per request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twin.errors import UsageError
from twin.query.index import CityIndex
from twin_api import geojson
from twin_api.packed_texts import PackedTexts


@pytest.fixture(scope="module")
def prepared(sample_twin_file: Path) -> CityIndex:
    index = CityIndex.load(sample_twin_file)
    thread = geojson.prepare_geometry_texts(index)
    assert thread is not None
    thread.join(120)
    return index


def test_prepared_pages_equal_pages_written_per_request(
    prepared: CityIndex, sample_twin_file: Path
) -> None:
    plain = CityIndex.load(sample_twin_file)  # nothing prepared for this snapshot
    rng = np.random.default_rng(11)
    checked = 0
    for layer in prepared:
        texts = geojson.geometry_texts(layer)
        assert texts is not None and len(texts) == len(layer)
        other = plain.layer(layer.name)
        assert geojson.geometry_texts(other) is None
        for crs in (geojson.CRS84, "http://www.opengis.net/def/crs/EPSG/0/4490"):
            out = geojson.OutputCrs.of(crs)
            for size in (1, 37, 100):
                rows = np.sort(rng.choice(len(layer), min(size, len(layer)), replace=False))
                fast = geojson.collection_bytes(geojson.feature_dicts(layer, rows, prepared, out))
                slow = geojson.collection_bytes(geojson.feature_dicts(other, rows, plain, out))
                assert fast == slow, (layer.name, crs, size)
                checked += len(rows)
        assert geojson.feature_dicts(layer, np.empty(0, dtype=np.intp), prepared, out) == []
    assert checked > 1000


def test_packed_texts_for_a_snapshot_with_compact_layers(sample_twin_file: Path) -> None:
    largest = max(layer.info.feature_count for layer in CityIndex.load(sample_twin_file))
    index = CityIndex.load(sample_twin_file, compact_above=largest - 1)
    assert any(layer.compact for layer in index) and not all(layer.compact for layer in index)
    thread = geojson.prepare_geometry_texts(index)
    assert thread is not None
    thread.join(120)
    plain = CityIndex.load(sample_twin_file, compact_above=largest)  # nothing prepared
    out = geojson.OutputCrs.of(geojson.CRS84)
    rng = np.random.default_rng(5)
    held = written = 0
    for layer in index:  # compact or whole, every layer's texts are packed
        texts = geojson.geometry_texts(layer)
        assert isinstance(texts, PackedTexts) and len(texts) == len(layer)
        held += texts.nbytes
        written += sum(len(t) for t in texts.take(np.arange(len(layer))) if t)
        other = plain.layer(layer.name)
        assert not other.compact and geojson.geometry_texts(other) is None
        for size in (1, 9, 100):
            rows = np.sort(rng.choice(len(layer), min(size, len(layer)), replace=False))
            fast = geojson.collection_bytes(geojson.feature_dicts(layer, rows, index, out))
            slow = geojson.collection_bytes(geojson.feature_dicts(other, rows, plain, out))
            assert fast == slow, (layer.name, size)
    assert held < 0.6 * written  # packed: well under the written size


def test_texts_for_compact_layers_when_asked(
    sample_twin_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = CityIndex.load(sample_twin_file)
    province = CityIndex.load(sample_twin_file, compact_above=0)
    monkeypatch.setenv("TWIN_GEOJSON_TEXTS", "all")
    thread = geojson.prepare_geometry_texts(province)
    assert thread is not None
    thread.join(120)
    out = geojson.OutputCrs.of(geojson.CRS84)
    for name in ("buildings", "roads"):
        layer = province.layer(name)
        assert layer.compact and not layer.materialized
        texts = geojson.geometry_texts(layer)
        assert texts is not None and not isinstance(texts, PackedTexts)
        rows = np.arange(3, len(layer), 5)
        fast = geojson.collection_bytes(geojson.feature_dicts(layer, rows, province, out))
        other = whole.layer(name)
        slow = geojson.collection_bytes(geojson.feature_dicts(other, rows, whole, out))
        assert fast == slow
    monkeypatch.setenv("TWIN_GEOJSON_TEXTS", "packed")  # packed for a whole snapshot too
    thread = geojson.prepare_geometry_texts(whole)
    assert thread is not None
    thread.join(120)
    assert isinstance(geojson.geometry_texts(whole.layer("buildings")), PackedTexts)
    monkeypatch.setenv("TWIN_GEOJSON_TEXTS", "none")
    assert geojson.prepare_geometry_texts(whole) is None
    monkeypatch.setenv("TWIN_GEOJSON_TEXTS", "some")
    with pytest.raises(UsageError, match="TWIN_GEOJSON_TEXTS='some': use auto, all, packed, none"):
        geojson.prepare_geometry_texts(whole)
