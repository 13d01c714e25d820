"""The collector held off during jobs: back as it was after the last, and still collecting when
jobs overlap without end."""

from __future__ import annotations

import gc
import weakref

import pytest

from worker.service import collector


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_the_collector_is_back_after_the_last_of_overlapping_jobs() -> None:
    before = gc.get_threshold()
    with collector.paused():
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # one job still holds it
    assert gc.isenabled()
    assert gc.get_threshold() == before


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_no_pass_walks_a_jobs_objects_while_it_holds_the_collector() -> None:
    with collector.paused():
        cycle = Node()
        gone = weakref.ref(cycle)
        del cycle
        kept: list[list[int]] = [[] for _ in range(300_000)]  # past any young threshold
        assert gone() is not None, "a pass ran during the job"
        del kept
    gc.collect()
    assert gone() is None


def test_cycles_are_still_collected_while_jobs_overlap_without_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with collector.paused():
        cycle = Node()
        gone = weakref.ref(cycle)
        del cycle
        with collector.paused():  # not held for HELD_SECONDS yet: no pass
            pass
        assert gone() is not None
        monkeypatch.setattr(collector, "HELD_SECONDS", 0.0)  # as if the hold lasted that long
        with collector.paused():  # the next job to start runs one
            assert gone() is None, "the collector never ran while held"
