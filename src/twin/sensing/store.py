"""The live store beside the twin file: re-exported from :mod:`twin.store.live`.

The SQL lives in ``twin.store`` (the only package that talks SQL or opens
twin files); these names stay importable from here for the sensing code and
its users.

Examples
--------
>>> live_path("out/chengdu.twin.gpkg").name
'chengdu.twin.gpkg.live.sqlite'
"""

from twin.store.live import (
    NO_TIME,
    SCHEMA,
    LiveStore,
    from_ms,
    live_path,
    records,
    rows_of,
    to_ms,
)
from twin.store.live_base import LiveStoreProtocol

__all__ = [
    "NO_TIME",
    "SCHEMA",
    "LiveStore",
    "LiveStoreProtocol",
    "from_ms",
    "live_path",
    "records",
    "rows_of",
    "to_ms",
]
