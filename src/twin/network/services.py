"""Service connections: which pipe of a network serves each building.

Every building joins the nearest pipe of the network within ``max_service_m``
(default 50 m). ``twin build`` stores that relation in the twin
(:meth:`twin.Twin.service_connections`); :func:`building_connections` reads
it when the build is current and computes it (:func:`service_connections`)
when it is not, saying which in the table's ``attrs``. The analyses
(:func:`~twin.network.isolation.pipe_break`,
:func:`~twin.network.criticality.criticality`) take the table, indexed by
building uid with a ``pipe`` column, and group it by pipe once per network
(:func:`prepared`), so a query reads its buildings by slicing.

Examples
--------
>>> links = building_connections(city, net)
>>> links.attrs["service_connections"]
'stored by the last build (relation service_water)'
>>> links["pipe"].str.startswith("water_pipes.").all()
np.True_
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin import settings
from twin.errors import BuildNeeded, BuildNeededError, LayerNotFoundError, UsageError
from twin.network.pipes import FloatArray, IntArray, PipeNetwork
from twin.store import GpkgStore, PostgisStore

if TYPE_CHECKING:
    from twin.model import Twin


class RelatedTwin(Protocol):
    """What :func:`building_connections` needs of a twin: its layers and stored relations."""

    store: GpkgStore | PostgisStore

    @property
    def location(self) -> str: ...

    def layer_names(self, kind: str | None = None) -> list[str]: ...

    def layer(self, name: str) -> gpd.GeoDataFrame: ...

    def service_connections(
        self, network: str, *, buildings: str | None = None, max_service_m: float | None = None
    ) -> pd.DataFrame: ...


__all__ = [
    "Buildings",
    "Connections",
    "building_connections",
    "connections_argument",
    "service_connections",
]

#: Service connections: building uid -> serving pipe uid (a ``pipe`` column, a Series
#: or a mapping), as :func:`building_connections` and :func:`service_connections` give.
Connections = pd.DataFrame | pd.Series | Mapping[Any, Any] | None
#: Deprecated (0.x) name of :data:`Connections`.
Buildings = Connections


def connections_argument(
    connections: Connections, buildings: Connections, *, function: str
) -> Connections:
    """The service connections given as ``connections=`` or, deprecated, ``buildings=``.

    In :mod:`twin.network` ``buildings`` names building features or, on
    :class:`twin.Twin`, a building layer; the table of service connections a
    pipe break or a criticality ranking reads is ``connections``. The old keyword
    still works for now, with a :class:`DeprecationWarning`.

    Examples
    --------
    >>> import warnings
    >>> connections_argument({"b1": "p1"}, None, function="pipe_break")
    {'b1': 'p1'}
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     given = connections_argument(None, {"b1": "p1"}, function="pipe_break")
    >>> given, caught[0].category.__name__
    ({'b1': 'p1'}, 'DeprecationWarning')
    """
    if buildings is None:
        return connections
    if connections is not None:
        raise UsageError(
            f"{function}() got connections= and buildings=: give the service connections "
            "once, as connections= (buildings= is its deprecated name)"
        )
    warnings.warn(
        f"{function}(buildings=…) is deprecated: pass the service connections as connections=",
        DeprecationWarning,
        stacklevel=3,
    )
    return buildings


def service_connections(
    buildings: gpd.GeoDataFrame | Twin,
    net: PipeNetwork,
    *,
    layer: str = "buildings",
    max_service_m: float = settings.SERVICE_DISTANCE_M,
) -> pd.DataFrame:
    """Join every building to the nearest pipe of ``net`` within ``max_service_m``.

    Parameters
    ----------
    buildings : geopandas.GeoDataFrame or twin.Twin
        Building footprints indexed by uid, or a twin to read ``layer`` from.
    net : PipeNetwork
        The network the buildings are served by.
    layer : str, default "buildings"
        The building layer when ``buildings`` is a twin.
    max_service_m : float, default 50
        Buildings farther than this from every pipe get no connection.

    Returns
    -------
    pandas.DataFrame
        Indexed by building uid (connected buildings only): ``pipe`` (uid),
        ``distance_m``, and ``population`` when the buildings carry it.

    Examples
    --------
    >>> links = service_connections(city.layer("buildings"), net)
    >>> bool((links["distance_m"] <= 50).all())
    True
    """
    frame = buildings if isinstance(buildings, gpd.GeoDataFrame) else buildings.layer(layer)
    if frame.crs is not None and net.crs is not None and frame.crs != net.crs:
        frame = frame.to_crs(net.crs)
    tree = shapely.STRtree(net.pipes.geometry.to_numpy())
    if max_service_m < 0:
        raise UsageError(f"max_service_m must be >= 0 metres, not {max_service_m}")
    (src, dst), dist = tree.query_nearest(
        frame.geometry.to_numpy(),
        max_distance=max(max_service_m, 1e-9),  # GEOS wants a positive search radius
        all_matches=False,
        return_distance=True,
    )
    if max_service_m == 0:  # touching only
        keep = dist <= 0
        src, dst, dist = src[keep], dst[keep], dist[keep]
    out = pd.DataFrame(
        {"pipe": net.pipes.index.to_numpy(dtype=object)[dst], "distance_m": dist},
        index=frame.index[src],
    )
    if "population" in frame.columns:
        out["population"] = frame["population"].to_numpy()[src]
    return out


def building_connections(
    city: RelatedTwin,
    net: PipeNetwork,
    *,
    buildings: str = "buildings",
    max_service_m: float = settings.SERVICE_DISTANCE_M,
) -> pd.DataFrame:
    """The service connections of ``net``: stored by the twin's build when current, else computed.

    The stored relation (``service_<network>``, see :meth:`twin.Twin.service_connections`)
    is used when the twin has a build newer than its building and pipe layers, made
    with a service radius of at least ``max_service_m``, and connecting buildings to
    pipes of this network's layer only. Otherwise the connections are computed here,
    the same way, and ``attrs["service_connections"]`` says why.

    Parameters
    ----------
    city : twin.Twin
        The twin ``net`` was built from (:func:`~twin.network.pipes.pipe_network`).
    net : PipeNetwork
        The network.
    buildings : str, default "buildings"
        The building layer.
    max_service_m : float, default 50
        Buildings farther than this from every pipe get no connection.

    Returns
    -------
    pandas.DataFrame
        As :func:`service_connections`: indexed by building uid, ``pipe``,
        ``distance_m`` and ``population`` when the layer has it;
        ``attrs["service_connections"]`` (a note), ``attrs["stored"]`` (bool) and
        ``attrs["service_connections_reason"]`` (why they were computed, a
        :class:`twin.errors.BuildNeeded`, or None when stored).

    Raises
    ------
    LayerNotFoundError
        When the twin has no layer ``buildings``.

    Examples
    --------
    >>> links = building_connections(city, net)
    >>> links.attrs["stored"], links.attrs["service_connections_reason"]
    (True, None)
    >>> wider = building_connections(city, net, max_service_m=80)
    >>> reason = wider.attrs["service_connections_reason"]
    >>> reason.code, reason.parameter, reason.value, reason.built
    ('beyond_reach', 'max_service_m', 80.0, 50.0)
    """
    if buildings not in city.layer_names():
        raise LayerNotFoundError(f"the twin has no layer {buildings!r}")
    reason: BuildNeeded | None = None
    try:
        stored = city.service_connections(
            net.network, buildings=buildings, max_service_m=max_service_m
        )
        foreign = tuple(sorted(set(stored["pipe_layer"]) - {net.pipe_layer}))
        if foreign:
            reason = BuildNeeded("other_pipes", city.location, layers=foreign)
    except BuildNeededError as why:
        reason = why.reason
    if reason is not None:
        links = service_connections(city.layer(buildings), net, max_service_m=max_service_m)
        links.attrs["service_connections"] = f"computed for this analysis: {reason}"
        links.attrs["service_connections_reason"] = reason
        links.attrs["stored"] = False
        return links
    links = stored[["pipe", "distance_m"]].copy()
    population = _population(city, buildings)
    if population is not None:
        links["population"] = population.reindex(links.index).to_numpy()
    links.attrs["service_connections"] = (
        f"stored by the last build (relation service_{net.network})"
    )
    links.attrs["service_connections_reason"] = None
    links.attrs["stored"] = True
    return links


def _population(city: RelatedTwin, layer: str) -> pd.Series | None:
    """The ``population`` column of a building layer by uid, or None when it has none."""
    return city.store.column(layer, "population")


@dataclass
class Services:
    """Buildings grouped by the pipe that serves them (CSR over pipe rows).

    Attributes
    ----------
    uid : pandas.Index
        Building uids, sorted by the row of their pipe.
    pipe_row : ndarray of int
        The row (in ``net.pipes``) of each building's pipe, sorted.
    ptr : ndarray of int
        The buildings of pipe row ``r`` are ``uid[ptr[r]:ptr[r + 1]]``.
    population : ndarray of float or None
        Population (or customers) per building, where the table gives it.
    unknown : int
        Buildings whose pipe is not in the network (left out).
    """

    uid: pd.Index
    pipe_row: IntArray
    ptr: IntArray
    population: FloatArray | None
    unknown: int


def prepared(net: PipeNetwork, connections: Connections) -> Services | None:
    """``connections`` grouped by pipe, cached on ``net`` while the table's content is the same.

    The cache is keyed by content, not by the table object: an in-place edit of
    the table (``links.loc[uid, "pipe"] = …``) gives a new grouping. With pandas'
    copy-on-write (pandas 3) a column keeps its buffer until it is written, so
    the check is a buffer comparison; without it the values are compared.

    Examples
    --------
    >>> links = service_connections(city.layer("buildings"), net)
    >>> before = prepared(net, links)
    >>> prepared(net, links) is before
    True
    >>> links.loc[links.index[0], "pipe"] = links["pipe"].iloc[-1]
    >>> prepared(net, links) is before
    False
    """
    if connections is None:
        return None
    pipe, population = _columns(connections)
    cached = net.cache.get("services")
    if cached is not None and _same(cached[0], pipe) and _same(cached[1], population):
        return cached[2]
    row = net.pipes.index.get_indexer(pipe.to_numpy())
    values = None
    if population is not None:
        values = pd.to_numeric(population, errors="coerce").astype(float).to_numpy()
    known = row >= 0
    order = np.flatnonzero(known)[np.argsort(row[known], kind="stable")]
    services = Services(
        uid=pipe.index.take(order),
        pipe_row=row[order].astype(np.int64),
        ptr=np.searchsorted(row[order], np.arange(len(net.pipes) + 1)).astype(np.int64),
        population=None if values is None else np.nan_to_num(values[order]),
        unknown=int((~known).sum()),
    )
    net.cache["services"] = (pipe, population, services)
    return services


def _columns(connections: Connections) -> tuple[pd.Series, pd.Series | None]:
    """The serving pipe of every building and, where given, its population (or customers)."""
    if isinstance(connections, pd.DataFrame):
        population = next(
            (connections[c] for c in ("population", "customers") if c in connections.columns),
            None,
        )
        return connections["pipe"], population
    if isinstance(connections, pd.Series):
        return connections, None
    return pd.Series(dict(connections or {})), None


_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3 or bool(
    getattr(pd.options.mode, "copy_on_write", False) is True
)


def _same(held: pd.Series | None, current: pd.Series | None) -> bool:
    """Whether ``current`` holds the values ``held`` held when it was cached."""
    if held is None or current is None:
        return held is current
    if len(held) != len(current) or not (
        held.index is current.index or held.index.equals(current.index)
    ):
        return False
    if not _COPY_ON_WRITE:
        return bool(held.equals(current))
    if isinstance(current.array, np.ndarray | pd.arrays.NumpyExtensionArray):
        a, b = held.to_numpy(), current.to_numpy()
        return bool(a.__array_interface__["data"] == b.__array_interface__["data"])
    return held.array is current.array


def buildings_of(services: Services, pipe_rows: IntArray) -> IntArray:
    """Positions (in ``services``) of the buildings served by ``pipe_rows``."""
    return ranges(services.ptr[pipe_rows], services.ptr[pipe_rows + 1])


def ranges(start: IntArray, stop: IntArray) -> IntArray:
    """The integers of every ``[start[i], stop[i])``, one range after the other.

    Examples
    --------
    >>> ranges(np.array([2, 7]), np.array([4, 8])).tolist()
    [2, 3, 7]
    """
    counts = stop - start
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(start - np.cumsum(counts) + counts, counts)
    return (np.arange(total) + offsets).astype(np.int64)
