"""The small OData subset SensorThings clients send: ``$filter``, ``$orderby``, ``$select``.

Supported ``$filter`` grammar (anything else is a :class:`~twin.errors.UsageError`
naming this subset)::

    expr       := term ("or" term)*
    term       := factor ("and" factor)*
    factor     := "not" factor | "(" expr ")" | comparison
    comparison := path OP literal | literal OP path
    OP         := eq | ne | gt | ge | lt | le
    path       := name ("/" name)*            e.g. result, Datastream/Thing/id
    literal    := number | 'text' ('' escapes ') | ISO 8601 time | true | false | null

Which paths exist depends on the entity set (see
:mod:`twin.sensing.sensorthings`); a comparison becomes a pandas mask over a
table (:func:`mask`) or an SQL condition with parameters (:func:`to_sql`).

Examples
--------
>>> tree = parse_filter("result gt 3.5 and (Datastream/id eq 7 or name eq 'WP''1')")
>>> tree
('and', ('cmp', 'result', 'gt', 3.5), ('or', ('cmp', 'Datastream/id', 'eq', 7), ('cmp', 'name', 'eq', "WP'1")))
>>> parse_orderby("phenomenonTime desc, result")
[('phenomenonTime', False), ('result', True)]
"""  # noqa: E501

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import UsageError

__all__ = [
    "FILTER_HELP",
    "Node",
    "mask",
    "parse_filter",
    "parse_list",
    "parse_orderby",
    "paths_of",
    "to_sql",
]

FILTER_HELP = (
    "supported: <property> eq|ne|gt|ge|lt|le <number|'text'|ISO time|true|false|null> "
    "joined by and/or/not with parentheses, e.g. "
    '"result gt 0.3 and phenomenonTime ge 2026-05-18T08:00:00Z"'
)
OPS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
SQL_OPS = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
FLIPPED = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')"
    r"|(?P<time>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)"
    r"|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<paren>[()])"
    r"|(?P<name>[A-Za-z@_][A-Za-z0-9@_.]*(?:/[A-Za-z@_][A-Za-z0-9@_.]*)*))"
)

#: A parsed filter: ``("cmp", path, op, value)``, ``("and"|"or", a, b)``, ``("not", a)``.
Node = tuple[Any, ...]


def _bad(text: str, why: str) -> UsageError:
    return UsageError(f"$filter {text!r}: {why}; {FILTER_HELP}")


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise _bad(text, f"cannot read {text[pos:].strip()[:20]!r}")
        pos = match.end()
        kind = match.lastgroup
        value = match.group(kind or "")
        if kind == "str":
            out.append(("lit", value[1:-1].replace("''", "'")))
        elif kind == "time":
            stamp = pd.to_datetime(value, utc=True, errors="coerce")
            if pd.isna(stamp):
                raise _bad(text, f"{value!r} is not a valid time")
            out.append(("lit", pd.Timestamp(stamp)))
        elif kind == "num":
            number = float(value)
            out.append(("lit", int(number) if number.is_integer() and "." not in value else number))
        elif kind == "paren":
            out.append((value, value))
        elif value in ("true", "false"):
            out.append(("lit", value == "true"))
        elif value == "null":
            out.append(("lit", None))
        elif value in ("and", "or", "not") or value in OPS:
            out.append((value, value))
        else:
            out.append(("path", value))
    return out


def parse_filter(text: str) -> Node:
    """The tree of a ``$filter`` expression (see the module's grammar)."""
    tokens = _tokens(text)
    if not tokens:
        raise _bad(text, "it is empty")
    pos = 0

    def peek() -> str | None:
        return tokens[pos][0] if pos < len(tokens) else None

    def take() -> tuple[str, Any]:
        nonlocal pos
        if pos >= len(tokens):
            raise _bad(text, "it ends too early")
        pos += 1
        return tokens[pos - 1]

    def expr() -> Node:
        node = term()
        while peek() == "or":
            take()
            node = ("or", node, term())
        return node

    def term() -> Node:
        node = factor()
        while peek() == "and":
            take()
            node = ("and", node, factor())
        return node

    def factor() -> Node:
        if peek() == "not":
            take()
            return ("not", factor())
        if peek() == "(":
            take()
            node = expr()
            if take()[0] != ")":
                raise _bad(text, "a parenthesis is not closed")
            return node
        left, op, right = take(), take(), take()
        if op[0] not in OPS:
            raise _bad(text, f"{op[1]!r} is not a comparison")
        if left[0] == "path" and right[0] == "lit":
            return ("cmp", left[1], op[0], right[1])
        if left[0] == "lit" and right[0] == "path":
            return ("cmp", right[1], FLIPPED[op[0]], left[1])
        raise _bad(text, "compare one property with one value (functions and arithmetic are not")

    node = expr()
    if pos != len(tokens):
        raise _bad(text, f"unexpected {tokens[pos][1]!r}")
    return node


def paths_of(node: Node) -> set[str]:
    """Every property path a filter compares.

    Examples
    --------
    >>> sorted(paths_of(parse_filter("a eq 1 or not b/c lt 2")))
    ['a', 'b/c']
    """
    if node[0] == "cmp":
        return {node[1]}
    return set().union(*(paths_of(child) for child in node[1:]))


def _check(text: str, node: Node, known: Mapping[str, Any]) -> None:
    unknown = sorted(paths_of(node) - set(known))
    if unknown:
        raise UsageError(
            f"$filter {text!r}: cannot filter on {', '.join(unknown)}; "
            f"properties here: {', '.join(sorted(known))}"
        )


def _canonical(path: str) -> str:
    return re.sub(r"(^|/)@iot\.id$", r"\1id", path)


def mask(text: str, node: Node, frame: pd.DataFrame) -> pd.Series:
    """Rows of ``frame`` (columns named by property path) that match ``node``."""
    node = _canon(node)
    _check(text, node, dict.fromkeys(frame.columns))

    def walk(part: Node) -> Any:
        if part[0] == "and":
            return walk(part[1]) & walk(part[2])
        if part[0] == "or":
            return walk(part[1]) | walk(part[2])
        if part[0] == "not":
            return ~walk(part[1])
        _, path, op, value = part
        column = frame[path]
        if value is None:
            hit = column.isna()
            return hit if op == "eq" else ~hit
        if isinstance(value, bool | str) or pd.api.types.is_object_dtype(column):
            if op not in ("eq", "ne") and not isinstance(value, str):
                raise UsageError(f"$filter {text!r}: {path} is text: compare it with 'text'")
            column, value = column.astype(str), str(value)
        elif isinstance(value, pd.Timestamp):
            raise UsageError(f"$filter {text!r}: {path} is not a time")
        return column.notna() & np.asarray(OPS[op](column, value), dtype=bool)

    return pd.Series(walk(node), index=frame.index, dtype=bool)


def _canon(node: Node) -> Node:
    if node[0] == "cmp":
        return ("cmp", _canonical(node[1]), node[2], node[3])
    return (node[0], *(_canon(child) for child in node[1:]))


def to_sql(
    text: str, node: Node, columns: Mapping[str, tuple[str, Callable[[Any], Any]]]
) -> tuple[str, list[Any]]:
    """An SQL condition and its parameters; ``columns``: path -> (SQL expression, converter).

    The converter turns a literal into the column's stored value (a time into
    milliseconds) and raises :class:`UsageError` when the literal does not fit.
    """
    node = _canon(node)
    _check(text, node, columns)
    params: list[Any] = []

    def walk(part: Node) -> str:
        if part[0] in ("and", "or"):
            return f"({walk(part[1])} {part[0].upper()} {walk(part[2])})"
        if part[0] == "not":
            return f"(NOT {walk(part[1])})"
        _, path, op, value = part
        sql, convert = columns[path]
        if value is None:
            return f"({sql} IS {'NOT ' if op == 'ne' else ''}NULL)"
        params.append(convert(value))
        return f"({sql} {SQL_OPS[op]} ?)"

    return walk(node), params


def parse_orderby(text: str) -> list[tuple[str, bool]]:
    """``"a desc, b"`` -> ``[("a", False), ("b", True)]`` (True: ascending)."""
    out = []
    for part in text.split(","):
        words = part.split()
        if len(words) == 2:
            words[1] = words[1].lower()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise UsageError(
                f"$orderby {text!r}: write <property> [asc|desc], comma-separated, "
                "e.g. phenomenonTime desc"
            )
        out.append((_canonical(words[0]), len(words) == 1 or words[1] == "asc"))
    return out


def parse_list(text: str, option: str, allowed: Mapping[str, Any] | set[str]) -> list[str]:
    """A comma-separated ``$select`` / ``$expand`` list, each name one of ``allowed``.

    Examples
    --------
    >>> parse_list("id, name", "$select", {"id", "name", "description"})
    ['id', 'name']
    """
    names = [_canonical(n.strip()) for n in text.split(",") if n.strip()]
    wrong = [n for n in names if n not in allowed]
    if not names or wrong:
        what = ", ".join(wrong) or "nothing"
        raise UsageError(
            f"{option} {text!r}: {what} is not supported here; use one or more of "
            f"{', '.join(sorted(allowed))} (one level, no nested options)"
        )
    return names
