"""The state store's SQL, as synchronous functions on one DB-API connection: each is one unit
of work (a read, or one transaction). ``store.Store`` runs them on its own threads."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from worker.adapters.state import history_queries, line_queries, packing
from worker.adapters.state.backend import Dialect, rollback
from worker.core.events import SEVERITY_RANK
from worker.core.outbox_rounds import Round
from worker.core.tracking import Prior
from worker.core.transitions import Stored, Transition, Write

SEVERITIES = tuple(SEVERITY_RANK)  # critical ... unassigned, the open_* columns' order
_OPEN_COLUMNS = ", ".join(f"open_{severity}" for severity in SEVERITIES)


class StateMoved(Exception):
    """Another writer applied an export of the project meanwhile: read and compare again."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectState:
    revision: int
    sequence: int  # the last sequence number used (unchanged while the revision is)
    last_exported_at: str | None
    priors: dict[str, Prior]
    known: bool  # the project has a row: it was synced before


@dataclasses.dataclass(frozen=True, slots=True)
class Committed:
    sequences: tuple[int, int]  # first and last used; (0, -1) when none
    events: int
    project: str = ""
    rounds: Sequence[Round] = ()  # the outbox rows written, numbered from sequences[0]


def read_state(cursor: Any, dialect: Dialect, project: str) -> ProjectState:
    cursor.execute(
        dialect.sql("SELECT revision, sequence, last_exported_at FROM projects WHERE uuid = %s"),
        (project,),
    )
    row = cursor.fetchone()
    cursor.execute(
        dialect.sql(
            "SELECT finding_key, status, fingerprint, epss FROM findings WHERE project = %s"
        ),
        (project,),
    )
    priors = {key: Prior(status, digest, epss) for key, status, digest, epss in cursor.fetchall()}
    if row is None:
        return ProjectState(0, 0, None, priors, known=False)
    return ProjectState(row[0], row[1], row[2], priors, known=True)


_STORED_COLUMNS = (
    "finding_key, status, severity, fingerprint, tracked, epss, snapshot, packed, first_seen, "
    "opened_at, resolved_at"
)


def _stored(row: Sequence[Any]) -> Stored:
    key, status, severity, digest, tracked, epss, text, packed, first, opened, resolved = row
    # a row with its snapshot as JSON: an older release wrote it (and it is read from that)
    snapshot = orjson.loads(text) if text else packing.unpack(key, bytes(packed))
    return Stored(
        key=key,
        status=status,
        severity=severity,
        fingerprint=digest,
        tracked=packing.tracked_of(tracked, snapshot),
        epss=epss,
        snapshot=snapshot,
        first_seen=first,
        opened_at=opened,
        resolved_at=resolved,
    )


def read_stored(
    cursor: Any, dialect: Dialect, project: str, keys: Iterable[str]
) -> dict[str, Stored]:
    wanted = sorted(keys)
    found: dict[str, Stored] = {}
    for start in range(0, len(wanted), 500):  # bounded IN lists, for both databases
        chunk = wanted[start : start + 500]
        marks = ", ".join(["%s"] * len(chunk))
        cursor.execute(
            dialect.sql(
                f"SELECT {_STORED_COLUMNS} FROM findings "
                f"WHERE project = %s AND finding_key IN ({marks})"
            ),
            (project, *chunk),
        )
        for row in cursor.fetchall():
            found[row[0]] = _stored(row)
    return found


def read_open(cursor: Any, dialect: Dialect, project: str) -> list[Stored]:
    cursor.execute(
        dialect.sql(
            f"SELECT {_STORED_COLUMNS} FROM findings WHERE project = %s AND status = 'open'"
        ),
        (project,),
    )
    return [_stored(row) for row in cursor.fetchall()]


@dataclasses.dataclass(frozen=True, slots=True)
class Apply:
    """One write to a project's state: findings, events (in order), and the project row."""

    project: str
    name: str | None
    version: str | None
    expected_revision: int | None  # None: no check (a command's write)
    writes: Sequence[Write]
    # the events, numbered from the given sequence (transitions, then e.g. the summary), in
    # outbox rounds: ``outbox_rounds.framed``
    events: Callable[[int], Sequence[Round]]
    exported_at: str | None  # recorded as the last applied export, when given
    outcome: str
    now: float
    # True: DT deleted the project (deleted_at is now); False: DT has it (deleted_at NULL);
    # None: not known (`state resync`): deleted_at stands
    deleted: bool | None = False
    fresh: bool = False  # the project had no findings stored: every write is an insert
    trace_parent: str | None = None  # the writing job's span, for the relay's trace link
    # the lines' versions, and their moves if any: the line an export moves, or the lines a
    # project DT deleted closes (more than one when DTRACK_WORKER_LINE_BY changed since)
    line: Sequence[line_queries.LinePart] = ()
    transitions: Sequence[Transition] = ()  # recorded in finding_history
    tags: Sequence[str] | None = None  # DT's tags of the project; None: not known, kept
    history_since: float | None = None  # finding_history's rows before this go (the store's)


def apply(cursor: Any, dialect: Dialect, work: Apply) -> Committed:
    """The whole write in one transaction, under the project's lock."""
    sql = dialect.sql
    rows = finding_rows(work.project, work.writes)  # packed before the lock is taken
    cursor.execute(dialect.begin)
    try:
        cursor.execute(
            sql("INSERT INTO projects (uuid, name, version) VALUES (%s, %s, %s) "
                "ON CONFLICT (uuid) DO NOTHING"),
            (work.project, work.name, work.version),
        )  # fmt: skip
        if dialect.lock_project:
            cursor.execute(sql(dialect.lock_project), (work.project,))
        cursor.execute(
            sql("SELECT revision, sequence FROM projects WHERE uuid = %s"), (work.project,)
        )
        revision, sequence = cursor.fetchone()
        if work.expected_revision is not None and revision != work.expected_revision:
            raise StateMoved(work.project)
        if rows:
            _write_findings(cursor, dialect, rows, fresh=work.fresh)
        first = sequence + 1
        rounds = work.events(first)
        events = sum(r.events for r in rounds)
        if rounds:  # a row per round of events, numbered as the events are
            _insert(
                cursor,
                dialect,
                _OUTBOX,
                [
                    (
                        work.project,
                        first + r.offset,
                        r.event_id,
                        r.type,
                        r.routing_key,
                        r.body,
                        work.now,
                        work.trace_parent,
                        r.events,
                    )
                    for r in rounds
                ],
            )
        for part in work.line:  # the lines move with the project's view, or not at all
            try:
                line_rows = line_queries.write(
                    cursor,
                    dialect,
                    part,
                    revision + 1,
                    work.now,
                    work.trace_parent,
                    work.history_since,
                )
            except line_queries.LineMoved as exc:
                raise StateMoved(work.project) from exc
            if line_rows:
                _insert(cursor, dialect, _OUTBOX, line_rows)
        _update_project(cursor, dialect, work, revision, sequence + events)
        history_queries.write_transitions(
            cursor, dialect, work.project, work.transitions, work.now, work.history_since
        )
        if work.tags is not None:
            history_queries.write_tags(cursor, dialect, work.project, work.tags)
        cursor.execute("COMMIT")
    except BaseException:
        rollback(cursor)  # never in place of the error (SQLite rolls back a full disk itself)
        raise
    return Committed((first, sequence + events), events, work.project, rounds)


_OUTBOX = (
    "outbox (project, sequence, event_id, type, routing_key, body, created_at, trace_parent, "
    "events)"
)
COPY_FROM = 500  # rows: from here on PostgreSQL takes them by COPY, not INSERT by INSERT
_FINDING_COLUMNS = (
    "project, finding_key, status, severity, fingerprint, tracked, epss, snapshot, packed, "
    "first_seen, opened_at, resolved_at"
)
_UPSERT = (
    " ON CONFLICT (project, finding_key) DO UPDATE SET status = excluded.status, "
    "severity = excluded.severity, fingerprint = excluded.fingerprint, "
    "tracked = excluded.tracked, epss = excluded.epss, snapshot = excluded.snapshot, "
    "packed = excluded.packed, "
    "first_seen = excluded.first_seen, opened_at = excluded.opened_at, "
    "resolved_at = excluded.resolved_at"
)


_OUTBOX_TYPES = ("text", "int8", "text", "text", "text", "bytea", "float8", "text", "int4")
_FINDING_TYPES = (
    "text", "text", "text", "text", "text", "text", "float8", "text", "bytea", "float8", "float8",
    "float8",
)  # fmt: skip


def _copy(cursor: Any, target: str, types: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """PostgreSQL's COPY, binary: a first sync's rows in a fraction of the INSERTs' time."""
    with cursor.copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)


def _insert(cursor: Any, dialect: Dialect, target: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Plain inserts: by COPY on PostgreSQL when there are many (a first sync's outbox)."""
    if dialect.name == "postgresql" and len(rows) >= COPY_FROM:
        _copy(cursor, target, _OUTBOX_TYPES, rows)
        return
    marks = ", ".join(["%s"] * len(rows[0]))
    cursor.executemany(dialect.sql(f"INSERT INTO {target} VALUES ({marks})"), rows)


FindingRow = tuple[Any, ...]  # the values of _FINDING_COLUMNS


def finding_rows(project: str, writes: Sequence[Write]) -> list[FindingRow]:
    """The rows of ``writes`` as stored: compact (``packing``), the snapshot column empty."""
    return [
        (
            project,
            w.key,
            w.status,
            w.severity,
            w.fingerprint,
            "" if w.derived else packing.tracked_column(w.tracked, w.snapshot),
            w.epss,
            "",
            packing.pack(w.key, w.snapshot),
            w.first_seen,
            w.opened_at,
            w.resolved_at,
        )
        for w in writes
    ]


def _write_findings(
    cursor: Any, dialect: Dialect, rows: Sequence[FindingRow], *, fresh: bool
) -> None:
    if dialect.name == "postgresql" and len(rows) >= COPY_FROM:
        if fresh:  # nothing to conflict with: straight in
            _copy(cursor, f"findings ({_FINDING_COLUMNS})", _FINDING_TYPES, rows)
            return
        cursor.execute(  # COPY into a scratch table, then one upsert
            "CREATE TEMPORARY TABLE findings_in (LIKE findings INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        _copy(cursor, f"findings_in ({_FINDING_COLUMNS})", _FINDING_TYPES, rows)
        cursor.execute(
            f"INSERT INTO findings ({_FINDING_COLUMNS}) "
            f"SELECT {_FINDING_COLUMNS} FROM findings_in{_UPSERT}"
        )
        return
    marks = ", ".join(["%s"] * len(_FINDING_TYPES))
    cursor.executemany(
        dialect.sql(f"INSERT INTO findings ({_FINDING_COLUMNS}) VALUES ({marks}){_UPSERT}"), rows
    )


def _update_project(
    cursor: Any, dialect: Dialect, work: Apply, revision: int, sequence: int
) -> None:
    sql = dialect.sql
    counts = dict.fromkeys(SEVERITIES, 0)
    if work.writes:  # else nothing open changed: the counts stand
        cursor.execute(
            sql("SELECT severity, COUNT(*) FROM findings WHERE project = %s AND status = 'open' "
                "GROUP BY severity"),
            (work.project,),
        )  # fmt: skip
        counts |= dict(cursor.fetchall())
        opens = ", ".join(f"open_{severity} = %s" for severity in SEVERITIES)
        cursor.execute(
            sql(f"UPDATE projects SET {opens} WHERE uuid = %s"),
            (*(counts[s] for s in SEVERITIES), work.project),
        )
    deleted = () if work.deleted is None else (work.now if work.deleted else None,)
    cursor.execute(
        sql("UPDATE projects SET name = COALESCE(%s, name), version = COALESCE(%s, version), "
            "revision = %s, sequence = %s, last_seen_at = %s, last_outcome = %s, "
            "last_outcome_at = %s, last_exported_at = COALESCE(%s, last_exported_at)"
            + ("" if work.deleted is None else ", deleted_at = %s") + " WHERE uuid = %s"),
        (
            work.name, work.version, revision + 1, sequence, work.now, work.outcome, work.now,
            work.exported_at, *deleted, work.project,
        ),
    )  # fmt: skip


def record_outcome(cursor: Any, dialect: Dialect, project: str, outcome: str, now: float) -> None:
    """A job's outcome that changes no state (stale, parked, ...), for `status`."""
    cursor.execute(
        dialect.sql("UPDATE projects SET last_outcome = %s, last_outcome_at = %s WHERE uuid = %s"),
        (outcome, now, project),
    )
