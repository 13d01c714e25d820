"""What the console's Lines pages read from the state store (migration 0006): a page of lines by
name, searchable and filtered by tag, and one line with its versions. Bounded like
console_queries: a page names its size, and no line's state blob or history is read for the
list: the oldest open finding's age and the time to resolve are kept on the line's row
(migration 0009)."""

from __future__ import annotations

import dataclasses
from typing import Any

from worker.adapters.state.backend import Dialect
from worker.adapters.state.console_queries import Page, _bounded, _tagged, _tags_of, tags
from worker.adapters.state.line_queries import (
    LIVE_VERSIONS,
    SEVERITIES,
    VERSION_COLUMNS,
    VersionRow,
    _bool,
)
from worker.core.lines import Line

_OPEN = ", ".join(f"l.open_{severity}" for severity in SEVERITIES)
_COLUMNS = (
    "l.id, l.grp, l.name, l.track, l.current_project, l.current_version, l.revision, "
    "l.updated_at, l.last_change_at, p.last_outcome, p.last_outcome_at, p.tags, "
    f"l.oldest_open_at, l.resolved_count, l.resolved_seconds, p.deleted_at, {_OPEN}"
)


@dataclasses.dataclass(frozen=True, slots=True)
class LineRow:
    id: str
    group: str
    name: str
    track: str | None
    current_project: str | None
    current_version: str | None
    revision: int
    updated_at: float | None  # when a job last moved the line (its current version synced)
    last_change_at: float | None  # when a job last published a change of the line
    last_outcome: str | None  # the current version's project's last job outcome
    last_outcome_at: float | None
    tags: list[str]  # the current version's DT tags
    oldest_open_at: float | None  # the longest-open open finding's open time
    resolved: int  # findings resolved (merges left out), since migration 0009
    resolve_seconds: float | None  # their mean time open
    current_deleted: bool  # DT deleted the current version: waiting for the next, or closed
    open: dict[str, int]

    @property
    def open_total(self) -> int:
        return sum(self.open.values())


def _line_row(row: Any) -> LineRow:
    return LineRow(
        id=row[0],
        group=row[1],
        name=row[2],
        track=row[3],
        current_project=row[4],
        current_version=row[5],
        revision=int(row[6]),
        updated_at=row[7],
        last_change_at=row[8],
        last_outcome=row[9],
        last_outcome_at=row[10],
        tags=_tags_of(row[11]),
        oldest_open_at=row[12],
        resolved=int(row[13]),
        resolve_seconds=float(row[14]) / int(row[13]) if row[13] else None,
        current_deleted=row[15] is not None,
        open=dict(zip(SEVERITIES, (int(n) for n in row[16:]), strict=True)),
    )


def lines(
    cursor: Any, dialect: Dialect, search: str | None, offset: int, limit: int, tag: str | None
) -> Page:
    """One page of lines by name (then group, track), whose name contains ``search`` and whose
    current version has the DT tag ``tag`` (project_tags' primary key)."""
    offset, limit = _bounded(offset, limit)
    where: list[str] = []
    params: list[str] = []
    if search:
        pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern += "%"
        where.append("LOWER(l.name) LIKE %s ESCAPE '\\'")
        params.append(pattern)
    if tag:
        # the projects' condition, on the line's current version
        where.append(_tagged(cursor, dialect, tag).replace("p.uuid", "l.current_project"))
        params.append(tag)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    cursor.execute(
        dialect.sql(
            f"SELECT {_COLUMNS} FROM lines l LEFT JOIN projects p ON p.uuid = l.current_project "
            f"{clause} ORDER BY l.name, l.grp, COALESCE(l.track, ''), l.id LIMIT %s OFFSET %s"
        ),
        (*params, limit + 1, offset),
    )
    rows = cursor.fetchall()
    return Page([_line_row(row) for row in rows[:limit]], offset, limit, len(rows) > limit)


def lines_and_tags(
    cursor: Any, dialect: Dialect, search: str | None, offset: int, limit: int, tag: str | None
) -> tuple[Page, list[str]]:
    """The Lines page's reads, in one unit of work."""
    return lines(cursor, dialect, search, offset, limit, tag), tags(cursor, dialect)


@dataclasses.dataclass(frozen=True, slots=True)
class LineDetail:
    row: LineRow
    source: str
    versions: list[VersionRow]  # newest DT version first (lastBomImport), then by version
    state: bytes | None  # line_state.pack as of row.revision


def line(cursor: Any, dialect: Dialect, line_id: str) -> LineDetail | None:
    """A line's row, versions and packed state, read together (one revision of each)."""
    cursor.execute(
        dialect.sql(
            f"SELECT {_COLUMNS}, l.source, l.state FROM lines l "
            "LEFT JOIN projects p ON p.uuid = l.current_project WHERE l.id = %s"
        ),
        (line_id,),
    )
    row = cursor.fetchone()
    if row is None:
        return None
    cursor.execute(  # no version DT deleted (line_queries.LIVE_VERSIONS)
        dialect.sql(
            f"SELECT {VERSION_COLUMNS} FROM {LIVE_VERSIONS} AND v.line = %s "
            "ORDER BY COALESCE(v.last_bom_import, 0) DESC, v.version DESC, v.project"
        ),
        (line_id,),
    )
    versions = [
        VersionRow(project, version, _bool(latest), _bool(active), bom, applied)
        for _, project, version, latest, active, bom, applied in cursor.fetchall()
    ]
    state = row[-1]
    return LineDetail(
        _line_row(row[:-2]), row[-2], versions, None if state is None else bytes(state)
    )


def named(cursor: Any, dialect: Dialect, line_ids: list[str]) -> dict[str, Line]:
    """The lines of ``line_ids`` the store knows (the Sync form's ticked lines), by id."""
    if not line_ids:
        return {}
    marks = ", ".join(["%s"] * len(line_ids))
    cursor.execute(
        dialect.sql(f"SELECT id, source, grp, name, track FROM lines WHERE id IN ({marks})"),
        line_ids,
    )
    return {row[0]: Line(row[1], row[2], row[3], row[4]) for row in cursor.fetchall()}
