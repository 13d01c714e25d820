"""Worker processes as they are run: `dtrack-worker worker` subprocesses, real RabbitMQ, fake DT."""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import datetime

import pytest

from tests.harness import REAL, TOKEN, enqueued, notification
from tests.rabbit import depth, drain, eventually
from tests.waiting import until

pytestmark = pytest.mark.rabbitmq


async def test_a_burst_for_one_project_costs_at_most_one_fetch_per_worker_and_a_fresh_one(
    processes, figures
):
    """How fast the burst is accepted is bench.coalescing's to measure, not this test's."""
    dt, topo, workers, receiver = processes
    client, events = await receiver(coalesce_seconds="2")
    workers.start(prefetch="8")
    workers.start(prefetch="8")
    await workers.ready()
    project = str(uuid.uuid4())
    dt.exports[project] = REAL

    async def send(n: int) -> str:
        response = await client.post(
            "/webhook", data=notification(project, n), headers={"X-Api-Key": TOKEN}
        )
        assert response.status == 202
        return str((await response.json())["accepted_at"])

    accepted = await asyncio.gather(*(send(n) for n in range(100)))
    last_accepted = max(datetime.fromisoformat(a).timestamp() for a in accepted)

    # Every job the receiver enqueued settled by a worker (fetched, or coalesced without a
    # fetch): no job is left that could fetch again, so the count below is final.
    jobs = await enqueued(client)
    outcomes = await until(
        workers.settled,
        lambda settled: settled.total() - settled["retried"] >= jobs,
        what=f"the two workers settling the {jobs} jobs enqueued",
        within=40,
        every=0.2,
    )
    fetches = dt.fetches_of(project)
    freshest = max(f.started for f in fetches) - last_accepted
    figures(
        f"coalescing: 100 notifications, {jobs} jobs, 2 worker processes -> {len(fetches)} "
        f"fetches ({dict(outcomes)}), latest fetch {freshest:+.2f} s after the last acceptance"
    )
    assert outcomes.total() == jobs  # none retried: each settled once
    assert 1 <= len(fetches) <= 1 + 2
    assert max(fetch.started for fetch in fetches) > last_accepted  # freshness
    await eventually(lambda: len(events.of("export.summary")) == outcomes["done"])
    assert await depth(*(q.name for q in topo.delay_queues), topo.jobs_queue.name) == 0
    assert await drain(topo.parked_queue.name) == []


async def test_sigterm_under_load_finishes_or_returns_every_job(processes, figures):
    dt, topo, workers, receiver = processes
    client, events = await receiver(coalesce_seconds="0")
    dt.delay = 0.5  # each export takes half a second
    first = workers.start(prefetch="4", dt_concurrency="4", shutdown_grace="10")
    await workers.ready()
    projects = [str(uuid.uuid4()) for _ in range(16)]  # each served the same real export
    for project in projects:
        dt.exports[project] = REAL
        response = await client.post(
            "/webhook", data=notification(project), headers={"X-Api-Key": TOKEN}
        )
        assert response.status == 202

    await eventually(lambda: len(events.of("export.summary")) >= 2, within=30)
    first.send_signal(signal.SIGTERM)
    await asyncio.to_thread(first.wait, 30)
    out = first.output()
    assert first.returncode == 0, out.decode()[-2000:]
    done_by_first = len(events.summaries())

    workers.start(prefetch="4", dt_concurrency="4")
    await workers.ready()
    await eventually(lambda: len(events.summaries()) == len(projects), within=40)
    parked = len(await drain(topo.parked_queue.name))
    figures(
        f"shutdown under load: 16 jobs, first worker finished {done_by_first} and exited 0 on "
        f"SIGTERM, the second finished the rest; lost=0, parked={parked}"
    )
    assert parked == 0
    assert b"worker.draining" in out or done_by_first == len(projects)
    assert await depth(topo.jobs_queue.name) == 0
