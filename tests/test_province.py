"""The province generator: cities side by side, unique ids, one GeoPackage written city by city."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely

import twin
from twin.sample import generate_city
from twin.sample.province import city_sizes, write_province


def test_three_cities_side_by_side_import_as_one_twin(tmp_path: Path) -> None:
    paths = write_province(450, tmp_path / "province", city_buildings=150, seed=5)
    buildings = pyogrio.read_dataframe(paths["buildings"], layer="buildings")
    assert len(buildings) == 450
    assert buildings["建筑编码"].is_unique
    assert sorted({code[:4] for code in buildings["建筑编码"]}) == ["C01-", "C02-", "C03-"]
    # each city is the city generated alone with its own seed, moved: same shapes, same areas
    alone = generate_city(150, seed=6)["buildings"]
    second = buildings[buildings["建筑编码"].str.startswith("C02-")]
    np.testing.assert_allclose(np.sort(second.area.to_numpy()), np.sort(alone.area.to_numpy()))
    # the cities' road networks do not overlap
    roads = pyogrio.read_dataframe(paths["roads"], layer="roads")
    hulls = [
        shapely.box(*roads[roads["道路编码"].str.startswith(f"C0{i}-")].total_bounds)
        for i in (1, 2, 3)
    ]
    assert not any(a.intersects(b) for i, a in enumerate(hulls) for b in hulls[i + 1 :])
    # the delivery imports through its mapping; grid cells still name their district
    city = twin.Twin.create(tmp_path / "province.gpkg", crs="EPSG:4544")
    city.import_mapping(paths["mapping"])
    assert city.info("buildings").feature_count == 450
    grids = city.layer("grids")
    districts = set(city.layer("districts")["district_code"])
    assert set(grids["district_code"]) <= districts


def test_city_sizes_even_out() -> None:
    assert city_sizes(10_000_000) == [1_000_000] * 10
    assert sum(city_sizes(3_000_001)) == 3_000_001 and len(city_sizes(3_000_001)) == 4


@pytest.mark.slow
def test_cli_writes_a_province(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    done = run_cli(
        "sample", str(tmp_path), "--buildings", "250", "--city-buildings", "125", "--json"
    )
    assert done.returncode == 0, done.stderr
    assert (
        '"cities": [\n    125,\n    125\n  ]' in done.stdout
        or '"cities": [125, 125]' in done.stdout
    )
    assert pyogrio.read_info(tmp_path / "city.gpkg", layer="buildings")["features"] == 250
