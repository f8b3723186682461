"""Cached per-snapshot results report the layers they came from on every lookup (issue 12).

The API audits restricted reads through the listener set with
:func:`twin.query.index.on_layer_reads`; a route that finds its answer in the
snapshot's cache resolves no layer itself, so the cache lookup must report
the layers the cached value was derived from.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

from twin.query.common import derived
from twin.query.impact_roads import road_closure_impact
from twin.query.index import CityIndex, on_layer_reads


def _heard(action: Callable[[], object]) -> list[str]:
    """The layers reported while ``action`` runs (in a context of its own)."""
    heard: list[str] = []

    def run() -> None:
        on_layer_reads(heard.extend)
        action()

    contextvars.copy_context().run(run)
    return sorted(set(heard))


def test_a_cache_hit_reports_the_layers_its_build_resolved(index: CityIndex) -> None:
    builds: list[int] = []

    def build() -> int:
        builds.append(1)
        return len(index.layer("water_pipes")) + len(index.layer("valves"))

    key = ("test-cache-audit", "sum")
    first = _heard(lambda: derived(index, key, build))
    second = _heard(lambda: derived(index, key, build))
    assert builds == [1]  # the second call is a cache hit
    assert first == second == ["valves", "water_pipes"]


def test_a_cache_hit_reports_the_layers_its_key_names(index: CityIndex) -> None:
    key = ("relation", "test-audit", "buildings", "water_pipes")
    assert _heard(lambda: derived(index, key, lambda: None)) == ["buildings", "water_pipes"]
    assert _heard(lambda: derived(index, key, lambda: None)) == ["buildings", "water_pipes"]


def test_a_repeated_impact_reports_the_same_layers(index: CityIndex) -> None:
    roads = list(index.layer("roads").frame.index[:2])

    def impact() -> object:
        return road_closure_impact(index, roads_closed=roads, where="poi_type=消防站")

    first, second = _heard(impact), _heard(impact)
    assert {"roads", "buildings", "facilities"} <= set(first)
    assert second == first
