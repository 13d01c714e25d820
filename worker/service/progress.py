"""Progress of a job, for ``dtrack-worker sync --wait`` and the console's Sync page: when a job
message names a progress queue (header ``x-progress-queue``), the worker tells that queue the
job's steps: ``started`` (an attempt began), ``analysis_pending`` (waiting for DT's analysis,
reported by the analysis gate), ``fetching`` (the export's bytes so far, every second of a
longer download), ``fetched`` (the export arrived, its size), ``validating``
(validated and compared with the stored state), ``applied`` (committed: its transitions, and
the events waiting in the outbox for the relay), and how the attempt settled (``done``,
``retried``, ``parked``, ...). Best effort: a progress queue that is gone changes nothing for
the job.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import aio_pika
import orjson
import structlog
from aio_pika.abc import AbstractIncomingMessage

from worker.adapters.amqp import BROKER_ERRORS
from worker.adapters.broker import Broker
from worker.adapters.dtrack import Arrival
from worker.adapters.state.store import Committed
from worker.core import urls
from worker.core.errors import TransientError
from worker.core.jobs import PROGRESS_HEADER

log = structlog.get_logger(__name__)

PROGRESS_TYPE = "dtrack-worker.job.progress.v1"
Arrived = Arrival  # told an export's bytes while they arrive, and its size when all here
_REPORTED = (
    "project_uuid", "events", "transitions", "error", "reason", "attempt", "bytes", "detail",
    "outbox", "sequence",
)  # fmt: skip
_REDACTED = ("error", "detail")  # texts that may name a URL
# the steps between started and settled, reported through step() by the code that does them
ANALYSIS_PENDING = "analysis_pending"  # fields: detail (what is awaited), optional
FETCHING = "fetching"  # fields: bytes (so far), every dthttp.PROGRESS_SECONDS of a download
VALIDATING = "validating"
APPLIED = "applied"  # fields: transitions, outbox (events waiting), sequence (the last one)


def queue_of(message: AbstractIncomingMessage) -> str | None:
    queue = (message.headers or {}).get(PROGRESS_HEADER)
    if isinstance(queue, bytes):
        queue = queue.decode()
    return queue if isinstance(queue, str) and queue else None


# the job the current task works on, from its first report: fetched() reports for it
_current: ContextVar[tuple[Broker, AbstractIncomingMessage] | None] = ContextVar(
    "progress_job", default=None
)


async def fetched(size: int, *, done: bool = True) -> None:
    """The export of the job this task works on arrived, ``size`` bytes (``done=False``: is
    arriving, ``size`` so far): tell its queue."""
    if (current := _current.get()) is not None:
        await report(*current, "fetched" if done else FETCHING, {"bytes": size})


async def step(name: str, fields: dict[str, Any] | None = None) -> None:
    """The job this task works on reached step ``name``: tell its queue (no job, or no
    progress queue: nothing)."""
    if (current := _current.get()) is not None:
        await report(*current, name, fields or {})


async def applied(transitions: int, committed: Committed) -> None:
    """The job's state transaction committed: its transitions, and its events in the outbox
    (the relay publishes them, up to ``sequence``)."""
    last = committed.sequences[1]
    await step(APPLIED, {"transitions": transitions, "outbox": committed.events, "sequence": last})


async def report(
    broker: Broker, message: AbstractIncomingMessage, step: str, fields: dict[str, Any]
) -> None:
    """Tell the job's progress queue, if it has one, that the job reached ``step``."""
    _current.set((broker, message))  # the job's own task: each delivery runs in a task of its own
    queue = queue_of(message)
    if queue is None:
        return
    body = {"job_id": message.message_id, "step": step} | {
        key: urls.redact(fields[key]) if key in _REDACTED else fields[key]
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
