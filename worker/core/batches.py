"""CloudEvents batches: up to N events in one message (DTRACK_WORKER_BATCH). Pure.

A batch is the JSON array of its events' own bytes (``application/cloudevents-batch+json``),
never serialized again. Consecutive events go together while they share the first word of
their routing key (``finding``, ``delta``, ``export``, ``project``); the batch's routing key
is the words all its events share: ``delta.opened.high`` when they all are, ``delta.opened``
or ``delta`` when they differ further (docs/events.md). Order is kept: a batch never holds an
event that follows one in a later batch.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, TypeVar

import orjson

from worker.core import ids, ocsf
from worker.core.events import CLOUDEVENTS_CONTENT_TYPE

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
MIXED_TYPE = "dtrack-worker.batch"  # the AMQP type of a batch whose events' types differ
MAX_BATCH = 10_000

# Namespace of batch message ids (a fixed UUIDv4): the same events make the same id.
BATCH_ID_NAMESPACE = uuid.UUID("b7a3c0f1-3d2e-4c55-9a61-2e8f0d4b7c19")

_T = TypeVar("_T")

# routing key, CloudEvent body, event id, event type
Serialized = tuple[str, bytes, str, str]


class Message(NamedTuple):
    """One AMQP message: a single CloudEvent or a batch of them."""

    routing_key: str
    body: bytes
    message_id: str
    type: str
    content_type: str


def pack(events: Sequence[Serialized], size: int) -> list[Message]:
    """The messages that carry ``events`` in order: one each when ``size`` is 1 (structured
    CloudEvents, as ever), else batches of at most ``size`` (every message a batch)."""
    if size == 1:
        return [
            Message(key, body, event_id, type_, _content_type(type_))
            for key, body, event_id, type_ in events
        ]
    messages: list[Message] = []
    start = 0
    for end in range(1, len(events) + 1):
        if (
            end == len(events)
            or end - start == size
            or _family(events[end][0]) != _family(events[start][0])
        ):
            messages.append(_batch(events[start:end]))
            start = end
    return messages


def routing_key(keys: Sequence[str]) -> str:
    """The words every key starts with (at least the first, which a batch's events share)."""
    first = keys[0].split(".")
    shared = len(first)
    for key in keys[1:]:
        words = key.split(".")
        common = 0
        while common < min(shared, len(words)) and words[common] == first[common]:
            common += 1
        shared = common
    return ".".join(first[:shared])


def unpack(body: bytes) -> list[bytes]:
    """The events of a batch, each as its own bytes (orjson writes back what it read)."""
    events = orjson.loads(body)
    if not isinstance(events, list):
        raise ValueError("a CloudEvents batch is a JSON array")
    return [orjson.dumps(event) for event in events]


def _family(key: str) -> str:
    return key.split(".", 1)[0]


def _content_type(type_: str) -> str:
    """A CloudEvent's, or an OCSF finding's (DTRACK_WORKER_FORMAT=ocsf)."""
    return ocsf.CONTENT_TYPE if type_ == ocsf.MESSAGE_TYPE else CLOUDEVENTS_CONTENT_TYPE


def _batch(run: Sequence[Serialized]) -> Message:
    types = {type_ for _, _, _, type_ in run}
    return Message(
        routing_key([key for key, _, _, _ in run]),
        b"[" + b",".join(body for _, body, _, _ in run) + b"]",
        ids.uuid5(BATCH_ID_NAMESPACE, "\n".join(event_id for _, _, event_id, _ in run)),
        types.pop() if len(types) == 1 else MIXED_TYPE,
        # a batch is of one family: OCSF findings (a JSON array of them), or CloudEvents
        ocsf.CONTENT_TYPE if run[0][3] == ocsf.MESSAGE_TYPE else BATCH_CONTENT_TYPE,
    )


def rounds(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """``items`` in lists of ``size`` (the last one shorter): a worker's publishing rounds."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
