"""Waiting in tests for something another task, thread or process does: polled, bounded, and
loud when it gives up. A wait that times out fails with what it waited for and the last value it
saw, never by falling through to an assertion that then fails without saying why.

    value = await until(probe, done, what="the parked job listed")
    until_sync(probe, done, what="the receiver answering /readyz")
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

_NOTHING_YET = "nothing yet"


class WaitedTooLong(AssertionError):
    """A condition did not come true in time (an AssertionError: the test fails, not errors)."""

    def __init__(self, what: str, within: float, last: object) -> None:
        super().__init__(f"waited {within:g} s for {what}; last seen: {_shown(last)}")
        self.what, self.within, self.last = what, within, last


def _shown(value: object, limit: int = 500) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def describe(check: Callable[..., object]) -> str:
    """A lambda's own source (``len(events.summaries()) == 1``), else the function's name."""
    name = getattr(check, "__name__", "")
    if name != "<lambda>":
        return name or repr(check)
    try:
        source = inspect.getsource(check).strip()
    except (OSError, TypeError):
        return "a condition"
    body = source.partition("lambda")[2].partition(":")[2].strip()
    # the lambda is usually an argument: drop what follows it on its line
    depth = 0
    for index, char in enumerate(body):
        depth += char in "([{"
        depth -= char in ")]}"
        if depth < 0 or (depth == 0 and char in ",#"):
            return body[:index].strip()
    return body


@overload
async def until(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool] = ...,
    *,
    what: str,
    within: float = ...,
    every: float = ...,
    errors: tuple[type[BaseException], ...] = ...,
) -> T: ...


@overload
async def until(
    probe: Callable[[], T],
    done: Callable[[T], bool] = ...,
    *,
    what: str,
    within: float = ...,
    every: float = ...,
    errors: tuple[type[BaseException], ...] = ...,
) -> T: ...


async def until(
    probe: Callable[[], Any],
    done: Callable[[Any], bool] = bool,
    *,
    what: str,
    within: float = 15.0,
    every: float = 0.05,
    errors: tuple[type[BaseException], ...] = (OSError,),
) -> Any:
    """Call ``probe()`` (sync or async) until ``done(value)``; that value. ``errors`` raised by
    the probe mean "not yet" (a server still starting). On timeout WaitedTooLong names ``what``
    and the last value, or the last of those errors, seen."""
    last: object = _NOTHING_YET
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
        except errors as exc:  # not up yet: said if it stays that way
            last = exc
        else:
            if done(value):
                return value
            last = value
        if loop.time() >= deadline:
            raise WaitedTooLong(what, within, last)
        await asyncio.sleep(every)


def until_sync(
    probe: Callable[[], T],
    done: Callable[[T], bool] = bool,
    *,
    what: str,
    within: float = 15.0,
    every: float = 0.1,
    errors: tuple[type[BaseException], ...] = (OSError,),
) -> T:
    """``until`` for code without an event loop (threads, sync fixtures)."""
    last: object = _NOTHING_YET
    deadline = time.monotonic() + within
    while True:
        try:
            value = probe()
        except errors as exc:
            last = exc
        else:
            if done(value):
                return value
            last = value
        if time.monotonic() >= deadline:
            raise WaitedTooLong(what, within, last)
        time.sleep(every)
