"""Review reproductions for line_gone (not for merging as is)."""

from __future__ import annotations

import copy
from typing import Any

from tests.test_line_diff import PHP, _document, next_version
from tests.test_line_gone import _delete, _gone
from tests.test_line_stream import _first, _line
from tests.test_line_stream import series as series
from worker.adapters.state.line_queries import StoredLine


def _bump(cursor: Any, dialect: Any, line_id: str) -> None:
    cursor.execute(dialect.begin)
    cursor.execute(
        dialect.sql("UPDATE lines SET revision = revision + 1 WHERE id = %s"), (line_id,)
    )
    cursor.execute("COMMIT")


async def test_a_line_moved_while_the_gone_job_plans_is_planned_again(series) -> None:
    """Another writer moves the line between line_gone's read of the line's row and of its
    state (e.g. the gone job of another version of the same line): plan again, as the commit's
    StateMoved is -- not a StateMoved out of Deltas.gone (a plain Exception: the consumer parks
    the job as 'unexpected', the view is never closed, project.gone never published)."""
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    _delete(s, v1)
    real = s.store.line
    moved: list[str] = []

    async def line(line_id: str) -> StoredLine:
        stored = await real(line_id)
        if not moved:  # a concurrent writer commits right after this read
            moved.append(line_id)
            await s.store._run(_bump, line_id)
        return stored

    s.store.line = line  # type: ignore[method-assign]
    gone = await _gone(s, v1)
    assert gone.published == 8


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
