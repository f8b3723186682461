"""Durable storage of a twin: a GeoPackage file, or a schema in PostGIS (same interface).

:func:`open_store` picks the backend from the twin's name: a
``postgresql://…?schema=NAME`` URL is a :class:`PostgisStore`, anything else a
GeoPackage path (:class:`GpkgStore`).

Examples
--------
>>> from twin.store import GpkgStore
>>> meta = GpkgStore(sample_twin_path).query("SELECT key, value FROM twin_meta")
>>> dict(zip(meta["key"], meta["value"]))["generator"]
'citytwin'
>>> type(open_store(sample_twin_path)).__name__
'GpkgStore'
>>> type(open_store("postgresql://analyst@db:5432/cim?schema=chengdu")).__name__
'PostgisStore'
"""

from __future__ import annotations

import os

from twin.store.base import StoreSession, TwinStore
from twin.store.gpkg import GpkgSession, GpkgStore, history_table
from twin.store.postgis import PostgisStore, is_url

__all__ = [
    "GpkgSession",
    "GpkgStore",
    "PostgisStore",
    "StoreSession",
    "TwinStore",
    "history_table",
    "is_url",
    "open_store",
]


def open_store(name: str | os.PathLike[str], *, force: bool = False) -> GpkgStore | PostgisStore:
    """The store of the twin named ``name``: a PostGIS URL or a GeoPackage path.

    Parameters
    ----------
    name : str or path-like
        ``postgresql://user@host:port/db?schema=NAME`` or ``city.twin.gpkg``.
    force : bool, default False
        GeoPackage only: write even a read-only twin file.

    Examples
    --------
    >>> open_store("postgresql://analyst@db.example:5432/cim?schema=chengdu")
    PostgisStore('postgresql://analyst@db.example:5432/cim?schema=chengdu')
    >>> type(open_store(sample_twin_path)).__name__
    'GpkgStore'
    """
    if is_url(name):
        return PostgisStore(str(name))
    return GpkgStore(name, force=force)
