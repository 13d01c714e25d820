"""Nothing is lost: fault injection, load and fuzz against the running service (issue R1-R5).

Each test prints its figures on one closing line (the "figures" section of the run).
bench/soak.py runs the same tests at a larger scale (DTRACK_WORKER_SOAK_SCALE).
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog

from bench.synthetic import export_bytes
from tests.conftest import FPF
from tests.fake_dt import API_KEY, FakeDt, Fault
from tests.harness import REAL, TOKEN, WebhookLoad, all_jobs_settled, notification, samples
from tests.rabbit import depth, drain, eventually
from tests.tcpproxy import TcpProxy
from tests.waiting import until

pytestmark = pytest.mark.rabbitmq

SCALE = float(os.environ.get("DTRACK_WORKER_SOAK_SCALE", "1"))
SMALL = (FPF / "docs" / "defectdojo__one_finding.json").read_bytes()


async def _settled(client, topo, *, within: float) -> Counter[str]:
    """Until every job enqueued settled (the service's /metrics), then until no job waits
    anywhere (jobs, delay, retry tiers) nor is in the worker's hands, ten polls in a row. The
    queues' counts alone miss a job delivered and not yet acked; the counts of jobs alone may
    end the wait a job early after a broker outage (a job RabbitMQ kept though its confirm was
    lost, answered 503, settles uncounted; one whose ack was lost settles twice). The
    outcomes, by name."""
    outcomes = await all_jobs_settled(client, within=within)
    names = [q.name for q in (topo.jobs_queue, *topo.delay_queues, *topo.retry_queues)]
    quiet = 0

    async def idle_polls() -> int:
        nonlocal quiet
        response = await client.get("/metrics")
        (in_flight,) = samples(await response.text(), "dtrack_worker_jobs_in_flight")
        idle = in_flight.value == 0 and await depth(*names) == 0
        quiet = quiet + 1 if idle else 0
        return quiet

    await until(
        idle_polls,
        lambda polls: polls >= 10,
        what="no job in a queue or in the worker's hands, ten polls in a row (polls so far)",
        within=within,
        every=0.1,
    )
    return outcomes


@pytest.mark.timeout(240)
async def test_r1_load_with_a_broker_outage_loses_nothing_accepted(serve, dt: FakeDt, figures):
    notifications, projects = int(2000 * SCALE), int(200 * SCALE)
    async with TcpProxy(5672) as proxy:
        client, topo, _, _ = await serve(
            amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/",
            coalesce_seconds="1",
            dt_backoff_seconds="0.05",
        )
        uuids = [str(uuid.uuid4()) for _ in range(projects)]
        for project in uuids:
            dt.exports[project] = SMALL
        load = WebhookLoad(client, uuids, notifications)

        async def outage() -> None:
            await eventually(lambda: load.sent >= notifications // 3, within=60)
            proxy.cut()
            await asyncio.sleep(0.5)
            proxy.restore()

        await asyncio.gather(load.run(), outage())
        await _settled(client, topo, within=max(90.0, 120 * SCALE))

    lost = load.lost(dt)
    figures(
        f"R1 accepted={len(load.accepted)} lost={lost} (sent={notifications}, "
        f"503={load.statuses[503]}, fetches={len(dt.fetches)}, projects={projects})"
    )
    assert set(load.statuses) <= {202, 503}
    assert load.statuses[503] > 0, "the outage did not happen during the load"
    assert lost == 0
    assert await drain(topo.parked_queue.name) == []


@pytest.mark.timeout(120)
async def test_r2_every_dt_fault_ends_done_or_parked_with_its_reason(serve, dt: FakeDt, figures):
    client, topo, events, _ = await serve(
        dt_http_attempts="2", max_attempts="2", dt_read_timeout="0.5", dt_backoff_seconds="0.05"
    )
    plans: dict[str, tuple[list[Fault], Fault | None, str]] = {
        "5xx then ok": ([Fault(502), Fault(503)], None, "done"),
        "429 then ok": ([Fault(429, retry_after="1")], None, "done"),
        "timeout then ok": ([Fault(delay=1.0)], None, "done"),
        "truncated then ok": ([Fault(truncate=True)], None, "done"),
        "401": ([], Fault(401), "dt_rejected"),
        "403": ([], Fault(403), "dt_rejected"),
        "404": ([], None, "gone"),
        "always 503": ([], Fault(503), "attempts_exhausted"),
    }
    expected: dict[str, str] = {}
    for first, always, outcome in plans.values():
        for _ in range(3):
            project = str(uuid.uuid4())
            if outcome != "gone":
                dt.exports[project] = REAL
            dt.faults[project] = list(first)
            if always is not None:
                dt.always[project] = always
            response = await client.post(
                "/webhook", data=notification(project), headers={"X-Api-Key": TOKEN}
            )
            expected[(await response.json())["jobs"][0]["job_id"]] = outcome
    await _settled(client, topo, within=60)  # the last jobs' outcomes counted
    await events.caught_up()  # and their events in hand
    outcomes: dict[str, str] = {}
    outcomes |= dict.fromkeys(events.summaries(), "done")
    outcomes |= {e["data"]["job"]["job_id"]: "gone" for e in events.of("project.gone")}
    for message in await drain(topo.parked_queue.name):
        outcomes[str(message.message_id)] = str(message.headers["x-park-reason"])
    counts = Counter(outcomes.values())
    figures(
        "R2 outcomes: "
        + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        + f"; stuck={len(set(expected) - set(outcomes))}, dropped=0"
    )
    assert outcomes == expected  # every job accounted for, each with the right outcome


@pytest.mark.timeout(180)
async def test_r3_a_worker_killed_mid_job_is_redelivered_with_identical_ids(processes, figures):
    dt, _, workers, receiver = processes
    client, events = await receiver(coalesce_seconds="0")
    project = str(uuid.uuid4())
    dt.exports[project] = export_bytes(3000, seed=3)
    first = workers.start(prefetch="1")
    await workers.ready()
    response = await client.post(
        "/webhook", data=notification(project), headers={"X-Api-Key": TOKEN}
    )
    assert response.status == 202

    def findings() -> list[Any]:
        return [m for m in events.messages if (m.routing_key or "").startswith("finding.")]

    await eventually(lambda: len(findings()) > 0, within=60)
    first.send_signal(signal.SIGKILL)  # mid-publishing: some events out, no summary, no ack
    await asyncio.to_thread(first.wait, 10)
    before = len(findings())
    assert events.summaries() == {}
    workers.start(prefetch="1")
    await workers.ready()
    await eventually(lambda: len(events.summaries()) == 1, within=90)
    by_key: dict[str, set[str]] = {}
    seen: Counter[str] = Counter()
    for message in findings():
        event = orjson.loads(message.body)
        by_key.setdefault(event["subject"], set()).add(event["id"])
        seen[event["id"]] += 1
    duplicates = sum(count - 1 for count in seen.values())
    mismatched = sum(1 for ids in by_key.values() if len(ids) != 1)
    figures(
        f"R3 killed after {before} events; redelivered and completed: findings={len(by_key)} "
        f"duplicates={duplicates} mismatched_ids={mismatched}"
    )
    assert len(by_key) == 3000
    assert duplicates >= 1
    assert mismatched == 0


async def test_r5_secrets_never_leave_the_process(serve, dt: FakeDt, caplog, figures):
    caplog.set_level("DEBUG")
    with structlog.testing.capture_logs() as lines:
        client, topo, events, _ = await serve(dt_http_attempts="1")
        answers: list[str] = []
        plans = {"ok": None, "forbidden": Fault(403), "unauthorized": Fault(401)}
        for name, fault in plans.items():
            project = str(uuid.uuid4())
            dt.exports[project] = REAL if name != "invalid" else b"{}"
            if fault is not None:
                dt.always[project] = fault
            response = await client.post(
                "/webhook", data=notification(project), headers={"X-Api-Key": TOKEN}
            )
            answers.append(await response.text())
        invalid = str(uuid.uuid4())
        dt.exports[invalid] = b'{"version": "1.3"}'
        answers.append(
            await (
                await client.post(
                    "/webhook", data=notification(invalid), headers={"X-Api-Key": TOKEN}
                )
            ).text()
        )
        for wrong in ("", "wrong", TOKEN[:-1]):
            response = await client.post(
                "/webhook", data=notification(invalid), headers={"X-Api-Key": wrong}
            )
            assert response.status == 401
            answers.append(await response.text())
        await _settled(client, topo, within=30)
        await eventually(lambda: len(events.summaries()) == 1)
        parked = await drain(topo.parked_queue.name)
        answers.append(await (await client.get("/metrics")).text())
    assert len(parked) == 3  # 403, 401, invalid export
    everything = "\n".join(
        [repr(lines), caplog.text, *answers]
        + [m.body.decode("utf-8", "replace") for m in events.messages]
        + [repr(m.headers) + m.body.decode("utf-8", "replace") for m in parked]
    )
    found = [
        name
        for name, secret in (("webhook token", TOKEN), ("DT API key", API_KEY))
        if secret in everything
    ]
    dockerfile = (Path(__file__).parent.parent / "deploy" / "Dockerfile").read_text()
    final_user = [line for line in dockerfile.splitlines() if line.startswith("USER ")][-1]
    figures(
        f"R5 searched {len(everything)} characters of logs, answers, events and parked jobs: "
        f"secrets_found={len(found)}; wrong tokens -> 401 x3; container {final_user}"
    )
    assert found == []
    assert final_user.split()[1].split(":")[0] not in ("0", "root")


async def test_r2_a_dt_behind_a_stalled_or_cut_connection_is_waited_out(serve, dt: FakeDt, figures):
    target = int(dt.url.rsplit(":", 1)[1])
    async with TcpProxy(target) as proxy:
        client, topo, events, _ = await serve(
            dt_url=f"http://127.0.0.1:{proxy.port}",
            dt_read_timeout="0.5",
            dt_backoff_seconds="0.2",
            dt_http_attempts="8",
        )
        projects = [str(uuid.uuid4()) for _ in range(4)]
        proxy.stall()  # DT hangs: reads time out, the worker retries
        for project in projects[:2]:
            dt.exports[project] = REAL
            await client.post("/webhook", data=notification(project), headers={"X-Api-Key": TOKEN})
        await asyncio.sleep(1.5)
        proxy.restore()
        proxy.cut()  # then DT's connections drop and it refuses new ones for a moment
        for project in projects[2:]:
            dt.exports[project] = REAL
            await client.post("/webhook", data=notification(project), headers={"X-Api-Key": TOKEN})
        await asyncio.sleep(0.5)
        proxy.restore()
        await eventually(lambda: len(events.summaries()) == 4, within=60)
    parked = len(await drain(topo.parked_queue.name))
    figures(f"R2 DT stalled then cut behind a proxy: 4 jobs done, parked={parked}")
    assert len(events.summaries()) == 4
    assert parked == 0
