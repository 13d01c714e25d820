"""Scheduled reconciliation: a backfill pass every DTRACK_WORKER_RECONCILE_INTERVAL, by one
worker at a time, arranged with RabbitMQ itself.

DT 4.x says nothing when findings disappear, so every project is refreshed now and then. One
token message circulates: it waits in ``<prefix>.reconcile.wait`` for the interval (per-message
TTL), then dead-letters into ``<prefix>.reconcile``, a single-active-consumer queue every worker
subscribes to. RabbitMQ delivers to one consumer only; that worker runs the pass, sends the token
back to wait, and acks it. If it dies mid-pass the unacked token goes to the next active consumer,
which runs the pass. Workers seed a token when there is none; a duplicate seeded by a race is
dropped by the active consumer, which has just run (within half an interval of its last pass's
end).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import aio_pika
import orjson
import structlog
from aio_pika.abc import AbstractIncomingMessage

from worker.adapters.broker import Broker
from worker.adapters.subscription import Subscription
from worker.core.topology import RECONCILE_KEY, RECONCILE_WAIT_KEY
from worker.service.backfill import Progress

log = structlog.get_logger(__name__)

Pass = Callable[[], Awaitable[Progress]]


class Reconciler:
    def __init__(self, broker: Broker, run_pass: Pass, interval: float) -> None:
        self._broker = broker
        self._run_pass = run_pass
        self._interval = interval
        self._last_run: datetime | None = None
        self._subscription: Subscription | None = None
        self.running = False  # a pass is in progress in this process
        self.passes = 0

    async def start(self) -> None:
        topology = self._broker.topology
        self._subscription = await self._broker.consume(
            topology.reconcile_queue, self._on_token, prefetch=1
        )
        if (
            await self._broker.depth(
                topology.reconcile_queue.name, topology.reconcile_wait_queue.name
            )
            == 0
        ):
            await self._send(RECONCILE_KEY, datetime.now(UTC), None)  # the first pass: now
            log.info("reconcile.seeded", interval_s=self._interval)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.close()

    async def _send(self, key: str, due: datetime, expiration: float | None) -> None:
        token = orjson.dumps({"token": str(uuid.uuid4()), "due": due.isoformat()})
        message = aio_pika.Message(
            token,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            type="dtrack-worker.reconcile-token.v1",
            expiration=expiration,
        )
        await self._broker.publish(self._broker.topology.jobs_exchange.name, [(key, message)])

    async def _on_token(self, message: AbstractIncomingMessage) -> None:
        now = datetime.now(UTC)
        if self._last_run is not None and now - self._last_run < timedelta(
            seconds=self._interval / 2
        ):
            log.info("reconcile.duplicate_token_dropped")
            await message.ack()
            return
        self.running = True
        try:
            progress = await self._run_pass()
        except Exception as exc:  # the token must survive: retry the pass after a pause
            log.exception("reconcile.failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(min(self._interval, 60))
            await message.nack(requeue=True)
            return
        finally:
            self.running = False
        # when it ended: a duplicate token waits behind the pass (prefetch 1), however long
        self._last_run = datetime.now(UTC)
        self.passes += 1
        log.info("reconcile.done", enqueued=progress.enqueued, projects=progress.seen)
        await self._send(
            RECONCILE_WAIT_KEY, now + timedelta(seconds=self._interval), self._interval
        )
        await message.ack()
