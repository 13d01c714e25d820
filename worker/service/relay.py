"""The outbox relay: events committed with the state, published to RabbitMQ, then deleted.

One runs in every worker process. A project's rows go out in sequence order, by one relay at a
time (a lease in the store, renewed while it works): with several relays a ``resolved`` never
overtakes the ``opened`` it follows. A row is deleted only after RabbitMQ confirmed it, so a
relay that dies between the two republishes on the next pass the same events, with the same
ids: consumers de-duplicate on the id.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import uuid

import structlog
from opentelemetry.context import Context

from worker.adapters import tracing
from worker.adapters.broker import Broker
from worker.adapters.metrics import WorkerMetrics
from worker.adapters.state.queries import OutboxRow
from worker.adapters.state.store import Store
from worker.core.errors import TransientError
from worker.core.output import AS_MADE, Output
from worker.service import collector, outgoing

log = structlog.get_logger(__name__)

BATCH = 1000  # rows published with their confirms in flight together (more with event batches)
PROJECTS_PER_PASS = 50
IDLE_SECONDS = 1.0  # a pass at least this often, woken sooner by a commit of this process


class Relay:
    def __init__(
        self, store: Store, broker: Broker, metrics: WorkerMetrics, output: Output = AS_MADE
    ) -> None:
        self._output = output  # the filter and the format of finding events
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
                with collector.paused():  # thousands of messages and futures, no cycles
                    published |= await self._project(project)
            finally:
                with contextlib.suppress(TransientError):
                    await self._store.release(project, self._owner)
        return published

    async def _project(self, project: str) -> bool:
        """Publish the project's rows in sequence; while a batch waits for its confirms, the
        next one is written (``outgoing.WINDOW`` in flight, in order), the one after it read,
        and the last confirmed one's rows deleted."""
        store = self._store
        size = max(BATCH, self._broker.events_per_round)
        rows = await store.outbox_batch(project, size)
        flying: collections.deque[tuple[list[OutboxRow], asyncio.Future[None]]]
        flying = collections.deque()
        deleting: asyncio.Task[None] | None = None

        async def confirmed() -> None:
            nonlocal deleting
            done, sending = flying.popleft()
            await sending
            if deleting is not None:
                await deleting
            deleting = asyncio.create_task(store.delete_outbox([row[0] for row in done]))
            self._metrics.outbox_published.inc(len(done))

        try:
            while rows:
                ahead = asyncio.create_task(store.outbox_batch(project, size, rows[-1][5]))
                flying.append((rows, asyncio.ensure_future(self._publish(rows))))
                try:
                    if len(flying) >= outgoing.WINDOW:
                        await confirmed()
                    rows = await ahead
                except BaseException:
                    ahead.cancel()
                    await asyncio.gather(ahead, return_exceptions=True)
                    raise
                if rows and not await store.lease(project, self._owner):
                    break  # the lease went to another relay: it goes on from here
            while flying:
                await confirmed()
        finally:  # a failed batch: those written after it are not waited for
            for _, sending in flying:
                sending.cancel()
            await asyncio.gather(*(sending for _, sending in flying), return_exceptions=True)
            if deleting is not None:
                await deleting
        return deleting is not None

    async def _publish(self, rows: list[OutboxRow]) -> None:
        """One batch, in a trace of its own that links to the jobs that wrote the rows."""
        with tracing.span(
            "relay outbox",
            context=Context(),  # a new trace: rows of many jobs go out together
            links=tracing.links_to(row[6] for row in rows),
            attributes={"dtrack_worker.events": len(rows)} if tracing.enabled() else None,
        ):
            items = [
                (routing_key, body, event_id, type_)
                for _, event_id, type_, routing_key, body, _, _ in rows
            ]
            # what the filter keeps out is deleted with the rest, never sent
            await outgoing.send(self._broker, self._output, self._metrics, items)
