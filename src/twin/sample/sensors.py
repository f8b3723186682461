"""IoT sensors (物联感知设备) and cameras of the synthetic city.

About one sensor per ten buildings: smoke detectors inside buildings, water
pressure loggers on water mains, gas leak detectors in the valve wells
beside gas mains, and water level gauges on the river bank and at low
points of the streets (waterlogging). Cameras stand at intersections, most
of them on arterials. Every device has a 设备编号, a 类型, alarm thresholds
(阈值下限 / 阈值上限, empty where the alarm is one-sided), the 单位 of its
readings, a sensing radius (感知半径, m) and a 名称.

Examples
--------
>>> SENSOR_SHARES["smoke"]
0.35
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from twin.sample.draws import numbered
from twin.sample.layout import ARTERIAL, TWIN_CRS, Layout, Segments
from twin.sample.parcels import bilinear
from twin.sample.roads import LineNames

__all__ = ["SENSOR_FIELDS", "SENSOR_SHARES", "cameras_frame", "sensors_frame"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Share of each sensor type among the sensors (cameras are counted apart).
SENSOR_SHARES = {"smoke": 0.35, "water_pressure": 0.25, "gas_leak": 0.25, "water_level": 0.15}
#: Delivery fields of sensors and cameras, geometry aside.
SENSOR_FIELDS = ("设备编号", "类型", "阈值下限", "阈值上限", "单位", "感知半径", "名称")
SENSORS_PER_BUILDING = 0.1


def sensors_frame(
    layout: Layout,
    river_quads: FloatArray,
    buildings: gpd.GeoDataFrame,
    pipes: dict[str, gpd.GeoDataFrame],
    pipe_names: dict[str, npt.NDArray[np.str_]],
    river_name: str,
    lines: LineNames,
    rng: np.random.Generator,
) -> gpd.GeoDataFrame:
    """Return the sensors layer (twin CRS, delivery field names).

    Parameters
    ----------
    layout : Layout
        The street grid (for low points).
    river_quads : ndarray, shape (m, 4, 2)
        Corners of the river blocks (gauges stand on the banks).
    buildings : geopandas.GeoDataFrame
        The buildings (smoke detectors are inside them).
    pipes : dict
        ``water_pipes`` and ``gas_pipes``.
    pipe_names : dict
        The road name above each pipe, per pipe layer.
    river_name : str
        Name of the river (for gauge names).
    lines : LineNames
        Grid line names (for low points).
    rng : numpy.random.Generator
        The random stream.
    """
    total = max(len(SENSOR_SHARES), round(SENSORS_PER_BUILDING * len(buildings)))
    counts = {k: max(1, round(v * total)) for k, v in SENSOR_SHARES.items()}
    parts = [
        _smoke(buildings, counts["smoke"], rng),
        _on_pipes(
            pipes["water_pipes"],
            pipe_names["water_pipes"],
            counts["water_pressure"],
            "water_pressure",
            rng,
        ),
        _on_pipes(pipes["gas_pipes"], pipe_names["gas_pipes"], counts["gas_leak"], "gas_leak", rng),
        _water_levels(layout, river_quads, river_name, lines, counts["water_level"], rng),
    ]
    frame = pd.concat(parts, ignore_index=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=TWIN_CRS)


def _frame(
    prefix: str,
    kind: str,
    points: npt.NDArray[np.object_],
    low: float,
    high: float,
    unit: str,
    radius: npt.ArrayLike,
    names: npt.ArrayLike,
) -> gpd.GeoDataFrame:
    """One sensor type's rows, with ids ``<prefix>000001``…"""
    n = points.size
    return gpd.GeoDataFrame(
        {
            "设备编号": numbered(prefix, n),
            "类型": kind,
            "阈值下限": np.full(n, low),
            "阈值上限": np.full(n, high),
            "单位": unit,
            "感知半径": np.broadcast_to(np.asarray(radius, dtype=float), (n,)),
            "名称": np.broadcast_to(np.asarray(names, dtype=object), (n,)),
        },
        geometry=points,
        crs=TWIN_CRS,
    )


def _smoke(buildings: gpd.GeoDataFrame, n: int, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Smoke detectors inside buildings (one per chosen building)."""
    pick = np.sort(rng.choice(len(buildings), size=min(n, len(buildings)), replace=False))
    chosen = buildings.iloc[pick]
    points = shapely.point_on_surface(chosen.geometry.to_numpy())
    label = chosen["建筑名称"].fillna(chosen["建筑编码"]).to_numpy(dtype=str)
    return _frame("SM", "smoke", points, np.nan, 0.2, "dB/m", 7.5, np.char.add(label, "烟感"))


def _on_pipes(
    pipes: gpd.GeoDataFrame,
    road_names: npt.NDArray[np.str_],
    n: int,
    kind: str,
    rng: np.random.Generator,
) -> gpd.GeoDataFrame:
    """Pressure loggers on water mains; gas detectors in wells 1.5 m beside gas mains."""
    pick = np.sort(rng.choice(len(pipes), size=min(n, len(pipes)), replace=False))
    lines = pipes.geometry.to_numpy()[pick]
    at = rng.uniform(0.3, 0.7, pick.size)
    points = shapely.line_interpolate_point(lines, at, normalized=True)
    if kind == "water_pressure":
        names = np.char.add(road_names[pick], "压力监测点")
        return _frame("WP", kind, points, 0.16, 0.65, "MPa", 500.0, names)
    ends = shapely.get_coordinates(shapely.boundary(lines)).reshape(-1, 2, 2)
    along = ends[:, 1] - ends[:, 0]
    normal = np.stack([-along[:, 1], along[:, 0]], axis=1) / np.linalg.norm(along, axis=1)[:, None]
    side = np.where(rng.random(pick.size) < 0.5, 1.5, -1.5)
    xy = shapely.get_coordinates(points) + side[:, None] * normal
    names = np.char.add(road_names[pick], "燃气监测点")
    return _frame("GL", kind, shapely.points(xy), np.nan, 20.0, "%LEL", 10.0, names)


def _water_levels(
    layout: Layout,
    river_quads: FloatArray,
    river_name: str,
    lines: LineNames,
    n: int,
    rng: np.random.Generator,
) -> gpd.GeoDataFrame:
    """River gauges on the banks (60 %) and waterlogging gauges at street low points."""
    n_river = max(1, round(0.6 * n)) if river_quads.size else 0
    q = river_quads[rng.integers(0, river_quads.shape[0], n_river)] if n_river else river_quads
    s = rng.uniform(0.1, 0.9, n_river)
    t = np.where(rng.random(n_river) < 0.5, 0.22, 0.78)
    river = _frame(
        "WL",
        "water_level",
        shapely.points(bilinear(q, s, t)),
        0.5,
        4.5,
        "m",
        100.0,
        np.char.add(f"{river_name}河水位站", np.arange(1, n_river + 1).astype(str)),
    )
    n_low = n - n_river
    i = rng.integers(1, layout.nx, n_low)
    j = rng.integers(1, layout.ny, n_low)
    xy = layout.nodes[i, j] + rng.uniform(-3.0, 3.0, (n_low, 2))
    names = np.char.add(np.char.add(lines.vertical[i], "与"), lines.horizontal[j])
    low = _frame(
        "WL",
        "water_level",
        shapely.points(xy),
        np.nan,
        0.15,
        "m",
        30.0,
        np.char.add(names, "路口积水点"),
    )
    frame = pd.concat([river, low], ignore_index=True)
    frame["设备编号"] = numbered("WL", len(frame))
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=TWIN_CRS)


def cameras_frame(
    layout: Layout, seg: Segments, lines: LineNames, rng: np.random.Generator
) -> gpd.GeoDataFrame:
    """Cameras at half the arterial intersections and a few others, on a corner."""
    n_nodes = (layout.nx + 1) * (layout.ny + 1)
    major = np.zeros(n_nodes, dtype=bool)
    big = seg.road_class <= ARTERIAL
    major[seg.a[big]] = True
    major[seg.b[big]] = True
    used = np.zeros(n_nodes, dtype=bool)
    used[seg.a] = True
    used[seg.b] = True
    keep = used & (rng.random(n_nodes) < np.where(major, 0.5, 0.08))
    node = np.flatnonzero(keep)
    i, j = node // (layout.ny + 1), node % (layout.ny + 1)
    corner = rng.choice([-1.0, 1.0], (node.size, 2)) * 8.0
    xy = layout.nodes.reshape(-1, 2)[node] + corner
    names = np.char.add(np.char.add(lines.vertical[i], "路与"), lines.horizontal[j])
    radius = np.round(rng.uniform(50.0, 80.0, node.size))
    cams = _frame(
        "CAM",
        "camera",
        shapely.points(xy),
        np.nan,
        np.nan,
        "",
        radius,
        np.char.add(names, "路路口监控"),
    )
    cams["单位"] = None
    return cams
