"""The garbage collector, held off while a job builds many objects at once.

An export's comparison, transitions and events are tens of thousands of fresh dicts without
reference cycles; every pass of the cyclic collector walks them again (a fifth of a first sync's
time, measured). Jobs run concurrently, so the collector is paused while any of them needs it
paused, and resumed when the last is done: whatever they left behind is collectable then.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_holders = 0  # jobs of this event loop inside ``paused``; one loop per process


@contextlib.contextmanager
def paused() -> Iterator[None]:
    global _holders
    if _holders == 0:
        gc.disable()
    _holders += 1
    try:
        yield
    finally:
        _holders -= 1
        if _holders == 0:
            gc.enable()
