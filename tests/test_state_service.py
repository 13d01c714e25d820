"""The change stream as the service runs it, against the real RabbitMQ, the real SQLite and
PostgreSQL, and the fake DT: webhooks in, transitions committed with their events, the relay
publishing them in order; a worker killed between commit and publish; the database away."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import uuid
from typing import Any

import aio_pika
import orjson
import psycopg
import pytest

from tests.fake_dt import FakeDt
from tests.harness import REAL, TOKEN, all_jobs_settled, enqueued, notification, post
from tests.rabbit import AMQP_URL, depth, drain, eventually
from tests.state_db import POSTGRES, fresh_database
from tests.tcpproxy import TcpProxy
from tests.waiting import until

pytestmark = pytest.mark.rabbitmq


def _changes(events: Any, project: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(m.body)
        for m in events.messages
        if (m.routing_key or "").startswith("delta.") and project in m.body.decode()[:2000]
    ]


async def test_webhooks_become_transitions_published_in_sequence(
    serve, dt: FakeDt, state_url, contracts
):
    client, topo, events, _ = await serve(emit="delta", state_url=state_url)
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    opened = _changes(events, project)
    assert [e["data"]["change"]["kind"] for e in opened] == ["opened"] * 13
    assert all(m.routing_key.startswith("delta.opened.") for m in events.messages
               if m.routing_key.startswith("delta."))  # fmt: skip
    sequences = [int(e["sequence"]) for e in opened]
    assert sequences == sorted(sequences) == list(range(1, 14))
    summary = events.summaries()[job["job_id"]]
    assert int(summary["sequence"]) == 14
    assert contracts.service_event.problems(summary) == ()
    assert events.of("finding.high") == []  # delta mode: no snapshot events

    document = orjson.loads(dt.exports[project])
    document["meta"]["timestamp"] = "2026-12-01T00:00:00Z"
    gone_key = document["findings"].pop()["matrix"]
    dt.exports[project] = orjson.dumps(document)
    (second,) = (await post(client, project, 1))["jobs"]
    await eventually(lambda: second["job_id"] in events.summaries(), within=20)
    (resolved,) = [
        e for e in _changes(events, project) if e["data"]["change"]["kind"] == "resolved"
    ]
    assert resolved["subject"] == gone_key
    assert int(resolved["sequence"]) == 15
    assert await depth(topo.jobs_queue.name, topo.parked_queue.name) == 0


async def test_emit_both_publishes_snapshots_and_changes_with_one_summary(serve, dt, state_url):
    client, _, events, _ = await serve(emit="both", state_url=state_url)
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    await all_jobs_settled(client)  # nothing left to publish: the counts below are final
    await events.caught_up()
    assert len(events.findings(project)) == 13
    assert len(_changes(events, project)) == 13
    assert len(events.of("export.summary")) == 1
    assert events.summaries()[job["job_id"]]["data"]["transitions"]["opened"] == 13


async def test_a_worker_killed_between_commit_and_publish_loses_nothing(processes, tmp_path):
    dt, topo, workers, receiver = processes
    client, events = await receiver(coalesce_seconds="0")
    state = f"sqlite:///{tmp_path}/state.sqlite3"
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    async with TcpProxy(5672) as proxy:
        doomed = workers.start(
            emit="delta", state_url=state, amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
        )
        await workers.ready()
        dt.delay = 1.0  # the export takes a second: time to cut RabbitMQ off meanwhile
        await client.post("/webhook", data=notification(project), headers={"X-Api-Key": TOKEN})
        await eventually(lambda: len(dt.fetches_of(project)) == 1)
        proxy.cut()  # the worker commits to the store, but cannot publish nor ack
        committed = await _outbox_rows(state, within=10)
        doomed.send_signal(signal.SIGKILL)
        await asyncio.to_thread(doomed.wait, 10)
    dt.delay = 0
    assert events.of("export.summary") == []
    workers.start(emit="delta", state_url=state)  # a new worker: its relay finds the rows
    await workers.ready()
    await eventually(lambda: len(events.of("export.summary")) >= 1, within=30)
    # the redelivered job settled by the new worker (compared again, it changes nothing), the
    # outbox relayed, and every event published by then in hand: what follows is final
    await until(workers.settled, lambda outcomes: outcomes.total() >= 1, what="the job redone")
    await until(
        lambda: _outbox_rows(state, within=0, expect=False),
        lambda rows: rows == [],
        what="the outbox relayed to the end",
    )
    await events.caught_up()
    published = [orjson.loads(m.body) for m in events.messages]
    ids = [e["id"] for e in published]
    assert set(ids) >= {row_id for row_id, _ in committed}  # nothing lost, ids identical
    changes = [e for e in published if e["type"].startswith("dtrack-worker.finding.")]
    assert len(changes) == len({e["id"] for e in changes}) == 13  # and no transition doubled
    assert await _outbox_rows(state, within=0, expect=False) == []
    assert await depth(topo.jobs_queue.name, topo.parked_queue.name) == 0


async def _outbox_rows(url: str, *, within: float, expect: bool = True) -> list[tuple[str, int]]:
    """(event id, sequence) of the outbox rows, waiting up to ``within`` s for some."""
    path = url.removeprefix("sqlite:///")
    deadline = asyncio.get_running_loop().time() + within
    while True:
        with contextlib.closing(sqlite3.connect(path)) as connection:
            rows = connection.execute("SELECT event_id, sequence FROM outbox").fetchall()
        if rows or not expect or asyncio.get_running_loop().time() > deadline:
            assert rows or not expect, "nothing was committed"
            return [(row[0], row[1]) for row in rows]
        await asyncio.sleep(0.1)


@pytest.mark.postgres  # fresh_database(): a database of its own on the server
async def test_postgresql_away_for_a_while_delays_jobs_and_loses_nothing(serve, dt: FakeDt):
    with fresh_database() as url:
        async with TcpProxy(5432) as proxy:
            proxied = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
            client, topo, events, _ = await serve(emit="delta", state_url=proxied)
            project = str(uuid.uuid4())
            dt.exports[project] = REAL
            proxy.cut()
            (job,) = (await post(client, project))["jobs"]
            (retried,) = await _first_retry(topo)
            assert "state store" in str(retried.headers["x-last-error"])
            proxy.restore()
            # the retry tier gives it back after 5 s; then it commits and publishes
            await eventually(lambda: job["job_id"] in events.summaries(), within=30)
    opened = _changes(events, project)
    assert len(opened) == 13
    assert await drain(topo.parked_queue.name) == []
    with psycopg.connect(f"{POSTGRES}/postgres") as admin:
        assert admin.execute("SELECT 1").fetchone() == (1,)


async def _first_retry(topo: Any) -> list[Any]:
    """The job as it waits in the first retry tier (read, not taken)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topo.retry_queues[0].name, ensure=False)
        for _ in range(200):
            message = await queue.get(fail=False, no_ack=False)
            if message is not None:
                await message.nack(requeue=True)  # leave it there
                return [message]
            await asyncio.sleep(0.05)
    raise AssertionError("the job did not reach the retry tier")


@pytest.mark.postgres  # fresh_database(): a database of its own on the server
async def test_two_workers_on_postgresql_hammering_the_same_projects(processes, figures):
    """Interleaved exports of five projects, two worker processes: every transition published
    once, sequences 1..N per project without gap or repeat, the replay equal to the store."""
    dt, _, workers, receiver = processes
    client, events = await receiver(coalesce_seconds="0")
    projects = [str(uuid.uuid4()) for _ in range(5)]
    fetched = dict.fromkeys(projects, 0)
    for project in projects:
        dt.exports[project] = REAL
        dt.generators[project] = _changing_exports(project, fetched)
    with fresh_database() as url:
        for _ in range(2):
            workers.start(emit="delta", state_url=url, dt_concurrency="4", prefetch="8")
        await workers.ready()
        for n in range(60):
            project = projects[n % len(projects)]
            response = await client.post(
                "/webhook", data=notification(project, n), headers={"X-Api-Key": TOKEN}
            )
            assert response.status == 202
            if n % 10 == 9:
                await asyncio.sleep(0.2)  # let exports change between bursts
        await _settled(client, workers, events, url)
        # psycopg blocks: in a thread, not on the loop that serves the fake DT
        open_set, counters, leftover = await asyncio.to_thread(_stored, url)
    assert leftover == 0
    replayed, transitions = _replay_checking_sequences(events, counters)
    assert {key for key, status in replayed.items() if status == "open"} == open_set
    figures(
        f"state: 2 workers on PostgreSQL, 5 projects, 60 notifications, {sum(fetched.values())} "
        f"exports fetched -> {transitions} transitions published, sequences 1..N per project "
        "without gap or repeat, replay == store"
    )


def _changing_exports(project: str, fetched: dict[str, int]) -> Any:
    """The project's export, a later one at every fetch: other findings, other severities."""
    base = REAL.replace(orjson.loads(REAL)["project"]["uuid"].encode(), project.encode())

    def next_export() -> bytes:
        fetched[project] += 1
        g = fetched[project]
        document = orjson.loads(base)
        document["meta"]["timestamp"] = f"2026-11-30T11:{g // 60:02d}:{g % 60:02d}Z"
        kept = [f for i, f in enumerate(document["findings"]) if (i + g) % 3]
        for i, finding in enumerate(kept):
            if (i * g) % 4 == 0:
                finding["vulnerability"]["severity"] = "CRITICAL"
        document["findings"] = kept
        return orjson.dumps(document)

    return next_export


def _replay_checking_sequences(events: Any, counters: dict[str, int]) -> tuple[dict[str, str], int]:
    """Each project's stream, checked to be 1..N in order, replayed as a consumer would."""
    per_project: dict[str, list[dict[str, Any]]] = {}
    for message in events.messages:
        event = orjson.loads(message.body)
        if "sequence" in event:
            per_project.setdefault(event["data"]["project"]["uuid"], []).append(event)
    replayed: dict[str, str] = {}
    transitions = 0
    for project, stream in per_project.items():
        numbers = [int(e["sequence"]) for e in stream]
        assert numbers == list(range(1, counters[project] + 1)), project  # no gap, no repeat
        for event in (e for e in stream if e["type"].startswith("dtrack-worker.finding.")):
            transitions += 1
            kind = event["data"]["change"]["kind"]
            replayed[event["subject"]] = (
                "open" if kind in ("opened", "changed", "reopened") else kind
            )
    return replayed, transitions


async def _settled(client: Any, workers: Any, events: Any, url: str) -> None:
    """Until every job the receiver enqueued settled in a worker (their /metrics: a job
    delivered and not yet acked is in no queue's count, and could still commit), the outbox
    relayed to the end (no job is left to add to it), and every event published by then in
    hand."""
    jobs = await enqueued(client)
    await until(
        workers.settled,
        lambda settled: settled.total() - settled["retried"] >= jobs,
        what=f"the two workers settling the {jobs} jobs enqueued",
        within=60,
        every=0.2,
    )
    await until(
        lambda: asyncio.to_thread(_outbox_count, url),
        lambda rows: rows == 0,
        what="the outbox relayed to the end",
        within=30,
        every=0.1,
    )
    await events.caught_up()


def _outbox_count(url: str) -> int:
    with psycopg.connect(url) as connection:
        return _count(connection, "outbox")


def _count(connection: Any, table: str) -> int:
    row = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def _stored(url: str) -> tuple[set[str], dict[str, int], int]:
    """The open findings' keys, each project's sequence counter, and the outbox's rows."""
    with psycopg.connect(url) as connection:
        open_set = {
            row[0]
            for row in connection.execute(
                "SELECT finding_key FROM findings WHERE status = 'open'"
            ).fetchall()
        }
        rows = connection.execute("SELECT uuid, sequence FROM projects").fetchall()
        leftover = _count(connection, "outbox")
    return open_set, {str(row[0]): int(row[1]) for row in rows}, leftover


@pytest.mark.parametrize("emit", ["delta", "snapshot"])
async def test_two_summaries_of_exports_stamped_the_same_second_have_two_ids(
    serve, dt: FakeDt, tmp_path, emit
):
    """Issue 25: DT stamps an export to the second; two jobs that fetch the same project
    within one second are two summaries, which a consumer de-duplicating on ids must keep."""
    client, _, events, _ = await serve(emit=emit, state_url=f"sqlite:///{tmp_path}/s.db")
    project = str(uuid.uuid4())
    dt.exports[project] = REAL  # the same export twice: the same meta.timestamp
    (first,) = (await post(client, project))["jobs"]
    await eventually(lambda: first["job_id"] in events.summaries(), within=20)
    (second,) = (await post(client, project, 1))["jobs"]
    await eventually(lambda: second["job_id"] in events.summaries(), within=20)
    one, two = events.summaries()[first["job_id"]], events.summaries()[second["job_id"]]
    assert one["time"] == two["time"]  # the same second
    assert one["id"] != two["id"]


async def test_changes_of_exports_stamped_the_same_second_have_distinct_ids(
    serve, dt: FakeDt, tmp_path
):
    """Review 2 L8: a finding that changes in two exports of one second makes two `changed`
    events; with the export's stamp alone in their ids, they shared one, and a consumer that
    de-duplicates on ids dropped the second change."""
    client, _, events, _ = await serve(emit="delta", state_url=f"sqlite:///{tmp_path}/s.db")
    project = str(uuid.uuid4())
    document = orjson.loads(REAL)
    dt.exports[project] = orjson.dumps(document)
    jobs = [(await post(client, project))["jobs"][0]]
    await eventually(lambda: jobs[0]["job_id"] in events.summaries(), within=20)
    for n, severity in enumerate(("LOW", "CRITICAL"), start=1):  # the same meta.timestamp
        document["findings"][0]["vulnerability"]["severity"] = severity
        dt.exports[project] = orjson.dumps(document)
        jobs.append((await post(client, project, n))["jobs"][0])
        await eventually(lambda: jobs[-1]["job_id"] in events.summaries(), within=20)
    changed = [
        orjson.loads(m.body)
        for m in events.messages
        if (m.routing_key or "").startswith("delta.changed.") and project in m.body.decode()
    ]
    assert len(changed) == 2, changed
    assert changed[0]["time"] == changed[1]["time"]  # the same second
    assert changed[0]["subject"] == changed[1]["subject"]  # the same finding
    assert changed[0]["id"] != changed[1]["id"]
