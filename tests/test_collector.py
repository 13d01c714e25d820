"""The collector held off during jobs: back as it was after the last, and still collecting when
jobs overlap without end."""

from __future__ import annotations

import asyncio
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


async def test_one_job_holding_the_collector_longer_than_held_seconds_still_collects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A single long hold (a 50k export read on a thread, a slow DT answering): a pass comes
    every HELD_SECONDS while it lasts, though no other job starts or ends meanwhile."""
    monkeypatch.setattr(collector, "HELD_SECONDS", 0.05)
    with collector.paused():
        cycle = Node()
        gone = weakref.ref(cycle)
        del cycle
        for _ in range(40):  # the event loop runs meanwhile, as in a job awaiting DT
            await asyncio.sleep(0.025)
            if gone() is None:
                break
        assert gone() is None, "no pass while one job held the collector past HELD_SECONDS"
        assert not gc.isenabled()  # still held: the pass did not give the collector back
    assert gc.isenabled()


def test_a_job_ending_while_others_hold_on_runs_the_overdue_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Jobs overlapping with none starting: the one that ends past HELD_SECONDS runs it."""
    with collector.paused():  # the job that goes on
        cycle = Node()
        gone = weakref.ref(cycle)
        del cycle
        with collector.paused():  # started before the hold was overdue
            monkeypatch.setattr(collector, "HELD_SECONDS", 0.0)  # as if it lasted that long
        assert gone() is None, "no pass when a job ended past HELD_SECONDS with others holding"
        assert not gc.isenabled()
