"""A job message's facts and what the worker makes of it: its attempt, its trace attributes,
the job's reference in events, the park reason and error text, and the project.gone and
export.invalid events of a job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from aio_pika.abc import AbstractIncomingMessage

from worker.adapters import tracing
from worker.core import events, fpf, urls
from worker.core.errors import (
    DtMisconfigured,
    DtRejected,
    ExportTooLarge,
    InvalidDocument,
    InvalidExport,
    InvalidJob,
    PermanentError,
    SuspiciousExport,
)
from worker.core.jobs import FORCE_HEADER, Job, utc_timestamp

MAX_HEADER_TEXT = 4000
UNSETTLED_SECONDS = 1.0  # a job neither retried nor parked goes back after this, doubled...
MAX_UNSETTLED_SECONDS = 60.0  # ...per attempt, up to this


def attempt(message: AbstractIncomingMessage) -> int:
    """The ``x-attempt`` header (1 if none), plus the times RabbitMQ took this delivery back
    (``x-delivery-count``, kept by quorum queues): a job whose retry copy could not be
    published goes back to the queue, and its next delivery is its next attempt."""
    headers = message.headers or {}
    value = headers.get("x-attempt", 1)
    first = value if isinstance(value, int) and value >= 1 else 1
    returned = headers.get("x-delivery-count", 0)
    return first + (returned if isinstance(returned, int) and returned > 0 else 0)


def unsettled_seconds(attempt: int) -> float:
    """The pause before a job whose retry or park copy RabbitMQ refused goes back."""
    return min(UNSETTLED_SECONDS * 2.0 ** (attempt - 1), MAX_UNSETTLED_SECONDS)


def consumer_arguments(timeout_ms: int | None) -> dict[str, int] | None:
    """basic.consume's arguments for the jobs queue: the delivery timeout (core.job_budget)."""
    return None if timeout_ms is None else {"x-consumer-timeout": timeout_ms}


def forced(message: AbstractIncomingMessage) -> bool:
    """Replayed with ``parked replay --force``: applied past the mass-resolve guard."""
    return (message.headers or {}).get(FORCE_HEADER) is True


def job_attributes(message: AbstractIncomingMessage, attempt: int) -> dict[str, str | int]:
    """The job span's attributes (built only when tracing is on)."""
    if not tracing.enabled():
        return {}
    return {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "process",
        "messaging.message.id": message.message_id or "",
        "dtrack_worker.job.attempt": attempt,
    }


def job_ref(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "trigger": job.trigger,
        "correlation_id": job.correlation_id,
        "accepted_at": job.accepted_at,
    }


def park_reason(exc: PermanentError) -> str:
    if isinstance(exc, DtRejected):
        return "dt_rejected"
    if isinstance(exc, DtMisconfigured):
        return "dt_misconfigured"
    if isinstance(exc, ExportTooLarge):
        return "too_large"
    if isinstance(exc, InvalidJob):
        return "invalid_job"
    if isinstance(exc, SuspiciousExport):
        return "suspicious_export"
    return "permanent"


def retry_headers(attempt: int, exc: Exception) -> dict[str, Any]:
    """The headers of a job's retry copy: its next attempt and why this one failed."""
    return {"x-attempt": attempt + 1, "x-last-error": header_text(str(exc))}


def park_headers(reason: str, exc: Exception, attempt: int) -> dict[str, Any]:
    """The headers of a parked job: the attempt, the reason, the error, when, the problems."""
    headers: dict[str, Any] = {
        "x-attempt": attempt,
        "x-park-reason": reason,
        "x-park-error": header_text(f"{type(exc).__name__}: {exc.args[0] if exc.args else exc}"),
        "x-parked-at": utc_timestamp(datetime.now(UTC)),
    }
    if isinstance(exc, InvalidDocument) and exc.problems:
        headers["x-park-problems"] = header_text(orjson.dumps(exc.report()).decode())
    return headers


def header_text(text: str) -> str:
    """A parked or retried job's error text: without passwords, at most MAX_HEADER_TEXT."""
    text = urls.redact(text)
    return text if len(text) <= MAX_HEADER_TEXT else text[: MAX_HEADER_TEXT - 3] + "..."


def gone(job: Job, source: str) -> events.Event:
    """project.gone for the job's project (snapshot mode; the change stream sends its own)."""
    return events.project_gone(
        source=source,
        project={"uuid": job.project_uuid, "name": job.project_name, "version": None},
        time=utc_timestamp(datetime.now(UTC)),
        job=job_ref(job),
    )


def invalid_export(job: Job, source: str, exc: InvalidExport) -> events.Event:
    return events.export_invalid(
        source=source,
        project={"uuid": job.project_uuid, "name": job.project_name, "version": None},
        time=utc_timestamp(datetime.now(UTC)),
        job=job_ref(job),
        message=str(exc.args[0]),
        problems=exc.report(),
    )


def snapshot_summary(
    job: Job, export: fpf.Export, severities: dict[str, int], seconds: float
) -> events.Event:
    """The export summary of a snapshot job, sent
    after its finding events when no change stream sends one."""
    return events.export_summary(
        source=export.source,
        project={
            "uuid": export.project_uuid,
            "name": export.project_name,
            "version": export.project_version,
        },
        exported_at=export.exported_at,
        fpf={
            "version": export.fpf_version,
            "dt_version": export.dt_version,
            "exported_at": export.exported_at,
        },
        finding_count=export.finding_count,
        severities=severities,
        repeated_rows=export.repeated_rows,
        duration_ms=seconds * 1e3,
        job=job_ref(job),
    )
