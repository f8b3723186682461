"""citytwin: a city information model (CIM, 城市信息模型) in one GeoPackage.

``import twin`` is enough: the twin, its one-call analyses, the result types,
the errors and the subpackages (:mod:`twin.network`, :mod:`twin.indicators`,
:mod:`twin.compliance`, :mod:`twin.zones`, :mod:`twin.query`,
:mod:`twin.settings`…) are reachable from here. Subpackages load on first use,
so ``import twin`` stays quick. ``KINDS`` lists the layer kinds
(:data:`twin.kinds.KINDS`).

Examples
--------
>>> import twin
>>> city = twin.Twin.open(sample_twin_path)
>>> r = city.pipe_break("water_pipes.JS000010")
>>> r.summary.valves_to_close >= 1
True
>>> twin.zones.zone_layer(city, "grid")
'grids'
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from twin.analyses import Twin
from twin.errors import (
    BuildNeeded,
    BuildNeededError,
    CRSError,
    DatabaseUnavailableError,
    FeatureNotFoundError,
    InputDataError,
    LayerNotFoundError,
    NetworkError,
    ReadOnlyTwinError,
    RejectedFeaturesError,
    SchemaError,
    SourceError,
    StorageError,
    TwinBusyError,
    TwinError,
    TwinExistsError,
    TwinFileError,
    TwinNotFoundError,
    UsageError,
)
from twin.imports import ImportReport, Rejection
from twin.kinds import KINDS, Category, Classification, LayerKind, get_kind
from twin.mapping import ImportSpec, read_mapping
from twin.model import LayerInfo
from twin.reports import ImportSummary

if TYPE_CHECKING:
    from twin import (
        analyses as analyses,
    )
    from twin import (
        build as build,
    )
    from twin import (
        compliance as compliance,
    )
    from twin import (
        crs as crs,
    )
    from twin import (
        grid as grid,
    )
    from twin import (
        indicators as indicators,
    )
    from twin import (
        io as io,
    )
    from twin import (
        kinds as kinds,
    )
    from twin import (
        network as network,
    )
    from twin import (
        query as query,
    )
    from twin import (
        relate as relate,
    )
    from twin import (
        sample as sample,
    )
    from twin import (
        settings as settings,
    )
    from twin import (
        store as store,
    )
    from twin import (
        zones as zones,
    )
    from twin.build import BuildReport
    from twin.network import (
        BreakResult as BreakResult,
    )
    from twin.network import (
        CascadeResult as CascadeResult,
    )
    from twin.network import (
        ClosureResult as ClosureResult,
    )
    from twin.network import (
        NetworkReport as NetworkReport,
    )
    from twin.network import (
        PipeNetwork as PipeNetwork,
    )
    from twin.network import (
        RoadNetwork as RoadNetwork,
    )
    from twin.network import (
        RoadReport as RoadReport,
    )
    from twin.network import (
        Route as Route,
    )
    from twin.network import (
        ServiceAreas as ServiceAreas,
    )
    from twin.results import Summary

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Subpackages and modules loaded on first attribute access (``twin.network``).
_SUBMODULES = frozenset(
    {
        "address",
        "analyses",
        "build",
        "city3d",
        "cityjson",
        "compliance",
        "crs",
        "flood",
        "grid",
        "heights",
        "indicators",
        "io",
        "kinds",
        "lod1",
        "network",
        "query",
        "raster",
        "relate",
        "results",
        "rollback",
        "sample",
        "sensing",
        "settings",
        "store",
        "tiles",
        "tiles3d",
        "zonal",
        "zones",
    }
)
#: Result and network types, by the module that defines them.
_LAZY_NAMES = {
    "BreakResult": "twin.network",
    "CascadeResult": "twin.network",
    "ClosureResult": "twin.network",
    "NetworkReport": "twin.network",
    "PipeNetwork": "twin.network",
    "RoadNetwork": "twin.network",
    "RoadReport": "twin.network",
    "Route": "twin.network",
    "ServiceAreas": "twin.network",
    "BuildReport": "twin.build",
    "Summary": "twin.results",
}


def __getattr__(name: str) -> Any:
    """Load a subpackage or a result type on first use (PEP 562)."""
    if name in _SUBMODULES:
        return importlib.import_module(f"twin.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'twin' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES, *_LAZY_NAMES})


__all__ = [
    "KINDS",
    "BreakResult",
    "BuildNeeded",
    "BuildNeededError",
    "BuildReport",
    "CRSError",
    "CascadeResult",
    "Category",
    "Classification",
    "ClosureResult",
    "DatabaseUnavailableError",
    "FeatureNotFoundError",
    "ImportReport",
    "ImportSpec",
    "ImportSummary",
    "InputDataError",
    "LayerInfo",
    "LayerKind",
    "LayerNotFoundError",
    "NetworkError",
    "NetworkReport",
    "PipeNetwork",
    "ReadOnlyTwinError",
    "RejectedFeaturesError",
    "Rejection",
    "RoadNetwork",
    "RoadReport",
    "Route",
    "SchemaError",
    "ServiceAreas",
    "SourceError",
    "StorageError",
    "Summary",
    "Twin",
    "TwinBusyError",
    "TwinError",
    "TwinExistsError",
    "TwinFileError",
    "TwinNotFoundError",
    "UsageError",
    "__version__",
    "get_kind",
    "read_mapping",
]
