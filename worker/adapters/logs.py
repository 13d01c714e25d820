"""Logging: structlog, JSON lines on stdout (or a console format on a terminal), configured once.

Standard-library loggers (aiohttp, aio-pika, aiormq) go through the same processors and stream.
Tracebacks never include local variables: a frame may hold the API key or the webhook token.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog
from structlog.typing import Processor

SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(level: str = "INFO", *, json: bool = True) -> None:
    if json:
        exceptions = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        own_tail: list[Processor] = [
            exceptions,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ]
        foreign_tail: list[Processor] = [exceptions, structlog.processors.JSONRenderer()]
        factory: structlog.typing.WrappedLogger = structlog.BytesLoggerFactory()
    else:
        own_tail = foreign_tail = [structlog.dev.ConsoleRenderer()]
        factory = structlog.WriteLoggerFactory()
    structlog.configure(
        processors=[*SHARED, *own_tail],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
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
