"""The state store's SQL for lines (migration 0006): a line's stored state, its versions, and
the line part of a project's apply (``queries.apply`` runs ``write`` in its transaction)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from worker.adapters.state import line_history_queries
from worker.adapters.state.backend import Dialect
from worker.core.events import SEVERITY_RANK
from worker.core.line_compare import LineTransition
from worker.core.lines import Line
from worker.core.outbox_rounds import Round

SEVERITIES = tuple(SEVERITY_RANK)


class LineMoved(Exception):
    """Another writer moved the line meanwhile: read and compare again (as StateMoved)."""


@dataclasses.dataclass(frozen=True, slots=True)
class StoredLine:
    """A line's row: what a job compares against, and what it checks on commit."""

    id: str
    revision: int  # 0: no row yet
    sequence: int  # the last finding-change.v2 sequence used
    current_project: str | None
    current_version: str | None
    project_revision: int | None  # the current project's revision when the line last moved


@dataclasses.dataclass(frozen=True, slots=True)
class VersionFacts:
    """One version of a line as DT listed it (a ``line_versions`` row)."""

    project: str
    version: str | None
    is_latest: bool | None
    active: bool | None
    last_bom_import: int | None
    applied: bool = False  # this job applied an export of it: last_applied_at is now


@dataclasses.dataclass(frozen=True, slots=True)
class LineMove:
    """The line moved by an export of its current version: its new state and events."""

    expected_revision: int  # StoredLine.revision as read (0: no row yet)
    current_project: str
    current_version: str | None
    state: bytes | None  # None: the stored state and counts stand (the fast path)
    open_counts: dict[str, int] | None  # by severity
    events: Callable[[int], Sequence[Round]]  # numbered from the line's next sequence
    changed: bool  # transitions were published: last_change_at is now
    transitions: Sequence[LineTransition] = ()  # those published: the line's history
    oldest_open_at: float | None = None  # with ``state``: its longest-open open finding's


@dataclasses.dataclass(frozen=True, slots=True)
class LinePart:
    """The line part of a project's apply: the versions seen, and the move (if any)."""

    line: Line
    versions: Sequence[VersionFacts]
    move: LineMove | None = None
    forget: str | None = None  # a project DT deleted: its line_versions rows go (every line's)


def read(cursor: Any, dialect: Dialect, line_id: str) -> StoredLine:
    """The line's row without its state (``read_state`` reads that, when a job needs it)."""
    cursor.execute(
        dialect.sql(
            "SELECT revision, sequence, current_project, current_version, project_revision "
            "FROM lines WHERE id = %s"
        ),
        (line_id,),
    )
    row = cursor.fetchone()
    if row is None:
        return StoredLine(line_id, 0, 0, None, None, None)
    revision, sequence, project, version, project_revision = row
    return StoredLine(line_id, revision, sequence, project, version, project_revision)


def read_state(cursor: Any, dialect: Dialect, line_id: str, revision: int) -> bytes | None:
    """The line's packed state as of ``revision``; LineMoved when the line moved since."""
    cursor.execute(dialect.sql("SELECT revision, state FROM lines WHERE id = %s"), (line_id,))
    row = cursor.fetchone()
    if row is None:
        if revision:
            raise LineMoved(line_id)
        return None
    if row[0] != revision:
        raise LineMoved(line_id)
    return None if row[1] is None else bytes(row[1])


def write(
    cursor: Any,
    dialect: Dialect,
    part: LinePart,
    project_revision: int,
    now: float,
    trace_parent: str | None = None,
    keep_since: float | None = None,
) -> list[tuple[Any, ...]]:
    """The line's rows, in the caller's transaction; the outbox rows of its events (line id in
    the ``project`` column: the relay keeps a line's events in order) for the caller to insert.
    LineMoved when the line's revision is not the one the job read."""
    sql, line = dialect.sql, part.line
    cursor.execute(
        sql("INSERT INTO lines (id, source, grp, name, track) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO NOTHING"),
        (line.id, line.source, line.group, line.name, line.track),
    )  # fmt: skip
    _versions(cursor, dialect, line.id, part.versions, now)
    if part.forget is not None:
        cursor.execute(sql("DELETE FROM line_versions WHERE project = %s"), (part.forget,))
    move = part.move
    if move is None:
        return []
    cursor.execute(
        sql("SELECT revision, sequence FROM lines WHERE id = %s"
            + (" FOR UPDATE" if dialect.name == "postgresql" else "")),
        (line.id,),
    )  # fmt: skip
    revision, sequence = cursor.fetchone()
    if revision != move.expected_revision:
        raise LineMoved(line.id)
    rounds = move.events(sequence + 1)
    events = sum(r.events for r in rounds)
    if move.state is not None and move.open_counts is not None:
        opens = ", ".join(f"open_{severity} = %s" for severity in SEVERITIES)
        counts = move.open_counts
        cursor.execute(
            sql(f"UPDATE lines SET state = %s, {opens}, oldest_open_at = %s WHERE id = %s"),
            (move.state, *(counts.get(s, 0) for s in SEVERITIES), move.oldest_open_at, line.id),
        )
    resolved = [  # the Lines list's time to resolve, kept as a count and a sum
        max(0.0, t.resolved_at - t.opened_at)
        for t in move.transitions
        if t.kind == "resolved" and t.reason != "merged" and t.resolved_at is not None
    ]
    if resolved:
        cursor.execute(
            sql("UPDATE lines SET resolved_count = resolved_count + %s, "
                "resolved_seconds = resolved_seconds + %s WHERE id = %s"),
            (len(resolved), sum(resolved), line.id),
        )  # fmt: skip
    cursor.execute(
        sql("UPDATE lines SET current_project = %s, current_version = %s, "
            "project_revision = %s, revision = %s, sequence = %s, "
            "last_change_at = CASE WHEN %s THEN %s ELSE last_change_at END, updated_at = %s "
            "WHERE id = %s"),
        (
            move.current_project, move.current_version, project_revision, revision + 1,
            sequence + events, move.changed and events > 0, now, now, line.id,
        ),
    )  # fmt: skip
    line_history_queries.write(cursor, dialect, line.id, move.transitions, now, keep_since)
    return [
        (line.id, sequence + 1 + r.offset, r.event_id, r.type, r.routing_key, r.body, now,
         trace_parent, r.events)
        for r in rounds
    ]  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class HeldLine:
    """A line a project DT deleted is a version of, or the current one of."""

    line: Line
    adrift: bool  # its current version is that project, or another DT deleted before


def holding(
    cursor: Any, dialect: Dialect, project: str, source: str, name: str | None
) -> list[HeldLine]:
    """The lines of ``source`` (this worker's: a line of another source is left alone)
    ``project`` is a version of (a ``line_versions`` row) or the current one of, and those of
    its name whose current version DT deleted (the project may have left their versions
    already: another version's gone job forgot it); ``adrift``:
    the line's current version is ``project`` or one DT deleted (the store's ``deleted_at``,
    set by that version's gone job: its line waits for its next current version's export)."""
    cursor.execute(
        dialect.sql(
            "SELECT l.source, l.grp, l.name, l.track, CASE WHEN l.current_project = %s "
            "OR p.deleted_at IS NOT NULL THEN 1 ELSE 0 END "
            "FROM lines l LEFT JOIN projects p ON p.uuid = l.current_project WHERE l.id IN ("
            "SELECT id FROM lines WHERE current_project = %s "  # each by an index
            "UNION SELECT line FROM line_versions WHERE project = %s "
            "UNION SELECT n.id FROM lines n JOIN projects d ON d.uuid = n.current_project "
            "WHERE n.source = %s AND n.name = %s AND d.deleted_at IS NOT NULL) "
            "AND l.source = %s ORDER BY l.id"  # a line of another source is not this worker's
        ),
        (project, project, project, source, name, source),
    )
    return [HeldLine(Line(*row[:4]), bool(row[4])) for row in cursor.fetchall()]


def _versions(
    cursor: Any, dialect: Dialect, line_id: str, versions: Sequence[VersionFacts], now: float
) -> None:
    deleted = _deleted(cursor, dialect, [v.project for v in versions if not v.applied])
    versions = [v for v in versions if v.project not in deleted]
    if not versions:
        return
    cursor.executemany(
        dialect.sql(
            "INSERT INTO line_versions (line, project, version, is_latest, active, "
            "last_bom_import, last_applied_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (line, project) DO UPDATE SET version = excluded.version, "
            "is_latest = excluded.is_latest, active = excluded.active, "
            "last_bom_import = excluded.last_bom_import, "
            "last_applied_at = COALESCE(excluded.last_applied_at, line_versions.last_applied_at)"
        ),
        [
            (
                line_id,
                v.project,
                v.version,
                _flag(v.is_latest),
                _flag(v.active),
                v.last_bom_import,
                now if v.applied else None,
            )
            for v in versions
        ],
    )


def _deleted(cursor: Any, dialect: Dialect, projects: Sequence[str]) -> set[str]:
    """Those of ``projects`` DT deleted (their gone job committed): a job that listed DT before
    writes no row of theirs back. The version a job applies is never one of them."""
    found: set[str] = set()
    for start in range(0, len(projects), 500):  # bounded IN lists, for both databases
        chunk = projects[start : start + 500]
        marks = ", ".join(["%s"] * len(chunk))
        cursor.execute(
            dialect.sql(
                f"SELECT uuid FROM projects WHERE deleted_at IS NOT NULL AND uuid IN ({marks})"
            ),
            tuple(chunk),
        )
        found.update(uuid for (uuid,) in cursor.fetchall())
    return found


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


@dataclasses.dataclass(frozen=True, slots=True)
class LineReport:
    """A line for `status` and the console: its row, and its versions."""

    id: str
    source: str
    group: str
    name: str
    track: str | None
    current_project: str | None
    current_version: str | None
    sequence: int
    open_counts: dict[str, int]
    last_change_at: float | None
    updated_at: float | None
    versions: list[VersionRow]
    current_deleted: bool = False  # DT deleted the current version (its gone job committed)


@dataclasses.dataclass(frozen=True, slots=True)
class VersionRow:
    project: str
    version: str | None
    is_latest: bool | None
    active: bool | None
    last_bom_import: int | None
    last_applied_at: float | None


VERSION_COLUMNS = (
    "v.line, v.project, v.version, v.is_latest, v.active, v.last_bom_import, v.last_applied_at"
)
# a line's versions but those DT deleted: the gone job deletes their rows, but on PostgreSQL an
# export that read deleted_at before that job committed writes its row back (``_deleted`` takes
# no lock: a FOR SHARE there deadlocks two exports of one line), so readers leave them out
LIVE_VERSIONS = (
    "line_versions v LEFT JOIN projects p ON p.uuid = v.project WHERE p.deleted_at IS NULL"
)


def reports(cursor: Any, dialect: Dialect, line_id: str | None = None) -> list[LineReport]:
    """Every line (by name, then track), or the one of ``line_id``, with its versions."""
    opens = ", ".join(f"l.open_{s}" for s in SEVERITIES)
    where, args = ("WHERE l.id = %s", (line_id,)) if line_id else ("", ())
    cursor.execute(
        dialect.sql(
            "SELECT l.id, l.source, l.grp, l.name, l.track, l.current_project, "
            "l.current_version, l.sequence, l.last_change_at, l.updated_at, "
            f"p.deleted_at IS NOT NULL, {opens} FROM lines l "
            f"LEFT JOIN projects p ON p.uuid = l.current_project {where} "
            "ORDER BY l.name, l.grp, COALESCE(l.track, ''), l.id"
        ),
        args,
    )
    rows = cursor.fetchall()
    cursor.execute(  # no version DT deleted (an export racing its gone job may write it back)
        dialect.sql(
            f"SELECT {VERSION_COLUMNS} FROM {LIVE_VERSIONS}"
            + (" AND v.line = %s" if line_id else "")
            + " ORDER BY v.project"
        ),
        args,
    )
    versions: dict[str, list[VersionRow]] = {}
    for line, project, version, latest, active, bom, applied in cursor.fetchall():
        versions.setdefault(line, []).append(
            VersionRow(project, version, _bool(latest), _bool(active), bom, applied)
        )
    return [
        LineReport(
            id=r[0], source=r[1], group=r[2], name=r[3], track=r[4], current_project=r[5],
            current_version=r[6], sequence=r[7], last_change_at=r[8], updated_at=r[9],
            current_deleted=bool(r[10]), open_counts=dict(zip(SEVERITIES, r[11:], strict=True)),
            versions=versions.get(r[0], []),
        )
        for r in rows
    ]  # fmt: skip


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)
