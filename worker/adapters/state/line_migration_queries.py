"""The state store's SQL for `state migrate` to lines: the projects a per-project store holds, a
project's findings with its revision, and a line written silently from them (no outbox row), in
one transaction that checks neither the project nor the line moved since they were read."""

from __future__ import annotations

import time
from typing import Any

from worker.adapters.state import line_queries
from worker.adapters.state.backend import Dialect, rollback
from worker.adapters.state.queries import _STORED_COLUMNS, _stored
from worker.core.line_migration import StoredProject
from worker.core.transitions import Stored


class ProjectMoved(Exception):
    """A job applied an export of the project after its findings were read: read again."""


def stored_projects(cursor: Any, dialect: Dialect) -> list[StoredProject]:
    """Every project the store holds an applied export of (not deleted in DT), by uuid."""
    cursor.execute(
        "SELECT uuid, name, version, revision, last_seen_at FROM projects "
        "WHERE deleted_at IS NULL AND name IS NOT NULL AND last_exported_at IS NOT NULL "
        "ORDER BY uuid"
    )
    return [
        StoredProject(uuid=u, name=n, version=v, revision=r, last_applied_at=at)
        for u, n, v, r, at in cursor.fetchall()
    ]


def project_findings(cursor: Any, dialect: Dialect, project: str) -> tuple[int, list[Stored]]:
    """The project's revision, then its open and suppressed findings (read in this order: a job
    committing in between makes the revision older than the findings, and the write refuses)."""
    cursor.execute(dialect.sql("SELECT revision FROM projects WHERE uuid = %s"), (project,))
    row = cursor.fetchone()
    revision = -1 if row is None else int(row[0])
    cursor.execute(
        dialect.sql(
            f"SELECT {_STORED_COLUMNS} FROM findings "
            "WHERE project = %s AND status IN ('open', 'suppressed')"
        ),
        (project,),
    )
    return revision, [_stored(r) for r in cursor.fetchall()]


def write_line(
    cursor: Any, dialect: Dialect, part: line_queries.LinePart, project: str, revision: int
) -> None:
    """The line's row, versions and state: ProjectMoved when the project's revision is no longer
    ``revision``, line_queries.LineMoved when the line's is not the move's expected one."""
    cursor.execute(dialect.begin)
    try:
        if dialect.lock_project:
            cursor.execute(dialect.sql(dialect.lock_project), (project,))
        cursor.execute(dialect.sql("SELECT revision FROM projects WHERE uuid = %s"), (project,))
        row = cursor.fetchone()
        if row is None or int(row[0]) != revision:
            raise ProjectMoved(project)
        events = line_queries.write(cursor, dialect, part, revision, time.time())
        if events:  # a migration publishes nothing: a move that made events is a mistake
            raise ValueError(f"line {part.line.id}: a migration made {len(events)} outbox rows")
        cursor.execute("COMMIT")
    except BaseException:
        rollback(cursor)
        raise
