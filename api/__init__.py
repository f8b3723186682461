"""The twin's HTTP service (installed as ``twin_api``): OGC API Features, one-map queries.

>>> from twin_api import Settings, create_app
>>> app = create_app(Settings(twin="out/chengdu.twin.gpkg"))  # doctest: +SKIP

Run it with ``twin serve TWIN``.
"""

from .app import create_app, create_app_from_env
from .settings import Settings

__all__ = ["Settings", "create_app", "create_app_from_env"]
