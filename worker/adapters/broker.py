"""RabbitMQ through aio-pika: connect (and keep reconnecting), declare the topology, publish
with publisher confirms (events and jobs on the lean path of ``worker.adapters.publisher``).
aio-pika and aiormq errors stop here; callers see BrokerUnavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import cast

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
)
from opentelemetry.trace import SpanKind

from worker.adapters import publisher, tracing
from worker.adapters.amqp import (
    BROKER_ERRORS,
    BrokerUnavailable,
    declare,
    in_turn,
    publish_errors,
)
from worker.adapters.frames import Properties
from worker.adapters.subscription import Subscription
from worker.core import batches
from worker.core.config import BrokerSettings, Secret
from worker.core.events import Event
from worker.core.jobs import JOB_TYPE, Job
from worker.core.topology import JOB_KEY, Queue, Topology, delay_key
from worker.core.urls import redact

log = structlog.get_logger(__name__)

# A transaction of many jobs gets the publish timeout plus this much per job (50,000 jobs
# take about 5 s here; the deadline leaves room for a slower broker).
TRANSACTION_SECONDS_PER_JOB = 0.0005
MAX_TRANSACTIONS = 8  # channels publishing transactions at once, per process
EVENT_WINDOW = 500  # single events whose confirms are in flight together
BATCHES_PER_ROUND = 2


class Broker:
    """One connection and one confirming channel per process, to one node of a cluster.

    ``start()`` returns at once and keeps trying to connect in the background, so the HTTP side
    can answer (503, /readyz failing) while RabbitMQ is away. It tries the nodes of
    DTRACK_WORKER_AMQP_URL in turn, from a random one on; when the connection (or its confirming
    channel) is lost it connects again, to the next node first, declares the topology again and
    subscribes every consumer again on a fresh channel.
    """

    def __init__(self, settings: BrokerSettings, topology: Topology) -> None:
        self._settings = settings
        self._topology = topology
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._raw: aiormq.Channel | None = None  # the confirming channel's aiormq underlay
        self._jobs: AbstractExchange | None = None
        self._group = publisher.GroupCommit(settings.publish_timeout)
        self._declared = False
        self._lost = asyncio.Event()
        self._why_lost: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscriptions: list[Subscription] = []
        self._transactions = asyncio.Semaphore(MAX_TRANSACTIONS)
        self.node: str | None = None  # the node in use, its URL redacted
        self.connections = 0  # successful connections so far (reconnects included)

    @property
    def ready(self) -> bool:
        connection, channel = self._connection, self._channel
        return (
            self._declared
            and connection is not None
            and not connection.is_closed
            and channel is not None
            and not channel.is_closed
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever(), name="broker-connect")

    async def wait_ready(self, *, within: float) -> None:
        """Wait for ``start()`` to connect; BrokerUnavailable after ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                while not self.ready:  # noqa: ASYNC110 - the broker connects in its own task
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise BrokerUnavailable(
                f"cannot reach RabbitMQ at {self._settings.display_url} within {within:g} s"
            ) from None

    async def _connect_forever(self) -> None:
        nodes = in_turn(self._settings.urls)
        delay = 0.5
        while True:
            for index, url in enumerate(nodes):
                shown = redact(url.reveal())
                try:
                    await self._connect(url)
                except BROKER_ERRORS as exc:
                    log.warning(
                        "broker.connect_failed", url=shown, error=f"{type(exc).__name__}: {exc}"
                    )
                    await self._close_quietly()
                    continue
                delay = 0.5
                await self._serve_connection(shown)
                nodes = [*nodes[index + 1 :], *nodes[: index + 1]]  # the next node first
                break
            else:
                log.warning("broker.unreachable", nodes=len(nodes), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _serve_connection(self, shown: str) -> None:
        """From a new connection to its loss: subscribe again, then wait for the loss."""
        self.node, self.connections = shown, self.connections + 1
        log.info(
            "broker.connected",
            url=shown,
            nodes=len(self._settings.urls),
            reconnect=self.connections > 1,
        )
        if self.connections > 1:  # a first connection has no consumers yet
            await self._resubscribe()
        await self._lost.wait()
        why = self._why_lost
        log.warning("broker.disconnected", url=shown, error=repr(why) if why else None)
        await self._close_quietly()

    async def _connect(self, url: Secret) -> None:
        self._lost.clear()
        self._why_lost = None
        connection = await aio_pika.connect(
            url.reveal(),
            timeout=10,
            client_properties={"connection_name": f"dtrack-worker {self._topology.prefix}"},
        )
        self._connection = connection
        connection.close_callbacks.add(self._on_close)
        await declare(connection, self._topology)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        channel.close_callbacks.add(self._on_close)  # a lost channel is a lost connection
        self._channel = channel
        # The concrete class: the lean publisher uses its confirmation table and write queue.
        self._raw = cast(aiormq.Channel, await channel.get_underlay_channel())
        self._jobs = await channel.get_exchange(self._topology.jobs_exchange.name, ensure=False)
        self._declared = True

    def _on_close(self, _: object, exc: BaseException | None = None) -> None:
        if self._why_lost is None and exc is not None:
            self._why_lost = exc
        self._declared = False
        self._lost.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._group.close()
        await self._close_quietly()

    async def _close_quietly(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._raw = None
        self._declared = False
        if connection is not None:
            connection.close_callbacks.discard(self._on_close)
            with contextlib.suppress(*BROKER_ERRORS, TimeoutError):
                async with asyncio.timeout(10):
                    await connection.close()

    @property
    def topology(self) -> Topology:
        return self._topology

    async def publish(
        self, exchange_name: str, messages: Sequence[tuple[str, aio_pika.Message]]
    ) -> None:
        """Publish every (routing key, message), mandatory, and return once all are confirmed.

        All confirms are in flight together; callers bound the batch size.
        """
        if not self.ready or self._channel is None:
            raise BrokerUnavailable("RabbitMQ is not connected")
        timeout = self._settings.publish_timeout
        with publish_errors(timeout, "a message"):
            exchange = await self._channel.get_exchange(exchange_name, ensure=False)
            await asyncio.gather(
                *(exchange.publish(m, key, mandatory=True, timeout=timeout) for key, m in messages)
            )

    def _lean(self) -> aiormq.Channel:
        channel = self._raw
        if not self.ready or channel is None or channel.is_closed:
            raise BrokerUnavailable("RabbitMQ is not connected")
        return channel

    async def publish_serialized(
        self, exchange_name: str, items: Sequence[batches.Serialized]
    ) -> None:
        """Publish (routing key, CloudEvent body, event id, type), persistent, mandatory, one
        message each or in CloudEvents batches (DTRACK_WORKER_BATCH), in one write, and
        return once RabbitMQ confirmed them all."""
        channel = self._lean()
        messages = [
            (
                exchange_name,
                message.routing_key,
                message.body,
                Properties(message.content_type, message.message_id, message.type),
            )
            for message in batches.pack(items, self._settings.event_batch)
        ]
        timeout = self._settings.publish_timeout
        with (
            tracing.span(
                f"publish {exchange_name}",
                kind=SpanKind.PRODUCER,
                attributes=tracing.publish_attributes(
                    exchange_name, len(messages), events=len(items)
                ),
            ),
            publish_errors(timeout, "an event"),
        ):
            async with asyncio.timeout(timeout):
                await publisher.publish(channel, messages)

    @property
    def events_per_round(self) -> int:
        """How many events to publish with their confirms in flight together: 500, or 2
        batches when they hold more (a round is in memory twice over while it is written)."""
        batch = self._settings.event_batch
        return EVENT_WINDOW if batch == 1 else max(EVENT_WINDOW, BATCHES_PER_ROUND * batch)

    async def publish_events(self, events: Sequence[Event]) -> None:
        """CloudEvents to the events exchange: persistent, mandatory, confirmed."""
        await self.publish_serialized(
            self._topology.events_exchange.name,
            [(event.routing_key, event.body, event.id, event.type) for event in events],
        )

    async def consume(
        self,
        queue: Queue,
        callback: Callable[[AbstractIncomingMessage], Awaitable[None]],
        *,
        prefetch: int,
    ) -> Subscription:
        """Deliver ``queue`` to ``callback`` on a channel of its own.

        After every reconnect the subscription is made again on a fresh channel: aio-pika's own
        restoration of consumers proved unreliable under a cut connection (tests/test_resilience
        R1). Unacknowledged messages of a lost connection are redelivered by RabbitMQ.
        """
        subscription = Subscription(queue, callback, prefetch)
        self._subscriptions.append(subscription)
        await self._subscribe(subscription)
        return subscription

    async def _subscribe(self, subscription: Subscription) -> None:
        if self._connection is None:
            raise BrokerUnavailable("RabbitMQ is not connected")
        await subscription.close()
        subscription.active = True
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=subscription.prefetch)
        # declared with the topology's arguments (a no-op for an existing queue)
        declared = await channel.declare_queue(
            subscription.queue.name, durable=True, arguments=subscription.queue.x_arguments
        )
        subscription.channel = channel
        subscription.tag = await declared.consume(subscription.callback)
        subscription.declared = declared

    async def _resubscribe(self) -> None:
        self._subscriptions = [s for s in self._subscriptions if s.active]
        for subscription in list(self._subscriptions):
            try:
                await self._subscribe(subscription)
            except BROKER_ERRORS as exc:  # the next connection tries again
                log.warning(
                    "broker.resubscribe_failed", queue=subscription.queue.name, error=repr(exc)
                )
            else:
                log.info("broker.resubscribed", queue=subscription.queue.name)

    async def depth(self, *queue_names: str) -> int:
        """Messages ready in the named queues, together."""
        if not self.ready or self._channel is None:
            raise BrokerUnavailable("RabbitMQ is not connected")
        total = 0
        for name in queue_names:
            queue = await self._channel.declare_queue(name, passive=True)
            total += queue.declaration_result.message_count or 0
        return total

    async def enqueue(
        self,
        jobs: Sequence[Job],
        *,
        delay_seconds: float = 0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Publish ``jobs`` (persistent, mandatory): all of them are in RabbitMQ, or none is.

        One job is one confirmed publish. Several go in one AMQP transaction on a channel of
        their own, with a deadline that grows with their number: a notification naming 50,000
        projects is enqueued whole or not at all. With a delay they wait in the delay queue of
        that delay first (coalescing, see docs/topology.md).
        """
        exchange = self._jobs
        if not self.ready or exchange is None:
            raise BrokerUnavailable("RabbitMQ is not connected")
        routing_key = delay_key(delay_seconds) if delay_seconds > 0 else JOB_KEY
        if not jobs:
            return
        with tracing.span(
            f"send {exchange.name}",
            kind=SpanKind.PRODUCER,
            attributes=tracing.publish_attributes(exchange.name, len(jobs)),
        ):
            # the jobs carry the trace to the worker, and ``headers`` (sync's progress queue)
            headers = {**tracing.inject(), **(headers or {})} or None
            if len(jobs) > 1:
                await self._publish_atomically(
                    [_job_message(job, headers) for job in jobs], routing_key
                )
                return
            # One job: shares a write, and the round trip of its confirm, with every other
            # request's job of the moment (group commit).
            (job,) = jobs
            properties = Properties(
                "application/json",
                job.job_id,
                JOB_TYPE,
                correlation_id=job.correlation_id,
                headers=headers,
            )
            message = (exchange.name, routing_key, job.to_json(), properties)
            timeout = self._settings.publish_timeout
            with publish_errors(timeout, "the job"):  # the group commit keeps the deadline
                await self._group.publish(self._lean(), [message])

    async def _publish_atomically(self, messages: list[aio_pika.Message], routing_key: str) -> None:
        connection = self._connection
        if connection is None:
            raise BrokerUnavailable("RabbitMQ is not connected")
        timeout = self._settings.publish_timeout + len(messages) * TRANSACTION_SECONDS_PER_JOB
        returned: list[object] = []
        async with self._transactions:
            with publish_errors(timeout, f"{len(messages)} jobs"):
                channel = await connection.channel(publisher_confirms=False)
                channel.return_callbacks.add(lambda _, message: returned.append(message))
                try:
                    async with asyncio.timeout(timeout):
                        transaction = channel.transaction()
                        await transaction.select()
                        exchange = await channel.get_exchange(
                            self._topology.jobs_exchange.name, ensure=False
                        )
                        for message in messages:
                            await exchange.publish(message, routing_key, mandatory=True)
                        await transaction.commit()
                finally:  # a transaction not committed is rolled back with its channel
                    with contextlib.suppress(*BROKER_ERRORS):
                        async with asyncio.timeout(5):
                            await channel.close()
        if returned:  # committed, but the topology lacks the queue: say so, loudly
            raise BrokerUnavailable(
                f"RabbitMQ returned {len(returned)} of {len(messages)} jobs as unroutable "
                f"(routing key {routing_key}): declare the topology (dtrack-worker topology)"
            )


def _job_message(job: Job, headers: dict[str, str] | None) -> aio_pika.Message:
    return aio_pika.Message(
        job.to_json(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=job.job_id,
        correlation_id=job.correlation_id,
        type=JOB_TYPE,
        headers=dict(headers) if headers else None,
    )
