"""Criticality: what isolating each segment takes out, ranked.

Reads the depth-first search of the segment graph that
:mod:`twin.network.isolation` keeps for every network: the segments a
segment cuts off when it is isolated are the DFS subtrees it separates, and
their weights (pipes, length, buildings, population) are differences of
prefix sums over the DFS order, so every segment costs about as much as one.

Examples
--------
>>> from twin.network import building_connections
>>> ranking = criticality(net, connections=building_connections(city, net))
>>> top = ranking.sort_values("rank").iloc[0]
>>> bool(top["total_buildings"] >= ranking["total_buildings"].iloc[1:].min())
True
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from twin.network.isolation import SegmentModel, SegmentTree, isolation_segments, query_model
from twin.network.pipes import FloatArray, PipeNetwork
from twin.network.services import Connections, Services, connections_argument, prepared
from twin.results import Ranking

__all__ = ["Criticality", "criticality"]


class Criticality(Ranking):
    """The isolation segments ranked by :func:`criticality` (a GeoDataFrame).

    ``summary``: segments ranked (``rows``), the most critical one (``top``) and
    the buildings its isolation takes out (``top_buildings``).

    Examples
    --------
    >>> ranking = criticality(net)
    >>> s = ranking.summary
    >>> s.rows == len(ranking), int(ranking.loc[s.top, "rank"]), list(ranking.tables())
    (True, 1, ['criticality'])
    """

    _harm = "total_buildings"
    _table_name = "criticality"


def criticality(
    net: PipeNetwork, *, connections: Connections = None, buildings: Connections = None
) -> Criticality:
    """What isolating each segment takes out, ranked: the segment and what it cuts off.

    One depth-first search over the segment graph rooted at the sources finds,
    for every segment, the segments that lose their last path to a source
    when it is isolated (the DFS subtrees it separates as an articulation
    point), so all segments cost about as much as one.

    Parameters
    ----------
    net : PipeNetwork
    connections : DataFrame, Series or mapping, optional
        The service connections (building uid -> serving pipe uid), as for
        :func:`~twin.network.isolation.pipe_break`.
    buildings : DataFrame, Series or mapping, optional
        Deprecated name of ``connections`` (0.x; warns).

    Returns
    -------
    Criticality
        A GeoDataFrame indexed by segment: ``pipes``, ``length_m``, ``buildings`` (and
        ``population``) of the segment itself, the same with ``cut_off_``
        for the segments it cuts off, ``total_pipes``, ``total_length_m``,
        ``total_buildings`` and ``rank`` (1 = most critical, by buildings
        then length); geometry the segment's pipes. Export it as a layer.
        ``attrs["service_connections"]`` carries the note of ``connections``.

    Examples
    --------
    >>> ranking = criticality(net)
    >>> int(ranking["rank"].min()), len(ranking) == len(isolation_segments(net).table)
    (1, True)
    """
    connections = connections_argument(connections, buildings, function="criticality")
    model, tree = query_model(net)
    segs = isolation_segments(net)
    weights = _segment_weights(net, model, prepared(net, connections))
    cut = _cut_off_weights(model, tree, weights)
    table = gpd.GeoDataFrame(geometry=segs.table.geometry, crs=net.crs)
    names = list(weights.columns)
    for i, name in enumerate(names):
        table[name] = weights[name].to_numpy()
        table[f"cut_off_{name}"] = cut[:, i]
        table[f"total_{name}"] = weights[name].to_numpy() + cut[:, i]
    table["has_source"] = model.supplied
    order = np.lexsort((-table["total_length_m"].to_numpy(), -table["total_buildings"].to_numpy()))
    rank = np.empty(len(table), dtype=np.int64)
    rank[order] = np.arange(1, len(table) + 1)
    table["rank"] = rank
    if isinstance(connections, pd.DataFrame) and "service_connections" in connections.attrs:
        table.attrs["service_connections"] = connections.attrs["service_connections"]
    return Criticality(table)


def _segment_weights(
    net: PipeNetwork, model: SegmentModel, services: Services | None
) -> pd.DataFrame:
    k = model.n_seg
    is_pipe = net.piece_pipe >= 0
    columns = {
        "pipes": np.bincount(model.pipe_seg, minlength=k).astype(float),
        "length_m": np.bincount(
            model.piece_seg[is_pipe], weights=net.piece_length_m[is_pipe], minlength=k
        ),
        "buildings": np.zeros(k),
    }
    if services is not None:
        seg = model.pipe_seg[services.pipe_row]
        columns["buildings"] = np.bincount(seg, minlength=k).astype(float)
        if services.population is not None:
            columns["population"] = np.bincount(seg, weights=services.population, minlength=k)
    return pd.DataFrame(columns)


def _cut_off_weights(model: SegmentModel, tree: SegmentTree, weights: pd.DataFrame) -> FloatArray:
    """For every segment, the summed weights of the segments its isolation cuts off."""
    k = model.n_seg
    w = np.vstack([weights.to_numpy(), np.zeros((1, weights.shape[1]))])
    prefix = np.vstack([np.zeros((1, w.shape[1])), np.cumsum(w[tree.order], axis=0)])
    first = tree.disc[tree.sep]
    below = prefix[first + tree.size[tree.sep]] - prefix[first]  # each separated subtree
    below = np.maximum(below, 0.0)  # weights are >= 0: no rounding below zero
    cut = np.zeros_like(w)
    np.add.at(cut, tree.parent[tree.sep], below)
    return cut[:k]
