"""``dtrack-worker tail``: what downstream receives, as JSON lines on stdout."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import aio_pika

from worker import topology
from worker.broker import BrokerUnavailable, connect_once
from worker.config import Settings


async def _tail(settings: Settings, pattern: str, count: int | None, seconds: float | None) -> None:
    events = topology.build(settings.broker.prefix).events_exchange.name
    async with await connect_once(settings.broker) as connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(events, ensure=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, pattern)
        out = sys.stdout.buffer
        seen = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds), queue.iterator() as messages:
                async for message in messages:
                    out.write(message.body + b"\n")
                    out.flush()
                    await message.ack()
                    seen += 1
                    if count is not None and seen >= count:
                        break


def run(settings: Settings, *, pattern: str, count: int | None, timeout: float | None) -> None:
    try:
        asyncio.run(_tail(settings, pattern, count, timeout))
    except KeyboardInterrupt:
        pass
    except aio_pika.exceptions.ChannelNotFoundEntity as exc:
        raise BrokerUnavailable(
            f"the events exchange does not exist yet: run `dtrack-worker topology` first ({exc})"
        ) from exc
