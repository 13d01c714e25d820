"""Confirmed publishing, many messages in one write, straight on aiormq's channel.

aiormq's ``basic_publish`` costs about 130 µs a message here (a lock, a timeout, a future and a
frame object each); this writes a whole batch under one lock as one buffer and keeps one
future per batch. It takes part in aiormq's own confirmation table, so acks, nacks, returns
(mandatory, unroutable) and a closing channel reach it exactly as they reach
``basic_publish``: a ``_Slot`` per delivery tag stands where aiormq keeps a future.

``GroupCommit`` is the receiver's side: the jobs of every request that arrives while a write
is under way go out together in the next one, each request waiting for its own confirms.

What it relies on is aiormq's private state, fenced: ``incompatibilities`` names what differs
(tests/test_publisher.py fails on it; the broker then falls back to aio-pika's own publishing),
and ``DTRACK_WORKER_PUBLISHER=aio-pika`` selects that fallback outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Sequence
from typing import Any, cast

import aiormq
from aiormq.abc import ChannelFrame

from worker.adapters import frames

# exchange, routing key, body, properties
Outgoing = tuple[str, str, bytes, frames.Properties]

# ChannelFrame is built by position; aiormq's channel attributes written or read, by type
_FRAME_FIELDS = ("payload", "should_close", "drain_future")
_CHANNEL_STATE = (
    ("confirmations", dict),  # delivery tag -> what aiormq settles on ack, nack, return
    ("delivery_tag", int),  # the last tag given out
    ("message_id_delivery_tag", dict),  # message id -> tag, for returns
    ("write_queue", asyncio.Queue),  # frames to the socket
)


def incompatibilities(channel: aiormq.Channel) -> list[str]:
    """What in aiormq's private state differs from what ``write`` relies on; [] if nothing."""
    found = []
    fields = tuple(getattr(ChannelFrame, "__dataclass_fields__", {}))  # in their order
    if fields[: len(_FRAME_FIELDS)] != _FRAME_FIELDS:
        found.append(f"aiormq.abc.ChannelFrame fields are {fields}, not {_FRAME_FIELDS}")
    for name, kind in _CHANNEL_STATE:
        value = getattr(channel, name, None)
        if value is None:
            found.append(f"aiormq.Channel.{name} is missing")
        elif not isinstance(value, kind):
            found.append(
                f"aiormq.Channel.{name} is a {type(value).__name__}, not a {kind.__name__}"
            )
    if not hasattr(getattr(channel, "lock", None), "__aenter__"):  # held while tags are given
        found.append("aiormq.Channel.lock is not an async context manager")
    tune = getattr(getattr(channel, "connection", None), "connection_tune", None)
    if not isinstance(getattr(tune, "frame_max", None), int):
        found.append("aiormq.Connection.connection_tune.frame_max is not an int")
    for method in ("_confirm_delivery", "_on_return_frame", "create_future"):
        if not callable(getattr(channel, method, None)):
            found.append(f"aiormq.Channel.{method} is missing")
    return found


class _Batch:
    """The confirms of one batch: its future is done when RabbitMQ acked every message, or
    failed at the first nack or return (or with the channel)."""

    __slots__ = ("future", "remaining")

    def __init__(self, future: asyncio.Future[None], size: int) -> None:
        self.future, self.remaining = future, size
        if size == 0:
            future.set_result(None)

    def acked(self) -> None:
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(None)

    def failed(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class _Slot:
    """What aiormq's confirmation table holds for one message of a ``_Batch`` (it calls
    ``done``, ``set_result`` on an ack and ``set_exception`` on a nack or a return)."""

    __slots__ = ("batch",)

    def __init__(self, batch: _Batch) -> None:
        self.batch = batch

    def done(self) -> bool:
        return False  # aiormq then always hands us the broker's answer

    def set_result(self, _: object) -> None:
        self.batch.acked()

    def set_exception(self, exc: BaseException) -> None:
        self.batch.failed(exc)


async def write(
    channel: aiormq.Channel, batches: Sequence[Sequence[Outgoing]]
) -> list[asyncio.Future[None]]:
    """Write every message of every batch, in order, as one buffer: a future per batch for
    its confirms (the channel must have publisher confirms on)."""
    number = channel.number
    frame_max = channel.connection.connection_tune.frame_max
    table = cast(dict[int, Any], channel.confirmations)
    ids = channel.message_id_delivery_tag
    async with channel.lock:
        first = channel.delivery_tag + 1
        tag = first - 1
        payload: list[bytes | memoryview] = []
        futures: list[asyncio.Future[None]] = []
        sent: list[tuple[str, int]] = []
        drained: asyncio.Future[None] = channel.create_future()
        try:
            for messages in batches:
                future: asyncio.Future[None] = channel.create_future()
                futures.append(future)
                slot = _Slot(_Batch(future, len(messages)))
                start = len(sent)
                for exchange, routing_key, body, properties in messages:
                    payload += frames.message_parts(
                        number, exchange, routing_key, body, properties, frame_max=frame_max
                    )
                    tag += 1
                    table[tag] = slot
                    ids[properties.message_id] = tag
                    sent.append((properties.message_id, tag))
                future.add_done_callback(functools.partial(_forget, ids, sent[start:]))
            channel.delivery_tag = tag
            await channel.write_queue.put(ChannelFrame(b"".join(payload), False, drained))
        except BaseException:  # not written: the broker never saw these tags
            channel.delivery_tag = first - 1
            for _, unsent in sent:
                table.pop(unsent, None)
            _forget(ids, sent)
            for future in futures:
                future.cancel()
            drained.cancel()
            raise
    await drained  # the socket took it: back-pressure for whoever writes next
    return futures


def _forget(ids: dict[str, int], sent: Sequence[tuple[str, int]], _: object = None) -> None:
    for message_id, tag in sent:
        if ids.get(message_id) == tag:
            del ids[message_id]


async def publish(channel: aiormq.Channel, messages: Sequence[Outgoing]) -> None:
    """Publish ``messages`` and return once RabbitMQ confirmed them all (aiormq's PublishError
    or DeliveryError for a return or a nack; the caller bounds the wait)."""
    (confirms,) = await write(channel, [messages])
    await confirms


class GroupCommit:
    """Requests' messages coalesced into shared writes on one channel.

    One deadline per write, not one per request: a request whose confirms have not come
    ``deadline`` seconds after its write fails with TimeoutError.
    """

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._waiting: list[tuple[Sequence[Outgoing], asyncio.Future[None]]] = []
        self._channel: aiormq.Channel | None = None
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0  # writes made, each shared by the requests waiting at the time

    async def publish(self, channel: aiormq.Channel, messages: Sequence[Outgoing]) -> None:
        """Like ``publish``, sharing the write (and its confirms' round trip) with whatever
        else is published now."""
        self._channel = channel  # after a reconnect, what waits goes to the new channel
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((messages, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all(), name="group-commit")
        await done

    async def _write_all(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                waiting, self._waiting = self._waiting, []
                waiting = [(messages, done) for messages, done in waiting if not done.done()]
                dones = [done for _, done in waiting]
                loop.call_later(self._deadline, _expire, dones, self._deadline)
                channel = self._channel
                try:
                    if channel is None:
                        raise aiormq.exceptions.ChannelInvalidStateError("no channel")
                    self.writes += 1
                    confirms = await write(channel, [messages for messages, _ in waiting])
                except asyncio.CancelledError:
                    for done in dones:
                        done.cancel()
                    raise
                except Exception as exc:
                    for done in dones:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for done, confirm in zip(dones, confirms, strict=True):
                    confirm.add_done_callback(functools.partial(_settle, done))
        finally:
            self._writer = None

    async def close(self) -> None:
        writer = self._writer
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        waiting, self._waiting = self._waiting, []
        for _, done in waiting:
            done.cancel()


def _expire(dones: Sequence[asyncio.Future[None]], deadline: float) -> None:
    for done in dones:
        if not done.done():
            done.set_exception(TimeoutError(f"no confirm within {deadline:g} s"))


def _settle(done: asyncio.Future[None], confirm: asyncio.Future[None]) -> None:
    if done.done():
        return  # the request timed out or went away
    if confirm.cancelled():
        done.set_exception(aiormq.exceptions.ChannelInvalidStateError("publish cancelled"))
    elif (exc := confirm.exception()) is not None:
        done.set_exception(exc)
    else:
        done.set_result(None)
