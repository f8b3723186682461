"""An import lets go of its features once written, before its commit (twin.imports)."""

from __future__ import annotations

import weakref

import twin
from tests.conftest import GK105, SAMPLES
from twin.imports import prepare_import


def test_release_frees_the_prepared_features_and_keeps_the_columns() -> None:
    spec = twin.read_mapping(SAMPLES / "mapping.yaml")["buildings"]
    prepared = prepare_import(spec, None)
    frame = prepared.frame
    assert len(frame) == 3000  # the sample's buildings, all kept
    columns, dtypes = list(frame.columns), frame.dtypes.to_dict()
    alive = [weakref.ref(g) for g in frame.geometry.to_numpy()[:: len(frame) // 50]]
    del frame
    prepared.release()  # freed at once (reference counts), no garbage collection needed
    assert [ref() for ref in alive] == [None] * len(alive)
    assert len(prepared.frame) == 0 and list(prepared.frame.columns) == columns
    assert prepared.frame.dtypes.to_dict() == dtypes
    assert str(prepared.frame.crs) == GK105
