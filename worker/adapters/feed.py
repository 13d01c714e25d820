"""The events exchange as a consumer sees it: a temporary queue bound to a topic pattern."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import aio_pika
import structlog

from worker.adapters.amqp import TopologyMissing, connect_once
from worker.core import batches, ocsf, topology
from worker.core.config import Settings

log = structlog.get_logger(__name__)


async def follow(
    settings: Settings,
    write: Callable[[bytes], None],
    *,
    pattern: str,
    count: int | None,
    seconds: float | None,
) -> int:
    """Hand each event's body to ``write`` until ``count`` events or ``seconds`` have passed;
    the events of a CloudEvents batch one by one.

    The queue is exclusive and auto-deleted: it exists only while we read. Returns the count.
    """
    events = topology.build(settings.broker.prefix).events_exchange.name
    seen = 0
    async with await connect_once(settings.broker) as connection:
        channel = await connection.channel()
        try:
            exchange = await channel.get_exchange(events, ensure=True)
        except aio_pika.exceptions.ChannelNotFoundEntity as exc:
            raise TopologyMissing(
                f"the events exchange {events} does not exist yet: run `dtrack-worker topology` "
                "first"
            ) from exc
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, pattern)
        log.info("tail.listening", exchange=events, pattern=pattern)  # from here on, nothing missed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds), queue.iterator() as messages:
                async for message in messages:
                    bodies = [message.body]
                    if message.content_type == batches.BATCH_CONTENT_TYPE or (
                        message.content_type == ocsf.CONTENT_TYPE and message.body[:1] == b"["
                    ):  # a CloudEvents batch, or OCSF findings in a batch
                        with contextlib.suppress(ValueError):  # not ours: shown as it came
                            bodies = batches.unpack(message.body)
                    await message.ack()
                    for body in bodies[: None if count is None else count - seen]:
                        write(body)
                        seen += 1
                    if count is not None and seen >= count:
                        break
    return seen
