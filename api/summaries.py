"""Response models generated from the library's result dataclasses: one source of fields.

The summaries the impact routes return are the library's own
(:class:`twin.network.BreakSummary`, :class:`~twin.network.closures.ClosureSummary`, …):
their pydantic models are derived here from the dataclass fields, so a field added
to a library summary appears in the OpenAPI document without a hand-kept copy.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any

from pydantic import BaseModel, Field, create_model

__all__ = ["attribute_docs", "model_from_dataclass"]


def attribute_docs(cls: type) -> dict[str, str]:
    """The descriptions of the numpydoc ``Attributes`` section of ``cls``'s docstring.

    A line ``x, y : float`` describes both names with the indented text below it.

    Examples
    --------
    >>> from twin.query.common import QueryPoint
    >>> attribute_docs(QueryPoint)["x"]
    'The point in the twin CRS.'
    """
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    if "Attributes" not in lines:
        return {}
    found: dict[str, str] = {}
    names: list[str] = []
    for line in lines[lines.index("Attributes") + 2 :]:
        if line and not line.startswith(" "):
            if " : " not in line and not line.strip().isidentifier():
                break  # the next section's title
            names = [n.strip() for n in line.split(" : ")[0].split(",")]
            continue
        for name in names:
            found[name] = " ".join(filter(None, [found.get(name, ""), line.strip()]))
    return {name: text for name, text in found.items() if text}


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
    described = attribute_docs(cls)
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
        text = described.get(field.name)
        fields[field.name] = (hints[field.name], Field(default, description=text))
    fields.update(extra)
    model: type[BaseModel] = create_model(name, __doc__=doc or cls.__doc__, **fields)
    return model
