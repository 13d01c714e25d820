"""Helpers for tests against the real RabbitMQ on 127.0.0.1:5672: unique names, cleanup, reads."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterable

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from tests.waiting import WaitedTooLong, describe, until
from worker.core import topology

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
# the coalescing delays tests use: their delay queues are deleted with the topology
TEST_DELAYS = (0.5, 1, 2, 3, 10, 30)


def unique_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@contextlib.asynccontextmanager
async def temporary_topology(
    prefix: str, delays: Iterable[float] = ()
) -> AsyncIterator[topology.Topology]:
    """The topology's names, deleted from the broker afterwards whatever the test left there;
    ``delays``: coalescing delays the test uses beyond TEST_DELAYS (their queues go too)."""
    topo = topology.build(prefix, delays=(*TEST_DELAYS, *delays))
    try:
        yield topo
    finally:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:

            async def delete(name: str) -> None:
                # a channel each: deleting a missing queue closes its channel
                with contextlib.suppress(aio_pika.exceptions.ChannelNotFoundEntity):
                    channel = await connection.channel()
                    await channel.queue_delete(name)
                    await channel.close()

            # all at once: one after the other it was a tenth of a second of every test's end
            await asyncio.gather(*(delete(queue.name) for queue in topo.queues))
            channel = await connection.channel()
            for exchange in topo.exchanges:
                await channel.exchange_delete(exchange.name)


async def depth(*queue_names: str) -> int:
    """Messages ready in the named queues together; a queue never declared counts as empty."""
    total = 0
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        for name in queue_names:
            with contextlib.suppress(aio_pika.exceptions.ChannelNotFoundEntity):
                channel = await connection.channel()
                queue = await channel.declare_queue(name, passive=True)
                total += queue.declaration_result.message_count or 0
                await channel.close()
    return total


async def drain(
    queue_name: str, *, settle: float = 0.3, then: float | None = None
) -> list[AbstractIncomingMessage]:
    """Every message in the queue, taken (acked) until none arrived for ``settle`` seconds; with
    ``then``, for ``then`` seconds once one arrived (a long wait for a first message that takes
    a retry tier, without waiting as long again after it)."""
    messages: list[AbstractIncomingMessage] = []
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=False)
        quiet_since = asyncio.get_running_loop().time()

        def quiet() -> float:
            return settle if then is None or not messages else then

        while asyncio.get_running_loop().time() - quiet_since < quiet():
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.02)
                continue
            await message.ack()
            messages.append(message)
            quiet_since = asyncio.get_running_loop().time()
    return messages


async def eventually(
    check: Callable[[], bool],
    *,
    within: float = 15.0,
    what: str | None = None,
    seen: Callable[[], object] | None = None,
) -> None:
    """Wait until ``check()`` holds. Otherwise the test fails saying what it waited for (``what``,
    else the lambda's source) and, with ``seen``, the state it last saw."""

    try:
        await until(check, what=what or describe(check), within=within)
    except WaitedTooLong as exc:
        if seen is None:
            raise
        raise WaitedTooLong(exc.what, within, seen()) from None
