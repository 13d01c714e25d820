"""The outbox relay's SQL: which projects have rows waiting, the relay's lease per project, a
project's rows in order, their deletion once confirmed, and the outbox's depth. Synchronous
functions on one DB-API connection, run by ``store.Store`` on its threads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from worker.adapters.state.backend import Dialect
from worker.core import outbox_rounds


def pending_projects(cursor: Any, dialect: Dialect, limit: int) -> list[str]:
    cursor.execute(
        dialect.sql("SELECT project FROM outbox GROUP BY project ORDER BY MIN(id) LIMIT %s"),
        (limit,),
    )
    return [row[0] for row in cursor.fetchall()]


@contextlib.contextmanager
def _unsynced(cursor: Any, dialect: Dialect) -> Iterator[None]:
    """The relay's own writes (leases, deletes of confirmed rows) committed without an fsync
    on SQLite in WAL mode (``synchronous=NORMAL``, safe from corruption there): a power loss
    may undo the last of them, which publishes confirmed events again (duplicates with their
    ids, never a loss), and the next job's commit (``FULL``) syncs them with its own. A job's
    commit keeps its fsync: the job is acked after it."""
    if dialect.name != "sqlite" or cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        yield
        return
    cursor.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        cursor.execute("PRAGMA synchronous=FULL")


def lease(
    cursor: Any, dialect: Dialect, project: str, owner: str, now: float, seconds: float
) -> bool:
    """Take (or renew) the project's relay lease; False while another relay holds it."""
    with _unsynced(cursor, dialect):
        return _lease(cursor, dialect, project, owner, now, seconds)


def _lease(
    cursor: Any, dialect: Dialect, project: str, owner: str, now: float, seconds: float
) -> bool:
    cursor.execute(
        dialect.sql(
            "INSERT INTO relay_leases (project, owner, expires_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (project) DO UPDATE SET owner = excluded.owner, "
            "expires_at = excluded.expires_at "
            "WHERE relay_leases.owner = excluded.owner OR relay_leases.expires_at < %s"
        ),
        (project, owner, now + seconds, now),
    )
    return bool(cursor.rowcount == 1)


def release(cursor: Any, dialect: Dialect, project: str, owner: str) -> None:
    with _unsynced(cursor, dialect):
        cursor.execute(
            dialect.sql("DELETE FROM relay_leases WHERE project = %s AND owner = %s"),
            (project, owner),
        )


class OutboxRow(NamedTuple):
    """One event waiting in the outbox: ``id`` is its row's (a round's events share it)."""

    id: int
    event_id: str
    type: str
    routing_key: str
    body: bytes
    sequence: int
    trace_parent: str | None


class OutboxHead(NamedTuple):
    """An outbox row without its body: which events it holds."""

    id: int
    event_id: str  # its first event's
    sequence: int  # its first event's
    events: int | None  # None: a row of the form before rounds (one event)
    trace_parent: str | None


# the project's oldest rows past a sequence, whole, starting within a limit of the first
_BATCH = (
    "FROM outbox WHERE project = %s AND sequence > %s AND sequence < "
    "(SELECT MIN(sequence) FROM outbox WHERE project = %s AND sequence > %s) + %s "
    "ORDER BY sequence LIMIT %s"
)


def outbox_heads(
    cursor: Any, dialect: Dialect, project: str, limit: int, after: int = 0
) -> list[OutboxHead]:
    """The rows ``outbox_batch`` reads, without their bodies (the relay has them in memory)."""
    cursor.execute(
        dialect.sql(f"SELECT id, event_id, sequence, events, trace_parent {_BATCH}"),
        (project, after, project, after, limit, limit),
    )
    return [OutboxHead(*row) for row in cursor.fetchall()]


def outbox_batch(
    cursor: Any, dialect: Dialect, project: str, limit: int, after: int = 0
) -> list[OutboxRow]:
    """The events of the project's oldest rows past sequence ``after``, in sequence: whole
    rows, starting within ``limit`` sequence numbers of the first (at most ``limit`` rows of
    the one-event form, ``limit + ROUND - 1`` events of rounds)."""
    cursor.execute(
        dialect.sql(
            "SELECT id, event_id, type, routing_key, body, sequence, trace_parent, events " + _BATCH
        ),
        (project, after, project, after, limit, limit),
    )
    found: list[OutboxRow] = []
    for row_id, event_id, type_, key, body, sequence, trace, events in cursor.fetchall():
        if events is None:  # a row of the form before rounds: one event, its body as is
            found.append(OutboxRow(row_id, event_id, type_, key, bytes(body), sequence, trace))
            continue
        try:
            made = outbox_rounds.decode(bytes(body), events)
        except outbox_rounds.CorruptRound as exc:
            raise outbox_rounds.CorruptRound(f"outbox row {row_id}: {exc}") from None
        found += (
            OutboxRow(row_id, e.id, e.type, e.routing_key, e.body, sequence + n, trace)
            for n, e in enumerate(made)
        )
    return found


def delete_outbox(cursor: Any, dialect: Dialect, ids: Sequence[int]) -> None:
    with _unsynced(cursor, dialect), _unzeroed(cursor, dialect):
        _delete_outbox(cursor, dialect, ids)


@contextlib.contextmanager
def _unzeroed(cursor: Any, dialect: Dialect) -> Iterator[None]:
    """Published rounds deleted without zeroing their pages first (``secure_delete=FAST``).
    A SQLite built with SECURE_DELETE (Debian's, so the worker's image) writes every page a
    deleted row frees again, zeros, through the WAL, then checkpoints it: a first sync's 30 MB
    of rounds twice more (42 ms of CPU of its relay's 0.2 s on SQLite). Their bytes are
    events RabbitMQ has, made of the state the store keeps anyway; the free pages are reused
    or given back (``space``). Deleted content within a page is still overwritten."""
    if dialect.name != "sqlite":
        yield
        return
    (before,) = cursor.execute("PRAGMA secure_delete").fetchone()
    cursor.execute("PRAGMA secure_delete=FAST")
    try:
        yield
    finally:
        cursor.execute(f"PRAGMA secure_delete={int(before)}")


def _delete_outbox(cursor: Any, dialect: Dialect, ids: Sequence[int]) -> None:
    ids = sorted(set(ids))  # a round's events name its row each
    if dialect.name == "postgresql":  # one array parameter, however many ids
        cursor.execute("DELETE FROM outbox WHERE id = ANY(%s)", (ids,))
        return
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join(["%s"] * len(chunk))
        cursor.execute(
            dialect.sql(f"DELETE FROM outbox WHERE id IN ({marks})"),
            tuple(chunk),
        )


# an index holds both columns (migration 0005): no round's body is read
OUTBOX_DEPTH = "SELECT COALESCE(SUM(COALESCE(events, 1)), 0), MIN(created_at) FROM outbox"


def outbox_depth(cursor: Any, dialect: Dialect) -> tuple[int, float | None]:
    """Events waiting (a round counts its events), and when the oldest was written."""
    cursor.execute(OUTBOX_DEPTH)
    count, oldest = cursor.fetchone()
    return int(count), oldest
