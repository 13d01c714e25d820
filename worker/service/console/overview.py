"""The overview page: health (the ``check`` results), queue depths, outbox lag, parked jobs,
jobs per minute, and the jobs that settled last with their outcome and duration (the job
history)."""

from __future__ import annotations

import dataclasses
import time

from aiohttp import web

from worker.adapters.amqp import BROKER_ERRORS
from worker.adapters.state import console_activity
from worker.adapters.state.store import StateUnavailable
from worker.core.errors import TransientError
from worker.service.console import replies, runs
from worker.service.console.sources import SOURCES, Sources

RECENT_JOBS = 10


@dataclasses.dataclass(frozen=True, slots=True)
class Depth:
    queue: str
    messages: int | None  # None: could not be read


async def queue_depths(sources: Sources) -> tuple[list[Depth], str | None]:
    """Messages ready in each queue of the topology, read passively from RabbitMQ."""
    broker = sources.broker
    prefix = broker.topology.prefix + "."
    if not broker.ready:
        return [], "RabbitMQ is not connected"
    depths = []
    try:
        for queue in broker.topology.queues:
            depths.append(Depth(queue.name.removeprefix(prefix), await broker.depth(queue.name)))
    except (TransientError, *BROKER_ERRORS) as exc:
        return depths, f"{type(exc).__name__}: {exc}"
    return depths, None


async def overview(request: web.Request) -> web.Response:
    sources = request.app[SOURCES]
    sources.health.want_fresh(time.time())  # for the next look; this page shows the last
    depths, depth_error = await queue_depths(sources)
    parked_queue = sources.broker.topology.parked_queue.name.removeprefix(
        sources.broker.topology.prefix + "."
    )
    parked = next((d.messages for d in depths if d.queue == parked_queue), None)
    outbox: tuple[int, float | None] | None = None
    activity: console_activity.Activity | None = None
    state_error = None
    now = time.time()
    stored = None
    if sources.store is not None:
        try:
            found = await sources.store.read(
                console_activity.figures, now, RECENT_JOBS, runs.MAX_RUNS
            )
        except StateUnavailable as exc:
            state_error = str(exc)
        else:
            outbox, activity, stored = found.outbox, found.activity, found.runs
    per_minute = (
        None
        if activity is None
        else activity.settled_recently / (console_activity.RECENT_SECONDS / 60)
    )
    return await replies.page(
        request,
        "overview.html",
        {
            "health": sources.health,
            "depths": depths,
            "depth_error": depth_error,
            "parked": parked,
            "outbox": outbox,
            "activity": activity,
            "per_minute": per_minute,
            "history_days": sources.settings.state.history_days,
            "state_used": sources.store is not None,
            "state_error": state_error,
            "now": now,
            "runs": (await sources.runs.latest(stored))[:5],
        },
    )
