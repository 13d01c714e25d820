"""A version DT deletes, on the line stream (DTRACK_WORKER_TRACK=line; REVIEW-1 M2, L3): the
delta job that finds its DT project gone closes the project's view as always, and its line
follows DT: every version gone, the line's open findings resolve ``project_deleted``; its
current version gone and others left, a sync of the new current version is queued (the line
moves with that export, never without one); any deleted version leaves ``line_versions``.
The real Deltas, SQLite and PostgreSQL, and the fake DT (tests/test_line_stream.py)."""

from __future__ import annotations

import asyncio
import copy
import re
import time
import uuid
from typing import Any

import orjson
import pytest

from tests.fake_dt import FakeDt
from tests.rabbit import eventually
from tests.test_line_commands import _env
from tests.test_line_diff import NPM, PHP, _document, _later, next_version
from tests.test_line_stream import (
    SOURCE,
    Document,
    Series,
    _changes,
    _first,
    _line,
    _suppress,
    publish,
)
from tests.test_line_stream import series as series
from tests.test_operations import cli
from worker.adapters.state import backend, console_line_queries, line_queries
from worker.adapters.state.line_queries import LinePart, StoredLine, VersionFacts
from worker.core import line_gone, line_state
from worker.core.errors import TransientError
from worker.core.jobs import Job
from worker.core.lines import Line


def _delete(s: Series, document: Document) -> None:
    """DT deletes the project: not listed, its export a 404."""
    project = document["project"]["uuid"]
    s.dt.projects = [p for p in s.dt.projects if p["uuid"] != project]
    s.dt.exports.pop(project, None)


async def _two_versions(s: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A line of two versions of the PHP export, the second (a library bumped) current."""
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2", bump={"phpseclib": "3.0.50"})
    s.publish(v2)
    await s.sync(v2)
    return v1, v2


async def _gone(s: Series, document: Document, job_id: str | None = None) -> Any:
    job = Job(
        job_id=job_id or str(uuid.uuid4()),
        project_uuid=document["project"]["uuid"],
        project_name=document["project"]["name"],
        trigger="TEST",
        notification_id="gone",
        accepted_at="2026-11-30T10:00:00.000000Z",
        correlation_id="test",
    )
    return await s.deltas.gone(job, {"job_id": job.job_id})


def _bump(cursor: Any, dialect: Any, line_id: str) -> None:
    """Another writer moves the line (its revision) meanwhile."""
    cursor.execute(dialect.begin)
    cursor.execute(
        dialect.sql("UPDATE lines SET revision = revision + 1 WHERE id = %s"), (line_id,)
    )
    cursor.execute("COMMIT")


async def test_every_version_deleted_resolves_the_lines_open_findings_project_deleted(
    series, state_url: str, dt: FakeDt
) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    await s.project_events(v1["project"]["uuid"])
    _delete(s, v1)
    job_id = str(uuid.uuid4())
    gone = await _gone(s, v1, job_id)
    own = await s.project_events(v1["project"]["uuid"])  # the view closes as before
    assert [e["type"] for e in own] == ["dtrack-worker.project.gone.v1"]
    assert await s.store.open_findings(v1["project"]["uuid"]) == []
    events = await s.events(_line(v1))  # checked against the v2 schema
    assert [e["type"] for e in events] == ["dtrack-worker.finding.resolved.v2"] * 8
    assert {e["data"]["change"]["reason"] for e in events} == {"project_deleted"}
    assert [int(e["sequence"]) for e in events] == list(range(9, 17))  # the line's own
    assert {e["data"]["project"]["uuid"] for e in events} == {v1["project"]["uuid"]}
    (report,) = await s.store.lines()
    assert sum(report.open_counts.values()) == 0
    assert report.versions == []  # the deleted version left the line's versions
    assert (gone.published, gone.follow) == (8, ())
    code, out, err = await cli("status", v1["project"]["name"], env=_env(state_url, dt))
    assert code == 0, out + err
    version, project = v1["project"]["version"], v1["project"]["uuid"]
    assert f"  current {version} ({project}), deleted in DT; last change" in out
    assert "  open: none\n  0 versions:" in out
    # the same job again (a retry, a redelivery): nothing more
    again = await _gone(s, v1, job_id)
    assert again.published == 0
    assert await s.events(_line(v1)) == []


async def test_a_deleted_current_version_queues_a_sync_of_the_lines_new_current_version(
    series,
) -> None:
    s = await series()
    v1, v2 = await _two_versions(s)
    await s.events(_line(v1))
    _delete(s, v2)  # DT now lists 1 alone: the active version last imported
    job_id = str(uuid.uuid4())
    gone = await _gone(s, v2, job_id)
    assert await s.events(_line(v1)) == []  # nothing moves without an export
    (report,) = await s.store.lines()
    assert [v.project for v in report.versions] == [v1["project"]["uuid"]]
    assert report.current_project == v2["project"]["uuid"]
    assert sum(report.open_counts.values()) == 8
    (job,) = gone.follow
    assert (job.project_uuid, job.trigger) == (v1["project"]["uuid"], "SYNC")
    (again,) = (await _gone(s, v2, job_id)).follow  # a retry: the same SYNC job
    assert (again.job_id, again.project_uuid) == (job.job_id, job.project_uuid)
    # the queued job: 1's export moves the line back, as any version switch does
    back = copy.deepcopy(v1)
    back["meta"]["timestamp"] = _later(v2["meta"]["timestamp"], 60)
    await s.sync(back)
    events = await s.events(_line(v1))
    assert [e["data"]["change"]["kind"] for e in events] == ["changed", "changed"]
    assert {_changes(e)["component.version"] for e in events} == {("3.0.50", "3.0.49")}
    (report,) = await s.store.lines()
    assert report.current_project == v1["project"]["uuid"]


async def test_the_version_a_line_was_to_follow_deleted_too_closes_the_line(series) -> None:
    """DT deletes the current version, then the version the line was to follow before its
    queued job ran: that job finds its project gone, and no version is left."""
    s = await series()
    v1, v2 = await _two_versions(s)
    await s.events(_line(v1))
    _delete(s, v2)
    (job,) = (await _gone(s, v2)).follow
    assert job.project_uuid == v1["project"]["uuid"]
    _delete(s, v1)
    gone = await _gone(s, v1)  # the queued job's project is gone
    events = await s.events(_line(v1))
    assert [e["data"]["change"]["reason"] for e in events] == ["project_deleted"] * 8
    assert {e["data"]["project"]["uuid"] for e in events} == {v2["project"]["uuid"]}
    assert {e["data"]["component"]["version"] for e in events if "phpseclib" in
            e["data"]["package"]["key"]} == {"3.0.50"}  # fmt: skip
    (report,) = await s.store.lines()
    assert (sum(report.open_counts.values()), report.versions) == (0, [])
    assert (gone.published, gone.follow) == (8, ())


async def test_a_deleted_version_that_is_not_current_leaves_the_lines_versions_only(
    series,
) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    old = next_version(v1, "0.9", bump={"phpseclib": "3.0.10"}, seconds=60)
    s.publish(old, latest=False)
    await s.sync(old)
    _delete(s, old)
    gone = await _gone(s, old)
    assert await s.events(_line(v1)) == []
    (report,) = await s.store.lines()
    assert [v.project for v in report.versions] == [v1["project"]["uuid"]]
    assert (report.current_project, sum(report.open_counts.values())) == (
        v1["project"]["uuid"],
        8,
    )
    assert (gone.published, gone.follow) == (0, ())


async def test_a_deleted_current_version_with_only_inactive_versions_left_stands(series) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    v2 = next_version(v1, "2")
    s.publish(v2)
    await s.sync(v2)
    for project in s.dt.projects:  # 1 is archived in DT: never current
        if project["uuid"] == v1["project"]["uuid"]:
            project["active"] = False
    _delete(s, v2)
    gone = await _gone(s, v2)
    assert (gone.published, gone.follow) == (0, ())
    assert await s.events(_line(v1)) == []
    (report,) = await s.store.lines()
    assert sum(report.open_counts.values()) == 8  # no version to follow; nothing was fixed
    assert [v.project for v in report.versions] == [v1["project"]["uuid"]]


async def test_a_failure_listing_the_versions_of_a_deleted_current_version_is_a_retry(
    series,
) -> None:
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    await s.project_events(v1["project"]["uuid"])
    _delete(s, v1)
    s.dt.portfolio_status = 503  # DT down while the versions are listed: a retry
    with pytest.raises(TransientError, match="503"):
        await _gone(s, v1)
    assert await s.project_events(v1["project"]["uuid"]) == []  # nothing committed
    assert len(await s.store.open_findings(v1["project"]["uuid"])) == 13
    assert await s.events(_line(v1)) == []
    s.dt.portfolio_status = None
    assert (await _gone(s, v1)).published == 8


async def test_a_line_moved_while_the_gone_job_plans_is_planned_again(series) -> None:
    """Another writer moves the line between line_gone's read of the line's row and of its
    state (e.g. the gone job of another version of the same line): plan again, as on the
    commit's StateMoved -- a StateMoved out of Deltas.gone is no TransientError: the consumer
    would park the job as unexpected, the view never closed, project.gone never published."""
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    _delete(s, v1)
    real = s.store.line
    moved: list[str] = []

    async def line(line_id: str) -> StoredLine:
        stored: StoredLine = await real(line_id)
        if not moved:  # a concurrent writer commits right after this read
            moved.append(line_id)
            await s.store._run(_bump, line_id)
        return stored

    s.store.line = line
    gone = await _gone(s, v1)
    assert (moved, gone.published) == ([_line(v1).id], 8)


async def test_a_stale_versions_row_of_a_deleted_current_version_keeps_no_line_open(
    series,
) -> None:
    """An export of another version that listed DT before the current version's deletion and
    commits after its gone job may write the deleted version's line_versions row back: the
    line is adrift all the same (its current project deleted in the store), so the deletion
    of the version it was to follow closes it."""
    s = await series()
    v1, v2 = await _two_versions(s)
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


def _version_row(cursor: Any, dialect: Any, line_id: str, project: str) -> None:
    """A line_versions row, as an export committing after its project's gone job wrote it
    back before this release."""
    cursor.execute(dialect.begin)
    cursor.execute(
        dialect.sql("INSERT INTO line_versions (line, project, version) VALUES (%s, %s, '2')"),
        (line_id, project),
    )
    cursor.execute("COMMIT")


async def test_an_export_that_listed_dt_before_a_deletion_brings_no_deleted_version_back(
    series, state_url: str, dt: FakeDt
) -> None:
    """1's export job listed DT while 2 was still there and commits after 2's gone job: the
    deleted version stays out of the line's versions, and `status` says the current version
    is deleted (from the store's deleted_at: also for a row an older release wrote back)."""
    s = await series()
    v1, v2 = await _two_versions(s)
    listed_before = copy.deepcopy(s.dt.projects)
    _delete(s, v2)
    await _gone(s, v2)
    kept, s.dt.projects = s.dt.projects, listed_before
    back = copy.deepcopy(v1)
    back["meta"]["timestamp"] = v2["meta"]["timestamp"]
    await s.sync(back)
    s.dt.projects = kept
    (report,) = await s.store.lines()
    assert [v.project for v in report.versions] == [v1["project"]["uuid"]]
    await s.store._run(_version_row, report.id, v2["project"]["uuid"])
    code, out, err = await cli("status", v1["project"]["name"], env=_env(state_url, dt))
    assert code == 0, out + err
    assert f"  current 2 ({v2['project']['uuid']}), deleted in DT; last change" in out


async def test_two_versions_deleted_at_once_close_the_line(series) -> None:
    """DT deletes the current version 1, then 0.9, the only other one; their gone jobs run
    side by side: 1's lists DT while 0.9 is still there (a SYNC of 0.9 queued); 0.9's plans
    before 1's commit (the line not adrift yet: 0.9 is not current) and commits after. The
    SYNC of 0.9 then finds it gone, 0.9 in no line any more: it finds the line by its name
    (its current project deleted) and closes it."""
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


def _twin(cursor: Any, dialect: Any, line: Line, twin: Line) -> None:
    """A second line of the same versions (as DTRACK_WORKER_LINE_BY changed since makes):
    ``line``'s row and versions under ``twin``."""
    cursor.execute(dialect.begin)
    cursor.execute(
        dialect.sql(
            "INSERT INTO lines (id, source, grp, name, track, current_project, current_version, "
            "project_revision, revision, sequence, state, open_critical, open_high, open_medium, "
            "open_low, open_info, open_unassigned) SELECT %s, source, grp, name, %s, "
            "current_project, current_version, project_revision, revision, sequence, state, "
            "open_critical, open_high, open_medium, open_low, open_info, open_unassigned "
            "FROM lines WHERE id = %s"
        ),
        (twin.id, twin.track, line.id),
    )
    cursor.execute(
        dialect.sql(
            "INSERT INTO line_versions (line, project, version) "
            "SELECT %s, project, version FROM line_versions WHERE line = %s"
        ),
        (twin.id, line.id),
    )
    cursor.execute("COMMIT")


async def test_a_deletion_closing_two_lines_commits_them_with_the_view_once(series) -> None:
    """A project current in two lines (LINE_BY changed since), DT deleting it: both lines close
    with the view's close, in one transaction; a job moving the second one meanwhile makes the
    whole close plan again, never a second project.gone.v1."""
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    await s.project_events(v1["project"]["uuid"])
    line, twin = _line(v1), _line(v1, "x")
    await s.store._run(_twin, line, twin)
    _delete(s, v1)
    gone_lines: Any = s.deltas
    real = gone_lines._line_gone.plan
    moved: list[str] = []

    async def plan(job: Job, now: float) -> Any:
        planned = await real(job, now)
        if not moved:  # a job moves the line committed last before the close commits
            moved.append(planned.parts[-1].line.id)
            await s.store._run(_bump, moved[0])
        return planned

    gone_lines._line_gone.plan = plan
    gone = await _gone(s, v1)
    own = await s.project_events(v1["project"]["uuid"])
    assert [e["type"] for e in own] == ["dtrack-worker.project.gone.v1"]
    assert [len(await s.events(one)) for one in (line, twin)] == [8, 8]
    assert (len(moved), gone.published) == (1, 16)
    assert [sum(r.open_counts.values()) for r in await s.store.lines()] == [0, 0]


async def test_line_findings_opened_after_the_deletion_resolve_at_it_as_v1s_do(series) -> None:
    """Times taken from an export stamped in the future (a DT clock error): as v1's
    transitions.deleted, first_seen and opened_at are brought back to the deletion's time,
    resolved at it."""
    s = await series()
    v1 = _document(PHP)
    await _first(s, v1)
    stored = await s.store.line(_line(v1).id)
    state = line_state.unpack(_line(v1), await s.store.line_state(stored.id, stored.revision))
    now = min(f.first_seen for f in state.open) - 60
    closed = line_gone.deleted(state, now)
    assert len(closed.transitions) == 8
    assert {(t.first_seen, t.opened_at, t.resolved_at) for t in closed.transitions} == {
        (now, now, now)
    }


class _Explained:
    """A cursor that runs a query's EXPLAIN instead, keeping the plan as text."""

    def __init__(self, cursor: Any, explain: str) -> None:
        self._cursor, self._explain, self.plan = cursor, explain, ""

    def execute(self, query: str, args: Any = ()) -> None:
        self._cursor.execute(self._explain + query, args)
        self.plan = "\n".join(str(row) for row in self._cursor.fetchall())

    def fetchall(self) -> list[Any]:
        return []


_MANY_LINES = (
    "INSERT INTO lines (id, source, grp, name, current_project) "
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) "
    "SELECT 'l' || i, 'src', '', 'name' || i, 'p' || i FROM n"
)


async def test_the_lines_a_deleted_project_is_current_in_are_found_by_an_index(
    series, state_url: str
) -> None:
    """The gone job's `holding` reads no line but those it holds, by an index (migration
    lines_by_current), in a store of many lines (planned as the databases plan them)."""
    await series()  # the store, migrated
    dialect = backend.dialect_of(state_url)
    connection = backend.connector(state_url)()
    try:
        cursor = connection.cursor()
        cursor.execute(dialect.begin)
        cursor.execute(_MANY_LINES)
        cursor.execute("COMMIT")
        cursor.execute("ANALYZE")
        sqlite = dialect.name == "sqlite"
        explained = _Explained(cursor, "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ")
        line_queries.holding(explained, dialect, "p7", SOURCE, "name7")
    finally:
        connection.close()
    assert "lines_by_current" in explained.plan, explained.plan
    assert not re.search(r"\bSCAN (l|n|lines)\b|Seq Scan on lines", explained.plan), explained.plan


@pytest.mark.rabbitmq
async def test_the_service_follows_a_lines_new_current_version_when_dt_deletes_it(
    serve, dt: FakeDt, state_url: str
) -> None:
    from tests.harness import post
    from tests.rabbit import eventually

    client, _, events, _ = await serve(emit="delta", track="line", state_url=state_url)
    v1 = _document(PHP)
    v2 = next_version(v1, "2", bump={"phpseclib": "3.0.50"})
    for document in (v1, v2):
        publish(dt, document)
        dt.exports.as_is(document["project"]["uuid"], orjson.dumps(document))
        (job,) = (await post(client, document["project"]["uuid"]))["jobs"]
        job_id: str = job["job_id"]
        await eventually(lambda: job_id in events.summaries(), within=20)  # noqa: B023

    def changes() -> list[dict[str, Any]]:
        return [
            orjson.loads(m.body)
            for m in events.messages
            if (m.routing_key or "").startswith("delta.")
        ]

    await eventually(lambda: len(changes()) == 10, within=20)  # 8 opened, 2 changed
    dt.projects = [p for p in dt.projects if p["uuid"] != v2["project"]["uuid"]]
    dt.exports.pop(v2["project"]["uuid"])
    await post(client, v2["project"]["uuid"], 1)
    # the gone job queues a sync of 1, whose export moves the line back
    await eventually(lambda: len(changes()) == 12, within=30)
    back = changes()[10:]
    assert [e["data"]["change"]["kind"] for e in back] == ["changed", "changed"]
    assert {e["data"]["project"]["uuid"] for e in back} == {v1["project"]["uuid"]}
    assert [int(e["sequence"]) for e in back] == [11, 12]


async def test_a_line_deleted_whole_keeps_its_triage_for_a_version_created_later(series) -> None:
    s = await series()
    v1 = _document(NPM)
    v1["findings"] = list({r["matrix"]: r for r in reversed(v1["findings"])}.values())[::-1]
    await _first(s, v1)
    hidden = copy.deepcopy(v1)  # next-intl suppressed in DT: the export leaves its rows out
    hidden["meta"]["timestamp"] = _later(v1["meta"]["timestamp"], 60)
    hidden["findings"] = [r for r in v1["findings"] if r["component"]["name"] != "next-intl"]
    s.dt.suppressed[v1["project"]["uuid"]] = _suppress(v1["findings"], "next-intl")
    s.publish(hidden)
    await s.sync(hidden)
    (suppressed,) = await s.events(_line(v1))
    _delete(s, v1)
    await _gone(s, v1)
    resolved = await s.events(_line(v1))
    assert {e["data"]["change"]["reason"] for e in resolved} == {"project_deleted"}
    assert suppressed["subject"] not in {e["subject"] for e in resolved}  # it stays suppressed
    v2 = next_version(v1, "2", seconds=120)  # the name uploaded again: a new project
    s.publish(v2)
    await s.sync(v2)
    events = await s.events(_line(v1))
    assert sorted(
        e["subject"] for e in events if e["data"]["change"]["kind"] == "opened"
    ) == sorted(e["subject"] for e in resolved)
    (carried,) = [e for e in events if e["subject"] == suppressed["subject"]]
    change = carried["data"]["change"]
    assert (change["kind"], change["analysis_lost_in_dt"]) == ("changed", True)


async def test_a_resync_leaves_a_deleted_current_version_deleted(series) -> None:
    """`state resync` of a line whose current version DT deleted republishes under it and
    leaves it deleted (no resync writes deleted_at; review 3): the line stays adrift, so the
    deletion of the version it was to follow closes it."""
    s = await series()
    v1, v2 = await _two_versions(s)
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


@pytest.mark.parametrize("state_url", ["postgresql"], indirect=True)  # SQLite: no such race
async def test_an_export_racing_a_gone_commit_writes_no_deleted_version_back(
    series, state_url: str
) -> None:
    """PostgreSQL, READ COMMITTED: the gone transaction of 2 has deleted 2's line_versions row
    and set deleted_at, not committed; 1's export transaction reads deleted_at (NULL: not
    committed), its upsert of 2's row waits on the deleted row, and inserts it after the commit."""
    # (SQLite's BEGIN IMMEDIATE serializes the two writers: the race is PostgreSQL's alone)
    s = await series()
    v1, v2 = await _two_versions(s)
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
    v1, v2 = await _two_versions(s)
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
