"""Reading municipal data deliveries and writing exports.

:func:`read_source` opens any supported source as a GeoDataFrame in the
source's own CRS and fields; the import pipeline (:mod:`twin.imports`) maps,
validates and reprojects it.
"""

from twin.io.sources import (
    SourceData,
    checksum,
    detect_format,
    ramped_sizes,
    read_source,
    read_source_batches,
    streamable_count,
)

__all__ = [
    "SourceData",
    "checksum",
    "detect_format",
    "ramped_sizes",
    "read_source",
    "read_source_batches",
    "streamable_count",
]
