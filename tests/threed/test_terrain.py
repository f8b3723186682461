"""The committed sample DEM and DSM are the generator's seed-42 terrain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

from tests.conftest import SAMPLES
from twin.sample import generate_city
from twin.sample.__main__ import main
from twin.sample.terrain import terrain_for


def test_committed_terrain_is_the_seed_42_terrain() -> None:
    dem, dsm, truth = terrain_for(generate_city(3000, seed=42))
    for name, grid in (("dem", dem), ("dsm", dsm)):
        with rasterio.open(SAMPLES / f"{name}.tif") as src:
            assert src.crs.to_epsg() == 4544 and src.res == (2.0, 2.0)
            assert src.compression.name == "deflate" and src.nodata == -9999
            assert src.transform == grid.transform
            np.testing.assert_array_equal(src.read(1), grid.values.astype("float32"))
        assert (SAMPLES / f"{name}.tif").stat().st_size < 1.5 * 2**20
    assert 60 < (truth["extra_storeys"] > 0).sum() < 120
    assert "dem.tif" in (SAMPLES / "README.md").read_text(encoding="utf-8")


def test_command_line_writes_the_terrain(tmp_path: Path) -> None:
    assert main([str(tmp_path), "--buildings", "150", "--seed", "3", "--quiet"]) == 0
    with rasterio.open(tmp_path / "dem.tif") as dem, rasterio.open(tmp_path / "dsm.tif") as dsm:
        ground, surface = dem.read(1), dsm.read(1)
    assert ground.shape == surface.shape
    assert (surface - ground > 2).sum() > 150 * 10  # buildings stand out of the DSM
    assert ground.min() < 499 and ground.max() > 505  # a channel and a valley side
