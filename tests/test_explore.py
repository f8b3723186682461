"""The notebooks extra installs what GeoDataFrame.explore() needs (folium, mapclassify)."""

from __future__ import annotations

from pathlib import Path

import twin
from tests.conftest import SAMPLES


def test_layer_explore_draws_an_interactive_map(tmp_path: Path) -> None:
    city = twin.Twin.create(tmp_path / "city.gpkg", crs="EPSG:4544")
    city.import_layer(
        SAMPLES / "networks.gpkg", layer="valves", kind="valve", source_layer="valves",
        id="valve_id",
    )  # fmt: skip
    valves = city.layer("valves")
    folium_map = valves.explore(column="status")
    html = folium_map.get_root().render()
    assert type(folium_map).__module__.startswith("folium")
    assert valves.index[0] in html  # the tooltip data holds each valve's uid
