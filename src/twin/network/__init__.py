"""Utility and road networks: topology, isolation segments, pipe breaks, traces and checks;
road access, service areas, closures and the burst-to-road cascade.

Constants: ``DEFAULT_SPEEDS`` (speeds by road class, a :class:`SpeedTable`),
``ISSUES`` and ``ROAD_ISSUES`` (the kinds of issue the pipe and road checks report).

Examples
--------
>>> import twin
>>> city = twin.Twin.open(sample_twin_path)
>>> r = city.pipe_break("water_pipes.JS000010")
>>> r.summary.network
'water'
>>> from twin.network import pipe_network, pipe_break
>>> net = pipe_network(city, "water", pipes="water_pipes")
>>> pipe_break(net, "water_pipes.JS000010").summary.valves_to_close == r.summary.valves_to_close
True
"""

from twin.network.access import (
    AccessPoints,
    RoadAccess,
    access_points,
    road_access,
    select_facilities,
)
from twin.network.cascade import CascadeResult, cascade
from twin.network.check import ISSUES, NetworkReport, check_network
from twin.network.closures import ClosureResult, RoadCriticality, road_closure, road_criticality
from twin.network.criticality import Criticality, criticality
from twin.network.gravity import (
    Trace,
    TraceSummary,
    flow_direction,
    trace_downstream,
    trace_upstream,
)
from twin.network.isolation import BreakResult, Segments, isolation_segments, pipe_break
from twin.network.pipes import PipeNetwork, network_from_frames, pipe_network
from twin.network.road_check import ROAD_ISSUES, RoadReport, check_roads
from twin.network.roads import RoadNetwork, road_network, road_network_from_frame
from twin.network.routing import Route, ServiceAreas, route, service_areas
from twin.network.services import building_connections, service_connections
from twin.network.speeds import DEFAULT_SPEEDS, SpeedTable, read_speeds

__all__ = [
    "DEFAULT_SPEEDS",
    "ISSUES",
    "ROAD_ISSUES",
    "AccessPoints",
    "BreakResult",
    "CascadeResult",
    "ClosureResult",
    "Criticality",
    "NetworkReport",
    "PipeNetwork",
    "RoadAccess",
    "RoadCriticality",
    "RoadNetwork",
    "RoadReport",
    "Route",
    "Segments",
    "ServiceAreas",
    "SpeedTable",
    "Trace",
    "TraceSummary",
    "access_points",
    "building_connections",
    "cascade",
    "check_network",
    "check_roads",
    "criticality",
    "flow_direction",
    "isolation_segments",
    "network_from_frames",
    "pipe_break",
    "pipe_network",
    "read_speeds",
    "road_access",
    "road_closure",
    "road_criticality",
    "road_network",
    "road_network_from_frame",
    "route",
    "select_facilities",
    "service_areas",
    "service_connections",
    "trace_downstream",
    "trace_upstream",
]
