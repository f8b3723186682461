"""Response models generated from the library's result dataclasses: one source of fields.

The summaries the impact routes return are the library's own
(:class:`twin.network.BreakSummary`, :class:`~twin.network.closures.ClosureSummary`, …):
their pydantic models are derived here from the dataclass fields, so a field added
to a library summary appears in the OpenAPI document without a hand-kept copy.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from pydantic import BaseModel, create_model

__all__ = ["model_from_dataclass"]


def model_from_dataclass(
    cls: type,
    name: str,
    *,
    doc: str | None = None,
    exclude: tuple[str, ...] = (),
    **extra: Any,
) -> type[BaseModel]:
    """A pydantic model with the fields of the dataclass ``cls`` (minus ``exclude``).

    ``extra`` adds or overrides fields as ``name=(type, default)`` (``...``: required).
    A dataclass field with a default (or a default factory) is optional in the model.

    Examples
    --------
    >>> from twin.network.closures import ClosureSummary
    >>> model = model_from_dataclass(ClosureSummary, "ClosureSummaryModel")
    >>> sorted(model.model_fields)[:3]
    ['buildings', 'buildings_beyond_max', 'buildings_delayed']
    """
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in exclude or field.name.startswith("_"):
            continue
        if field.default is not dataclasses.MISSING:
            default: Any = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = ...
        fields[field.name] = (hints[field.name], default)
    fields.update(extra)
    model: type[BaseModel] = create_model(name, __doc__=doc or cls.__doc__, **fields)
    return model
