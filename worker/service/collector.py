"""The garbage collector, held back while a job builds many objects at once.

An export's comparison, transitions and events are tens of thousands of fresh dicts without
reference cycles; every pass of the cyclic collector walks them again (a fifth of a first sync's
time, measured). Jobs run concurrently, so the collector is held back while any of them asks,
and restored when the last is done. Held back, not disabled: on a worker whose jobs overlap
without end the collector still runs, only far less often, so cycles cannot pile up for ever.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

HELD_THRESHOLD = 200_000  # allocations between young collections while held (CPython: 700)
# A running service: a webhook request allocates about a hundred short-lived objects, and with
# CPython's 700 the young collections (and the old ones they trigger, walking the receiver's
# memory of recent notifications) cost a fifth of the receiver's throughput and most of its p99.
SERVICE_THRESHOLD = 100_000

_holders = 0  # jobs of this event loop inside ``paused``; one loop per process
_thresholds: tuple[int, ...] = ()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    global _holders, _thresholds
    if _holders == 0:
        _thresholds = gc.get_threshold()
        gc.set_threshold(max(HELD_THRESHOLD, _thresholds[0]), *_thresholds[1:])
    _holders += 1
    try:
        yield
    finally:
        _holders -= 1
        if _holders == 0:
            gc.set_threshold(*_thresholds)


def tune_for_service() -> None:
    """Once, after start-up: what is loaded by now (modules, schemas, the application) lives
    as long as the process, so the collector stops walking it; young collections are rarer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(SERVICE_THRESHOLD, *gc.get_threshold()[1:])
