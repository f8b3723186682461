"""The $filter / $orderby / $select subset: parsed, evaluated on a table and as SQL, and
everything outside it refused with a message naming what is supported."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from twin.errors import UsageError
from twin.sensing.odata import mask, parse_filter, parse_list, parse_orderby, to_sql

ROWS = pd.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "name": ["a", "b", "it's", "d"],
        "result": [0.1, 0.5, 0.9, None],
    }
)


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("result gt 0.3", [2, 3]),
        ("result ge 0.5 and result le 0.5", [2]),
        ("0.5 lt result", [3]),
        ("result lt 0.2 or name eq 'd'", [1, 4]),
        ("not (result gt 0.3) and id ne 4", [1]),
        ("name eq 'it''s'", [3]),
        ("result eq null", [4]),
        ("result ne null and (id eq 1 or id eq 3)", [1, 3]),
        ("@iot.id ge 3", [3, 4]),
    ],
)
def test_filters_pick_the_rows_a_hand_check_gives(text: str, ids: list[int]) -> None:
    tree = parse_filter(text)
    frame = ROWS.copy()
    assert frame[mask(text, tree, frame)]["id"].tolist() == ids
    # the same tree as SQL over the same rows in SQLite
    con = sqlite3.connect(":memory:")
    frame.to_sql("t", con, index=False)
    columns = {c: (c, lambda v: v) for c in ("id", "name", "result")}
    sql, params = to_sql(text, tree, columns)
    got = [r[0] for r in con.execute(f"SELECT id FROM t WHERE {sql} ORDER BY id", params)]
    assert got == ids


def test_times_are_read_as_utc() -> None:
    tree = parse_filter("phenomenonTime ge 2026-05-18T08:00:00+08:00")
    assert tree == ("cmp", "phenomenonTime", "ge", pd.Timestamp("2026-05-18T00:00:00Z"))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("substringof('a', name)", "cannot read"),
        ("result add 2 gt 3", "is not a comparison"),
        ("result gt", "ends too early"),
        ("(result gt 1", "ends too early"),
        ("(result gt 1 id eq 2", "not closed"),
        ("result gt 1 result", "unexpected"),
        ("name eq name", "compare one property with one value"),
        ("", "empty"),
        ("result gt 2026-13-45T00:00:00Z", "not a valid time"),
    ],
)
def test_anything_else_is_refused_naming_the_subset(text: str, words: str) -> None:
    with pytest.raises(UsageError, match=words) as caught:
        parse_filter(text)
    assert "eq|ne|gt|ge|lt|le" in str(caught.value)


def test_unknown_properties_and_options_are_named() -> None:
    with pytest.raises(UsageError, match="cannot filter on colour; properties here: id, name"):
        mask("colour eq 'red'", parse_filter("colour eq 'red'"), ROWS)
    assert parse_orderby("result desc,id") == [("result", False), ("id", True)]
    with pytest.raises(UsageError, match=r"\[asc\|desc\]"):
        parse_orderby("result sideways")
    with pytest.raises(UsageError, match="one level"):
        parse_list("Datastreams($top=1)", "$expand", {"Datastreams"})
