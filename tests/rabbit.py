"""Helpers for tests against the real RabbitMQ on 127.0.0.1:5672: unique names, cleanup, reads."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from worker.core import topology

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def unique_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@contextlib.asynccontextmanager
async def temporary_topology(prefix: str) -> AsyncIterator[topology.Topology]:
    """The topology's names, deleted from the broker afterwards whatever the test left there."""
    topo = topology.build(prefix)
    try:
        yield topo
    finally:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            for queue in topo.queues:
                await channel.queue_delete(queue.name)
            for exchange in topo.exchanges:
                await channel.exchange_delete(exchange.name)


async def drain(queue_name: str, *, settle: float = 0.3) -> list[AbstractIncomingMessage]:
    """Every message in the queue, taken (acked) until none arrived for ``settle`` seconds."""
    messages: list[AbstractIncomingMessage] = []
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=False)
        quiet_since = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - quiet_since < settle:
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.02)
                continue
            await message.ack()
            messages.append(message)
            quiet_since = asyncio.get_running_loop().time()
    return messages


async def eventually(check: Callable[[], bool], *, within: float = 15.0) -> None:
    """Wait until ``check()`` holds; TimeoutError fails the test otherwise."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polls state owned by other tasks, not an event
            await asyncio.sleep(0.05)
