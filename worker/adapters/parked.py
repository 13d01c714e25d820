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

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from worker.adapters.amqp import TopologyMissing, connect_once, copy_of
from worker.core import urls
from worker.core.config import Settings
from worker.core.jobs import FORCE_HEADER
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
            reason=str(headers.get("x-park-reason") or _dead_lettered(headers)),
            error=urls.redact(str(headers.get("x-park-error", ""))),  # parked by any version
            attempts=_attempts(headers.get("x-attempt")),
            parked_at=str(headers.get("x-parked-at", "")),
            problems=str(headers["x-park-problems"]) if "x-park-problems" in headers else None,
            body=message.body,
        )


def _dead_lettered(headers: dict[str, Any]) -> str:
    """Why RabbitMQ parked it itself (the jobs queue's policy: ``delivery_limit``), else "?"."""
    reason = headers.get("x-first-death-reason")
    return reason.decode() if isinstance(reason, bytes) else str(reason or "?")


def _attempts(value: object) -> int:
    """The x-attempt header as written by a worker, or 0 when something else wrote it."""
    return value if type(value) is int and value >= 0 else 0


# what to do with the chosen parked messages; returns the ids of those it handled
Action = Callable[[AbstractChannel, Topology, list[AbstractIncomingMessage]], Awaitable[list[str]]]


async def _with_parked(settings: Settings, action: Action, ids: set[str] | None) -> list[str]:
    """Take every parked message (unacked), hand the chosen ones to ``action``; the rest go back."""
    topology = build(settings.broker.prefix)
    async with await connect_once(settings.broker) as connection:
        channel = await connection.channel(publisher_confirms=True)
        try:
            queue = await channel.get_queue(topology.parked_queue.name, ensure=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            raise TopologyMissing(
                f"there is no parked queue {topology.parked_queue.name}: nothing runs under "
                f"DTRACK_WORKER_PREFIX={settings.broker.prefix} on this broker (check the prefix, "
                "or run `dtrack-worker topology`)"
            ) from None
        messages: list[AbstractIncomingMessage] = []
        while True:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            messages.append(message)
        chosen = [m for m in messages if ids is None or m.message_id in ids]
        # leaving the block closes the channel: every message not acked goes back, in order
        return await action(channel, topology, chosen)


def _ids(messages: list[AbstractIncomingMessage]) -> list[str]:
    return [message.message_id or "(no id)" for message in messages]


def collect(settings: Settings) -> list[Parked]:
    found: list[Parked] = []

    async def keep(
        _: AbstractChannel, __: Topology, messages: list[AbstractIncomingMessage]
    ) -> list[str]:
        found.extend(Parked.of(message) for message in messages)
        return _ids(messages)

    asyncio.run(_with_parked(settings, keep, None))
    return found


def replay(settings: Settings, ids: Iterable[str] | None, *, force: bool = False) -> list[str]:
    """Back to the jobs queue, attempt 1; returns the ids replayed. ``force``: the jobs are
    applied past the mass-resolve guard (a replay without it clears an earlier force)."""

    async def send_back(
        channel: AbstractChannel, topology: Topology, messages: list[AbstractIncomingMessage]
    ) -> list[str]:
        exchange = await channel.get_exchange(topology.jobs_exchange.name, ensure=False)
        for message in messages:
            # no x-attempt header: attempt 1 again
            fresh = copy_of(
                message,
                {"x-replayed-at": datetime.now(UTC).isoformat(), FORCE_HEADER: force or None},
            )
            await exchange.publish(fresh, JOB_KEY, mandatory=True)  # confirmed
            await message.ack()
        return _ids(messages)

    return asyncio.run(_with_parked(settings, send_back, None if ids is None else set(ids)))


def purge(settings: Settings, ids: Iterable[str] | None) -> list[str]:
    """Deleted for good; returns the ids deleted."""

    async def delete(
        _: AbstractChannel, __: Topology, messages: list[AbstractIncomingMessage]
    ) -> list[str]:
        for message in messages:
            await message.ack()
        return _ids(messages)

    return asyncio.run(_with_parked(settings, delete, None if ids is None else set(ids)))
