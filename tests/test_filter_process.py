"""The filter's evaluator process (worker.adapters.filter_process), a real child process: an
event over its budget is judged so and the next child takes the rest, a child that dies
judges only the event it was on, a cancelled request leaves nothing behind, the child gets no
secret of the worker's environment, and one that cannot start says why."""

from __future__ import annotations

import asyncio
import copy
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from worker.adapters import filter_process
from worker.adapters.filter_process import FilterProcess
from worker.core import selection
from worker.core.errors import PermanentError
from worker.core.selection import FAILURES, FILTER_OUT, PASS

SNAPSHOT, CHANGE = selection.examples()
CHEAP = 'data.vulnerability.severity == "high"'
CWES = "data.vulnerability.cwes"
EXPENSIVE = "a + b + c + d + e + f > 0"  # true, after 24^6 (190 million) steps on 24 CWEs
for variable in "fedcba":
    EXPENSIVE = f"{CWES}.all({variable}, {EXPENSIVE})"
# false, after 24^3 (13,824) steps on 24 CWEs: milliseconds an event, far within its budget
MODERATE = f"{CWES}.exists(a, {CWES}.exists(b, {CWES}.exists(c, a + b + c < 0)))"


def _event(**vulnerability: Any) -> bytes:
    event = copy.deepcopy(SNAPSHOT)
    event["data"]["vulnerability"] |= vulnerability
    return orjson.dumps(event)


HIGH, LOW = _event(severity="high"), _event(severity="low")
SLOW = _event(cwes=list(range(1, 25)))


async def _until(check: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(10):
            while not check():  # noqa: ASYNC110 - the evaluator's progress, read by its owner
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"waited 10 s for {what}") from None


def _limits(pid: int) -> str:
    return Path(f"/proc/{pid}/limits").read_text()


def _environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


@pytest.fixture
async def started() -> AsyncIterator[Callable[..., Any]]:
    processes: list[FilterProcess] = []

    async def start(expression: str, budget: float = 5.0, **options: Any) -> FilterProcess:
        process = FilterProcess(expression, budget, **options)
        processes.append(process)
        await process.start()
        return process

    yield start
    for process in processes:
        await process.close()


async def test_verdicts_come_in_order_from_one_process(started):
    judge = await started(CHEAP)
    first = judge.pid
    assert await judge.verdicts([HIGH, LOW] * 500) == [PASS, FILTER_OUT] * 500
    assert await judge.verdicts([]) == []
    assert await judge.verdicts([orjson.dumps(CHANGE)]) == [PASS]
    assert judge.pid == first
    assert judge.started == 1


async def test_an_event_over_budget_is_judged_so_and_the_next_process_takes_the_rest(started):
    judge = await started(EXPENSIVE, budget=2.0)  # SLOW takes minutes
    first = judge.pid
    assert await judge.verdicts([HIGH, SLOW, LOW]) == [PASS, FAILURES["over_budget"], PASS]
    assert judge.started == 2
    assert judge.pid != first
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)  # killed and reaped
    assert await judge.verdicts([HIGH]) == [PASS]


async def test_a_request_longer_than_any_cap_still_judges_every_event_within_budget(
    started, monkeypatch
):
    # the per-event budget is the only limit: a request of many events, each well within
    # it, gets every event's real verdict however long the request takes in all (a cap on
    # the request, here as small as it goes, published the rest unfiltered as over_budget)
    monkeypatch.setattr(filter_process, "REQUEST_SECONDS", 0.05, raising=False)
    judge = await started(MODERATE, budget=5.0)
    assert await judge.verdicts([SLOW] * 60 + [HIGH]) == [FILTER_OUT] * 60 + [FILTER_OUT]
    assert judge.started == 1


async def test_the_evaluator_runs_under_a_memory_limit(started):
    judge = await started(CHEAP)
    assert judge.pid is not None
    limits = _limits(judge.pid)
    (line,) = [line for line in limits.splitlines() if line.startswith("Max address space")]
    soft = line.split()[3]
    assert soft.isdigit(), line  # "unlimited" would let it take the pod's memory
    assert int(soft) == filter_process.MEMORY_BYTES


async def test_an_event_over_the_memory_limit_is_judged_so_and_the_next_is_judged(started):
    # 20 MB of text concatenated eight times: about 300 MB at its peak, under a 160 MiB limit
    big = _event(description="x" * 20_000_000)
    text = "data.vulnerability.description"
    judge = await started(f"size({' + '.join([text] * 8)}) > 0", memory_bytes=160 * 2**20)
    failed, after = await judge.verdicts([big, HIGH])
    # cel fails on its own (a Python MemoryError inside it) or aborts (its Rust allocator):
    # either way the event is published as an error and the next one is judged
    assert failed in (FAILURES["evaluation_error"], FAILURES["evaluator_failed"]), failed
    assert after == PASS


async def test_a_process_that_dies_judges_only_the_event_it_was_on(started):
    judge = await started(EXPENSIVE, budget=30)
    answer = asyncio.create_task(judge.verdicts([HIGH, SLOW, LOW]))
    await _until(lambda: judge.pending == 2, "the first event judged, the second under way")
    assert judge.pid is not None
    os.kill(judge.pid, signal.SIGKILL)
    assert await answer == [PASS, FAILURES["evaluator_failed"], PASS]
    assert judge.started == 2


async def test_a_process_that_died_while_idle_is_replaced_without_a_failure(started):
    judge = await started(CHEAP)
    assert await judge.verdicts([HIGH]) == [PASS]
    assert judge.pid is not None
    os.kill(judge.pid, signal.SIGKILL)
    assert await judge.verdicts([HIGH, LOW]) == [PASS, FILTER_OUT]
    assert judge.started == 2


async def test_a_cancelled_request_kills_the_process_and_the_next_one_works(started):
    judge = await started(EXPENSIVE, budget=30)
    answer = asyncio.create_task(judge.verdicts([SLOW]))
    await _until(lambda: judge.pending == 1, "the evaluation under way")
    pid = judge.pid
    assert pid is not None
    answer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await answer
    assert judge.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert await judge.verdicts([HIGH]) == [PASS]


async def test_the_process_gets_no_secret_of_the_environment(started, monkeypatch):
    monkeypatch.setenv("DTRACK_WORKER_DT_API_KEY", "odt_never-in-the-child")
    judge = await started(CHEAP)
    environ = _environ(judge.pid)
    assert b"odt_never-in-the-child" not in environ
    assert [entry.split(b"=")[0] for entry in environ.split(b"\0") if entry] == [b"PYTHONPATH"]


async def test_close_ends_the_process():
    judge = FilterProcess(CHEAP, 1.0)
    await judge.start()
    pid = judge.pid
    assert pid is not None
    await judge.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_process_that_cannot_start_says_why():
    judge = FilterProcess("data.vulnerability.severity ==", 1.0)
    with pytest.raises(
        PermanentError, match=r"evaluator process did not start: .*does not compile"
    ):
        await judge.start()
    assert judge.pid is None
