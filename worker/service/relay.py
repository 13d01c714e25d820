"""The outbox relay: events committed with the state, published to RabbitMQ, then deleted.

One runs in every worker process. A project's rows go out in sequence order, by one relay at a
time (a lease in the store, renewed while it works): with several relays a ``resolved`` never
overtakes the ``opened`` it follows. A row is deleted only after RabbitMQ confirmed it, so a
relay that dies between the two republishes on the next pass the same events, with the same
ids: consumers de-duplicate on the id.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import aio_pika
import structlog

from worker.adapters.broker import Broker
from worker.adapters.metrics import WorkerMetrics
from worker.adapters.state.store import Store
from worker.core.errors import TransientError
from worker.core.events import CLOUDEVENTS_CONTENT_TYPE

log = structlog.get_logger(__name__)

BATCH = 500  # rows published with their confirms in flight together
PROJECTS_PER_PASS = 50
IDLE_SECONDS = 1.0  # a pass at least this often, woken sooner by a commit of this process


class Relay:
    def __init__(self, store: Store, broker: Broker, metrics: WorkerMetrics) -> None:
        self._store = store
        self._broker = broker
        self._metrics = metrics
        self._owner = f"relay-{uuid.uuid4()}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        pause = IDLE_SECONDS
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()
            self._wake.clear()
            try:
                busy = await self.drain()
            except TransientError as exc:  # the store or RabbitMQ is away: try again later
                log.warning("relay.paused", error=str(exc))
                pause = min(pause * 2, 10.0)
                continue
            except Exception:  # a bug: logged, the relay goes on
                log.exception("relay.failed")
                pause = 5.0
                continue
            pause = 0.0 if busy else IDLE_SECONDS

    async def drain(self) -> bool:
        """One pass: publish what waits, project by project; True if anything was published."""
        if not self._broker.ready:
            return False
        published = False
        for project in await self._store.pending_projects(PROJECTS_PER_PASS):
            if not await self._store.lease(project, self._owner):
                continue  # another relay has it
            try:
                published |= await self._project(project)
            finally:
                with contextlib.suppress(TransientError):
                    await self._store.release(project, self._owner)
        return published

    async def _project(self, project: str) -> bool:
        published = False
        while rows := await self._store.outbox_batch(project, BATCH):
            await self._broker.publish(
                self._broker.topology.events_exchange.name,
                [
                    (
                        routing_key,
                        aio_pika.Message(
                            body,
                            content_type=CLOUDEVENTS_CONTENT_TYPE,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            message_id=event_id,
                            type=type_,
                        ),
                    )
                    for _, event_id, type_, routing_key, body in rows
                ],
            )
            await self._store.delete_outbox([row[0] for row in rows])
            self._metrics.outbox_published.inc(len(rows))
            published = True
            if len(rows) < BATCH or not await self._store.lease(project, self._owner):
                break  # done, or the lease went to another relay: it goes on from here
        return published
