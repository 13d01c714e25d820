"""What the operators' console reads from the state store: bounded and paged, so that a store of
100,000 projects answers each page in milliseconds.

Every query names its page size (at most ``MAX_PAGE`` rows) and uses the indexes the store
already has: ``projects`` by its primary key, ``findings`` by ``findings_by_project``. The pages
speak of projects (a DT project, one UUID); when lines arrive they replace ``ProjectRow``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from worker.adapters.state.backend import Dialect
from worker.adapters.state.queries import SEVERITIES

MAX_PAGE = 200
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
    tags: list[str] = dataclasses.field(default_factory=list)

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


def projects(
    cursor: Any,
    dialect: Dialect,
    search: str | None,
    offset: int,
    limit: int,
    tag: str | None = None,
) -> Page:
    """One page of projects by name, with a name (or UUID) that contains ``search`` and, when
    given, the DT tag ``tag`` exactly (through project_tags' primary key)."""
    offset, limit = _bounded(offset, limit)
    where: list[str] = []
    params: list[str] = []
    if search:
        pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern += "%"
        where.append("(LOWER(p.name) LIKE %s ESCAPE '\\' OR p.uuid LIKE %s ESCAPE '\\')")
        params += [pattern, pattern]
    if tag:
        where.append(_tagged(cursor, dialect, tag))
        params.append(tag)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    cursor.execute(
        dialect.sql(
            "SELECT p.uuid, p.name, p.version, p.last_seen_at, p.last_outcome, "
            f"p.last_outcome_at, p.deleted_at, {_OPEN}, p.tags FROM projects p {clause} "
            "ORDER BY p.name, p.version, p.uuid LIMIT %s OFFSET %s"
        ),
        (*params, limit + 1, offset),
    )
    rows = cursor.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    extra = _per_project(cursor, dialect, [row[0] for row in rows])
    return Page([_project_row(row, extra) for row in rows], offset, limit, more)


MAX_TAGS = 500  # the tag filter's choices
COMMON_TAG = 1000  # projects: from here on a tag's page walks projects_by_name


def _tagged(cursor: Any, dialect: Dialect, tag: str) -> str:
    """The condition for the projects tagged ``tag``. A tag of few projects: those projects,
    sorted (SQLite sorted a 15,000-project tag of 100,000 in 65 ms); a common one: the
    projects in name order (projects_by_name), each looked up in project_tags' key, until the
    page is full (0.4 ms)."""
    cursor.execute(
        dialect.sql("SELECT COUNT(*) FROM (SELECT 1 FROM project_tags WHERE tag = %s LIMIT %s) t"),
        (tag, COMMON_TAG),
    )
    (count,) = cursor.fetchone()
    if count < COMMON_TAG:
        return "p.uuid IN (SELECT project FROM project_tags WHERE tag = %s)"
    return "EXISTS (SELECT 1 FROM project_tags t WHERE t.tag = %s AND t.project = p.uuid)"


def tags(cursor: Any, dialect: Dialect) -> list[str]:
    """The tags the store's projects have (the first MAX_TAGS, in order), from project_tags'
    primary key."""
    cursor.execute(
        dialect.sql("SELECT DISTINCT tag FROM project_tags ORDER BY tag LIMIT %s"), (MAX_TAGS,)
    )
    return [row[0] for row in cursor.fetchall()]


def project(cursor: Any, dialect: Dialect, uuid: str) -> ProjectRow | None:
    cursor.execute(
        dialect.sql(
            "SELECT p.uuid, p.name, p.version, p.last_seen_at, p.last_outcome, "
            f"p.last_outcome_at, p.deleted_at, {_OPEN}, p.tags FROM projects p WHERE p.uuid = %s"
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
        tags=_tags_of(row[7 + len(SEVERITIES)]),
    )


def _tags_of(text: str | None) -> list[str]:
    found = orjson.loads(text) if text else []
    return [str(tag) for tag in found] if isinstance(found, list) else []


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
class Changed:
    field: str
    old: Any
    new: Any


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    at: float
    what: str  # opened, changed, resolved, suppressed, reopened
    finding_key: str
    severity: str
    changes: list[Changed] = dataclasses.field(default_factory=list)  # changed: old and new
    reason: str | None = None  # resolved: why


@dataclasses.dataclass(frozen=True, slots=True)
class Timeline:
    page: Page
    recorded: bool  # from finding_history; False: derived from the findings' latest state


def timeline(cursor: Any, dialect: Dialect, uuid: str, offset: int, limit: int) -> Timeline:
    """A project's transitions, newest recorded first, from finding_history_by_project. A project
    with no history recorded (synced only before migration 0007) gets what the findings table
    tells: when each finding was opened or reopened last, and resolved or suppressed."""
    offset, limit = _bounded(offset, limit)
    cursor.execute(
        dialect.sql(
            "SELECT at, kind, finding_key, severity, changes, reason FROM finding_history "
            "WHERE project = %s ORDER BY recorded_at DESC, id DESC LIMIT %s OFFSET %s"
        ),
        (uuid, limit + 1, offset),
    )
    rows = cursor.fetchall()
    if rows or offset > 0 or _recorded(cursor, dialect, uuid):
        found = [
            Change(float(at), kind, key, severity, _changes(changes), reason)
            for at, kind, key, severity, changes, reason in rows[:limit]
        ]
        return Timeline(Page(found, offset, limit, len(rows) > limit), recorded=True)
    return Timeline(derived_timeline(cursor, dialect, uuid, offset, limit), recorded=False)


def _recorded(cursor: Any, dialect: Dialect, uuid: str) -> bool:
    cursor.execute(dialect.sql("SELECT 1 FROM finding_history WHERE project = %s LIMIT 1"), (uuid,))
    return cursor.fetchone() is not None


def _changes(text: str | None) -> list[Changed]:
    found = orjson.loads(text) if text else {}
    return [Changed(name, *values) for name, values in found.items() if len(values) == 2]


def derived_timeline(cursor: Any, dialect: Dialect, uuid: str, offset: int, limit: int) -> Page:
    """A project's changes, newest first, as the findings table records them: when each
    finding was first opened or last reopened, and when it was resolved or suppressed."""
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


def projects_and_tags(
    cursor: Any,
    dialect: Dialect,
    search: str | None,
    offset: int,
    limit: int,
    tag: str | None,
) -> tuple[Page, list[str]]:
    """The Projects page's reads, in one unit of work."""
    return projects(cursor, dialect, search, offset, limit, tag), tags(cursor, dialect)
