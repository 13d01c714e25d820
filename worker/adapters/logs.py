"""Logging: structlog, configured once: JSON lines (or DTRACK_WORKER_LOG_FORMAT=console), on
stdout for the service and on stderr for the commands, whose own output is on stdout.

Standard-library loggers (aiohttp, aio-pika, aiormq) go through the same processors and stream.
Tracebacks never include local variables: a frame may hold the API key or the webhook token.
"""

from __future__ import annotations

import logging
import sys
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


def redact_credentials(_: object, __: str, event: EventDict) -> EventDict:
    """The last line of defence: no password reaches a log line, whoever wrote it.

    Our own lines already show URLs redacted; this catches a library's message or exception
    text (a rendered traceback included) that quotes a URL or a connection string.
    """
    for key, value in event.items():
        kind = type(value)
        if kind is str:
            event[key] = urls.redact(value)
        elif kind is dict or kind is list or kind is tuple:  # a traceback, as JSON renders it
            event[key] = _redacted(value)
    return event


def _redacted(value: Any) -> Any:
    if type(value) is str:
        return urls.redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


def configure(level: str = "INFO", *, json: bool = True, stream: TextIO | None = None) -> None:
    """Logging for the process; ``stream``: where lines go (stdout; stderr for commands that
    print their own output)."""
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
        cache_logger_on_first_use=True,
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
