"""A queue consumed on a channel of its own; the broker makes it again after a reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from worker.adapters.amqp import BROKER_ERRORS
from worker.core.topology import Queue


@dataclasses.dataclass(eq=False)
class Subscription:
    """A queue consumed on a channel of its own, made again after every reconnect.

    Stopping is two steps, so that jobs in flight can still be acked: ``stop_taking`` cancels
    the consumer (no new deliveries) and keeps the channel; ``close`` closes the channel, which
    returns to the queue whatever was delivered and not settled.
    """

    queue: Queue
    callback: Callable[[AbstractIncomingMessage], Awaitable[None]]
    prefetch: int
    arguments: dict[str, Any] = dataclasses.field(default_factory=dict)  # basic.consume's
    active: bool = True  # resubscribed after a reconnect while True
    channel: AbstractChannel | None = None
    declared: AbstractQueue | None = None
    tag: str | None = None

    async def stop_taking(self) -> None:
        """basic.cancel, bounded (the broker may be gone); the channel stays open."""
        self.active = False
        declared, tag, self.tag = self.declared, self.tag, None
        with contextlib.suppress(*BROKER_ERRORS, TimeoutError):
            async with asyncio.timeout(5):
                if declared is not None and tag is not None:
                    await declared.cancel(tag)

    async def close(self) -> None:
        """Stop taking, then close the channel: unsettled deliveries go back to the queue."""
        await self.stop_taking()
        channel, self.channel, self.declared = self.channel, None, None
        with contextlib.suppress(*BROKER_ERRORS, TimeoutError):
            async with asyncio.timeout(5):
                if channel is not None:
                    await channel.close()
