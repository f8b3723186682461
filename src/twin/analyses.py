"""The common analyses as one call on the twin (osmnx style).

:class:`TwinAnalyses` is mixed into :class:`twin.Twin`: ``city.pipe_break(uid)``,
``city.road_closure(...)``, ``city.cascade(uid)``, ``city.service_area()``,
``city.route(a, b)``, ``city.indicators(by="grid")``, ``city.check()``,
``city.pipe_network(...)``, ``city.road_network(...)``.

A uid names its layer (``water_pipes.JS000010`` lives in ``water_pipes``), so
the pipe layer and its network come from the uid; the valve, source, pump,
building, road and facility layers default to the twin's only layer of that
kind. The same keyword names everywhere: ``failed_valves``, ``max_service_m``,
``tolerance_m``, ``max_time_s``. Networks and service connections are built once
per twin file version (a re-import makes new ones), never per call.

Option types: ``Weight`` (``"time"`` or ``"length"``), ``Direction``
(``"from_facility"`` or ``"to_facility"``) and ``Place`` (a uid, an ``(x, y)``
pair or a shapely geometry).

Examples
--------
>>> r = city.pipe_break("water_pipes.JS000010")
>>> r.summary.network, r.summary.pipe
('water', 'water_pipes.JS000010')
>>> city.indicators(by="grid").index.name
'uid'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import shapely

from twin import model, settings
from twin.errors import LayerNotFoundError, UsageError
from twin.settings import Direction, Weight

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

    from twin.build import BuildReport
    from twin.imports import Progress
    from twin.network import (
        BreakResult,
        CascadeResult,
        ClosureResult,
        PipeNetwork,
        RoadAccess,
        RoadNetwork,
        Route,
        ServiceAreas,
        SpeedTable,
    )
    from twin.store import GpkgStore, PostgisStore

__all__ = ["Direction", "Place", "Twin", "TwinAnalyses", "Weight", "layer_of_uid"]

#: A place: a feature uid (``facilities.YJ0001``), an ``(x, y)`` pair in the twin
#: CRS or a shapely geometry.
Place: TypeAlias = str | tuple[float, float] | shapely.Geometry

_T = TypeVar("_T")


def layer_of_uid(uid: str) -> str:
    """The layer a uid names: the part before the first dot.

    Examples
    --------
    >>> layer_of_uid("gas_pipes.RQ000010")
    'gas_pipes'
    """
    layer, dot, rest = str(uid).partition(".")
    if not dot or not layer or not rest:
        raise UsageError(f"{uid!r} is not a feature uid: uids read layer.id, e.g. water_pipes.JS1")
    return layer


class TwinAnalyses:
    """One-call analyses on a twin (mixed into :class:`twin.Twin`).

    Examples
    --------
    >>> area = city.service_area(where="poi_type=消防站", max_time_s=300)
    >>> area.summary.facilities >= 1
    True
    """

    store: GpkgStore | PostgisStore

    # the Twin methods these rely on
    layer: Callable[..., gpd.GeoDataFrame]
    layer_names: Callable[..., list[str]]
    feature: Callable[..., pd.Series]
    info: Callable[..., Any]
    if TYPE_CHECKING:

        @property
        def location(self) -> str: ...

    # -- caching ------------------------------------------------------------
    def _cached(self, key: tuple[Any, ...], build: Callable[[], _T]) -> _T:
        """``build()`` once per key and twin file version (content-keyed, not identity)."""
        version = self.store.version()
        held: tuple[Any, dict[tuple[Any, ...], Any]] | None = self.__dict__.get("_analysis_cache")
        if held is None or held[0] != version:
            held = (version, {})
            self.__dict__["_analysis_cache"] = held
        cache = held[1]
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def _only_layer(self, kind: str, given: str | None, *, required: bool) -> str | None:
        """``given``, or the twin's only layer of ``kind`` (None when none and not required)."""
        if given is not None:
            if given not in self.layer_names():
                raise LayerNotFoundError(f"the twin has no layer {given!r}")
            return given
        names = self.layer_names(kind)
        if len(names) == 1:
            return names[0]
        if not names and not required:
            return None
        found = ", ".join(names) if names else "none"
        raise UsageError(f"name the {kind} layer to use ({kind} layers: {found})")

    def pipe_layer_of(self, pipe: str) -> tuple[str, str]:
        """The layer and the network of a pipe uid.

        Examples
        --------
        >>> city.pipe_layer_of("water_pipes.JS000010")
        ('water_pipes', 'water')
        """
        layer = layer_of_uid(pipe)
        if layer not in self.layer_names():
            raise UsageError(f"pipe {pipe!r}: the twin has no layer {layer!r}")
        if self.info(layer).kind != "pipe":
            raise UsageError(f"{pipe!r} is in layer {layer}, which holds no pipes")
        network = self.feature(layer, pipe).get("network")
        if not isinstance(network, str) or not network:
            raise UsageError(f"pipe {pipe!r} has no network value (water, gas…)")
        return layer, network

    # -- relations -----------------------------------------------------------
    def build(
        self,
        *,
        max_distance_m: float = settings.SENSOR_DISTANCE_M,
        max_service_m: float = settings.SERVICE_DISTANCE_M,
        force: bool = False,
        progress: Progress | None = None,
        tile_features: int | None = None,
        engine: str = "local",
        scheduler: str | None = None,
    ) -> BuildReport:
        """Compute the cross-layer relations (see :mod:`twin.build`) and store them.

        Only relations whose input layers were re-imported since the last build
        (or whose option changed) are recomputed, unless ``force``.

        Parameters
        ----------
        max_distance_m : float, default 30
            How far a sensor outside every building may be from its building.
        max_service_m : float, default 50
            How far a building may be from the pipe that serves it.
        force : bool, default False
            Recompute every relation.
        progress : callable, optional
            Called as ``progress(relation_key, fraction)``.
        tile_features : int, optional
            Build tile by tile, about this many features of the largest layer per tile
            (see :mod:`twin.partition`): the same rows with memory bounded by a tile. By
            default whole layers, unless a layer holds more than
            :data:`twin.partition.PARTITION_ABOVE` features or the engine is dask.
        engine : {"local", "dask"}, default "local"
            Where tiles are computed; ``dask`` runs them on ``dask.distributed``.
        scheduler : str, optional
            The dask scheduler's address (``tcp://host:8786``); default: a local cluster.
        """
        from twin.build import build_relations
        from twin.partition import build_partitioned, tiles_by_default

        if tile_features is None and engine == "local" and scheduler is None:
            tile_features = tiles_by_default(self.layer_infos())  # type: ignore[attr-defined]
        if tile_features is None and engine == "local" and scheduler is None:
            return build_relations(
                self,  # type: ignore[arg-type]
                max_distance_m=max_distance_m,
                max_service_m=max_service_m,
                force=force,
                progress=progress,
            )
        return build_partitioned(
            self,  # type: ignore[arg-type]
            tile_features=tile_features,
            engine=engine,
            scheduler=scheduler,
            max_distance_m=max_distance_m,
            max_service_m=max_service_m,
            force=force,
            progress=progress,
        )

    def service_connections(
        self,
        network: str,
        *,
        buildings: str | None = None,
        max_service_m: float | None = None,
    ) -> pd.DataFrame:
        """Each building's service connection on ``network``, as stored by :meth:`build`.

        Parameters
        ----------
        network : str
            The pipes' ``network`` value (``water``, ``gas``…).
        buildings : str, optional
            The building layer (default: the twin's only one).
        max_service_m : float, optional
            Keep connections at most this long (default: the build's, 50 m);
            more than the build's raises :class:`~twin.errors.UsageError`.

        Returns
        -------
        pandas.DataFrame
            Indexed by building uid, connected buildings only, in layer order:
            ``pipe_layer``, ``pipe`` (uid of the nearest pipe of that network,
            over every pipe layer holding that network) and ``distance_m``.

        Raises
        ------
        UsageError
            No build yet, a building or pipe layer re-imported since the last
            build, or no pipe of that network.

        Examples
        --------
        >>> links = city.service_connections("water")
        >>> list(links.columns), bool((links["distance_m"] <= 50).all())
        (['pipe_layer', 'pipe', 'distance_m'], True)
        """
        from twin.build import service_connections

        return service_connections(
            self,  # type: ignore[arg-type]
            network,
            buildings=buildings,
            max_service_m=max_service_m,
        )

    # -- networks ------------------------------------------------------------
    def pipe_network(
        self,
        network: settings.NetworkName | str = "water",
        *,
        pipes: str | None = None,
        valves: str | None = None,
        sources: str | None = None,
        pumps: str | None = None,
        tolerance_m: float = settings.TOLERANCE_M,
    ) -> PipeNetwork:
        """The topology of one utility network (built once per file version).

        Parameters
        ----------
        network : str, default "water"
            The pipes' ``network`` value.
        pipes, valves, sources, pumps : str, optional
            Layer names; default: the twin's only layer of the kind (pipes: the
            only one holding ``network``). No valve, source or pump layer is fine.
        tolerance_m : float, default :data:`twin.settings.TOLERANCE_M`
            Pipe ends, valves and sources closer than this are joined.

        Examples
        --------
        >>> net = city.pipe_network("water")
        >>> net.pipe_layer, net.network
        ('water_pipes', 'water')
        """
        from twin.network import pipe_network

        pipe_layer = pipes or self._network_layer(network)
        roles = {
            "valves": self._only_layer("valve", valves, required=False),
            "sources": self._only_layer("source", sources, required=False),
            "pumps": self._only_layer("pump", pumps, required=False),
        }
        key = ("pipe_network", network, pipe_layer, *roles.values(), float(tolerance_m))
        return self._cached(
            key,
            lambda: pipe_network(
                self,  # type: ignore[arg-type]
                network,
                pipes=pipe_layer,
                valves=roles["valves"],
                sources=roles["sources"],
                pumps=roles["pumps"],
                tolerance_m=tolerance_m,
            ),
        )

    def _network_layer(self, network: str) -> str:
        candidates = []
        for name in self.layer_names("pipe"):
            values = self.layer(name, columns=["network"])["network"]
            if (values == network).any():
                candidates.append(name)
        if len(candidates) != 1:
            found = ", ".join(candidates) or "none"
            raise UsageError(
                f"name the pipe layer of the {network} network (pipes=; found: {found})"
            )
        return candidates[0]

    def road_network(
        self,
        *,
        roads: str | None = None,
        speeds: SpeedTable | None = None,
        tolerance_m: float = settings.TOLERANCE_M,
    ) -> RoadNetwork:
        """The timed road graph (built once per file version).

        Parameters
        ----------
        roads : str, optional
            The road layer (default: the twin's only one).
        speeds : SpeedTable, optional
            Speeds by road class (default :data:`twin.network.DEFAULT_SPEEDS`).
        tolerance_m : float, default :data:`twin.settings.TOLERANCE_M`

        Examples
        --------
        >>> city.road_network().n_edges > 0
        True
        """
        from twin.network import DEFAULT_SPEEDS, road_network

        layer = self._only_layer("road", roads, required=True)
        table = speeds if speeds is not None else DEFAULT_SPEEDS
        key = ("road_network", layer, id(table) if speeds is not None else None, tolerance_m)
        return self._cached(
            key,
            lambda: road_network(self, layer, speeds=table, tolerance_m=tolerance_m),  # type: ignore[arg-type]
        )

    def _connections(self, net: PipeNetwork, buildings: str | None, max_service_m: float) -> Any:
        """The buildings' service connections with footprints, or None without buildings."""
        from twin.network import building_connections

        layer = self._only_layer("building", buildings, required=False)
        if layer is None:
            return None

        def build() -> gpd.GeoDataFrame:
            import geopandas as gpd

            links = building_connections(self, net, buildings=layer, max_service_m=max_service_m)
            shapes = self.layer(layer, columns=[]).geometry.reindex(links.index)
            framed = gpd.GeoDataFrame(links, geometry=shapes.to_numpy(), crs=net.crs)
            framed.attrs.update(links.attrs)
            return framed

        key = ("connections", net.network, net.pipe_layer, layer, float(max_service_m))
        return self._cached(key, build)

    def _access(
        self,
        roads: str | None,
        buildings: str | None,
        facilities: str | None,
        where: str | None,
        direction: Direction,
        speeds: SpeedTable | None,
        tolerance_m: float,
    ) -> RoadAccess:
        from twin.network import road_access, select_facilities

        net = self.road_network(roads=roads, speeds=speeds, tolerance_m=tolerance_m)
        building_layer = self._only_layer("building", buildings, required=True)
        facility_layer = facilities or (
            "facilities" if "facilities" in self.layer_names() else None
        )
        facility_layer = self._only_layer("poi", facility_layer, required=True)
        key = ("access", id(net), building_layer, facility_layer, where, direction)

        def build() -> RoadAccess:
            chosen = select_facilities(self.layer(str(facility_layer)), where)
            return road_access(net, self.layer(str(building_layer)), chosen, direction=direction)

        return self._cached(key, build)

    # -- pipes ----------------------------------------------------------------
    def pipe_break(
        self,
        pipe: str,
        *,
        failed_valves: Iterable[str] = (),
        valves: str | None = None,
        sources: str | None = None,
        buildings: str | None = None,
        max_service_m: float = settings.SERVICE_DISTANCE_M,
        tolerance_m: float = settings.TOLERANCE_M,
    ) -> BreakResult:
        """Valves to close, pipes and buildings shut off by a break on ``pipe``.

        The pipe layer and the network come from the uid; the valve, source and
        building layers default to the twin's only one of their kind.

        Parameters
        ----------
        pipe : str
            The broken pipe's uid (``water_pipes.JS000010``).
        failed_valves : iterable of str
            Valves that will not close: the isolation grows to the next valves.
        valves, sources, buildings : str, optional
            Layer names (default: the only layer of the kind, none is fine).
        max_service_m : float, default :data:`twin.settings.SERVICE_DISTANCE_M`
            Buildings join the nearest pipe within this distance.
        tolerance_m : float, default :data:`twin.settings.TOLERANCE_M`
            Snapping tolerance.

        Returns
        -------
        BreakResult

        Examples
        --------
        >>> r = city.pipe_break("water_pipes.JS000010")
        >>> r.summary.buildings == len(r.buildings)
        True
        """
        from twin.network import pipe_break

        layer, network = self.pipe_layer_of(pipe)
        net = self.pipe_network(
            network, pipes=layer, valves=valves, sources=sources, tolerance_m=tolerance_m
        )
        links = self._connections(net, buildings, max_service_m)
        return pipe_break(net, pipe, failed_valves=list(failed_valves), connections=links)

    # -- roads ----------------------------------------------------------------
    def road_closure(
        self,
        roads: Sequence[str] = (),
        *,
        area: shapely.Geometry | None = None,
        facilities: str | None = None,
        where: str | None = None,
        buildings: str | None = None,
        max_time_s: float | None = None,
        direction: Direction = "from_facility",
        speeds: SpeedTable | None = None,
        tolerance_m: float = settings.TOLERANCE_M,
    ) -> ClosureResult:
        """Close roads (by uid, or every road crossing ``area``): who loses access, detours.

        The road layer comes from the closed roads' uids (else the only road layer).

        Examples
        --------
        >>> c = city.road_closure(["roads.DL000002"], where="poi_type=消防站")
        >>> c.summary.closed_roads
        1
        """
        from twin.network import road_closure

        closed = [roads] if isinstance(roads, str) else list(roads)
        road_layer = layer_of_uid(closed[0]) if closed else None
        access = self._access(
            road_layer, buildings, facilities, where, direction, speeds, tolerance_m
        )
        return road_closure(access, roads=closed, area=area, max_time_s=max_time_s)

    def service_area(
        self,
        facilities: str | None = None,
        *,
        where: str | None = None,
        max_time_s: float | None = None,
        roads: str | None = None,
        buildings: str | None = None,
        direction: Direction = "from_facility",
        speeds: SpeedTable | None = None,
        tolerance_m: float = settings.TOLERANCE_M,
    ) -> ServiceAreas:
        """Each building's nearest facility and travel time; what each facility reaches.

        Parameters
        ----------
        facilities : str, optional
            The facility layer (default ``facilities``, else the only poi layer).
        where : str, optional
            A facility filter ``field=value[,value…]`` (``poi_type=消防站``).
        max_time_s : float, optional
            The emergency access limit.

        Examples
        --------
        >>> s = city.service_area(where="poi_type=消防站", max_time_s=300)
        >>> s.summary.reached <= s.summary.buildings
        True
        """
        from twin.network import service_areas

        access = self._access(roads, buildings, facilities, where, direction, speeds, tolerance_m)
        return service_areas(access, max_time_s=max_time_s)

    def route(
        self,
        origin: Place,
        destination: Place,
        *,
        weight: Weight = "time",
        closed_roads: Sequence[str] = (),
        roads: str | None = None,
        speeds: SpeedTable | None = None,
        tolerance_m: float = settings.TOLERANCE_M,
    ) -> Route:
        """The fastest (or shortest) route between two places (uids, ``(x, y)`` or geometries).

        Examples
        --------
        >>> r = city.route("facilities.YJ0001", "buildings.JZ0000001")
        >>> r.found, r.distance_m > 0
        (True, True)
        """
        from twin.network import route

        net = self.road_network(roads=roads, speeds=speeds, tolerance_m=tolerance_m)
        return route(
            net,
            self._place(origin),
            self._place(destination),
            weight=weight,
            closed_roads=tuple(closed_roads),
        )

    def _place(self, place: Place) -> shapely.Geometry:
        if isinstance(place, shapely.Geometry):
            return place
        if isinstance(place, tuple):
            return shapely.Point(float(place[0]), float(place[1]))
        return self.feature(layer_of_uid(place), place).geometry

    def cascade(
        self,
        pipe: str,
        *,
        failed_valves: Iterable[str] = (),
        distance_m: float = 10.0,
        min_overlap_m: float = 15.0,
        facilities: str | None = None,
        where: str | None = None,
        buildings: str | None = None,
        roads: str | None = None,
        max_time_s: float | None = None,
        max_service_m: float = settings.SERVICE_DISTANCE_M,
        tolerance_m: float = settings.TOLERANCE_M,
    ) -> CascadeResult:
        """A pipe break and the roads its works close: valves, outage, emergency access.

        Examples
        --------
        >>> c = city.cascade("water_pipes.JS000010", where="poi_type=消防站")
        >>> c.pipe_break.pipe
        'water_pipes.JS000010'
        """
        from twin.network import cascade

        broken = self.pipe_break(
            pipe,
            failed_valves=failed_valves,
            buildings=buildings,
            max_service_m=max_service_m,
            tolerance_m=tolerance_m,
        )
        access = self._access(
            roads, buildings, facilities, where, "from_facility", None, tolerance_m
        )
        return cascade(
            broken,
            access,
            distance_m=distance_m,
            min_overlap_m=min_overlap_m,
            max_time_s=max_time_s,
        )

    # -- zones and plans ---------------------------------------------------------
    def indicators(
        self, by: settings.ZoneBy | str = "grid", *, floor_height_m: float = 3.0
    ) -> gpd.GeoDataFrame:
        """Every indicator the twin's layers allow, one row per zone of ``by``.

        ``by`` is ``"parcel"``, ``"grid"``, ``"district"`` or a zone layer's name.

        Examples
        --------
        >>> table = city.indicators(by="grid")
        >>> int(table["building_count"].sum()) <= len(city.layer("buildings"))
        True
        """
        from twin.zones import indicators_by_zone

        return indicators_by_zone(self, by, floor_height_m=floor_height_m)  # type: ignore[arg-type]

    def check(
        self,
        *,
        parcels: str | None = None,
        buildings: str | None = None,
        floor_height_m: float = 3.0,
    ) -> gpd.GeoDataFrame:
        """Plan compliance: parcels over their FAR or coverage limit, buildings too tall
        or on no parcel (see :func:`twin.compliance.plan_compliance`).

        Examples
        --------
        >>> table = city.check()
        >>> set(table["check"]) <= {"far", "coverage", "height", "no_parcel"}
        True
        """
        from twin.compliance import plan_compliance

        parcel_layer = self._only_layer("parcel", parcels, required=True)
        building_layer = self._only_layer("building", buildings, required=True)
        return plan_compliance(
            self.layer(str(parcel_layer)),
            self.layer(str(building_layer)),
            floor_height_m=floor_height_m,
            parcel_layer=str(parcel_layer),
            building_layer=str(building_layer),
        )


class Twin(model.Twin, TwinAnalyses):
    """A city information model in one GeoPackage, with its relations and analyses.

    The store-level twin (:class:`twin.model.Twin`: layers, imports, history,
    export) plus :meth:`build` (the cross-layer relations) and the one-call
    analyses of :class:`TwinAnalyses`. This is ``twin.Twin``.

    Examples
    --------
    >>> import twin
    >>> city = twin.Twin.open(sample_twin_path)
    >>> isinstance(city, twin.model.Twin), city.pipe_break("water_pipes.JS000010").pipe
    (True, 'water_pipes.JS000010')
    """
