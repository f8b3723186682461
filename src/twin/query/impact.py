"""Impact analyses on a snapshot: the networks built once, the answers as GeoJSON features.

The pipe network of a snapshot is built by the very function the CLI uses
(:func:`twin.network.pipe_network`, reading the snapshot's frames instead of
the file), once per snapshot and set of layers, and so are the buildings'
service connections (:func:`twin.network.service_connections`). A break is
then :func:`twin.network.pipe_break`: the same answer as ``twin analyze
pipe-break``, turned into GeoJSON features with a ``result`` property
(``valve_to_close``, ``valve_already_closed``, ``isolated_pipe``,
``cut_off_pipe``, ``building``).

Every layer an analysis reads must be visible to the caller: a hidden valve
layer is not silently skipped (the answer would be wrong), it does not exist.

Examples
--------
>>> from twin.query.impact import pipe_break_impact
>>> impact = pipe_break_impact(index, "water_pipes.JS000010")
>>> same = city.pipe_break("water_pipes.JS000010").summary
>>> impact.result.summary.valves_to_close == same.valves_to_close
True
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from twin import settings
from twin.errors import LayerNotFoundError, UsageError
from twin.network import BreakResult, PipeNetwork, pipe_break, pipe_network, service_connections
from twin.query.common import GeometryOut, derived, json_value, visible_layer
from twin.query.index import CityIndex
from twin.query.statistics import VisibleTwin

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = ["BreakImpact", "NetworkLayers", "network_layers", "pipe_break_impact"]


@dataclass(frozen=True)
class NetworkLayers:
    """The layers one network analysis reads (None: that role has no layer)."""

    network: str
    pipes: str
    valves: str | None
    sources: str | None
    buildings: str | None
    pumps: str | None = None

    @property
    def names(self) -> list[str]:
        roles = (self.pipes, self.valves, self.sources, self.buildings, self.pumps)
        return [n for n in roles if n]


def only_visible_layer(
    index: CityIndex, kind: str, layers: Collection[str] | None, network: str | None = None
) -> str | None:
    """The one visible layer of ``kind`` (holding ``network``, for pipes); None when none.

    A layer of the kind that exists but is hidden from the caller is not skipped
    (the answer would be wrong without it): :class:`LayerNotFoundError`.
    """
    names = [
        item.name
        for item in index
        if item.kind == kind
        and (
            network is None
            or "network" not in item.frame.columns
            or bool((item.frame["network"] == network).any())
        )
    ]
    shown = [n for n in names if layers is None or n in layers]
    if names and not shown:
        raise LayerNotFoundError(
            f"this analysis needs a {kind} layer, and none is available to this caller"
        )
    if len(shown) > 1:
        raise UsageError(f"several {kind} layers ({', '.join(shown)}): name the one to use")
    return shown[0] if shown else None


def pipe_layer_of(
    index: CityIndex, pipe: str, layers: Collection[str] | None = None
) -> tuple[str | None, str | None]:
    """The visible pipe layer a uid names and the pipe's network (None, None: not a pipe uid)."""
    name = pipe.partition(".")[0]
    if name not in index.layers or (layers is not None and name not in layers):
        return None, None
    item = index.layer(name)
    if item.kind != "pipe":
        return None, None
    if "network" not in item.frame.columns or pipe not in item.frame.index:
        return name, None
    value = item.frame.at[pipe, "network"]
    return name, (str(value) if isinstance(value, str) and value else None)


def network_layers(
    index: CityIndex,
    *,
    network: str = "water",
    pipes: str | None = None,
    valves: str | None = None,
    sources: str | None = None,
    buildings: str | None = None,
    layers: Collection[str] | None = None,
) -> NetworkLayers:
    """Resolve the layers of a network analysis: named ones must be visible; unnamed
    ones are the only visible layer of their kind (pipes: holding ``network``)."""
    for name in (pipes, valves, sources, buildings):
        if name:
            visible_layer(index, name, layers)
    pipe_layer = pipes or only_visible_layer(index, "pipe", layers, network)
    if pipe_layer is None:
        raise UsageError(f"no pipe layer holds the {network} network: name one with pipes=")
    return NetworkLayers(
        network=network,
        pipes=pipe_layer,
        valves=valves or only_visible_layer(index, "valve", layers),
        sources=sources or only_visible_layer(index, "source", layers),
        buildings=buildings or only_visible_layer(index, "building", layers),
        pumps=only_visible_layer(index, "pump", layers),
    )


def network_of(index: CityIndex, chosen: NetworkLayers, snap_tolerance_m: float) -> PipeNetwork:
    """The snapshot's :class:`~twin.network.PipeNetwork` (built once per snapshot and key)."""
    if not (math.isfinite(snap_tolerance_m) and 0 <= snap_tolerance_m <= settings.MAX_TOLERANCE_M):
        raise UsageError(f"snap tolerance {snap_tolerance_m}: give metres from 0 to 50")
    key = (
        "pipe_network",
        chosen.network,
        chosen.pipes,
        chosen.valves,
        chosen.sources,
        chosen.pumps,
    )

    def build() -> PipeNetwork:
        view = cast("Twin", VisibleTwin(index, chosen.names))
        return pipe_network(
            view,
            chosen.network,
            pipes=chosen.pipes,
            valves=chosen.valves,
            sources=chosen.sources,
            pumps=chosen.pumps,
            snap_tolerance_m=snap_tolerance_m,
        )

    return derived(index, (*key, float(snap_tolerance_m)), build)


def connections_of(
    index: CityIndex, chosen: NetworkLayers, net: PipeNetwork, max_service_m: float
) -> pd.DataFrame | None:
    """Building → serving pipe for the network (once per snapshot and key); None without
    a building layer."""
    if chosen.buildings is None:
        return None
    if not (math.isfinite(max_service_m) and 0 <= max_service_m <= settings.MAX_SERVICE_DISTANCE_M):
        raise UsageError(f"max_service_m {max_service_m}: give metres from 0 to 5000")
    frame = index.layer(chosen.buildings).frame
    key = ("connections", id(net), chosen.buildings, float(max_service_m))
    return derived(index, key, lambda: service_connections(frame, net, max_service_m=max_service_m))


@dataclass
class BreakImpact:
    """A pipe break on a snapshot: the library's :class:`~twin.network.BreakResult` and
    the layers it used."""

    result: BreakResult
    layers: NetworkLayers

    def summary(self) -> dict[str, Any]:
        """The CLI's ``--json`` summary plus the extra valves and the layers used."""
        return {
            **self.result.summary,
            "extra_valve_uids": [str(v) for v in self.result.extra_valves.index],
            "layers": {
                "pipes": self.layers.pipes,
                "valves": self.layers.valves,
                "sources": self.layers.sources,
                "buildings": self.layers.buildings,
            },
        }

    def features(self, index: CityIndex, out: GeometryOut | None) -> list[dict[str, Any]]:
        """Every valve, pipe and building of the answer as a GeoJSON Feature."""
        r = self.result
        extra_valves = set(map(str, r.extra_valves.index))
        extra_buildings = set(map(str, r.extra_buildings.index))
        roles = r.valves_to_close["role"].astype(str)
        found = impact_features(
            r.valves_to_close,
            [
                "valve_to_close" if role == "close" else "valve_already_closed"
                for role in roles.tolist()
            ],
            self.layers.valves,
            out,
            extra_valves,
        )
        found += impact_features(r.isolated_pipes, "isolated_pipe", self.layers.pipes, out, set())
        found += impact_features(r.cut_off_pipes, "cut_off_pipe", self.layers.pipes, out, set())
        if self.layers.buildings is not None and len(r.buildings):
            footprints = index.layer(self.layers.buildings).frame
            rows = footprints.index.get_indexer(r.buildings.index)
            table = r.buildings.assign(geometry=footprints.geometry.array[rows])
            found += impact_features(table, "building", self.layers.buildings, out, extra_buildings)
        return found


def impact_features(
    table: pd.DataFrame,
    result: str | list[str],
    layer: str | None,
    out: GeometryOut | None,
    extra: set[str] | None = None,
) -> list[dict[str, Any]]:
    """GeoJSON Features of ``table`` (indexed by uid, with a geometry column): ``result``,
    ``layer`` and (when ``extra`` is given) whether the uid is in it, then the columns."""
    if not len(table):
        return []
    results = [result] * len(table) if isinstance(result, str) else result
    geometries = (
        out.many(np.asarray(table["geometry"].array, dtype=object))
        if out is not None
        else [None] * len(table)
    )
    names = [c for c in table.columns if c != "geometry"]
    columns = [table[c].astype(object).to_numpy() for c in names]
    features = []
    for i, uid in enumerate(map(str, table.index)):
        props: dict[str, Any] = {"result": results[i], "layer": layer}
        if extra is not None:
            props["extra"] = uid in extra
        props.update({n: json_value(col[i]) for n, col in zip(names, columns, strict=True)})
        features.append(
            {"type": "Feature", "id": uid, "geometry": geometries[i], "properties": props}
        )
    return features


def pipe_break_impact(
    index: CityIndex,
    pipe: str,
    *,
    failed_valves: Iterable[str] = (),
    network: str | None = None,
    pipes: str | None = None,
    valves: str | None = None,
    sources: str | None = None,
    buildings: str | None = None,
    max_service_m: float = settings.SERVICE_DISTANCE_M,
    snap_tolerance_m: float = settings.TOLERANCE_M,
    layers: Collection[str] | None = None,
) -> BreakImpact:
    """A break on ``pipe``: valves to close, pipes and buildings shut off; and with failed valves.

    Parameters
    ----------
    index : CityIndex
        The twin snapshot.
    pipe : str
        The broken pipe's uid.
    failed_valves : iterable of str
        Valves that will not close.
    network : str, optional
        The network (``network`` value of the pipes); default: the pipe's own,
        else water.
    pipes, valves, sources, buildings : str, optional
        Layer names; by default the only visible layer of the kind (pipes: the
        layer the uid names, else the one holding ``network``; no valve, source
        or building layer is fine).
    max_service_m : float, default 50
        Buildings join the nearest pipe within this distance.
    snap_tolerance_m : float, default 0.5
        Pipe ends, valves and sources closer than this are joined.
    layers : collection of str, optional
        The layers the caller may read (None: all); every layer used must be one.

    Returns
    -------
    BreakImpact
    """
    of_uid, of_pipe = pipe_layer_of(index, pipe, layers)
    if pipes is None and (network is None or network == of_pipe):
        pipes = of_uid
    network = network or of_pipe or "water"
    chosen = network_layers(
        index,
        network=network,
        pipes=pipes,
        valves=valves,
        sources=sources,
        buildings=buildings,
        layers=layers,
    )
    net = network_of(index, chosen, snap_tolerance_m)
    links = connections_of(index, chosen, net, max_service_m)
    result = pipe_break(net, pipe, failed_valves=list(failed_valves), connections=links)
    return BreakImpact(result, chosen)
