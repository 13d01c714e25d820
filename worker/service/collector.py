"""The garbage collector, held off while a job builds many objects at once.

An export's comparison, transitions and events are tens of thousands of fresh dicts without
reference cycles; every pass of the cyclic collector walks them again and finds nothing to free
(a fifth of a first sync's time with CPython's thresholds, measured; still one pass of 55 ms in
a 10k first sync with the young threshold raised to 200k, six in a 50k one). Jobs run
concurrently, so the collector is off while any of them asks, and back as it was when the last
is done. A hold never lasts longer than ``HELD_SECONDS`` without a pass, whether one job holds
it that long (a 50k export, a slow DT) or jobs overlap without end: a timer on the event loop,
and a job starting or ending past it, run a pass of the young generations (what was made
during the hold: the collector promotes nothing while it is off), so cycles cannot pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Iterator

HELD_SECONDS = 30.0  # the longest the collector is held off without a pass
# A running service: a webhook request allocates about a hundred short-lived objects, and with
# CPython's 700 the young collections (and the old ones they trigger, walking the receiver's
# memory of recent notifications) cost a fifth of the receiver's throughput and most of its p99.
SERVICE_THRESHOLD = 100_000

_holders = 0  # jobs of this event loop inside ``paused``; one loop per process
_enabled = True  # the collector's state before the hold
_since = 0.0  # time.monotonic() of the hold's start, or of its last pass
_timer: asyncio.TimerHandle | None = None  # the next pass, should the hold last that long


@contextlib.contextmanager
def paused() -> Iterator[None]:
    global _holders, _enabled, _since
    if _holders == 0:
        _enabled = gc.isenabled()
        gc.disable()
        _since = time.monotonic()
        _arm()
    else:
        _pass_if_overdue()
    _holders += 1
    try:
        yield
    finally:
        _holders -= 1
        if _holders:
            _pass_if_overdue()
        else:
            _disarm()
            if _enabled:
                gc.enable()


def _pass_if_overdue() -> None:
    global _since
    if time.monotonic() - _since >= HELD_SECONDS:
        gc.collect(1)  # the young generations: what the hold made (nothing was promoted)
        _since = time.monotonic()


def _overdue() -> None:
    """The timer: still held a whole HELD_SECONDS after the last pass."""
    global _timer
    _timer = None
    if _holders:
        _pass_if_overdue()
        _arm()


def _arm() -> None:
    global _timer
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # held outside an event loop (a command): the edges check, no timer
        return
    _timer = loop.call_later(max(0.0, _since + HELD_SECONDS - time.monotonic()), _overdue)


def _disarm() -> None:
    global _timer
    if _timer is not None:
        _timer.cancel()
        _timer = None


def tune_for_service() -> None:
    """Once, after start-up: what is loaded by now (modules, schemas, the application) lives
    as long as the process, so the collector stops walking it; young collections are rarer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(SERVICE_THRESHOLD, *gc.get_threshold()[1:])
