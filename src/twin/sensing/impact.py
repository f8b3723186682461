"""The impact an event carries, computed by the same library calls as ``twin analyze``.

=================================  ==================================================
event type                         impact
=================================  ==================================================
pressure_drop, pressure_surge,     break of the likeliest water pipe (the one nearest
water_leak                         the sensor): :func:`twin.network.pipe_break` with
                                   the buildings' service connections, then
                                   :func:`twin.network.cascade` (roads over the
                                   isolated pipes close, who loses access) — the
                                   answer of ``twin analyze cascade``
gas_leak                           the same on the gas network, plus the buildings
                                   within ``gas_radius_m`` of the sensor
flooding, road_blocked             closure of the nearest road:
                                   :func:`twin.network.road_closure` — the answer of
                                   ``twin analyze road-closure --close ROAD``
=================================  ==================================================

Networks are built once per engine (the first event of a kind pays for it).
The event grade is raised by the impact: 1,000 people or more affected → at
least 较大, 10,000 or more → at least 重大.

Examples
--------
>>> engine = ImpactEngine(twin.Twin.open("chengdu.twin.gpkg"))  # doctest: +SKIP
>>> engine.pipe_break("water", "water_pipes.JS000123")["valves_to_close"]  # doctest: +SKIP
4
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import shapely

from twin.analyses import Twin
from twin.errors import TwinError, api_wording
from twin.network import (
    PipeNetwork,
    RoadAccess,
    building_connections,
    cascade,
    pipe_break,
    pipe_network,
    road_access,
    road_closure,
    road_network,
    select_facilities,
)

__all__ = ["PIPE_EVENTS", "ROAD_EVENTS", "ImpactEngine", "connections_note", "grade_for"]

PIPE_EVENTS = {
    "pressure_drop": "water",
    "pressure_surge": "water",
    "water_leak": "water",
    "gas_leak": "gas",
}
ROAD_EVENTS = ("flooding", "road_blocked")


def grade_for(people: float | None) -> str | None:
    """The least grade an impact on ``people`` calls for.

    Examples
    --------
    >>> grade_for(1500), grade_for(20000), grade_for(10)
    ('较大', '重大', None)
    """
    if people is None:
        return None
    if people >= 10_000:
        return "重大"
    if people >= 1_000:
        return "较大"
    return None


def connections_note(links: pd.DataFrame) -> str:
    """The service connections' note of a :func:`twin.network.building_connections` table,
    in the words operators read through the API (events are shown there).

    Examples
    --------
    >>> from twin.network import building_connections
    >>> connections_note(building_connections(city, net))
    'stored by the last build (relation service_water)'
    >>> connections_note(building_connections(city, net, max_service_m=80))
    'computed for this analysis: the last build connected buildings within 50 m of a pipe: ask with max_service_m <= 50, or have the twin built again with max_service_m=80'
    """  # noqa: E501
    reason = links.attrs.get("service_connections_reason")
    if reason is None:
        return str(links.attrs["service_connections"])
    return f"computed for this analysis: {api_wording(reason)}"


class ImpactEngine:
    """Runs the impact analyses of events on one twin (networks built on first need).

    Parameters
    ----------
    city : Twin
    roads, buildings, facilities : str
        Layer names, as ``twin analyze`` takes them.
    cascade_distance_m, min_overlap_m : float
        ``twin analyze cascade`` defaults (10 m, 15 m).
    gas_radius_m : float, default 50
        Buildings within this distance of a gas leak are listed.
    """

    def __init__(
        self,
        city: Twin,
        *,
        roads: str = "roads",
        buildings: str = "buildings",
        facilities: str = "facilities",
        cascade_distance_m: float = 10.0,
        min_overlap_m: float = 15.0,
        gas_radius_m: float = 50.0,
    ) -> None:
        self.city = city
        self.roads, self.buildings, self.facilities = roads, buildings, facilities
        self.cascade_distance_m, self.min_overlap_m = cascade_distance_m, min_overlap_m
        self.gas_radius_m = gas_radius_m
        self._nets: dict[str, tuple[PipeNetwork, pd.DataFrame | None]] = {}
        self._access: RoadAccess | None = None

    def _pipes_layer(self, network: str) -> str:
        for info in self.city.layer_infos():
            if info.kind != "pipe":
                continue
            values = self.city.layer(info.name, columns=["network"])["network"]
            if (values == network).any():
                return info.name
        raise TwinError(f"the twin has no {network} pipes")

    def network(self, network: str) -> tuple[PipeNetwork, pd.DataFrame | None]:
        """The pipe network and its buildings' service connections."""
        if network not in self._nets:
            layers = set(self.city.layers)
            net = pipe_network(
                self.city,
                network,
                pipes=self._pipes_layer(network),
                valves="valves" if "valves" in layers else None,
                sources="sources" if "sources" in layers else None,
            )
            links = (
                building_connections(self.city, net, buildings=self.buildings)
                if self.buildings in layers
                else None
            )
            self._nets[network] = (net, links)
        return self._nets[network]

    def access(self) -> RoadAccess:
        """The road network with buildings and facilities linked (``twin analyze`` defaults)."""
        if self._access is None:
            net = road_network(self.city, self.roads)
            chosen = select_facilities(self.city.layer(self.facilities))
            self._access = road_access(net, self.city.layer(self.buildings), chosen)
        return self._access

    def pipe_break(self, network: str, pipe: str) -> dict[str, Any]:
        """A break of ``pipe``: the summary of ``twin analyze cascade``, valve and building uids."""
        net, links = self.network(network)
        broken = pipe_break(net, pipe, connections=links)
        answer: dict[str, Any] = {"analysis": "pipe_break", "network": network, "pipe": pipe}
        layers = set(self.city.layers)
        if {self.roads, self.facilities, self.buildings} <= layers:
            report = cascade(
                broken,
                self.access(),
                distance_m=self.cascade_distance_m,
                min_overlap_m=self.min_overlap_m,
            )
            answer["cascade"] = report.to_dict()
            closed = report.closure.closed if report.closure is not None else None
            answer["roads_closed"] = sorted(set(closed["road"])) if closed is not None else []
        answer["summary"] = dict(broken.summary)
        if links is not None and "service_connections" in answer["summary"]:
            answer["summary"]["service_connections"] = connections_note(links)
        answer["valves_to_close"] = [str(v) for v in broken.valves_to_close.index]
        answer["buildings"] = [str(b) for b in broken.buildings.index]
        people = broken.summary.get("population")
        answer["population"] = None if people is None else float(people)
        answer["grade"] = grade_for(answer["population"])
        return answer

    def road_closure(self, road: str) -> dict[str, Any]:
        """``twin analyze road-closure --close ROAD`` 's summary plus the cut-off buildings."""
        result = road_closure(self.access(), roads=[road])
        summary = result.summary.to_dict()
        lost = result.buildings.index[result.buildings["lost"].to_numpy()]
        return {
            "analysis": "road_closure",
            "road": road,
            "summary": summary,
            "buildings_lost": [str(b) for b in lost],
            "population": summary.get("population_affected"),
            "grade": grade_for(summary.get("population_affected")),
        }

    def buildings_within(self, x: float, y: float, radius_m: float) -> list[str]:
        """Uids of the buildings within ``radius_m`` of a point."""
        frame = self.city.layer(self.buildings, columns=[])
        hits = frame.sindex.query(shapely.Point(x, y), predicate="dwithin", distance=radius_m)
        return sorted(str(u) for u in frame.index[hits])

    def for_event(self, event_type: str, place: dict[str, Any]) -> dict[str, Any] | None:
        """The impact of an event at ``place`` (a :class:`~twin.sensing.locate.Locator` answer)."""
        nearest = place.get("nearest") or {}
        try:
            if event_type in PIPE_EVENTS:
                network = PIPE_EVENTS[event_type]
                pipe = (nearest.get(f"pipe_{network}") or {}).get("uid")
                if pipe is None:
                    return None
                answer = self.pipe_break(network, pipe)
                if network == "gas":
                    near = self.buildings_within(place["x"], place["y"], self.gas_radius_m)
                    answer["buildings_within_radius"] = near
                    answer["radius_m"] = self.gas_radius_m
                return answer
            if event_type in ROAD_EVENTS:
                road = (nearest.get("road") or {}).get("uid")
                return None if road is None else self.road_closure(road)
        except TwinError as exc:
            return {"analysis": "failed", "error": str(exc)}
        return None
