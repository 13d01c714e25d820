"""Progress of a job, for ``dtrack-worker sync --wait``: when a job message names a progress
queue (header ``x-progress-queue``), the worker tells that queue when it starts an attempt, when
the export arrived (its size), and how the attempt settled. Best effort: a progress queue that
is gone changes nothing for the job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import aio_pika
import orjson
import structlog
from aio_pika.abc import AbstractIncomingMessage

from worker.adapters.amqp import BROKER_ERRORS
from worker.adapters.broker import Broker
from worker.core import urls
from worker.core.errors import TransientError
from worker.core.jobs import PROGRESS_HEADER

log = structlog.get_logger(__name__)

PROGRESS_TYPE = "dtrack-worker.job.progress.v1"
Arrived = Callable[[int], Awaitable[None]]  # told an export's size when it is all here
_REPORTED = ("project_uuid", "events", "transitions", "error", "reason", "attempt", "bytes")


def queue_of(message: AbstractIncomingMessage) -> str | None:
    queue = (message.headers or {}).get(PROGRESS_HEADER)
    if isinstance(queue, bytes):
        queue = queue.decode()
    return queue if isinstance(queue, str) and queue else None


# the job the current task works on, from its first report: fetched() reports for it
_current: ContextVar[tuple[Broker, AbstractIncomingMessage] | None] = ContextVar(
    "progress_job", default=None
)


async def fetched(size: int) -> None:
    """The export of the job this task works on arrived, ``size`` bytes: tell its queue."""
    if (current := _current.get()) is not None:
        await report(*current, "fetched", {"bytes": size})


async def report(
    broker: Broker, message: AbstractIncomingMessage, step: str, fields: dict[str, Any]
) -> None:
    """Tell the job's progress queue, if it has one, that the job reached ``step``."""
    _current.set((broker, message))  # the job's own task: each delivery runs in a task of its own
    queue = queue_of(message)
    if queue is None:
        return
    body = {"job_id": message.message_id, "step": step} | {
        key: urls.redact(fields[key]) if key == "error" else fields[key]
        for key in _REPORTED
        if key in fields
    }
    update = aio_pika.Message(
        orjson.dumps(body), content_type="application/json", type=PROGRESS_TYPE
    )
    try:
        await broker.publish("", [(queue, update)])  # the default exchange: straight to it
    except (TransientError, *BROKER_ERRORS) as exc:
        log.info("job.progress_not_sent", queue=queue, error=f"{type(exc).__name__}: {exc}")
