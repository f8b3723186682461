"""Durable storage of a twin: a GeoPackage file (PostGIS later, same interface)."""

from twin.store.gpkg import GpkgStore, history_table

__all__ = ["GpkgStore", "history_table"]
