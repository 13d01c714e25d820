"""A job message's facts and what the worker makes of it: its attempt, its trace attributes,
the job's reference in events, the park reason and error text, and the project.gone and
export.invalid events of a job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from worker.adapters import tracing
from worker.core import events, urls
from worker.core.errors import (
    DtMisconfigured,
    DtRejected,
    ExportTooLarge,
    InvalidExport,
    InvalidJob,
    PermanentError,
)
from worker.core.jobs import Job, utc_timestamp

MAX_HEADER_TEXT = 4000


def attempt(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get("x-attempt", 1)
    return value if isinstance(value, int) and value >= 1 else 1


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
    return "permanent"


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
