"""Two jobs of two versions of one line at once (REVIEW-1 H1): a version that stopped being
current while its job ran must not move the line back. Only the order is forced (a wrapper runs
the other worker's whole job between this job's listing of DT and the rest of it); DT is the
fake DT, the store the real SQLite / PostgreSQL."""

from __future__ import annotations

import copy
from typing import Any

from tests.test_line_diff import PHP, _document, _later, next_version
from tests.test_line_stream import Series, _changes, _first, _line
from tests.test_line_stream import series as series
from worker.adapters.metrics import WorkerMetrics
from worker.service.delta import Deltas


class _Interleaved:
    """DT as the job saw it: its versions listed, then (before the job goes on) another
    worker's job of the next version commits."""

    def __init__(self, dt: Any, meanwhile: Any) -> None:
        self._dt, self._meanwhile = dt, meanwhile

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dt, name)

    async def list_projects(self, *args: Any, **kwargs: Any) -> Any:
        listed = await self._dt.list_projects(*args, **kwargs)
        if self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            await meanwhile()
        return listed


async def test_a_version_that_stopped_being_current_while_its_job_ran_does_not_move_the_line(
    series,
) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2", bump={"phpseclib": "3.0.50"})

    async def other_worker() -> None:  # DT makes 2 latest; a worker applies it
        s.publish(v2)
        await s.sync(v2)

    again = copy.deepcopy(v1)  # a job of version 1 (a re-analysis) listed DT just before
    again["meta"]["timestamp"] = _later(v1["meta"]["timestamp"], 30)
    slow = Deltas(
        s.store,
        _Interleaved(s.deltas._dt, other_worker),
        s.contracts.fpf,
        WorkerMetrics.create(),
        s.deltas._options,
    )
    await Series(slow, s.store, s.dt, s.contracts).sync(again)
    (report,) = await s.store.lines()
    events = await s.events(_line(v1))
    moved_back = [e for e in events if _changes(e).get("component.version") == ("3.0.50", "3.0.49")]
    assert report.current_project == v2["project"]["uuid"], (report.current_version, moved_back)
    assert moved_back == []
    moved = [e for e in events if _changes(e).get("component.version") == ("3.0.49", "3.0.50")]
    assert len(moved) == 2  # version 2's own switch, once
