"""Raster layers (import, reprojection, nodata, history) and zonal statistics against peers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.mask import mask as rio_mask
from rasterio.warp import reproject

import twin
from tests.conftest import SAMPLES, run_cli
from twin.errors import CRSError, LayerNotFoundError, UsageError
from twin.raster import (
    Raster,
    import_raster,
    open_raster,
    raster_dir,
    raster_imports,
    raster_layers,
    read_raster,
)
from twin.zonal import zonal_stats


def _write(path: Path, values: np.ndarray, transform: Affine, crs: str | None, nodata=None) -> Path:
    profile = {
        "driver": "GTiff",
        "width": values.shape[1],
        "height": values.shape[0],
        "count": 1,
        "dtype": "float32",
        "transform": transform,
        "crs": crs,
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype("float32"), 1)
    return path


def test_sample_dem_is_stored_as_a_cog_with_provenance(city: twin.Twin) -> None:
    report = import_raster(city, SAMPLES / "dem.tif", layer="dem", kind="dem")
    stored = raster_dir(city) / "dem.tif"
    with rasterio.open(stored) as src, rasterio.open(SAMPLES / "dem.tif") as original:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.crs.to_epsg() == 4544
        assert src.transform == original.transform  # same CRS: the grid is kept
        np.testing.assert_allclose(src.read(1), original.read(1))
    assert report.width == 1384 and report.height == 1095 and report.resampling == "bilinear"
    assert raster_layers(city) == {"dem": "dem"}
    provenance = raster_imports(city, "dem")[0]
    assert provenance["checksum"].startswith("sha256:") and provenance["src_crs"] == "EPSG:4544"
    from typer.testing import CliRunner

    from twin.cli import app

    shown = CliRunner().invoke(app, ["info", str(city.path), "--json"])
    (raster,) = json.loads(shown.stdout)["rasters"]
    assert (raster["name"], raster["kind"], raster["width"], raster["cell_size_m"]) == (
        "dem",
        "dem",
        1384,
        2.0,
    )


def test_reimport_keeps_the_replaced_version(city: twin.Twin, tmp_path: Path) -> None:
    t = Affine(10, 0, 505_000, 0, -10, 3_393_000)
    first = _write(tmp_path / "a.tif", np.full((5, 5), 1.0), t, "EPSG:4544")
    second = _write(tmp_path / "b.tif", np.full((5, 5), 2.0), t, "EPSG:4544")
    import_raster(city, first, layer="pop", kind="raster")
    report = import_raster(city, second, layer="pop", kind="raster")
    assert report.replaced == "pop@1.tif"
    assert np.all(read_raster(city, "pop").values == 2.0)
    assert np.all(read_raster(city, "pop", import_id=1).values == 1.0)
    entries = raster_imports(city, "pop")
    assert entries[0]["valid_to"] == report.time and entries[1]["valid_to"] is None


def test_reprojection_from_geographic_and_nodata(city: twin.Twin, tmp_path: Path) -> None:
    # A 0.001-degree grid around 104.06E 30.66N with a nodata hole in the middle.
    values = np.arange(100, dtype=float).reshape(10, 10)
    values[4:6, 4:6] = -32768
    t = Affine(0.001, 0, 104.055, 0, -0.001, 30.665)
    src = _write(tmp_path / "geo.tif", values, t, "EPSG:4490", nodata=-32768)
    report = import_raster(city, src, layer="grid", kind="raster")
    stored = read_raster(city, "grid")
    assert stored.crs.to_epsg() == 4544 and report.src_crs == "EPSG:4490"
    # Nearest resampling keeps every value a source value; the hole stays nodata.
    finite = stored.values[np.isfinite(stored.values)]
    assert set(np.unique(finite)) <= set(range(100))
    centre = shapely.Point(104.0599, 30.6599)
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4490", "EPSG:4544", always_xy=True).transform(
        centre.x, centre.y
    )
    col, row = ~stored.transform @ (x, y)
    assert np.isnan(stored.values[int(row), int(col)])
    assert report.nodata_cells > 0


def test_raster_without_crs_fails_like_a_vector(city: twin.Twin, tmp_path: Path) -> None:
    src = _write(tmp_path / "nocrs.tif", np.ones((3, 3)), Affine(1, 0, 0, 0, -1, 3), None)
    with pytest.raises(CRSError, match="src_crs="):
        import_raster(city, src, layer="x", kind="dem")
    assert raster_layers(city) == {}
    result = run_cli("import", str(city.path), str(src), "-l", "x", "-k", "dem")
    assert result.returncode == 3 and "declares no CRS" in result.stderr
    assert "say which it is with --src-crs EPSG:" in result.stderr  # the CLI's words
    ok = run_cli(
        "import",
        str(city.path),
        str(src),
        "-l",
        "x",
        "-k",
        "dem",
        "--src-crs",
        "EPSG:4544",
        "--json",
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["src_crs"] == "EPSG:4544"


def test_bad_names_and_kinds(city: twin.Twin) -> None:
    with pytest.raises(UsageError, match="raster kind"):
        import_raster(city, SAMPLES / "dem.tif", layer="dem", kind="dtm")
    with pytest.raises(LayerNotFoundError, match="no raster layer"):
        read_raster(city, "dsm")
    import_raster(city, SAMPLES / "dem.tif", layer="dem", kind="dem")
    with pytest.raises(UsageError, match="holds kind dem"):
        import_raster(city, SAMPLES / "dsm.tif", layer="dem", kind="dsm")
    city.import_layer(SAMPLES / "facilities.gpkg", layer="pois", kind="poi")
    with pytest.raises(UsageError, match="vector layer"):
        import_raster(city, SAMPLES / "dem.tif", layer="pois", kind="dem")
    assert raster_layers(city) == {"dem": "dem"}


@pytest.fixture(scope="module")
def sample_zones() -> tuple[object, Raster]:
    import geopandas as gpd

    parcels = gpd.read_file(SAMPLES / "parcels.shp")
    return parcels, open_raster(SAMPLES / "dem.tif")


def test_zonal_stats_equal_plain_rasterio_masking(sample_zones) -> None:
    parcels, dem = sample_zones
    ours = zonal_stats(parcels, dem, stats=("count", "mean", "min", "max"), percentiles=(90,))
    with rasterio.open(SAMPLES / "dem.tif") as src:
        for position in range(0, len(parcels), 37):  # every 37th parcel: 20 of them
            geom = parcels.geometry.iloc[position]
            data, _ = rio_mask(src, [geom], crop=True, filled=False)
            cells = data[0].compressed().astype(float)
            row = ours.iloc[position]
            assert row["count"] == cells.size
            assert row["mean"] == pytest.approx(cells.mean(), rel=1e-9)
            assert row["min"] == cells.min() and row["max"] == cells.max()
            assert row["p90"] == pytest.approx(np.percentile(cells, 90), rel=1e-9)


def test_zonal_stats_equal_rasterstats(sample_zones) -> None:
    from rasterstats import zonal_stats as rs_zonal

    parcels, dem = sample_zones
    ours = zonal_stats(parcels, dem, stats=("count", "mean", "max", "median"), percentiles=(90,))
    theirs = rs_zonal(
        list(parcels.geometry),
        np.nan_to_num(dem.values, nan=-9999),
        affine=dem.transform,
        nodata=-9999,
        stats=["count", "mean", "max", "median", "percentile_90"],
    )
    for position, expected in enumerate(theirs):
        row = ours.iloc[position]
        assert row["count"] == expected["count"]
        assert row["mean"] == pytest.approx(expected["mean"], rel=1e-9)
        assert row["median"] == pytest.approx(expected["median"], rel=1e-9)
        assert row["p90"] == pytest.approx(expected["percentile_90"], rel=1e-9)


def test_zonal_stats_on_a_reprojected_population_grid() -> None:
    import geopandas as gpd

    # 4 x 4 cells of 100 people; two 200 m zones and one outside the grid.
    grid = Raster(np.full((4, 4), 100.0), Affine(100, 0, 0, 0, -100, 400), None)
    zones = gpd.GeoSeries(
        [
            shapely.box(0, 200, 200, 400),
            shapely.box(200, 0, 400, 400),
            shapely.box(900, 900, 950, 950),
        ],
        index=["nw", "east", "away"],
    )
    table = zonal_stats(zones, grid, stats=("count", "sum"))
    assert table.loc["nw"].tolist() == [4, 400.0]
    assert table.loc["east"].tolist() == [8, 800.0]
    assert table.loc["away", "count"] == 0 and np.isnan(table.loc["away", "sum"])
    with pytest.raises(UsageError):
        zonal_stats(zones, grid, stats=("mode",))
    # Reprojection peer: the same grid warped by rasterio keeps the total.
    out = np.zeros((4, 4))
    reproject(
        grid.values,
        out,
        src_transform=grid.transform,
        dst_transform=grid.transform,
        src_crs="EPSG:4544",
        dst_crs="EPSG:4544",
    )
    assert out.sum() == 1600
