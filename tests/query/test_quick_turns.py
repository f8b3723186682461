"""A snapshot update runs with a short interpreter switch interval, restored afterwards.

:func:`twin.query.urgency.quick_turns` shortens ``sys.getswitchinterval()`` for
the update (and the service's preparation of the new snapshot) so that the
update thread gets the interpreter lock back quickly from a busy event loop;
overlapping blocks in several threads keep it short until the last one ends,
then the interval in force before comes back.
"""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import twin
from twin.query.index import CityIndex
from twin.query.live import LiveIndex
from twin.query.urgency import RELOAD_SWITCH_S, quick_turns


def test_overlapping_blocks_restore_the_interval_in_force_before() -> None:
    before = sys.getswitchinterval()
    entered, leave = threading.Event(), threading.Event()
    seen: list[float] = []

    def other() -> None:
        with quick_turns(0.002):
            entered.set()
            leave.wait(10)
            seen.append(sys.getswitchinterval())

    thread = threading.Thread(target=other)
    with quick_turns(0.001):
        assert sys.getswitchinterval() == 0.001
        thread.start()
        assert entered.wait(10)
        assert sys.getswitchinterval() == 0.001  # the first block's interval stays
    assert sys.getswitchinterval() == 0.001  # the other thread's block is still open
    leave.set()
    thread.join(10)
    assert seen == [0.001]
    assert sys.getswitchinterval() == before


def test_a_live_index_updates_and_prepares_with_the_short_interval(
    sample_twin: twin.Twin, tmp_path: Path
) -> None:
    path = tmp_path / "twin.gpkg"
    shutil.copy(sample_twin.path, path)
    intervals: list[float] = []

    def prepare(index: CityIndex) -> None:
        intervals.append(sys.getswitchinterval())

    before = sys.getswitchinterval()
    live = LiveIndex(path, prepare=prepare)
    assert intervals == []  # not called at the first load: only on a refresh
    city = twin.Twin.open(path)
    roads = city.layer("roads")
    roads.loc[roads.index[0], "name"] = "新路"
    city.import_frame(
        roads.reset_index(),
        layer="roads",
        kind="road",
        allow_removals=True,
        replace=True,
        local_coords=True,
    )
    assert live.refresh()
    assert live.current().updates["roads"] == "patched"
    assert intervals == [RELOAD_SWITCH_S] != [before]
    assert sys.getswitchinterval() == before
