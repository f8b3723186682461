"""Classification ranks: a lookup made once, the same as each level's place in the order."""

from __future__ import annotations

from twin.kinds import Classification


def test_each_rank_is_the_levels_place_lowest_first() -> None:
    levels = list(Classification)
    assert [c.rank for c in levels] == [levels.index(c) for c in levels] == [0, 1, 2]
    assert [c.value for c in sorted(levels, key=lambda c: c.rank)] == [
        "public",
        "internal",
        "restricted",
    ]
    assert Classification("internal").rank == Classification.INTERNAL.rank == 1
