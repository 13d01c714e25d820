"""Logging: structlog, JSON lines on stdout (or a console format on a terminal), configured once.

Standard-library loggers (aiohttp, aio-pika, aiormq) go through the same processors and stream.
Tracebacks never include local variables: a frame may hold the API key or the webhook token.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor

from worker.adapters import tracing

SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    tracing.add_trace_ids,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


# user:password@ in anything that looks like a URL, however malformed (amqp:/u:p@host)
_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*:/{0,2}[^\s:/@]*):[^\s@]+@")


def redact_credentials(_: object, __: str, event: EventDict) -> EventDict:
    """The last line of defence: no URL password reaches a log line, whoever wrote it.

    Our own lines already show URLs redacted; this catches a library's message or exception
    text that quotes a URL it was given.
    """
    for key, value in event.items():
        if type(value) is str and "@" in value:
            event[key] = _CREDENTIALS.sub(r"\g<head>:***@", value)
    return event


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
        own_tail = foreign_tail = [redact_credentials, structlog.dev.ConsoleRenderer()]
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
