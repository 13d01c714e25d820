"""Logging: structlog, configured once: JSON lines (or DTRACK_WORKER_LOG_FORMAT=console), on
stdout for the service and on stderr for the commands, whose own output is on stdout.

Standard-library loggers (aiohttp, aio-pika, aiormq) go through the same processors and stream.
Tracebacks never include local variables: a frame may hold the API key or the webhook token.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor

from worker.adapters import tracing
from worker.core import urls

SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    tracing.add_trace_ids,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


# A configured secret shorter than this is not masked: masking "guest" or "a" would blank
# ordinary words everywhere (a broker's password "guest" is its user name too), and where the
# masks fall would itself spell the value out. Such values are refused (the console token) or
# warned about (the webhook token, the signing secrets) where they are set.
MIN_MASKED = 6
_masked: tuple[str, ...] = ()  # the configured secrets' values, the longest first


def configure_secrets(values: Iterable[str]) -> None:
    """The exact values ``redact_credentials`` masks in every line (set once at start)."""
    global _masked
    kept = {value for value in values if len(value) >= MIN_MASKED}
    _masked = tuple(sorted(kept, key=len, reverse=True))


def redact_credentials(_: object, __: str, event: EventDict) -> EventDict:
    """The last line of defence: no password reaches a log line, whoever wrote it.

    Our own lines already show URLs redacted; this catches a library's message or exception
    text (a rendered traceback included) that quotes a URL or a connection string, and any
    text holding a configured secret's value, in whatever form (YAML, a dict's repr, an
    environment line): those are masked as they are, not found by their shape.
    """
    for key, value in event.items():
        kind = type(value)
        if kind is str:
            event[key] = _redact(value)
        elif kind is dict or kind is list or kind is tuple:  # a traceback, as JSON renders it
            event[key] = _redacted(value)
    return event


def _redact(text: str) -> str:
    for secret in _masked:
        if secret in text:
            text = text.replace(secret, "***")
    return urls.redact(text)


def _redacted(value: Any) -> Any:
    if type(value) is str:
        return _redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


# A logger caches its configuration (stream, processors) on first use: right for a process,
# configured once; the test suite configures logging per test and turns it off.
CACHE_LOGGERS = True


def configure(
    level: str = "INFO",
    *,
    json: bool = True,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Logging for the process; ``stream``: where lines go (stdout; stderr for commands that
    print their own output); ``secrets``: the configured secrets' values, masked anywhere."""
    configure_secrets(secrets)
    out = sys.stdout if stream is None else stream
    if json:
        exceptions = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        own_tail: list[Processor] = [
            exceptions,
            redact_credentials,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ]
        foreign_tail: list[Processor] = [
            exceptions,
            redact_credentials,
            structlog.processors.JSONRenderer(),
        ]
        factory: structlog.typing.WrappedLogger = structlog.BytesLoggerFactory(out.buffer)
    else:
        own_tail = foreign_tail = [
            structlog.processors.format_exc_info,  # a traceback as text, redacted next
            redact_credentials,
            structlog.dev.ConsoleRenderer(),
        ]
        factory = structlog.WriteLoggerFactory(out)
    structlog.configure(
        processors=[*SHARED, *own_tail],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=factory,
        cache_logger_on_first_use=CACHE_LOGGERS,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*SHARED, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *foreign_tail],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aio-pika narrates every reconnect attempt at INFO; its warnings are enough
    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
