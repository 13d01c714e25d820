"""Review 3 reproduction: `state resync` (line mode) clears a deleted current version's
projects.deleted_at, so the line is no longer adrift."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.rabbit import eventually
from tests.test_line_diff import PHP, _document, next_version
from tests.test_line_gone import _delete, _gone, _twin, _version_row
from tests.test_line_stream import _first, _line
from tests.test_line_stream import series as series
from worker.adapters.state import backend, console_line_queries, line_queries
from worker.adapters.state.line_queries import LinePart, VersionFacts
from worker.core.lines import Line


async def test_a_resync_leaves_a_deleted_current_version_deleted(series) -> None:
    """LineResync applies under the line's current project with Apply.deleted False:
    queries._update_project writes deleted_at = NULL for the project DT deleted."""
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2", bump={"phpseclib": "3.0.50"})
    s.publish(v2)
    await s.sync(v2)
    await s.events(_line(v1))
    _delete(s, v2)
    (job,) = (await _gone(s, v2)).follow  # a SYNC of 1 queued
    assert job.project_uuid == v1["project"]["uuid"]
    assert await s.deltas.resync(v1["project"]["uuid"], "run") == 8  # `state resync 1`
    (report,) = await s.store.lines()
    still_deleted = report.current_deleted  # status: "deleted in DT"; console: "(gone from DT)"
    _delete(s, v1)  # DT deletes 1 before its queued SYNC ran: no version left
    gone = await _gone(s, v1)
    assert gone.published == 8, "the line keeps its 8 open findings forever"
    assert still_deleted

    assert v2["project"]["uuid"] not in await s.store.all_projects()  # resync --all skips it


async def test_a_resync_leaves_a_deleted_project_deleted(series) -> None:
    """The per-project stream too: `state resync` of a project DT deleted keeps deleted_at."""
    s = await series(track="project")
    v1 = _document(PHP)
    await s.sync(v1)
    _delete(s, v1)
    assert (await _gone(s, v1)).published == 13
    project = v1["project"]["uuid"]
    await s.deltas.resync(project, "run")
    (report,) = await s.store.projects(project)
    assert report.deleted  # status: "(deleted in DT)"
    assert project not in await s.store.all_projects()


def _other_source(cursor: Any, dialect: Any, line: Line, old: Line) -> None:
    """``line`` as the store kept it under a source the worker had before (DT_URL changed)."""
    cursor.execute(dialect.begin)
    cursor.execute(
        dialect.sql(
            "INSERT INTO lines (id, source, grp, name, track, current_project, current_version, "
            "project_revision, revision, sequence, state, open_critical, open_high, open_medium, "
            "open_low, open_info, open_unassigned) SELECT %s, %s, grp, name, track, "
            "current_project, current_version, project_revision, revision, sequence, state, "
            "open_critical, open_high, open_medium, open_low, open_info, open_unassigned "
            "FROM lines WHERE id = %s"
        ),
        (old.id, old.source, line.id),
    )
    cursor.execute("COMMIT")


async def test_a_deletion_leaves_the_lines_of_another_source_alone(series) -> None:
    """No export ever moves a line of another source (line_delta places by export.source);
    holding finds it by current_project all the same and closes it, its events stamped
    with this worker's source under the other source's line key."""
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    await s.events(_line(v1))
    line = _line(v1)
    old = Line("https://old-dt.example", line.group, line.name, line.track)
    await s.store._run(_other_source, line, old)
    _delete(s, v1)
    await _gone(s, v1)
    events = await s.events(old)
    mixed = {(e["source"], e["data"]["line"]["key"].split("/")[0]) for e in events}
    assert events == [], mixed


async def test_an_export_racing_a_gone_commit_writes_no_deleted_version_back(
    series, state_url: str
) -> None:
    """PostgreSQL, READ COMMITTED: the gone transaction of 2 has deleted 2's line_versions row
    and set deleted_at, not committed; 1's export transaction reads deleted_at (NULL: not
    committed), its upsert of 2's row waits on the deleted row, and inserts it after the commit."""
    if backend.dialect_of(state_url).name != "postgresql":
        pytest.skip("SQLite's BEGIN IMMEDIATE serializes the two writers")
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2", bump={"phpseclib": "3.0.50"})
    s.publish(v2)
    await s.sync(v2)
    dialect = backend.dialect_of(state_url)
    gone_at, export_at = backend.connector(state_url)(), backend.connector(state_url)()
    deleted, kept = v2["project"]["uuid"], v1["project"]["uuid"]
    try:
        one = gone_at.cursor()  # 2's gone transaction, up to its commit
        one.execute("BEGIN")
        one.execute(dialect.sql(dialect.lock_project), (deleted,))
        one.execute("DELETE FROM line_versions WHERE project = %s", (deleted,))
        one.execute("UPDATE projects SET deleted_at = 1 WHERE uuid = %s", (deleted,))
        other = export_at.cursor()
        pid = export_at.info.backend_pid
        part = LinePart(
            _line(v1),
            [
                VersionFacts(deleted, "2", True, True, None),
                VersionFacts(kept, "1", False, True, None, applied=True),
            ],
        )

        def export() -> None:  # 1's export transaction, listed DT while 2 was there
            other.execute("BEGIN")
            line_queries.write(other, dialect, part, 1, time.time())
            other.execute("COMMIT")

        running = asyncio.get_running_loop().run_in_executor(None, export)

        def waiting() -> bool:
            one.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,))
            return bool(one.fetchone()[0] == "Lock")

        await eventually(waiting, within=10)
        one.execute("COMMIT")
        await running
    finally:
        gone_at.close()
        export_at.close()
    (report,) = await s.store.lines()
    assert [v.project for v in report.versions] == [kept]


async def test_a_deleted_versions_row_written_back_is_left_out_of_every_versions_list(
    series,
) -> None:
    """A line_versions row of a deleted version (the race above, or an older release): neither
    `status` (reports) nor the console's line page lists it."""
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2", bump={"phpseclib": "3.0.50"})
    s.publish(v2)
    await s.sync(v2)
    _delete(s, v2)
    await _gone(s, v2)
    line_id = _line(v1).id
    await s.store._run(_version_row, line_id, v2["project"]["uuid"])
    (report,) = await s.store.lines()
    page = await s.store.read(console_line_queries.line, line_id)
    assert page is not None
    kept = [v1["project"]["uuid"]]
    assert ([v.project for v in report.versions], [v.project for v in page.versions]) == (
        kept,
        kept,
    )


async def test_a_deletion_lists_dts_versions_of_a_name_once(series) -> None:
    """Two adrift lines of one name (LINE_BY changed since): one listing of DT's versions."""
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    line, twin = _line(v1), _line(v1, "x")
    await s.store._run(_twin, line, twin)
    _delete(s, v1)
    s.dt.requests.clear()
    assert (await _gone(s, v1)).published == 16
    listings = [r[:2] for r in s.dt.requests if r[:2] == ("GET", "/api/v1/project")]
    assert len(listings) == 1, listings
