"""Utility networks: topology, isolation segments, pipe breaks, traces and checks.

Examples
--------
>>> import twin
>>> from twin.network import pipe_network, pipe_break
>>> net = pipe_network(twin.Twin.open("city.gpkg"), "water")  # doctest: +SKIP
>>> pipe_break(net, "JS000123").summary["valves_to_close"]  # doctest: +SKIP
4
"""

from twin.network.check import ISSUES, NetworkReport, check_network
from twin.network.gravity import Trace, flow_direction, trace_downstream, trace_upstream
from twin.network.isolation import (
    BreakResult,
    Segments,
    criticality,
    isolation_segments,
    pipe_break,
)
from twin.network.pipes import (
    PipeNetwork,
    network_from_frames,
    pipe_network,
    service_connections,
)

__all__ = [
    "ISSUES",
    "BreakResult",
    "NetworkReport",
    "PipeNetwork",
    "Segments",
    "Trace",
    "check_network",
    "criticality",
    "flow_direction",
    "isolation_segments",
    "network_from_frames",
    "pipe_break",
    "pipe_network",
    "service_connections",
    "trace_downstream",
    "trace_upstream",
]
