"""Profiles and impact analyses (twin.query.profile, twin.query.impact) on the sample district.

Expected answers come from the full layers: shapely overlaps and distances for
relations, service connections and road access; the whole-layer indicator and
compliance tables; and the CLI's own path (``pipe_network`` on the Twin file)
for pipe breaks.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

import twin
from tests.conftest import failing_valve_break
from twin.compliance import plan_compliance
from twin.errors import LayerNotFoundError, UsageError
from twin.network import pipe_break, pipe_network, service_connections
from twin.query.common import GeometryOut
from twin.query.impact import connections_of, network_layers, network_of, pipe_break_impact
from twin.query.index import CityIndex
from twin.query.profile import profile
from twin.zones import indicators_by_zone


def largest_overlap(geometry: shapely.Geometry, zones: gpd.GeoDataFrame) -> str | None:
    """The zone sharing the most area (length for lines, containment for points)."""
    geoms = zones.geometry.to_numpy()
    touching = np.flatnonzero(shapely.intersects(geoms, geometry))
    if not len(touching):
        return None
    if geometry.geom_type.endswith("Point"):
        return str(zones.index[touching[0]])
    parts = shapely.intersection(geoms[touching], geometry)
    size = shapely.area(parts) if geometry.area > 0 else shapely.length(parts)
    return str(zones.index[touching[int(np.argmax(size))]])


def home_of_sensor(point: shapely.Point, buildings: gpd.GeoDataFrame) -> str | None:
    distances = shapely.distance(buildings.geometry.to_numpy(), point)
    best = int(np.argmin(distances))
    return str(buildings.index[best]) if distances[best] <= 30.0 else None


# --------------------------------------------------------------------------- buildings


def test_building_profiles_match_the_layers(
    city: twin.Twin, index: CityIndex, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    buildings = layers["buildings"]
    sensor_home = {
        name: {
            uid: home_of_sensor(p, buildings)
            for uid, p in zip(layers[name].index, layers[name].geometry, strict=True)
        }
        for name in ("sensors", "cameras")
    }
    to_twin = pyproj.Transformer.from_crs("OGC:CRS84", city.crs, always_xy=True)
    rows = np.random.default_rng(1).choice(len(buildings), 12, replace=False)
    for uid in buildings.index[rows]:
        footprint = buildings.geometry.loc[uid]
        card = profile(index, "buildings", uid)
        assert card.feature["id"] == uid
        for role, name in (("parcel", "parcels"), ("grid", "grids"), ("district", "districts")):
            expected = largest_overlap(footprint, layers[name])
            assert card.group(role) == ([] if expected is None else [expected]), role
        on_it = {s for homes in sensor_home.values() for s, home in homes.items() if home == uid}
        assert set(card.group("sensors")) == on_it
        for link in card.service_connections or []:
            pipes = layers[link["pipe_layer"]]
            pipes = pipes[pipes["network"] == link["network"]]
            distances = shapely.distance(pipes.geometry.to_numpy(), footprint)
            if distances.min() <= 50.0:
                assert link["pipe"] == pipes.index[int(np.argmin(distances))]
                assert link["distance_m"] == pytest.approx(distances.min(), abs=1e-3)
            else:
                assert link["pipe"] is None
        assert {c["network"] for c in card.service_connections or []} == {"water", "gas"}
        (access,) = card.road_access or []
        distances = shapely.distance(layers["roads"].geometry.to_numpy(), footprint)
        assert access["road"] == layers["roads"].index[int(np.argmin(distances))]
        assert access["distance_m"] == pytest.approx(distances.min(), abs=1e-3)
        x, y = to_twin.transform(*access["access_point"]["coordinates"])
        road = layers["roads"].geometry.loc[access["road"]]
        assert shapely.distance(road, shapely.Point(x, y)) < 0.01
        assert shapely.distance(footprint, shapely.Point(x, y)) == pytest.approx(
            access["distance_m"], abs=0.01
        )


def test_building_profile_shows_only_visible_layers(index: CityIndex, public: list[str]) -> None:
    card = profile(index, "buildings", "buildings.JZ0000101", layers=public)
    assert card.service_connections == []
    assert {g.layer for g in card.related} <= set(public)
    with pytest.raises(LayerNotFoundError, match="no layer 'water_pipes'"):
        profile(index, "water_pipes", "water_pipes.JS000001", layers=public)
    with pytest.raises(UsageError, match="max_service_m"):
        profile(index, "buildings", "buildings.JZ0000101", max_service_m=-1)


# --------------------------------------------------------------------------- parcels


def test_parcel_profiles_match_whole_layer_tables(
    city: twin.Twin, index: CityIndex, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    parcels, buildings = layers["parcels"], layers["buildings"]
    table = indicators_by_zone(city, "parcels")
    compliance = plan_compliance(parcels, buildings)
    homes = {
        uid: largest_overlap(g, parcels)
        for uid, g in zip(buildings.index, buildings.geometry, strict=True)
    }
    offenders = list(compliance["parcel_uid"].dropna().unique()[:4])
    rows = np.random.default_rng(2).choice(len(parcels), 6, replace=False)
    for uid in [*offenders, *parcels.index[rows]]:
        card = profile(index, "parcels", uid, geometry=False)
        assert set(card.group("buildings")) == {b for b, home in homes.items() if home == uid}
        expected = table.loc[uid].drop("geometry")
        assert card.indicators is not None
        for column, value in expected.items():
            got = card.indicators.get(str(column), 0.0)
            if pd.isna(value):
                assert got is None, column
            else:
                assert got == pytest.approx(float(value), rel=1e-9, abs=1e-9), column
        mine = compliance[(compliance["uid"] == uid) | (compliance["parcel_uid"] == uid)]
        got_rows = {(c["check"], c["uid"], c["measured"]) for c in card.compliance or []}
        assert got_rows == set(zip(mine["check"], mine["uid"], mine["measured"], strict=True))
    assert any(profile(index, "parcels", u).compliance for u in offenders)


def test_sensor_profile_belongs_to_building_and_parcel(
    index: CityIndex, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    sensors = layers["sensors"]
    for uid in sensors.index[:15]:
        point = sensors.geometry.loc[uid]
        card = profile(index, "sensors", uid, geometry=False)
        home = home_of_sensor(point, layers["buildings"])
        assert card.group("building") == ([] if home is None else [home])
        parcel = largest_overlap(point, layers["parcels"])
        assert card.group("parcel") == ([] if parcel is None else [parcel])


# --------------------------------------------------------------------------- impact


@pytest.fixture(scope="module")
def break_case(city: twin.Twin) -> tuple[str, str]:
    """A water pipe whose break closes a few valves, and one of them that fails to close
    and so takes more valves and buildings out (found with the CLI's own path)."""
    return failing_valve_break(city)


def test_pipe_break_equals_the_cli_path(
    city: twin.Twin,
    index: CityIndex,
    layers: dict[str, gpd.GeoDataFrame],
    break_case: tuple[str, str],
) -> None:
    pipe, failed = break_case
    net = pipe_network(city, "water", pipes="water_pipes")
    links = service_connections(city.layer("buildings"), net)
    expected = pipe_break(net, pipe, failed_valves=[failed], connections=links)
    impact = pipe_break_impact(index, pipe, failed_valves=[failed])
    assert impact.result.summary == expected.summary
    assert impact.summary()["extra_valve_uids"] == list(expected.extra_valves.index)
    assert expected.summary["extra_valves"] > 0 and expected.summary["extra_buildings"] > 0
    features = impact.features(index, GeometryOut(index))
    by_result: dict[str, set[str]] = {}
    for feature in features:
        by_result.setdefault(feature["properties"]["result"], set()).add(feature["id"])
    roles = expected.valves_to_close["role"]
    assert by_result["valve_to_close"] == set(roles.index[roles == "close"])
    closed = set(roles.index[roles == "already closed"])
    assert by_result.get("valve_already_closed", set()) == closed
    assert by_result["isolated_pipe"] == set(expected.isolated_pipes.index)
    assert by_result.get("cut_off_pipe", set()) == set(expected.cut_off_pipes.index)
    assert by_result["building"] == set(expected.buildings.index)
    extra = {f["id"] for f in features if f["properties"]["extra"]}
    assert extra == set(expected.extra_valves.index) | set(expected.extra_buildings.index)
    building = next(f for f in features if f["properties"]["result"] == "building")
    footprint = gpd.GeoSeries([layers["buildings"].geometry.loc[building["id"]]], crs=city.crs)
    shape = shapely.geometry.shape(building["geometry"])
    assert shape.equals_exact(footprint.to_crs("OGC:CRS84").iloc[0], tolerance=1e-9)


def test_networks_are_built_once_per_snapshot(city: twin.Twin, index: CityIndex) -> None:
    chosen = network_layers(index)
    assert (chosen.pipes, chosen.valves, chosen.sources) == ("water_pipes", "valves", "sources")
    net = network_of(index, chosen, 0.5)
    assert network_of(index, chosen, 0.5) is net
    assert connections_of(index, chosen, net, 50.0) is connections_of(index, chosen, net, 50.0)
    assert network_of(CityIndex.load(city.path), chosen, 0.5) is not net
    gas = network_layers(index, network="gas")
    assert gas.pipes == "gas_pipes"


def test_pipe_break_needs_every_layer_visible(
    index: CityIndex, public: list[str], break_case: tuple[str, str]
) -> None:
    pipe = break_case[0]
    with pytest.raises(LayerNotFoundError, match="pipe layer"):
        pipe_break_impact(index, pipe, layers=public)
    with pytest.raises(LayerNotFoundError, match="valve layer"):
        pipe_break_impact(index, pipe, layers=[*public, "water_pipes", "sources"])
    with pytest.raises(LayerNotFoundError, match="no layer 'water_pipes'"):
        pipe_break_impact(index, pipe, pipes="water_pipes", layers=public)
    with pytest.raises(UsageError, match="not in the water network"):
        pipe_break_impact(index, "water_pipes.NOPE")
    with pytest.raises(UsageError, match="valve"):
        pipe_break_impact(index, pipe, failed_valves=["valves.NOPE"])
