"""The history the console reads (migration 0007): each settled job, each finding's
transitions, a project's tags. Bounded as they are written: the write that adds rows removes
those past the retention (DTRACK_WORKER_HISTORY_DAYS) or the cap."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson

from worker.adapters.state.backend import Dialect, rollback
from worker.core import finding_history
from worker.core.transitions import Transition

MAX_JOBS = 10_000  # job_history keeps the latest this many (and none past the retention)
MAX_ERROR = 500  # characters of a parked job's error
COPY_FROM = 500  # rows: PostgreSQL takes more by COPY (as queries does the findings)


@dataclasses.dataclass(frozen=True, slots=True)
class JobEntry:
    """A settled job, as job_history keeps it."""

    job_id: str
    project: str
    name: str | None
    kind: str  # the job's trigger
    run_id: str | None
    attempt: int
    outcome: str
    reason: str | None
    error: str | None
    started_at: float
    finished_at: float
    events: int | None
    transitions: int | None


def record_job(cursor: Any, dialect: Dialect, entry: JobEntry, keep_since: float) -> None:
    """The job's row (its project's version, and its name when the job had none, from the
    projects table), and the rows past the cap or the retention gone, in one transaction."""
    sql = dialect.sql
    error = None if entry.error is None else entry.error[:MAX_ERROR]
    cursor.execute(dialect.begin)
    try:
        cursor.execute(
            sql("INSERT INTO job_history (job_id, project, name, version, kind, run_id, attempt, "
                "outcome, reason, error, started_at, finished_at, events, transitions) "
                "SELECT %s, %s, COALESCE(%s, p.name), p.version, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s, %s FROM (SELECT 1 AS one) AS o LEFT JOIN projects p ON p.uuid = %s"),
            (entry.job_id, entry.project, entry.name, entry.kind, entry.run_id, entry.attempt,
             entry.outcome, entry.reason, error, entry.started_at, entry.finished_at,
             entry.events, entry.transitions, entry.project),
        )  # fmt: skip
        cursor.execute(sql("DELETE FROM job_history WHERE finished_at < %s"), (keep_since,))
        cursor.execute(  # then the cap (ids grow with time): those past the latest MAX_JOBS
            sql("DELETE FROM job_history WHERE id <= "
                "(SELECT id FROM job_history ORDER BY id DESC LIMIT 1 OFFSET %s)"),
            (MAX_JOBS,),
        )  # fmt: skip
        cursor.execute("COMMIT")
    except BaseException:
        rollback(cursor)
        raise


def write_transitions(
    cursor: Any,
    dialect: Dialect,
    project: str,
    transitions: Sequence[Transition],
    now: float,
    keep_since: float | None,
) -> None:
    """Within the Apply's transaction: the transitions in finding_history, and the project's
    rows recorded before the retention gone (through finding_history_by_project)."""
    if keep_since is not None:
        cursor.execute(
            dialect.sql("DELETE FROM finding_history WHERE project = %s AND recorded_at < %s"),
            (project, keep_since),
        )
    rows = [
        (project, e.finding_key, e.kind, e.at, now, e.severity, e.changes, e.reason)
        for e in finding_history.entries(transitions, now)
    ]
    if dialect.name == "postgresql" and len(rows) >= COPY_FROM:  # a first sync's many opened
        with cursor.copy(
            "COPY finding_history (project, finding_key, kind, at, recorded_at, severity, "
            "changes, reason) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "text", "text", "float8", "float8", "text", "text", "text"])
            for row in rows:
                copy.write_row(row)
    elif rows:
        cursor.executemany(
            dialect.sql(
                "INSERT INTO finding_history (project, finding_key, kind, at, recorded_at, "
                "severity, changes, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            ),
            rows,
        )


def write_tags(cursor: Any, dialect: Dialect, project: str, tags: Sequence[str]) -> None:
    """Within the Apply's transaction: the project's tags, rewritten only when they changed."""
    sql = dialect.sql
    text = orjson.dumps(sorted(set(tags))).decode()
    cursor.execute(sql("SELECT tags FROM projects WHERE uuid = %s"), (project,))
    row = cursor.fetchone()
    if row is not None and row[0] == text:
        return
    cursor.execute(sql("UPDATE projects SET tags = %s WHERE uuid = %s"), (text, project))
    cursor.execute(sql("DELETE FROM project_tags WHERE project = %s"), (project,))
    if tags:
        cursor.executemany(
            sql("INSERT INTO project_tags (tag, project) VALUES (%s, %s)"),
            [(tag, project) for tag in sorted(set(tags))],
        )
