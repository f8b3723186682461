"""A day of sensor readings for a twin's sensors, with planted incidents.

Every 5 minutes each sensor reports its default property with a little
noise around a normal level. Four incidents are planted:

``pressure_drop``
    a cluster on one water main: the pressure logger with the most other
    loggers within 400 m drops to about 0.08 MPa at 09:00 (local time), its (at
    most 3) nearest neighbours follow 5 minutes later to about 0.12 MPa; back at 11:00.
``gas_leak``
    one gas detector reads 35 %LEL from 13:20 to 14:00.
``offline``
    one smoke detector stops reporting at 15:00.
``flooding``
    the street waterlogging gauge (threshold 0.15 m) nearest the centre reads
    0.40 m from 18:00 to 20:00 (a flooded underpass).

Times are UTC in the file; the day is 2026-05-18 in China Standard Time.

Examples
--------
>>> frame, incidents = day_of_readings(twin.Twin.open("chengdu.twin.gpkg"))  # doctest: +SKIP
>>> sorted(incidents)  # doctest: +SKIP
['flooding', 'gas_leak', 'offline', 'pressure_drop']
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import shapely

from twin.model import Twin
from twin.sensing.sensors import SensorRegistry

__all__ = ["DAY", "NORMAL", "day_of_readings"]

DAY = pd.Timestamp("2026-05-18T00:00:00+08:00").tz_convert("UTC")
STEP = pd.Timedelta(minutes=5)
CLUSTER_M = 400.0
MAX_NEIGHBOURS = 3
#: Normal level and noise of each sensor type.
NORMAL = {
    "water_pressure": (0.35, 0.01),
    "gas_leak": (1.0, 0.3),
    "water_level": (0.02, 0.005),
    "smoke": (0.02, 0.005),
}


def _at(hh: int, mm: int = 0) -> pd.Timestamp:
    return DAY + pd.Timedelta(hours=hh, minutes=mm)


def day_of_readings(city: Twin, *, seed: int = 7) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The day's readings (``sensor, time, property, value``) and the planted incidents.

    ``sensor`` holds the delivery id (the part of the uid after the layer name).
    """
    rng = np.random.default_rng(seed)
    registry = SensorRegistry.from_twin(city)
    sensors = registry.frame[registry.frame["sensor_type"].isin(list(NORMAL))]
    times = pd.date_range(DAY, periods=288, freq=STEP)
    n, m = len(sensors), len(times)
    level = np.array([NORMAL[t][0] for t in sensors["sensor_type"]])
    noise = np.array([NORMAL[t][1] for t in sensors["sensor_type"]])
    values = level[:, None] + rng.normal(0.0, 1.0, (n, m)) * noise[:, None]
    river = (sensors["sensor_type"] == "water_level") & (sensors["threshold_high"] > 1)
    values[river.to_numpy()] += 1.98  # river gauges read about 2 m
    values = np.clip(values, 0.0, None)
    keep = np.ones((n, m), dtype=bool)
    incidents: dict[str, Any] = {}
    position = {uid: i for i, uid in enumerate(sensors.index)}

    def during(start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
        return np.asarray((times >= start) & (times < end))

    # pressure-drop cluster
    wp = sensors[sensors["sensor_type"] == "water_pressure"]
    xy = shapely.get_coordinates(wp.geometry.to_numpy())
    dist = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    near = (dist < CLUSTER_M).sum(axis=1) - 1
    centre = int(np.argmax(near))
    order = np.argsort(dist[centre], kind="stable")[1 : 1 + MAX_NEIGHBOURS]
    cluster = [str(wp.index[i]) for i in order if dist[centre, i] < CLUSTER_M]
    epicentre = str(wp.index[centre])
    values[position[epicentre], during(_at(9), _at(11))] = 0.08 + rng.normal(0, 0.005, 24)
    for uid in cluster:
        values[position[uid], during(_at(9, 5), _at(11))] = 0.12 + rng.normal(0, 0.005, 23)
    incidents["pressure_drop"] = {
        "sensor": epicentre,
        "neighbours": cluster,
        "start": _at(9).isoformat(),
    }
    # gas leak
    gas = sensors[sensors["sensor_type"] == "gas_leak"]
    leak = str(gas.index[len(gas) // 2])
    values[position[leak], during(_at(13, 20), _at(14))] = 35.0
    incidents["gas_leak"] = {"sensor": leak, "start": _at(13, 20).isoformat()}
    # offline smoke detector
    smoke = sensors[sensors["sensor_type"] == "smoke"]
    silent = str(smoke.index[len(smoke) // 3])
    keep[position[silent], during(_at(15), _at(24))] = False
    incidents["offline"] = {"sensor": silent, "last": (_at(15) - STEP).isoformat()}
    # flooded underpass
    street = sensors[(sensors["sensor_type"] == "water_level") & ~river]
    centre_xy = np.asarray(
        shapely.centroid(shapely.union_all(sensors.geometry.to_numpy())).coords[0]
    )
    gauge_xy = shapely.get_coordinates(street.geometry.to_numpy())
    flooded = str(street.index[int(np.argmin(np.hypot(*(gauge_xy - centre_xy).T)))])
    values[position[flooded], during(_at(18), _at(20))] = 0.40
    incidents["flooding"] = {"sensor": flooded, "start": _at(18).isoformat()}

    ids = sensors.index.str.split(".", n=1).str[-1].to_numpy()
    frame = pd.DataFrame(
        {
            "sensor": np.repeat(ids, m),
            "time": np.tile(times.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(), n),
            "property": np.repeat(sensors["property"].to_numpy(), m),
            "value": np.round(values.ravel(), 4),
        }
    )[keep.ravel()]
    frame = frame.sort_values(["time", "sensor"], kind="stable").reset_index(drop=True)
    return frame, incidents
