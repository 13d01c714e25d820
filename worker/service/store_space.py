"""Free pages of a SQLite state store given back to the filesystem, in the background, a slice
at a time (``state/space.py``): quickly while there are, then now and again."""

from __future__ import annotations

import asyncio

import structlog

from worker.adapters.state.store import Store
from worker.core.errors import TransientError

log = structlog.get_logger(__name__)

BUSY_SECONDS = 1.0  # between slices while free pages are left and the outbox is empty
IDLE_SECONDS = 60.0


async def reclaim_forever(store: Store) -> None:
    while True:
        pause = IDLE_SECONDS
        try:
            reclaimed = await store.reclaim()
        except TransientError as exc:
            log.warning("state.reclaim_unavailable", error=str(exc))
        else:
            if reclaimed.pages:
                log.debug("state.reclaimed", pages=reclaimed.pages, left=reclaimed.left)
                pause = BUSY_SECONDS if reclaimed.left else IDLE_SECONDS
        await asyncio.sleep(pause)
