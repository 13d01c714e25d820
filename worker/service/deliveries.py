"""The jobs a worker has in hand: each delivery's task, and whether it is settling.

A job settles by publishing a copy of itself (to a retry queue or the parked queue) and then
acking, or by acking; then its history row and last progress report are written. When the
worker stops, what outlived the grace is cancelled and given back to RabbitMQ; what is
settling is left to finish, for at most the publish timeout and 5 s: a copy cancelled while
it was published would be both published and requeued (the job twice), and a job cancelled
after its ack would never be reported settled to whoever follows it."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage

from worker.adapters.amqp import BROKER_ERRORS


@dataclass(frozen=True, slots=True)
class GivenBack:
    jobs: int  # not settled when the worker stopped
    nacked: int  # of those, returned by a nack (a closed channel returns the rest anyway)


class Deliveries:
    def __init__(self) -> None:
        self._messages: dict[asyncio.Task[None], AbstractIncomingMessage] = {}
        self._settling: set[asyncio.Task[None]] = set()

    def add(self, task: asyncio.Task[None], message: AbstractIncomingMessage) -> None:
        self._messages[task] = message
        task.add_done_callback(self._done)

    def settling(self) -> None:
        """The current job's task settles from now on: not cancelled when the worker stops."""
        task = asyncio.current_task()
        if task in self._messages:
            self._settling.add(task)

    def unsettled(self) -> None:
        """The current job's settling failed (its copy was not published): cancellable again."""
        task = asyncio.current_task()
        if task is not None:
            self._settling.discard(task)

    def pending(self) -> set[asyncio.Task[None]]:
        return set(self._messages)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._messages.pop(task, None)
        self._settling.discard(task)

    async def give_back(
        self, unfinished: set[asyncio.Task[None]], settle_within: float
    ) -> GivenBack:
        """Cancel the unfinished jobs that are not settling, let those settling finish within
        ``settle_within`` seconds (then cancel them too), and nack every job left unsettled."""
        messages = [self._messages[task] for task in unfinished if task in self._messages]
        settling = unfinished & self._settling
        for task in unfinished - settling:
            task.cancel()
        if settling:
            _, late = await asyncio.wait(settling, timeout=settle_within)
            for task in late:
                task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        left = [message for message in messages if not message.processed]
        nacked = 0
        for message in left:
            with contextlib.suppress(*BROKER_ERRORS):  # a closed channel returns it anyway
                await message.nack(requeue=True)
                nacked += 1
        return GivenBack(len(left), nacked)
