"""DTRACK_WORKER_FILTER at run time, on the real RabbitMQ, SQLite/PostgreSQL and the fake DT:
an expression that fails on an event (an index out of range, a division by zero, an overflow)
publishes the event, counts the error, and blocks nothing else; an expensive one is evaluated
away from the event loop, within its budget; a filter for change events alone is accepted."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog

from tests.conftest import FPF
from tests.fake_dt import FakeDt
from tests.harness import REAL, post
from tests.rabbit import depth, eventually
from tests.test_operations import cli
from worker.core import selection
from worker.service import filtering

pytestmark = pytest.mark.rabbitmq

EXPORT = FPF / "real" / "defectdojo__deptrack_php_4.14.1.json"  # 13 findings; 12 with aliases
MAX_INT = 9223372036854775807
# true on the example events (one alias) and on every finding of EXPORT with aliases; each
# fails on a finding without any
FAILING = {
    "index_out_of_range": 'data.vulnerability.aliases[0] != ""',
    "division_by_zero": "100 / size(data.vulnerability.aliases) > 0",
    "overflow": f"{MAX_INT} - size(data.vulnerability.aliases) + 1 > 0",
}
# six nested .all() over the CWEs: one step on the example events (one CWE), 18^6 (34
# million, tens of seconds) on a finding with 18 CWEs
CWES = "data.vulnerability.cwes"
EXPENSIVE = "a + b + c + d + e + f > 0"
for variable in "fedcba":
    EXPENSIVE = f"{CWES}.all({variable}, {EXPENSIVE})"


def _without_aliases() -> bytes:
    document = orjson.loads(EXPORT.read_bytes())
    for row in document["findings"]:
        row["vulnerability"]["aliases"] = []
    return orjson.dumps(document)


def _with_many_cwes(count: int) -> bytes:
    """EXPORT, its first finding with ``count`` CWEs."""
    document = orjson.loads(EXPORT.read_bytes())
    document["findings"][0]["vulnerability"]["cwes"] = [
        {"cweId": 100 + n, "name": f"CWE {100 + n}"} for n in range(count)
    ]
    return orjson.dumps(document)


async def _metric(client: Any, name: str, **labels: str) -> float:
    """One sample of /metrics, 0 when it is not there (yet)."""
    text = await (await client.get("/metrics")).text()
    selector = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = re.escape(name + (f"{{{selector}}}" if selector else "")) + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def _until(check: Callable[[], Awaitable[bool]], what: str, within: float = 15.0) -> None:
    try:
        async with asyncio.timeout(within):
            while not await check():  # noqa: ASYNC110 - polls /metrics, served by the app
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"waited {within} s for {what}") from None


def _deltas(events: Any, project: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(m.body)
        for m in events.messages
        if (m.routing_key or "").startswith("delta.")
        and orjson.loads(m.body)["data"]["project"]["uuid"] == project
    ]


async def _bare_and_usual(client: Any, dt: FakeDt, events: Any) -> tuple[str, str]:
    """Two projects synced to the end: one whose findings have no aliases (the filter fails on
    each), one of the real export; their uuids."""
    bare, usual = str(uuid.uuid4()), str(uuid.uuid4())
    dt.exports[bare] = _without_aliases()
    dt.exports[usual] = REAL
    (first,) = (await post(client, bare))["jobs"]
    (second,) = (await post(client, usual, 1))["jobs"]
    await eventually(
        lambda: {first["job_id"], second["job_id"]} <= set(events.summaries()), within=20
    )
    return bare, usual


async def test_a_failing_filter_in_delta_mode_publishes_every_event_and_blocks_no_project(
    serve, dt: FakeDt, state_url: str
):
    client, topo, events, _ = await serve(
        emit="delta", state_url=state_url, filter=FAILING["index_out_of_range"]
    )
    bare, usual = await _bare_and_usual(client, dt, events)
    assert len(_deltas(events, bare)) == 13  # each failed the filter: published all the same
    assert len(_deltas(events, usual)) == 13  # 12 passed, 1 without aliases failed
    assert await _metric(client, "dtrack_worker_filter_events_total", outcome="error") == 14
    assert await _metric(client, "dtrack_worker_filter_events_total", outcome="passed") == 12
    errors = await _metric(client, "dtrack_worker_filter_errors_total", reason="index_out_of_range")
    assert errors == 14
    assert await depth(topo.parked_queue.name) == 0


@pytest.mark.parametrize("reason", sorted(FAILING))
async def test_a_failing_filter_in_snapshot_mode_publishes_every_event(
    serve, dt: FakeDt, reason: str
):
    with structlog.testing.capture_logs() as lines:
        client, topo, events, _ = await serve(filter=FAILING[reason])
        bare, usual = await _bare_and_usual(client, dt, events)
    assert len(events.findings(bare)) == 13
    assert len(events.findings(usual)) == 13
    assert await _metric(client, "dtrack_worker_filter_events_total", outcome="error") == 14
    assert await _metric(client, "dtrack_worker_filter_errors_total", reason=reason) == 14
    assert await depth(topo.parked_queue.name) == 0  # the jobs were done, not parked
    (logged,) = [line for line in lines if line["event"] == "filter.failed"]  # once
    assert logged["reason"] == reason
    assert logged["expression"] == FAILING[reason]
    assert bare not in repr(logged)  # nothing of the events: not even their project


async def test_normalize_prints_what_the_filter_fails_on_and_says_so_once(tmp_path: Path):
    export = tmp_path / "bare.fpf"
    export.write_bytes(_without_aliases())
    code, out, err = await cli(
        "normalize", str(export), "--filter", FAILING["index_out_of_range"], env={}
    )
    assert code == 0, err
    assert len(out.splitlines()) == 13
    assert "Traceback" not in err
    assert err.count("could not be evaluated") == 1, err
    assert "--filter could not be evaluated on 13 of 13 finding events" in err
    assert "index_out_of_range: 13" in err


async def test_diff_prints_what_the_filter_fails_on_and_says_so_once(tmp_path: Path):
    new = orjson.loads(_without_aliases())
    old = orjson.loads(_without_aliases())
    old["findings"] = []
    old["meta"]["timestamp"] = "2020-01-01T00:00:00Z"  # before NEW: not stale
    (tmp_path / "old.fpf").write_bytes(orjson.dumps(old))
    (tmp_path / "new.fpf").write_bytes(orjson.dumps(new))
    code, out, err = await cli(
        "diff",
        str(tmp_path / "old.fpf"),
        str(tmp_path / "new.fpf"),
        "--filter",
        FAILING["index_out_of_range"],
        env={},
    )
    assert code == 0, err
    assert len(out.splitlines()) == 13  # every opened event, printed all the same
    assert err.count("could not be evaluated") == 1, err
    assert "diff: --filter could not be evaluated on 13 of 13 finding events" in err
    assert "index_out_of_range: 13" in err


async def test_an_expensive_filter_leaves_the_loop_free_and_publishes_the_event(serve, dt: FakeDt):
    client, topo, events, _ = await serve(filter=EXPENSIVE, filter_budget_ms="2000")
    project = str(uuid.uuid4())
    dt.exports[project] = _with_many_cwes(18)
    (job,) = (await post(client, project))["jobs"]

    async def evaluating() -> bool:
        return await _metric(client, "dtrack_worker_filter_pending_events") > 0

    await _until(evaluating, "the filter to have events under evaluation")
    health = await client.get("/healthz")
    assert health.status == 200
    # answered while the evaluation went on: nothing of the export published yet
    assert await evaluating(), "the evaluation ended before /healthz answered"
    assert events.findings(project) == []

    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    assert len(events.findings(project)) == 13  # the expensive one too
    assert await _metric(client, "dtrack_worker_filter_errors_total", reason="over_budget") == 1
    assert await _metric(client, "dtrack_worker_filter_events_total", outcome="passed") == 12
    assert await depth(topo.parked_queue.name) == 0


async def test_a_filter_for_change_events_alone_is_accepted(serve, dt: FakeDt, tmp_path: Path):
    client, _, events, _ = await serve(
        emit="delta",
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        filter='data.change.kind != "changed"',
    )
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    assert [e["data"]["change"]["kind"] for e in _deltas(events, project)] == ["opened"] * 13
    assert await _metric(client, "dtrack_worker_filter_events_total", outcome="passed") == 13


async def test_a_reason_is_logged_once_then_at_most_once_a_minute_with_the_count():
    now = 0.0
    judge = filtering.ProcessJudge(FAILING["index_out_of_range"], 5.0, clock=lambda: now)
    snapshot = selection.examples()[0]
    fine = orjson.dumps(snapshot)
    bare = orjson.dumps(snapshot | {"data": snapshot["data"] | {"vulnerability": {"aliases": []}}})
    await judge.start()
    try:
        with structlog.testing.capture_logs() as lines:
            await judge.verdicts([bare] * 3)
            await judge.verdicts([fine, bare, bare])
            now = 59.0
            await judge.verdicts([bare])
            now = 61.0
            await judge.verdicts([fine, bare])
    finally:
        await judge.close()
    failed = [
        (line["reason"], line["events"]) for line in lines if line["event"] == "filter.failed"
    ]
    assert failed == [("index_out_of_range", 3), ("index_out_of_range", 4)]
    assert "CVE-2021-23337" not in repr(lines)  # the event's content, never
