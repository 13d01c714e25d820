"""The collector held back during jobs: restored after the last, and still collecting."""

from __future__ import annotations

import gc
import weakref

from worker.service import collector


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_thresholds_are_restored_after_the_last_of_overlapping_jobs() -> None:
    before = gc.get_threshold()
    with collector.paused():
        with collector.paused():
            assert gc.get_threshold()[0] == collector.HELD_THRESHOLD
        assert gc.get_threshold()[0] == collector.HELD_THRESHOLD  # one job still holds it
    assert gc.get_threshold() == before
    assert gc.isenabled()


def test_cycles_are_still_collected_while_jobs_overlap_without_end() -> None:
    with collector.paused():
        cycle = Node()
        gone = weakref.ref(cycle)
        del cycle
        assert gone() is not None  # held back: not collected at once
        junk: list[list[int]] = [[] for _ in range(3 * collector.HELD_THRESHOLD)]  # go on
        del junk
        assert gone() is None, "the collector never ran while held"
