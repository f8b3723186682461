"""The collector pause around geometry decoding: nesting, threads, and the state it leaves."""

from __future__ import annotations

import gc
import threading

import shapely

from twin.io.gcpause import paused_gc


def test_nested_blocks_resume_the_collector_after_the_last() -> None:
    assert gc.isenabled()
    with paused_gc():
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block still holds it
    assert gc.isenabled()


def test_a_collector_off_before_stays_off() -> None:
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_blocks_in_two_threads_resume_when_both_end() -> None:
    inside, leave = threading.Event(), threading.Event()
    seen: list[bool] = []

    def other() -> None:
        with paused_gc():
            inside.set()
            leave.wait(10)
            seen.append(gc.isenabled())

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(10)
    with paused_gc():
        pass
    seen.append(gc.isenabled())  # this thread's block ended, the other's holds on
    leave.set()
    thread.join(10)
    assert seen == [False, False]
    assert gc.isenabled()


def test_decoding_with_the_pause_gives_the_same_geometries() -> None:
    boxes = shapely.box(range(5000), 0, [x + 0.5 for x in range(5000)], 1)
    wkb = shapely.to_wkb(boxes)
    with paused_gc():
        paused = shapely.from_wkb(wkb)
    assert list(shapely.to_wkb(paused)) == list(wkb)
    assert gc.isenabled()
