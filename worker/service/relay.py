"""The outbox relay: events committed with the state, published to RabbitMQ, then deleted.

One runs in every worker process. A project's rows go out in sequence order, by one relay at a
time (a lease in the store, renewed while it works): with several relays a ``resolved`` never
overtakes the ``opened`` it follows. A row holds a round of a job's events (up to
``outbox_rounds.ROUND``; a row of an older release, one event) and is deleted only after
RabbitMQ confirmed every event of it, so a relay that dies between the two, or a round
confirmed in part, republishes the whole round on the next pass, with the same ids: consumers
de-duplicate on the id.

On SIGTERM (``finish``) the relay publishes what waits, the rows of the jobs the drain just
finished among them, until the outbox is empty or the shutdown grace is over. Then it writes no
new batch, waits (at most ``halt_seconds``) for the confirms of those in flight, deletes what
RabbitMQ confirmed, and logs how many events it left: a stop never republishes what was
confirmed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid

import structlog
from opentelemetry.context import Context

from worker.adapters import tracing
from worker.adapters.broker import Broker
from worker.adapters.metrics import WorkerMetrics
from worker.adapters.state.outbox_queries import OutboxRow
from worker.adapters.state.store import LEASE_SECONDS, Committed, Store
from worker.core.errors import TransientError
from worker.core.output import AS_MADE, Output
from worker.service import collector, handoff, outgoing
from worker.service.handoff import Handoff

log = structlog.get_logger(__name__)

BATCH = 1000  # events published with their confirms in flight together (whole rounds: up to 1499)
PROJECTS_PER_PASS = 50
IDLE_SECONDS = 1.0  # a pass at least this often, woken sooner by a commit of this process
HALT_SECONDS = 10.0  # after the grace: for the confirms of the batches in flight
FINISHING_PAUSE = 0.2  # while the grace lasts: between tries past a hiccup (a reconnect...)


class Relay:
    def __init__(
        self,
        store: Store,
        broker: Broker,
        metrics: WorkerMetrics,
        output: Output = AS_MADE,
        *,
        halt_seconds: float = HALT_SECONDS,
    ) -> None:
        self._output = output  # the filter and the format of finding events
        self._store = store
        self._broker = broker
        self._metrics = metrics
        self._owner = f"relay-{uuid.uuid4()}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._halt_seconds = halt_seconds
        self._finishing = False  # SIGTERM: publish what waits, then stop
        self._halting = False  # the grace is over: no new batch, only confirms awaited
        self._unconfirmed = 0  # rows written at the halt whose confirms never came
        self.handoff = Handoff()  # the rounds this process's jobs committed, as made

    def wake(self) -> None:
        self._wake.set()

    def committed(self, done: Committed) -> None:
        """A job of this process committed ``done``: its rounds are published from memory
        (``handoff``), now."""
        self.handoff.keep(done, time.monotonic())
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop at once (no grace): rows confirmed are still deleted."""
        await self.finish(asyncio.get_running_loop().time())

    async def finish(self, deadline: float) -> None:
        """Publish what waits until the outbox is empty or the loop's clock reaches
        ``deadline``; then halt (see the module's doc) and log what is left."""
        task = self._task
        if task is None:
            return
        self._finishing = True
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await asyncio.shield(task)
        if not task.done():
            self._halting = True
            log.info("relay.halting", message="the shutdown grace is over: no new batch")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._halt_seconds):
                    await asyncio.shield(task)
        if not task.done():  # the store or the broker hangs: stop anyway (deletes shielded)
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._task = None
        try:
            left, _ = await self._store.outbox_depth()
        except TransientError as exc:
            log.warning("relay.stopped", left=None, unconfirmed=self._unconfirmed, error=str(exc))
            return
        if left:  # SQLite on a pod's ephemeral disk loses them with the pod
            log.warning(
                "relay.stopped",
                left=left,
                unconfirmed=self._unconfirmed,
                message="the shutdown grace ran out: outbox rows left for the next start",
            )
        else:
            log.info("relay.stopped", left=0, unconfirmed=self._unconfirmed)

    async def _run(self) -> None:
        pause: float | None = IDLE_SECONDS
        while pause is not None:
            if not self._finishing:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await self._wake.wait()
            self._wake.clear()
            try:
                if self._finishing and not self._broker.ready:  # a reconnect under way
                    raise TransientError("RabbitMQ is not connected")
                busy = await self.drain()
            except TransientError as exc:  # the store or RabbitMQ is away: try again later
                pause = await self._hiccup(exc, pause)
                continue
            except Exception:  # a bug: logged, the relay goes on
                log.exception("relay.failed")
                if self._finishing:
                    return
                pause = 5.0
                continue
            if self._finishing and (not busy or self._halting):
                return
            pause = 0.0 if busy else IDLE_SECONDS

    async def _hiccup(self, exc: TransientError, pause: float) -> float | None:
        """The pause after a hiccup, or None to stop: while finishing, it is tried again soon
        until the grace is over (a reconnect, a publish timeout), never taken for the end."""
        if self._halting:
            return None
        if self._finishing:
            if pause != FINISHING_PAUSE:  # once per streak: the tries come every 0.2 s
                log.warning("relay.paused", error=str(exc), finishing=True)
            await asyncio.sleep(FINISHING_PAUSE)
            return FINISHING_PAUSE
        log.warning("relay.paused", error=str(exc))
        return min(pause * 2, 10.0)

    async def drain(self) -> bool:
        """One pass: publish what waits, project by project; True if anything was published."""
        if not self._broker.ready:
            return False
        published = False
        pending = await self._store.pending_projects(PROJECTS_PER_PASS)
        self.handoff.expire(time.monotonic() - handoff.KEPT_SECONDS)
        if len(pending) < PROJECTS_PER_PASS:  # every project with rows: others were relayed
            for project in set(self.handoff.projects()).difference(pending):
                self.handoff.forget(project)
        for project in pending:
            if self._halting:
                break
            if not await self._store.lease(project, self._owner):
                continue  # another relay has it
            keeper = asyncio.create_task(self._keep_lease(project))
            try:
                with collector.paused():  # thousands of messages and futures, no cycles
                    published |= await self._project(project)
            finally:
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)
                with contextlib.suppress(TransientError):
                    await self._store.release(project, self._owner)
        return published

    async def _keep_lease(self, project: str) -> None:
        """The lease renewed while a batch takes long (the filter judges each event within
        its budget, a batch of them may take minutes); a lost lease ends the project at the
        next batch."""
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            with contextlib.suppress(TransientError):  # the next renewal may get through
                await self._store.lease(project, self._owner)

    async def _project(self, project: str) -> bool:
        """Publish the project's rows in sequence; while a batch waits for its confirms, the
        next one is written (``outgoing.WINDOW`` in flight, in order), the one after it read,
        and the last confirmed one's rows deleted."""
        store = self._store
        size = max(BATCH, self._broker.events_per_round)
        rows = await self._batch(project, size)
        window = _Window(store, self._metrics, self._halt_seconds)
        try:
            while rows and not self._halting:
                ahead = asyncio.create_task(self._batch(project, size, rows[-1].sequence))
                window.flying.append((rows, asyncio.ensure_future(self._publish(rows))))
                try:
                    if len(window.flying) >= outgoing.WINDOW:
                        await window.confirmed()
                    rows = await ahead
                except BaseException:
                    ahead.cancel()
                    await asyncio.gather(ahead, return_exceptions=True)
                    raise
                if rows and not await store.lease(project, self._owner):
                    break  # the lease went to another relay: it goes on from here
            while window.flying:  # a halt writes no new batch but waits for these confirms
                await window.confirmed()
        finally:
            unconfirmed = await window.close()
            if self._halting:
                self._unconfirmed += unconfirmed
        return window.deleting is not None

    async def _batch(self, project: str, size: int, after: int = 0) -> list[OutboxRow]:
        """The store's ``outbox_batch``: the bodies from memory where a job of this process
        committed them (``handoff``), else from the store."""
        if self.handoff.holds(project):
            heads = await self._store.outbox_heads(project, size, after)
            rows = self.handoff.rows(project, heads)
            if rows is not None:
                return rows
        return await self._store.outbox_batch(project, size, after)

    async def _publish(self, rows: list[OutboxRow]) -> None:
        """One batch, in a trace of its own that links to the jobs that wrote the rows."""
        with tracing.span(
            "relay outbox",
            context=Context(),  # a new trace: rows of many jobs go out together
            links=tracing.links_to(row.trace_parent for row in rows),
            attributes={"dtrack_worker.events": len(rows)} if tracing.enabled() else None,
        ):
            items = [(row.routing_key, row.body, row.event_id, row.type) for row in rows]
            # what the filter keeps out is deleted with the rest, never sent
            await outgoing.send(self._broker, self._output, self._metrics, items)


class _Window:
    """One project's batches in flight, in order, and the deletes of those confirmed."""

    def __init__(self, store: Store, metrics: WorkerMetrics, halt_seconds: float) -> None:
        self._store = store
        self._metrics = metrics
        self._halt_seconds = halt_seconds  # the longest a cancelled relay waits for a delete
        self.flying: collections.deque[tuple[list[OutboxRow], asyncio.Future[None]]]
        self.flying = collections.deque()
        self.deleting: asyncio.Task[None] | None = None  # the last delete, after the others

    def _delete(self, rows: list[OutboxRow]) -> asyncio.Task[None]:
        """A delete after the ones before it, made before anything else is awaited and never
        cancelled with the relay: a confirmed batch is deleted whatever stops the relay.
        ``rows`` are events: a round's row goes once all of its events are confirmed (a batch
        holds whole rounds)."""
        after = self.deleting
        ids = list(dict.fromkeys(row.id for row in rows))

        async def delete() -> None:
            if after is not None:
                await after
            await self._store.delete_outbox(ids)

        self.deleting = asyncio.create_task(delete())
        self._metrics.outbox_published.inc(len(rows))
        return self.deleting

    async def confirmed(self) -> None:
        """The oldest batch's confirms awaited, its delete begun; one delete waiting at most."""
        done, sending = self.flying[0]
        await sending
        self.flying.popleft()
        previous = self.deleting
        self._delete(done)
        if previous is not None:
            await asyncio.shield(previous)

    async def close(self) -> int:
        """After a failed batch, a halt or a cancel: the batches written after it are not
        waited for; those confirmed but not yet taken from the window are deleted all the
        same. How many events went without a confirm."""
        for _, sending in self.flying:
            sending.cancel()
        await asyncio.gather(*(sending for _, sending in self.flying), return_exceptions=True)
        kept = [row for rows, sending in self.flying if _succeeded(sending) for row in rows]
        unconfirmed = sum(len(rows) for rows, s in self.flying if not _succeeded(s))
        self.flying.clear()
        if kept:
            self._delete(kept)
        if self.deleting is not None:
            task = asyncio.current_task()
            if task is None or not task.cancelling():
                await asyncio.shield(self.deleting)
            else:  # the stop cancelled the relay: a store that hangs must not hold it for ever
                try:
                    async with asyncio.timeout(self._halt_seconds):
                        await asyncio.shield(self.deleting)
                except TimeoutError:
                    self.deleting.add_done_callback(_abandoned)
        return unconfirmed


def _abandoned(deleting: asyncio.Task[None]) -> None:
    """A delete the stop no longer waited for: how it ended, logged (its rows, if it failed,
    are published again by the next start)."""
    if not deleting.cancelled() and (error := deleting.exception()) is not None:
        log.warning("relay.delete_failed", error=str(error))


def _succeeded(sending: asyncio.Future[None]) -> bool:
    return sending.done() and not sending.cancelled() and sending.exception() is None
