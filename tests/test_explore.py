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


LARGE_SCRIPT = """
import sys, json
import geopandas as gpd, numpy as np, shapely
import twin
from twin.explore import LARGE_FEATURES, explore
rng = np.random.default_rng(5)
n = LARGE_FEATURES + 1000
xy = rng.uniform([500_000, 3_390_000], [510_000, 3_400_000], size=(n, 2))
frame = gpd.GeoDataFrame(
    {"uid": [f"b.{i}" for i in range(n)]},
    geometry=shapely.box(xy[:, 0], xy[:, 1], xy[:, 0] + 10, xy[:, 1] + 12), crs="EPSG:4544",
)
points = gpd.GeoDataFrame(geometry=frame.centroid)
fmap = explore({"buildings": frame, "sensors": points})
print(json.dumps({
    "module": type(fmap).__module__, "name": type(fmap).__name__,
    "layers": [type(layer).__name__ for layer in fmap.layers],
    "rows": [layer.table.num_rows for layer in fmap.layers],
    "folium": "folium" in sys.modules,
    "small": type(explore(frame.iloc[:10])).__module__,
}))
"""


def test_explore_switches_to_lonboard_for_large_frames() -> None:
    """Above LARGE_FEATURES, a lonboard Map (GeoArrow), and folium is never imported."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", LARGE_SCRIPT], capture_output=True, text=True, check=True
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert (out["module"].split(".")[0], out["name"]) == ("lonboard", "Map")
    assert out["layers"] == ["PolygonLayer", "ScatterplotLayer"]
    from twin.explore import LARGE_FEATURES

    assert out["rows"] == [LARGE_FEATURES + 1000] * 2
    assert out["folium"] is False  # the large map was drawn without folium
    assert out["small"].startswith("folium")  # a small frame still gets folium's tooltips
