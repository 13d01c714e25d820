"""The tests' waits give up loudly: what they waited for and what they last saw."""

from __future__ import annotations

import asyncio

import pytest

from tests.rabbit import eventually
from tests.waiting import WaitedTooLong, describe, until, until_sync


async def test_eventually_names_the_condition_and_the_state_it_last_saw():
    seen = {"summaries": 0}
    with pytest.raises(AssertionError) as failure:
        await eventually(lambda: seen["summaries"] == 1, within=0.2, seen=lambda: seen)
    message = str(failure.value)
    assert 'seen["summaries"] == 1' in message
    assert "{'summaries': 0}" in message
    assert message.startswith("waited 0.2 s for")


async def test_eventually_returns_as_soon_as_the_condition_holds():
    loop = asyncio.get_running_loop()
    done = loop.time() + 0.1
    await eventually(lambda: loop.time() >= done, within=5)
    assert loop.time() - done < 1


async def test_until_gives_back_the_value_and_reports_the_last_error_seen():
    answers: list[int | Exception] = [ConnectionRefusedError("not up yet"), 503, 200]

    async def probe() -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await until(probe, lambda status: status == 200, what="a 200", every=0.01) == 200

    async def refused() -> int:
        raise ConnectionRefusedError("nothing listens on 5672")

    with pytest.raises(WaitedTooLong, match=r"waited 0\.1 s for the broker; last seen: "):
        await until(refused, what="the broker", within=0.1, every=0.01)
    with pytest.raises(WaitedTooLong, match="nothing listens on 5672"):
        await until(refused, what="the broker", within=0.1, every=0.01)


def test_until_sync_reports_the_last_value():
    with pytest.raises(WaitedTooLong, match="for a 200 from /readyz; last seen: 503"):
        until_sync(lambda: 503, lambda status: status == 200, what="a 200 from /readyz", within=0.1)


def test_a_lambda_is_described_by_its_own_source():
    check = lambda: len([1, 2]) == 3  # noqa: E731 - the subject of the test
    assert describe(check) == "len([1, 2]) == 3"

    def named() -> bool:
        return False

    assert describe(named) == "named"
