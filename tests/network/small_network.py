"""A small hand-drawn water network, checked by hand in the tests.

::

    D(100,100) ---P6--- E(200,100)
      |                   |
      P4                  P5
      |                   |
    S(0,0) --P1-- A(100,0) --P2-- B(200,0) --P3-- C(300,0) --P7-- F(400,0)
                     V1 ^    ^ V2       ^ V4          ^ V3

V1 and V2 sit on P2 near A and near B: P2 is a segment of its own. V4 on P3
near B and V3 on P7 near C cut P3 (with node C) and P7 (with node F) apart.
Segments: {P1, P4, P5, P6} (with the source S), {P2}, {P3}, {P7}.
V9 stands 40 m from any pipe (off the network). Buildings b1 (near P7),
b2 (near P2) and b3 (near P4, 12 people).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
from shapely import LineString, Point, box

import twin

CRS = "EPSG:4544"
X0, Y0 = 500_000.0, 3_390_000.0


def at(x: float, y: float) -> tuple[float, float]:
    return (X0 + x, Y0 + y)


PIPES: dict[str, list[tuple[float, float]]] = {
    "P1": [(0, 0), (100, 0)],
    "P2": [(100, 0), (200, 0)],
    "P3": [(200, 0), (300, 0)],
    "P4": [(100, 0), (100, 100)],
    "P5": [(200, 0), (200, 100)],
    "P6": [(100, 100), (200, 100)],
    "P7": [(300, 0), (400, 0)],
}
VALVES = {"V1": (102, 0), "V2": (198, 0), "V3": (302, 0), "V4": (202, 0), "V9": (150, 60)}


def pipes_frame(pipes: dict[str, list[tuple[float, float]]] | None = None) -> gpd.GeoDataFrame:
    pipes = pipes or PIPES
    return gpd.GeoDataFrame(
        {"pipe_id": list(pipes), "network": "water", "diameter_mm": 200.0},
        geometry=[LineString([at(*p) for p in pts]) for pts in pipes.values()],
        crs=CRS,
    )


def valves_frame(status: dict[str, str] | None = None) -> gpd.GeoDataFrame:
    status = status or {}
    return gpd.GeoDataFrame(
        {
            "valve_id": list(VALVES),
            "status": [status.get(v, "open") for v in VALVES],
            "network": "water",
        },
        geometry=[Point(at(*p)) for p in VALVES.values()],
        crs=CRS,
    )


def sources_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"source_id": ["S"], "source_type": ["plant"], "network": ["water"]},
        geometry=[Point(at(0, 0))],
        crs=CRS,
    )


def buildings_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"bid": ["b1", "b2", "b3"], "floors": [3, 2, 6], "population": [4, 3, 12]},
        geometry=[
            box(*at(340, 10), *at(360, 30)),
            box(*at(140, -30), *at(160, -10)),
            box(*at(60, 40), *at(88, 60)),
        ],
        crs=CRS,
    )


def make_twin(
    folder: Path, *, valve_status: dict[str, str] | None = None, with_sources: bool = True
) -> twin.Twin:
    city = twin.Twin.create(folder / "small.gpkg", crs=CRS)
    layers = {
        "pipes": ("pipe", pipes_frame(), "pipe_id"),
        "valves": ("valve", valves_frame(valve_status), "valve_id"),
        "buildings": ("building", buildings_frame(), "bid"),
    }
    if with_sources:
        layers["sources"] = ("source", sources_frame(), "source_id")
    for name, (kind, frame, id_field) in layers.items():
        path = folder / f"{name}.gpkg"
        frame.to_file(path, layer=name)
        city.import_layer(path, layer=name, kind=kind, id=id_field)
    return city


def uid(layer: str, name: str) -> str:
    """The uid our importer gives a feature: ``layer.id``."""
    return f"{layer}.{name}"


def names(uids: object) -> set[str]:
    """Feature ids back from uids (``pipes.P1`` -> ``P1``)."""
    return {str(u).split(".", 1)[1] for u in uids}  # type: ignore[attr-defined]
