"""What the operators' console reads from the state store: bounded and paged, so that a store of
100,000 projects answers each page in milliseconds.

Every query names its page size (at most ``MAX_PAGE`` rows) and uses the indexes the store
already has: ``projects`` by its primary key, ``findings`` by ``findings_by_project``. The pages
speak of projects (a DT project, one UUID); when lines arrive they replace ``ProjectRow``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from worker.adapters.state.backend import Dialect
from worker.adapters.state.queries import SEVERITIES

MAX_PAGE = 200
RECENT_SECONDS = 300.0  # "jobs per minute" counts the outcomes of the last five minutes
_OPEN = ", ".join(f"p.open_{severity}" for severity in SEVERITIES)


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectRow:
    uuid: str
    name: str | None
    version: str | None
    last_seen_at: float | None
    last_outcome: str | None
    last_outcome_at: float | None
    deleted: bool
    open: dict[str, int]
    oldest_open_at: float | None
    mean_resolve_seconds: float | None

    @property
    def open_total(self) -> int:
        return sum(self.open.values())


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    rows: list[Any]
    offset: int
    limit: int
    more: bool  # another page follows

    @property
    def next_offset(self) -> int:
        return self.offset + self.limit

    @property
    def previous_offset(self) -> int:
        return max(0, self.offset - self.limit)


def _bounded(offset: int, limit: int) -> tuple[int, int]:
    return max(0, offset), max(1, min(limit, MAX_PAGE))


def projects(cursor: Any, dialect: Dialect, search: str | None, offset: int, limit: int) -> Page:
    """One page of projects by name, with a name (or UUID) that contains ``search``."""
    offset, limit = _bounded(offset, limit)
    where, params = "", tuple[str, ...]()
    if search:
        pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern += "%"
        where = "WHERE (LOWER(p.name) LIKE %s ESCAPE '\\' OR p.uuid LIKE %s ESCAPE '\\')"
        params = (pattern, pattern)
    cursor.execute(
        dialect.sql(
            "SELECT p.uuid, p.name, p.version, p.last_seen_at, p.last_outcome, "
            f"p.last_outcome_at, p.deleted_at, {_OPEN} FROM projects p {where} "
            "ORDER BY p.name, p.version, p.uuid LIMIT %s OFFSET %s"
        ),
        (*params, limit + 1, offset),
    )
    rows = cursor.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    extra = _per_project(cursor, dialect, [row[0] for row in rows])
    return Page([_project_row(row, extra) for row in rows], offset, limit, more)


def project(cursor: Any, dialect: Dialect, uuid: str) -> ProjectRow | None:
    cursor.execute(
        dialect.sql(
            "SELECT p.uuid, p.name, p.version, p.last_seen_at, p.last_outcome, "
            f"p.last_outcome_at, p.deleted_at, {_OPEN} FROM projects p WHERE p.uuid = %s"
        ),
        (uuid,),
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return _project_row(row, _per_project(cursor, dialect, [uuid]))


def _project_row(row: Any, extra: dict[str, tuple[float | None, float | None]]) -> ProjectRow:
    uuid, name, version, seen, outcome, outcome_at, deleted = row[:7]
    oldest, resolve = extra.get(uuid, (None, None))
    return ProjectRow(
        uuid=uuid,
        name=name,
        version=version,
        last_seen_at=seen,
        last_outcome=outcome,
        last_outcome_at=outcome_at,
        deleted=deleted is not None,
        open=dict(zip(SEVERITIES, (int(n) for n in row[7 : 7 + len(SEVERITIES)]), strict=True)),
        oldest_open_at=oldest,
        mean_resolve_seconds=resolve,
    )


def _per_project(
    cursor: Any, dialect: Dialect, uuids: list[str]
) -> dict[str, tuple[float | None, float | None]]:
    """The oldest open finding and the mean time to resolve, for the projects of one page
    only (both walk a project's findings through findings_by_project)."""
    if not uuids:
        return {}
    marks = ", ".join(["%s"] * len(uuids))
    cursor.execute(
        dialect.sql(
            "SELECT project, MIN(CASE WHEN status = 'open' THEN opened_at END), "
            "AVG(CASE WHEN status = 'resolved' THEN resolved_at - opened_at END) "
            f"FROM findings WHERE project IN ({marks}) GROUP BY project"
        ),
        uuids,
    )
    return {
        uuid: (
            None if oldest is None else float(oldest),
            None if resolve is None else float(resolve),
        )
        for uuid, oldest, resolve in cursor.fetchall()
    }


@dataclasses.dataclass(frozen=True, slots=True)
class FindingRow:
    finding_key: str
    status: str
    severity: str
    opened_at: float
    resolved_at: float | None
    snapshot: str  # the last known finding, JSON (DT's text: untrusted)


def findings(
    cursor: Any, dialect: Dialect, uuid: str, status: str | None, offset: int, limit: int
) -> Page:
    """A project's findings, the latest opened first, optionally of one status."""
    offset, limit = _bounded(offset, limit)
    where, params = ("AND status = %s", (status,)) if status else ("", ())
    cursor.execute(
        dialect.sql(
            "SELECT finding_key, status, severity, opened_at, resolved_at, snapshot "
            f"FROM findings WHERE project = %s {where} "
            "ORDER BY opened_at DESC, finding_key LIMIT %s OFFSET %s"
        ),
        (uuid, *params, limit + 1, offset),
    )
    rows = cursor.fetchall()
    found = [FindingRow(*row) for row in rows[:limit]]
    return Page(found, offset, limit, len(rows) > limit)


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    at: float
    what: str  # opened, reopened, resolved, suppressed
    finding_key: str
    severity: str


def timeline(cursor: Any, dialect: Dialect, uuid: str, offset: int, limit: int) -> Page:
    """A project's changes, newest first, as the findings table records them: when each
    finding was first opened or last reopened, and when it was resolved or suppressed. The
    store keeps each finding's latest state only: older cycles and "changed" are not here."""
    offset, limit = _bounded(offset, limit)
    cursor.execute(
        dialect.sql(
            "SELECT at, what, finding_key, severity FROM ("
            " SELECT opened_at AS at, CASE WHEN first_seen < opened_at THEN 'reopened'"
            " ELSE 'opened' END AS what, finding_key, severity FROM findings"
            " WHERE project = %s"
            " UNION ALL"
            " SELECT resolved_at AS at, status AS what, finding_key, severity FROM findings"
            " WHERE project = %s AND resolved_at IS NOT NULL"
            ") AS changes ORDER BY at DESC, finding_key LIMIT %s OFFSET %s"
        ),
        (uuid, uuid, limit + 1, offset),
    )
    rows = cursor.fetchall()
    found = [Change(float(at), what, key, severity) for at, what, key, severity in rows[:limit]]
    return Page(found, offset, limit, len(rows) > limit)


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    uuid: str
    name: str | None
    version: str | None
    outcome: str
    at: float


@dataclasses.dataclass(frozen=True, slots=True)
class Activity:
    recent: list[Outcome]  # the latest outcomes, newest first
    settled_recently: int  # outcomes within RECENT_SECONDS
    projects: int


def activity(cursor: Any, dialect: Dialect, now: float, limit: int) -> Activity:
    """The projects whose jobs settled last: each project keeps its last outcome only."""
    cursor.execute(
        dialect.sql(
            "SELECT uuid, name, version, last_outcome, last_outcome_at FROM projects "
            "WHERE last_outcome_at IS NOT NULL ORDER BY last_outcome_at DESC LIMIT %s"
        ),
        (max(1, min(limit, MAX_PAGE)),),
    )
    recent = [Outcome(*row) for row in cursor.fetchall()]
    cursor.execute(
        dialect.sql("SELECT COUNT(*) FROM projects WHERE last_outcome_at >= %s"),
        (now - RECENT_SECONDS,),
    )
    (settled,) = cursor.fetchone()
    cursor.execute("SELECT COUNT(*) FROM projects WHERE deleted_at IS NULL")
    (count,) = cursor.fetchone()
    return Activity(recent, int(settled), int(count))
