"""The job history: each job that settles (done, coalesced, stale, gone, parked, out of scope,
...) gets a row in the state store, with its duration and counts, for the console's overview
(its last jobs, jobs per minute). A job that is retried is not settled: its last attempt is the
one recorded. Best effort: the job is acked already, and a store that fails here loses the
row, never the job (the log says so). The row is written before the job's last progress report
(whoever is told the job settled finds it), but a store slow to take it holds that report back
WAIT_SECONDS at most: the row is then written on its own."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
import structlog
from aio_pika.abc import AbstractIncomingMessage

from worker.adapters.state.history_queries import JobEntry
from worker.adapters.state.store import StateUnavailable, Store
from worker.core import urls

log = structlog.get_logger(__name__)

UNSETTLED = ("retried",)  # the job goes on: no row yet
WAIT_SECONDS = 2.0  # how long a row slow to write holds the job's last report back


class JobHistory:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._writing: set[asyncio.Future[None]] = set()

    async def settled(
        self, message: AbstractIncomingMessage, outcome: str, fields: dict[str, Any], seconds: float
    ) -> None:
        """The job's row, from the consumer's fields (job id, project, trigger, counts)."""
        if outcome in UNSETTLED:
            return
        entry = entry_of(message, outcome, fields, seconds, time.time())
        if entry is None:
            return  # a message that named no project: nothing to show it under
        writing = asyncio.ensure_future(self._record(entry))
        self._writing.add(writing)  # kept until written, should the wait below end first
        writing.add_done_callback(self._writing.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(writing), WAIT_SECONDS)

    async def _record(self, entry: JobEntry) -> None:
        try:
            await self._store.record_job(entry)
        except StateUnavailable as exc:
            log.warning("job.history_not_recorded", job_id=entry.job_id, error=str(exc))


def entry_of(
    message: AbstractIncomingMessage,
    outcome: str,
    fields: dict[str, Any],
    seconds: float,
    now: float,
) -> JobEntry | None:
    body = _body(message.body)
    project = fields.get("project_uuid") or body.get("project_uuid")
    if not isinstance(project, str) or not project:
        return None
    correlation = fields.get("correlation_id") or body.get("correlation_id")
    name = body.get("project_name")
    error = fields.get("error")
    return JobEntry(
        job_id=str(fields.get("job_id") or message.message_id or ""),
        project=project,
        name=name if isinstance(name, str) else None,
        kind=str(fields.get("trigger") or body.get("trigger") or "?"),
        run_id=correlation
        if isinstance(correlation, str) and correlation.startswith("sync:")
        else None,
        attempt=int(fields.get("attempt", 1)),
        outcome=outcome,
        reason=fields.get("reason"),
        error=None if error is None else urls.redact(str(error)),
        started_at=now - seconds,
        finished_at=now,
        events=fields.get("events"),
        transitions=fields.get("transitions"),
    )


def _body(raw: bytes) -> dict[str, Any]:
    """The job message, read leniently: a message that failed validation still has a row."""
    try:
        found = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}
