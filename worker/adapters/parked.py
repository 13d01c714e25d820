"""``dtrack-worker parked``: see, replay and purge the jobs in the parked queue.

Reading never loses a message: messages are taken without an ack and go back when the channel
closes. Replay publishes a fresh copy to the jobs queue (attempt 1), waits for RabbitMQ's
confirm, and only then acks the parked one; an interrupted replay leaves each job either parked,
or replayed, or (at worst) both. Purge acks the chosen messages, which deletes them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from worker.adapters.amqp import connect_once, copy_of
from worker.core.config import Settings
from worker.core.topology import JOB_KEY, Topology, build


@dataclasses.dataclass(frozen=True, slots=True)
class Parked:
    id: str
    reason: str
    error: str
    attempts: int
    parked_at: str
    problems: str | None
    body: bytes

    def age(self, now: datetime) -> str:
        try:
            seconds = (now - datetime.fromisoformat(self.parked_at)).total_seconds()
        except ValueError:
            return "?"
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds >= size:
                return f"{seconds / size:.0f}{unit}"
        return f"{seconds:.0f}s"

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> Parked:
        headers: dict[str, Any] = dict(message.headers or {})
        return cls(
            id=message.message_id or "(no id)",
            reason=str(headers.get("x-park-reason", "?")),
            error=str(headers.get("x-park-error", "")),
            attempts=int(headers.get("x-attempt", 1) or 1),
            parked_at=str(headers.get("x-parked-at", "")),
            problems=str(headers["x-park-problems"]) if "x-park-problems" in headers else None,
            body=message.body,
        )


Action = Callable[[AbstractChannel, Topology, list[AbstractIncomingMessage]], Awaitable[int]]


async def _with_parked(settings: Settings, action: Action, ids: set[str] | None) -> int:
    """Take every parked message (unacked), hand the chosen ones to ``action``; the rest go back."""
    topology = build(settings.broker.prefix)
    async with await connect_once(settings.broker) as connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.get_queue(topology.parked_queue.name, ensure=False)
        messages: list[AbstractIncomingMessage] = []
        while True:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            messages.append(message)
        chosen = [m for m in messages if ids is None or m.message_id in ids]
        # leaving the block closes the channel: every message not acked goes back, in order
        return await action(channel, topology, chosen)


def collect(settings: Settings) -> list[Parked]:
    found: list[Parked] = []

    async def keep(
        _: AbstractChannel, __: Topology, messages: list[AbstractIncomingMessage]
    ) -> int:
        found.extend(Parked.of(message) for message in messages)
        return len(messages)

    asyncio.run(_with_parked(settings, keep, None))
    return found


def replay(settings: Settings, ids: Iterable[str] | None) -> int:
    async def send_back(
        channel: AbstractChannel, topology: Topology, messages: list[AbstractIncomingMessage]
    ) -> int:
        exchange = await channel.get_exchange(topology.jobs_exchange.name, ensure=False)
        for message in messages:
            # no x-attempt header: attempt 1 again
            fresh = copy_of(message, {"x-replayed-at": datetime.now(UTC).isoformat()})
            await exchange.publish(fresh, JOB_KEY, mandatory=True)  # confirmed
            await message.ack()
        return len(messages)

    return asyncio.run(_with_parked(settings, send_back, None if ids is None else set(ids)))


def purge(settings: Settings, ids: Iterable[str] | None) -> int:
    async def delete(
        _: AbstractChannel, __: Topology, messages: list[AbstractIncomingMessage]
    ) -> int:
        for message in messages:
            await message.ack()
        return len(messages)

    return asyncio.run(_with_parked(settings, delete, None if ids is None else set(ids)))
