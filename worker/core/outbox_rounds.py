"""Outbox rounds: a job's events in a few outbox rows, not one row each. Pure.

A round is up to ``ROUND`` consecutive events of one project, written as one outbox row and
published by the relay as one pipelined batch; the row is deleted once RabbitMQ confirmed every
event of it, so a round confirmed in part is published again whole (consumers de-duplicate on
the event id). A first sync of 10,000 findings writes, reads and deletes 21 rows instead of
10,001.

The row's body frames the round's events without serializing them again::

    b"R1" | header length (4 bytes, big-endian) | header | body 1 | body 2 | ...

the header being the JSON array ``[[routing key, event id, type, body length], ...]``.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence

import orjson

from worker.core.events import Event

ROUND = 500  # events a row holds at most: a snapshot round (broker.EVENT_WINDOW)
MAGIC = b"R1"
_LENGTH = struct.Struct(">I")


class CorruptRound(ValueError):
    """An outbox row whose body is not a round this release can read."""


@dataclasses.dataclass(frozen=True, slots=True)
class Round:
    """One outbox row's worth: the first event's offset in the job's events, and the framed
    body; ``event_id``, ``type`` and ``routing_key`` are its first event's (the table's
    columns of a one-event row, kept meaningful for whoever looks). ``made``: the events the
    body frames, as made (the relay publishes a round its process committed from them)."""

    offset: int
    events: int
    event_id: str
    type: str
    routing_key: str
    body: bytes
    made: tuple[Event, ...] = dataclasses.field(default=(), repr=False, compare=False)


def framed(events: Sequence[Event], size: int = ROUND) -> list[Round]:
    """``events`` in rounds of at most ``size``, in order."""
    return [
        Round(
            offset=start,
            events=len(chunk),
            event_id=chunk[0].id,
            type=chunk[0].type,
            routing_key=chunk[0].routing_key,
            body=encode(chunk),
            made=tuple(chunk),
        )
        for start in range(0, len(events), size)
        if (chunk := events[start : start + size])
    ]


def encode(events: Sequence[Event]) -> bytes:
    header = orjson.dumps([[e.routing_key, e.id, e.type, len(e.body)] for e in events])
    return b"".join([MAGIC, _LENGTH.pack(len(header)), header, *(e.body for e in events)])


def decode(body: bytes, expected: int) -> list[Event]:
    """The events of a round, in order; CorruptRound when it does not hold ``expected``."""
    if body[:2] != MAGIC or len(body) < 6:
        raise CorruptRound(f"an outbox round starts with {MAGIC!r}, not {bytes(body[:2])!r}")
    (length,) = _LENGTH.unpack_from(body, 2)
    start = 6 + length
    try:
        header = orjson.loads(body[6:start])
    except orjson.JSONDecodeError as exc:
        raise CorruptRound(f"an outbox round's header is not JSON: {exc}") from None
    if not isinstance(header, list) or len(header) != expected:
        raise CorruptRound(f"an outbox round of {expected} events holds another header")
    events = []
    for routing_key, event_id, type_, size in header:
        events.append(Event(event_id, routing_key, body[start : start + size], type_))
        start += size
    if start != len(body):
        raise CorruptRound(f"an outbox round's bodies end at byte {start} of {len(body)}")
    return events
