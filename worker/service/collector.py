"""The garbage collector, held off while a job builds many objects at once.

An export's comparison, transitions and events are tens of thousands of fresh dicts without
reference cycles; every pass of the cyclic collector walks them again and finds nothing to free
(a fifth of a first sync's time with CPython's thresholds, measured; still one pass of 55 ms in
a 10k first sync with the young threshold raised to 200k, six in a 50k one). Jobs run
concurrently, so the collector is off while any of them asks, and back as it was when the last
is done. On a worker whose jobs overlap without end the hold would never end: a job that starts
when the collector has been held for ``HELD_SECONDS`` runs a full pass first, so cycles cannot
pile up for ever.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator

HELD_SECONDS = 30.0  # the longest the collector is held off without a pass (overlapping jobs)
# A running service: a webhook request allocates about a hundred short-lived objects, and with
# CPython's 700 the young collections (and the old ones they trigger, walking the receiver's
# memory of recent notifications) cost a fifth of the receiver's throughput and most of its p99.
SERVICE_THRESHOLD = 100_000

_holders = 0  # jobs of this event loop inside ``paused``; one loop per process
_enabled = True  # the collector's state before the hold
_since = 0.0  # time.monotonic() of the hold's start, or of its last pass


@contextlib.contextmanager
def paused() -> Iterator[None]:
    global _holders, _enabled, _since
    if _holders == 0:
        _enabled = gc.isenabled()
        gc.disable()
        _since = time.monotonic()
    elif time.monotonic() - _since >= HELD_SECONDS:  # jobs have overlapped that long
        gc.collect()
        _since = time.monotonic()
    _holders += 1
    try:
        yield
    finally:
        _holders -= 1
        if _holders == 0 and _enabled:
            gc.enable()


def tune_for_service() -> None:
    """Once, after start-up: what is loaded by now (modules, schemas, the application) lives
    as long as the process, so the collector stops walking it; young collections are rarer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(SERVICE_THRESHOLD, *gc.get_threshold()[1:])
