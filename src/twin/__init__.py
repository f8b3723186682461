"""citytwin: a city information model (CIM, 城市信息模型) in one GeoPackage.

>>> import twin
>>> city = twin.Twin.open("chengdu.twin.gpkg")      # doctest: +SKIP
>>> buildings = city.layer("buildings")             # doctest: +SKIP
"""

import logging

from twin.errors import (
    CRSError,
    FeatureNotFoundError,
    InputDataError,
    LayerNotFoundError,
    RejectedFeaturesError,
    SchemaError,
    SourceError,
    TwinError,
    TwinExistsError,
    TwinNotFoundError,
    UsageError,
)
from twin.imports import ImportReport, Rejection
from twin.kinds import KINDS, Category, Classification, LayerKind, get_kind
from twin.mapping import ImportSpec, read_mapping
from twin.model import LayerInfo, Twin

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "KINDS",
    "CRSError",
    "Category",
    "Classification",
    "FeatureNotFoundError",
    "ImportReport",
    "ImportSpec",
    "InputDataError",
    "LayerInfo",
    "LayerKind",
    "LayerNotFoundError",
    "RejectedFeaturesError",
    "Rejection",
    "SchemaError",
    "SourceError",
    "Twin",
    "TwinError",
    "TwinExistsError",
    "TwinNotFoundError",
    "UsageError",
    "__version__",
    "get_kind",
    "read_mapping",
]
