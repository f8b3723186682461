"""Durable storage of a twin: a GeoPackage file (PostGIS later, same interface).

Examples
--------
>>> from twin.store import GpkgStore
>>> meta = GpkgStore(sample_twin_path).query("SELECT key, value FROM twin_meta")
>>> dict(zip(meta["key"], meta["value"]))["generator"]
'citytwin'
"""

from twin.store.base import StoreSession, TwinStore
from twin.store.gpkg import GpkgSession, GpkgStore, history_table

__all__ = ["GpkgSession", "GpkgStore", "StoreSession", "TwinStore", "history_table"]
