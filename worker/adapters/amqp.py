"""AMQP building blocks: the errors aio-pika and aiormq raise, as BrokerUnavailable; one-off
connections; declaring a topology; copying a job message.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from worker.adapters import tracing
from worker.core.config import BrokerSettings, Secret
from worker.core.errors import PermanentError, TransientError
from worker.core.jobs import PROGRESS_HEADER
from worker.core.topology import Topology
from worker.core.urls import redact

# Everything a lost or refusing broker raises while we publish or declare.
BROKER_ERRORS = (
    aio_pika.exceptions.AMQPException,
    aiormq.exceptions.AMQPError,
    ConnectionError,
    OSError,
    TimeoutError,
    RuntimeError,  # aiormq: "Connection closed" while a frame waits
)


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
        except BROKER_ERRORS as exc:
            failures.append(redact(f"{url.reveal()}: {type(exc).__name__}: {exc}"))
    raise BrokerUnavailable(f"cannot reach RabbitMQ at {'; '.join(failures)}")


def copy_of(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    """The job ``message`` again, persistent, with new ``headers`` (retry, park, replay) and
    its trace context (a retried job stays in the trace of its notification)."""
    kept = tracing.trace_headers(message.headers)
    if message.headers and PROGRESS_HEADER in message.headers:  # sync --wait follows retries
        kept[PROGRESS_HEADER] = message.headers[PROGRESS_HEADER]
    headers = {**kept, **headers}
    return aio_pika.Message(
        message.body,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        type=message.type,
        headers=headers,
    )


async def declare(connection: AbstractConnection, topology: Topology) -> None:
    """Declare every exchange, queue and binding; idempotent for an unchanged topology.

    A quorum queue declared before ``x-quorum-initial-group-size`` was set keeps its members:
    RabbitMQ refuses a redeclaration that adds the argument, so that queue is declared as it was.
    """
    channel = await connection.channel()
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
            channel = await connection.channel()  # the refusal closed the other one
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
