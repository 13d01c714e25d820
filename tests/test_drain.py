"""A graceful drain (issue 16 part 1): `dtrack-worker worker` processes stopped with SIGTERM while
an export downloads. The job in flight finishes and is acked on the channel it came on; one that
outlives the grace goes back to the queue explicitly and another worker completes it, once."""

from __future__ import annotations

import asyncio
import signal
import uuid
from typing import Any

import orjson
import pytest

from tests.fake_dt import Fault
from tests.harness import REAL, TOKEN, notification
from tests.rabbit import depth, eventually
from tests.waiting import until

pytestmark = pytest.mark.rabbitmq


def _lines(output: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in output.splitlines() if line.startswith(b"{")]


async def test_sigterm_during_a_slow_export_finishes_and_acks_the_job(processes, figures):
    dt, topo, workers, receiver = processes
    client, events = await receiver(coalesce_seconds="0")
    worker = workers.start(shutdown_grace="10")
    await workers.ready()
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    dt.always[project] = Fault(delay=2.0)  # DT takes a while to answer this export
    response = await client.post(
        "/webhook", data=notification(project), headers={"X-Api-Key": TOKEN}
    )
    (job,) = (await response.json())["jobs"]
    await eventually(lambda: len(dt.fetches_of(project)) == 1)
    worker.send_signal(signal.SIGTERM)
    out, _ = await asyncio.to_thread(worker.communicate, timeout=30)
    assert worker.returncode == 0, out.decode()[-2000:]
    await eventually(lambda: job["job_id"] in events.summaries())
    # the only worker has exited, closing its connection: an unacked job would be back already
    assert await depth(topo.jobs_queue.name, topo.parked_queue.name) == 0  # acked, for good
    assert len(dt.fetches_of(project)) == 1  # never redelivered, never fetched again
    lines = _lines(out)
    events_seen = [line["event"] for line in lines]
    assert "worker.draining" in events_seen
    assert "worker.returned" not in events_seen
    assert [line["outcome"] for line in lines if line["event"] == "job.settled"] == ["done"]
    assert b"never retrieved" not in out
    assert b"Traceback" not in out
    figures(
        "drain: SIGTERM 0.1 s into a 2 s export -> the job finished and was acked, "
        "exit 0, jobs queue empty, 1 fetch"
    )


async def test_a_job_that_outlives_the_grace_goes_back_and_is_completed_once(processes, figures):
    dt, topo, workers, receiver = processes
    client, events = await receiver(coalesce_seconds="0")
    first = workers.start(shutdown_grace="1")
    await workers.ready()
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    dt.faults[project] = [Fault(delay=6.0)]  # the first fetch outlives a 1 s grace
    response = await client.post(
        "/webhook", data=notification(project), headers={"X-Api-Key": TOKEN}
    )
    (job,) = (await response.json())["jobs"]
    await eventually(lambda: len(dt.fetches_of(project)) == 1)
    first.send_signal(signal.SIGTERM)
    out, _ = await asyncio.to_thread(first.communicate, timeout=30)
    assert first.returncode == 0, out.decode()[-2000:]
    returned = [line for line in _lines(out) if line["event"] == "worker.returned"]
    assert returned == [returned[0]]
    assert (returned[0]["jobs"], returned[0]["nacked"]) == (1, 1)
    assert events.summaries() == {}
    assert b"never retrieved" not in out

    workers.start()  # another worker takes the returned job
    await workers.ready()
    await eventually(lambda: job["job_id"] in events.summaries(), within=30)
    # the second worker settled the one job there is, and what it published is in hand
    await until(workers.settled, lambda outcomes: outcomes.total() >= 1, what="the job settled")
    await events.caught_up()
    summaries = [
        e for e in events.of("export.summary") if e["data"]["job"]["job_id"] == job["job_id"]
    ]
    assert len(summaries) == 1  # completed once
    assert len(dt.fetches_of(project)) == 2
    assert await depth(topo.jobs_queue.name, topo.parked_queue.name) == 0
    figures(
        "drain: a 6 s export against a 1 s grace -> nacked back (worker.returned jobs=1), "
        "exit 0; a second worker completed it once"
    )
