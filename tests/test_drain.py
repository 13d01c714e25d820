"""A graceful drain (issue 16 part 1): `dtrack-worker worker` processes stopped with SIGTERM while
an export downloads. The job in flight finishes and is acked on the channel it came on; one that
outlives the grace goes back to the queue explicitly and another worker completes it, once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import struct
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import psycopg
import pytest

from bench.synthetic import export_bytes
from tests.console_env import add_project
from tests.fake_dt import Fault
from tests.harness import REAL, TOKEN, WorkerProcess, notification
from tests.rabbit import AMQP_URL, depth, eventually
from tests.state_db import fresh_database
from tests.tcpproxy import TcpProxy
from tests.waiting import until
from worker.core import jobs
from worker.core.topology import JOB_KEY

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


# -- the outbox at shutdown (issue 25 part 2) ------------------------------------------------


class Lines:
    """A worker process's output (harness.WorkerProcess writes it to a file: no pipe to fill),
    read as JSON lines."""

    def __init__(self, process: WorkerProcess) -> None:
        self.process = process

    @property
    def raw(self) -> list[bytes]:
        return self.process.output().splitlines(keepends=True)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in _lines(b"".join(self.raw)) if line.get("event") == name]

    async def exit(self, within: float = 30) -> bytes:
        """Wait for the process to exit; everything it printed."""
        await asyncio.to_thread(self.process.wait, within)
        return self.process.output()


def _outbox_rows(path: Path) -> int:
    """The events waiting in the outbox: a row of a round counts its events (issue 28)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        query = "SELECT COALESCE(SUM(COALESCE(events, 1)), 0) FROM outbox"
        return int(db.execute(query).fetchone()[0])


def _changes_of(events: Any, project: str) -> list[dict[str, Any]]:
    """The project's change-stream events (delta.* and its export.summary), as received."""
    found = []
    for message in events.messages:
        key = message.routing_key or ""
        if key.startswith("delta.") or key == "export.summary":
            event = orjson.loads(message.body)
            if event["data"]["project"]["uuid"] == project:
                found.append(event)
    return found


async def test_sigterm_during_an_export_delivers_its_change_events_before_exit(
    processes, tmp_path, figures
):
    dt, _, workers, receiver = processes
    client, events = await receiver(coalesce_seconds="0")
    store = tmp_path / "state.sqlite3"
    worker = workers.start(emit="delta", state_url=f"sqlite:///{store}", shutdown_grace="10")
    lines = Lines(worker)
    await workers.ready()
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    dt.always[project] = Fault(delay=1.0)  # DT takes a while to answer this export
    response = await client.post(
        "/webhook", data=notification(project), headers={"X-Api-Key": TOKEN}
    )
    (job,) = (await response.json())["jobs"]
    await eventually(lambda: len(dt.fetches_of(project)) == 1)
    worker.send_signal(signal.SIGTERM)
    out = await lines.exit()
    assert worker.returncode == 0, out.decode()[-2000:]
    # the SQLite file is the pod's ephemeral disk: what stays in it is lost with the pod
    assert _outbox_rows(store) == 0, out.decode()[-3000:]
    await eventually(lambda: len(_changes_of(events, project)) == 14, within=10)
    changes = _changes_of(events, project)
    assert [int(e["sequence"]) for e in changes] == list(range(1, 15))
    assert changes[-1]["data"]["job"]["job_id"] == job["job_id"]
    (stopped,) = lines.events("relay.stopped")
    assert (stopped["left"], stopped["unconfirmed"]) == (0, 0)
    figures(
        "drain: SIGTERM during a 1 s export (delta, SQLite) -> job done, its 14 change events "
        "published before exit, outbox empty"
    )


_CONFIRMS = (struct.pack(">HH", 60, 80), struct.pack(">HH", 60, 120))  # basic.ack, basic.nack


class ConfirmsHeld(TcpProxy):
    """The worker's link to RabbitMQ, whose publisher confirms (basic.ack and basic.nack
    frames from RabbitMQ) the test can hold back while every other frame goes through."""

    def __init__(self) -> None:
        super().__init__(5672)
        self.holding = False
        self.held = 0  # confirm frames held back so far
        self._clients: set[asyncio.StreamWriter] = set()
        self._waiting: list[tuple[asyncio.StreamWriter, bytes]] = []

    def release(self) -> None:
        """Send what was held, in order, and hold nothing more."""
        self.holding = False
        for sink, frame in self._waiting:
            sink.write(frame)
        self._waiting.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        await super()._accept(reader, writer)

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, upstream: bool
    ) -> None:
        if sink not in self._clients:  # the worker's side: untouched
            await super()._pipe(source, sink, upstream)
            return
        try:  # RabbitMQ's side: frame by frame (type, channel, size, payload, end octet)
            while True:
                head = await source.readexactly(7)
                kind, _, size = struct.unpack(">BHI", head)
                frame = head + await source.readexactly(size + 1)
                if self.holding and kind == 1 and frame[7:11] in _CONFIRMS:
                    self._waiting.append((sink, frame))
                    self.held += 1
                    continue
                sink.write(frame)
                await sink.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._links.discard(sink)
            with contextlib.suppress(Exception):
                sink.transport.abort()


async def test_sigterm_during_a_relay_pass_deletes_what_was_confirmed(processes, tmp_path, figures):
    dt, _, workers, receiver = processes
    client, events = await receiver(coalesce_seconds="0")
    store = tmp_path / "state.sqlite3"
    findings = 2500  # three batches of the relay: two in flight, one waiting
    project = str(uuid.uuid4())
    dt.exports[project] = export_bytes(findings, seed=11, project=project)
    link = ConfirmsHeld()
    async with link:
        first = workers.start(
            emit="delta",
            state_url=f"sqlite:///{store}",
            shutdown_grace="0.5",
            amqp_url=f"amqp://guest:guest@127.0.0.1:{link.port}/",
        )
        lines = Lines(first)
        await workers.ready()
        await client.post("/webhook", data=notification(project), headers={"X-Api-Key": TOKEN})
        await eventually(lambda: len(dt.fetches_of(project)) == 1)
        link.holding = True  # the job is delivered: from here RabbitMQ's confirms wait
        # the state: the relay wrote two batches (RabbitMQ routed them) and awaits their confirms
        await eventually(lambda: len(_changes_of(events, project)) >= 2000, within=20)
        first.send_signal(signal.SIGTERM)
        # the grace runs out with the confirms outstanding; then they come
        await eventually(lambda: bool(lines.events("relay.halting")) or first.poll() is not None)
        link.release()
        out = await lines.exit()
    assert first.returncode == 0, out.decode()[-2000:]
    left = _outbox_rows(store)
    before = len(_changes_of(events, project))

    workers.start(emit="delta", state_url=f"sqlite:///{store}")
    await workers.ready()
    # one relay publishes a project in sequence: with the last one in, every repeat came before
    await eventually(lambda: len({e["id"] for e in _changes_of(events, project)}) > findings)
    changes = _changes_of(events, project)
    ids = Counter(e["id"] for e in changes)
    duplicates = sum(count - 1 for count in ids.values())
    stopped = lines.events("relay.stopped")
    unconfirmed = stopped[0]["unconfirmed"] if stopped else 0
    figures(
        f"drain: SIGTERM mid-relay ({findings} rows, two batches awaiting confirms, 0.5 s grace): "
        f"{before} published before exit, left={left}, unconfirmed={unconfirmed}; after restart "
        f"{len(ids)} distinct, duplicates={duplicates}"
    )
    # what RabbitMQ confirmed is never published again
    assert duplicates <= unconfirmed == 0, out.decode()[-3000:]
    assert len(stopped) == 1
    assert stopped[0]["left"] == left == findings + 1 - 2000  # the log says what was left


async def test_a_job_settling_as_the_grace_ends_still_reports_it_settled(serve, dt):
    """A job already acked when the grace ends (writing its history row to a slow store: a lock
    another session holds) is not cancelled: it finishes settling, and whoever follows it
    (`sync --wait`, the console) is told it is done."""
    with fresh_database() as url:
        client, topo, _, _ = await serve(EMIT="delta", STATE_URL=url, SHUTDOWN_GRACE="0.5")
        project = add_project(dt, "acme-shop")
        holder = psycopg.connect(url, autocommit=True)
        try:
            holder.execute("BEGIN")
            holder.execute("LOCK TABLE job_history IN EXCLUSIVE MODE")
            connection = await aio_pika.connect(AMQP_URL)
            async with connection:
                channel = await connection.channel(publisher_confirms=True)
                reports = await channel.declare_queue(f"{topo.prefix}.test-progress")
                job = jobs.Job(job_id=str(uuid.uuid4()), project_uuid=project,
                               project_name="acme-shop", trigger="SYNC", notification_id="test",
                               accepted_at=jobs.utc_timestamp(datetime.now(UTC)),
                               correlation_id="test")  # fmt: skip
                exchange = await channel.get_exchange(topo.jobs_exchange.name)
                await exchange.publish(
                    aio_pika.Message(job.to_json(), message_id=job.job_id,
                                     headers={jobs.PROGRESS_HEADER: reports.name}),
                    JOB_KEY,
                )  # fmt: skip
                waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = "
                await until(  # acked, its history row waits for the lock
                    lambda: asyncio.to_thread(
                        lambda: holder.execute(f"{waiting}'job_history'::regclass").fetchone()
                    ),
                    lambda found: found == (1,),
                    what="the job's history row waiting for the lock",
                )
                asyncio.get_running_loop().call_later(1.5, holder.execute, "ROLLBACK")
                await client.close()  # the worker stops: a 0.5 s grace
                steps = []
                while (message := await reports.get(fail=False)) is not None:
                    steps.append(orjson.loads(message.body)["step"])
                    await message.ack()
                await reports.delete()
        finally:
            holder.close()
        assert steps[-1] == "done", steps
