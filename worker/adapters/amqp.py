"""AMQP building blocks: the errors aio-pika and aiormq raise, as BrokerUnavailable; one-off
connections; declaring a topology; copying a job message.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator, Sequence
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from worker.adapters import tracing
from worker.adapters.frames import Properties
from worker.core.config import BrokerSettings, Secret
from worker.core.errors import PermanentError, TransientError
from worker.core.jobs import FORCE_HEADER, JOB_TYPE, PROGRESS_HEADER, Job
from worker.core.topology import Topology
from worker.core.urls import redact

# What a lost or refusing broker raises while we publish, consume or declare: the broker's own
# errors and a lost socket, nothing wider. A RuntimeError or an OSError from our own code is a
# bug: it must surface (500, a parked job), not pass for an outage retried forever.
BROKER_ERRORS = (
    aiormq.exceptions.AMQPError,  # aio-pika's AMQPException too: every protocol-level refusal
    aiormq.exceptions.ChannelInvalidStateError,  # a RuntimeError: the channel closed under us
    ConnectionError,  # the socket: reset, refused, broken pipe (aiormq's connection errors too)
    TimeoutError,
)
# Connecting adds what the network raises before any AMQP: an unresolvable host
# (socket.gaierror), no route (EHOSTUNREACH), TLS.
CONNECT_ERRORS = (*BROKER_ERRORS, OSError)


GROUP_SIZE = "x-quorum-initial-group-size"


class TopologyMissing(PermanentError):
    """A queue or exchange a command needs was never declared under this prefix."""


class BrokerUnavailable(TransientError):
    """RabbitMQ is not connected, refused a message, or did not confirm it in time."""


@contextlib.contextmanager
def publish_errors(timeout: float, what: str) -> Iterator[None]:
    """aio-pika's ways of not confirming, as BrokerUnavailable."""
    try:
        yield
    except TimeoutError as exc:
        raise BrokerUnavailable(f"RabbitMQ did not confirm within {timeout:g} s") from exc
    except aiormq.exceptions.PublishError as exc:
        raise BrokerUnavailable(redact(f"RabbitMQ returned {what}: {exc}")) from exc
    except BROKER_ERRORS as exc:
        raise BrokerUnavailable(f"RabbitMQ refused {what}: {type(exc).__name__}") from exc


def in_turn(urls: Sequence[Secret]) -> list[Secret]:
    """The nodes' URLs from a random one on: processes spread over a cluster's nodes."""
    start = random.randrange(len(urls))
    return [*urls[start:], *urls[:start]]


async def connect_once(settings: BrokerSettings) -> AbstractConnection:
    """A plain connection for a one-off command, to the first node that answers."""
    failures = []
    for url in in_turn(settings.urls):
        try:
            return await aio_pika.connect(url.reveal(), timeout=10)
        except CONNECT_ERRORS as exc:
            failures.append(redact(f"{url.reveal()}: {type(exc).__name__}: {exc}"))
    raise BrokerUnavailable(f"cannot reach RabbitMQ at {'; '.join(failures)}")


async def open_channel(connection: AbstractConnection, **options: Any) -> AbstractChannel:
    """``connection.channel(...)``; a connection closed meanwhile (aiormq says so with a
    RuntimeError) as the ConnectionError it is."""
    try:
        return await connection.channel(**options)
    except RuntimeError as exc:
        if not connection.is_closed:
            raise  # a bug, not the broker
        raise ConnectionError(f"RabbitMQ connection closed: {exc}") from exc


def copy_of(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    """The job ``message`` again, persistent, with new ``headers`` (retry, park, replay; a
    header given as None is dropped) and its trace context (a retried job stays in the trace of
    its notification)."""
    kept = tracing.trace_headers(message.headers)
    for name in (PROGRESS_HEADER, FORCE_HEADER):  # sync --wait, and a forced replay, follow retries
        if message.headers and name in message.headers:
            kept[name] = message.headers[name]
    headers = {name: value for name, value in {**kept, **headers}.items() if value is not None}
    return aio_pika.Message(
        message.body,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        type=message.type,
        headers=headers,
    )


def job_message(job: Job, headers: dict[str, str] | None) -> aio_pika.Message:
    """A job as its own message (the jobs of a transaction), persistent."""
    return aio_pika.Message(
        job.to_json(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=job.job_id,
        correlation_id=job.correlation_id,
        type=JOB_TYPE,
        headers=dict(headers) if headers else None,
    )


def message_of(body: bytes, properties: Properties) -> aio_pika.Message:
    """A message of the lean publisher's, as aio-pika's (its fallback), persistent."""
    return aio_pika.Message(
        body,
        content_type=properties.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=properties.message_id,
        correlation_id=properties.correlation_id,
        type=properties.type,
        headers=dict(properties.headers) if properties.headers else None,
    )


async def publish_transaction(
    connection: AbstractConnection,
    exchange_name: str,
    messages: Sequence[aio_pika.Message],
    routing_key: str,
    deadline: float,
) -> None:
    """``messages`` in one AMQP transaction on a channel of their own, within ``deadline``
    seconds: all in, or none; BrokerUnavailable otherwise, or when any came back unroutable."""
    returned: list[object] = []
    with publish_errors(deadline, f"{len(messages)} jobs"):
        channel = await open_channel(connection, publisher_confirms=False)
        channel.return_callbacks.add(lambda _, message: returned.append(message))
        try:
            async with asyncio.timeout(deadline):
                transaction = channel.transaction()
                await transaction.select()
                exchange = await channel.get_exchange(exchange_name, ensure=False)
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


async def declare(connection: AbstractConnection, topology: Topology) -> None:
    """Declare every exchange, queue and binding; idempotent for an unchanged topology.

    A quorum queue declared before ``x-quorum-initial-group-size`` was set keeps its members:
    RabbitMQ refuses a redeclaration that adds the argument, so that queue is declared as it was.
    """
    channel = await open_channel(connection)
    for exchange in topology.exchanges:
        await channel.declare_exchange(
            exchange.name, exchange.type, durable=True, arguments=dict(exchange.arguments)
        )
    for queue in topology.queues:
        arguments = queue.x_arguments
        try:
            await channel.declare_queue(queue.name, durable=True, arguments=arguments)
        except aio_pika.exceptions.ChannelPreconditionFailed:
            if GROUP_SIZE not in arguments:
                raise
            channel = await open_channel(connection)  # the refusal closed the other one
            earlier = {key: value for key, value in arguments.items() if key != GROUP_SIZE}
            await channel.declare_queue(queue.name, durable=True, arguments=earlier)
    # Bound by name on the channel in use now: a queue object declared before a refusal
    # belongs to the channel that refusal closed.
    for binding in topology.bindings:
        declared = await channel.get_queue(binding.queue, ensure=False)
        await declared.bind(binding.exchange, binding.routing_key)
    await channel.close()


async def declare_once(settings: BrokerSettings, topology: Topology) -> None:
    """Declare ``topology`` on a connection of its own; BrokerUnavailable if we cannot."""
    async with await connect_once(settings) as connection:
        try:
            await declare(connection, topology)
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(
                redact(
                    f"cannot declare the topology on {settings.display_url}: "
                    f"{type(exc).__name__}: {exc}"
                )
            ) from exc
