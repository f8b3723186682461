"""Old name of :mod:`twin.query.common` (kept as an alias for code written against 0.1).

Examples
--------
>>> from twin.query import _shared, common
>>> _shared.derived is common.derived
True
"""

from twin.query.common import *  # noqa: F403
from twin.query.common import __all__ as __all__
