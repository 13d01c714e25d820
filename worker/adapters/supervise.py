"""A background loop kept alive: a bug in it is logged and it starts again after a pause."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

FIRST_PAUSE_SECONDS = 1.0  # doubled after each failure, up to...
MAX_PAUSE_SECONDS = 30.0


async def supervised(
    event: str,
    loop: Callable[[], Awaitable[None]],
    cleanup: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run ``loop()`` for good: when it raises (it never returns), log ``event`` with the
    traceback, run ``cleanup()``, pause, and run it again. A process whose loop died would
    look healthy and never be ready again."""
    pause = FIRST_PAUSE_SECONDS
    while True:
        try:
            await loop()
        except Exception:
            log.exception(event, retry_in_s=pause)
            if cleanup is not None:
                await cleanup()
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE_SECONDS)
