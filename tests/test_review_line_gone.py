"""Review reproductions for line_gone (not for merging as is)."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from tests.test_line_diff import PHP, _document, next_version
from tests.test_line_gone import _delete, _gone
from tests.test_line_stream import _first, _line
from tests.test_line_stream import series as series
from worker.core.jobs import Job


async def test_a_stale_versions_row_of_a_deleted_current_version_keeps_the_line_open(
    series,
) -> None:
    """An export of another version that listed DT before the current version's deletion and
    commits after its gone job writes the deleted version's line_versions row back; the line is
    then no longer seen as adrift: the deletion of the version it was to follow closes nothing."""
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2", bump={"phpseclib": "3.0.50"})
    s.publish(v2)
    await s.sync(v2)
    await s.events(_line(v1))
    listed_before = copy.deepcopy(s.dt.projects)
    _delete(s, v2)
    (_job,) = (await _gone(s, v2)).follow  # SYNC of 1 queued
    # 1's own export job (say a BOM_PROCESSED) listed DT before 2 was deleted, commits now
    kept = s.dt.projects
    s.dt.projects = listed_before
    back = copy.deepcopy(v1)
    back["meta"]["timestamp"] = v2["meta"]["timestamp"]
    await s.sync(back)
    s.dt.projects = kept
    await s.events(_line(v1))
    _delete(s, v1)  # and DT deletes 1 before the queued SYNC of 1 ran: no version left
    gone = await _gone(s, v1)
    assert gone.published == 8, "the line keeps its 8 open findings forever"


async def test_two_versions_deleted_at_once_close_the_line(series) -> None:
    """DT deletes the current version 1, then 0.9, the only other one; their gone jobs run
    side by side: 1's lists DT while 0.9 is still there (a SYNC of 0.9 queued); 0.9's plans
    before 1's commit (the line not adrift yet: 0.9 is 'not current') and commits after. The
    SYNC of 0.9 then finds it gone, but 0.9 is in no line any more: nothing closes the line."""
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    old = next_version(v1, "0.9", bump={"phpseclib": "3.0.10"}, seconds=60)
    s.publish(old, latest=False)
    await s.sync(old)
    await s.events(_line(v1))
    _delete(s, v1)
    job_old = Job(
        job_id=str(uuid.uuid4()), project_uuid=old["project"]["uuid"],
        project_name=old["project"]["name"], trigger="TEST", notification_id="gone",
        accepted_at="2026-11-30T10:00:00.000000Z", correlation_id="test",
    )  # fmt: skip
    deltas: Any = s.deltas
    now = time.time()
    planned = await deltas._line_gone.plan(job_old, now)  # 0.9's job plans first
    (follow,) = (await _gone(s, v1)).follow  # 1's job: DT still lists 0.9, a SYNC of it
    assert follow.project_uuid == old["project"]["uuid"]
    _delete(s, old)
    await deltas._close(job_old, {"job_id": job_old.job_id}, now, planned)  # 0.9's commits
    # the queued SYNC of 0.9 runs: DT confirms 0.9 is gone
    gone = await s.deltas.gone(follow, {"job_id": follow.job_id})
    (report,) = await s.store.lines()
    assert (gone.published, sum(report.open_counts.values())) == (8, 0)
