"""Benchmark functions for ``twin build`` (relations) beside the bare geopandas calls."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

Inputs = dict[str, Path]


def prepare_city_twin(folder: Path, n_buildings: int, seed: int = 42) -> Inputs:
    """A twin holding every layer of the generated city (built once, then reused)."""
    path = folder / f"city-twin-{n_buildings}-{seed}.gpkg"
    if not path.exists():
        import twin
        from twin.sample import generate_city, write_delivery

        started = time.perf_counter()
        delivery = folder / f"city-gpkg-{n_buildings}-{seed}"
        paths = write_delivery(generate_city(n_buildings, seed=seed), delivery, formats="gpkg")
        tmp = path.with_suffix(".tmp.gpkg")
        tmp.unlink(missing_ok=True)
        twin.Twin.create(tmp, crs="EPSG:4544").import_mapping(paths["mapping"])
        tmp.rename(path)
        shutil.rmtree(delivery)
        seconds = time.perf_counter() - started
        print(f"prepared the city twin in {seconds:.0f} s", file=sys.stderr)
    return {"city_twin": path}


def build_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    import twin

    copy = scratch / "city.gpkg"
    shutil.copy(inputs["city_twin"], copy)
    started = time.perf_counter()
    report = twin.Twin.open(copy).build(force=True)
    seconds = time.perf_counter() - started
    relations = report.recomputed
    return {
        "build_s": round(seconds, 2),
        "buildings_on_parcels": relations["building_parcel:buildings->parcels"]
        - report.unrelated["building_parcel:buildings->parcels"],
        "sensors_with_building": relations["sensor_building:sensors->buildings"]
        - report.unrelated["sensor_building:sensors->buildings"],
        "relations": len(relations),
    }


def _read(inputs: Inputs, layer: str) -> Any:
    import pyogrio

    frame = pyogrio.read_dataframe(
        inputs["city_twin"], layer=layer, columns=["uid"], use_arrow=True
    )
    return frame.set_index("uid")


def relations_ours(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """Largest-share building -> parcel and sensor -> building (inside or nearest within 30 m)."""
    from twin.relate import largest_share, nearest_within

    buildings, parcels, sensors = (_read(inputs, n) for n in ("buildings", "parcels", "sensors"))
    started = time.perf_counter()
    shares = largest_share(buildings, parcels)
    nearest = nearest_within(sensors, buildings, max_distance_m=30)
    return {
        "compute_s": time.perf_counter() - started,
        "buildings_on_parcels": int(shares["zone"].notna().sum()),
        "straddling": int((shares["n_zones"] > 1).sum()),
        "sensors_with_building": int(nearest["target"].notna().sum()),
    }


def relations_peer(inputs: Inputs, scratch: Path) -> dict[str, Any]:
    """The bare calls: centroids into parcels, nearest building per sensor, overlay straddlers."""
    import geopandas as gpd

    buildings, parcels, sensors = (_read(inputs, n) for n in ("buildings", "parcels", "sensors"))
    started = time.perf_counter()
    centroids = gpd.GeoDataFrame(geometry=buildings.centroid, index=buildings.index)
    in_parcel = gpd.sjoin(centroids, parcels, predicate="within")
    nearest = gpd.sjoin_nearest(sensors, buildings, max_distance=30)
    touching = gpd.sjoin(buildings, parcels, predicate="intersects")
    straddling = buildings.loc[touching.index[touching.index.duplicated()].unique()]
    gpd.overlay(
        straddling.reset_index(), parcels.reset_index(), how="intersection", keep_geom_type=True
    )
    return {
        "compute_s": time.perf_counter() - started,
        "buildings_on_parcels": int(in_parcel.index.nunique()),
        "straddling": len(straddling),
        "sensors_with_building": int(nearest.index.nunique()),
    }
