"""`state resync` with DTRACK_WORKER_TRACK=line (REVIEW-1 H4, M4): a v2 consumer that lost its
copy (or a new one, after `state migrate`) gets `opened` again, marked `resync`, for every open
finding of the project's line, from the stored line state, through the outbox and the real
RabbitMQ; the store is filled by the real Deltas (tests/test_line_stream.py)."""

from __future__ import annotations

import orjson
import pytest

from tests import test_line_stream
from tests.fake_dt import FakeDt
from tests.harness import listen
from tests.rabbit import eventually, temporary_topology, unique_prefix
from tests.test_line_commands import _env
from tests.test_line_diff import PHP, _document
from tests.test_line_stream import _first, _line
from tests.test_operations import _env as operations_env
from tests.test_operations import cli

series = test_line_stream.series


@pytest.mark.rabbitmq
async def test_resync_publishes_the_lines_open_findings_as_v2(
    series, state_url: str, dt: FakeDt, contracts
) -> None:
    s = await series()
    v1 = _document(PHP)
    opened = await _first(s, v1)  # 8 line findings opened
    await s.project_events(v1["project"]["uuid"])  # its export.summary.v1, taken
    before = await s.store.line(_line(v1).id)
    prefix = unique_prefix()
    env = _env(state_url, dt) | operations_env(prefix, dt)
    async with temporary_topology(prefix) as topo:
        assert (await cli("topology", env=env))[0] == 0
        async with listen(topo.events_exchange.name) as events:
            code, out, err = await cli("state", "resync", v1["project"]["uuid"], env=env)
            assert code == 0, err
            assert "published 8 opened events for 1 projects" in out
            await eventually(lambda: len(events.messages) >= 8)
    published = [orjson.loads(m.body) for m in events.messages]
    assert {e["type"] for e in published} == {"dtrack-worker.finding.opened.v2"}
    assert sorted(e["subject"] for e in published) == sorted(e["subject"] for e in opened)
    for event in published:
        assert event["data"]["change"]["resync"] is True
        assert contracts.line_change.problems(event) == ()
    sequences = [int(e["sequence"]) for e in published]
    assert sequences == list(range(before.sequence + 1, before.sequence + 9))
    after = await s.store.line(_line(v1).id)
    assert (after.sequence, after.current_project) == (before.sequence + 8, v1["project"]["uuid"])
