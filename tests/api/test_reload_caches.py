"""What the service derives from a snapshot follows a patched reload: new for the layers
that changed, kept for the others (``twin_api.geojson`` columns, prepared on each swap)."""

from __future__ import annotations

import shutil
from pathlib import Path

import twin
from twin.query.live import LiveIndex
from twin_api import geojson


def test_a_patched_reload_refreshes_the_changed_layers_columns_only(
    sample_twin: twin.Twin, tmp_path: Path
) -> None:
    path = tmp_path / "twin.gpkg"
    shutil.copy(sample_twin.path, path)
    live = LiveIndex(path, prepare=geojson.warm)
    geojson.warm(live.current())
    before = live.current()
    roads_columns = geojson.columns_of(before.layer("roads"))
    city = twin.Twin.open(path)
    frame = city.layer("buildings")
    uid = frame.index[3]
    frame.loc[uid, "name"] = "新名字"
    info = city.info("buildings")
    city.import_frame(
        frame.reset_index(),
        layer="buildings",
        kind="building",
        source="renamed",
        classification=info.classification,
        replace=True,
        local_coords=True,
    )
    assert live.refresh()
    after = live.current()
    assert after.updates["buildings"] == "patched" and after.updates["roads"] == "kept"
    columns = geojson.columns_of(after.layer("buildings"))
    row = after.layer("buildings").position(uid)
    names = dict(zip(columns.names, (values[0] for values in columns.rows([row])), strict=True))
    assert names["name"] == "新名字"
    old = geojson.columns_of(before.layer("buildings"))
    old_names = dict(zip(old.names, (values[0] for values in old.rows([3])), strict=True))
    assert old_names["name"] != "新名字"  # the old snapshot answers as it did
    assert geojson.columns_of(after.layer("roads")) is roads_columns  # prepared once
