"""The events' routing keys as each DTRACK_WORKER_EMIT publishes them, and AMQP topic patterns
matched against them: for ``tail`` to say when a pattern can show nothing. Pure."""

from __future__ import annotations

import dataclasses
import functools

from worker.core import change_events, events


@dataclasses.dataclass(frozen=True, slots=True)
class Stream:
    """The keys of one EMIT mode, with how to name them and patterns that find them."""

    keys: tuple[str, ...]
    described: str
    try_patterns: str


_SERVICE = (events.SUMMARY_ROUTING_KEY, events.GONE_ROUTING_KEY, events.INVALID_ROUTING_KEY)
_CHANGES = tuple(
    change_events.routing_key(kind, severity)
    for kind in change_events.KINDS
    for severity in events.SEVERITY_RANK
)
_FINDINGS = tuple(events.finding_routing_key(severity) for severity in events.SEVERITY_RANK)
_SERVICE_TEXT = ", ".join(_SERVICE)

STREAMS = {
    "delta": Stream(
        _CHANGES + _SERVICE,
        f"delta.<kind>.<severity>, {_SERVICE_TEXT}",
        "delta.#, delta.opened.*, #.critical",
    ),
    "snapshot": Stream(
        _FINDINGS + _SERVICE,
        f"finding.<severity>, {_SERVICE_TEXT}",
        "finding.*, finding.critical, #.critical",
    ),
    "both": Stream(
        _CHANGES + _FINDINGS + _SERVICE,
        f"delta.<kind>.<severity>, finding.<severity>, {_SERVICE_TEXT}",
        "delta.#, finding.*, #.critical",
    ),
}


def matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: words split on ``.``, ``*`` one word, ``#`` none or more."""
    return _match(tuple(pattern.split(".")), tuple(key.split(".")))


@functools.cache
def _match(pattern: tuple[str, ...], key: tuple[str, ...]) -> bool:
    if not pattern:
        return not key
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, key[skip:]) for skip in range(len(key) + 1))
    return bool(key) and head in ("*", key[0]) and _match(rest, key[1:])


def finds_nothing(pattern: str, emit: str) -> Stream | None:
    """The stream of ``emit`` when ``pattern`` matches none of its keys, else None."""
    stream = STREAMS[emit]
    return None if any(matches(pattern, key) for key in stream.keys) else stream
