"""Outbox rounds (issue 28 part 2): a job's events in one outbox row per round, against the real
RabbitMQ, SQLite and PostgreSQL. Few rows per job; order per project across rounds and jobs; a
round RabbitMQ confirmed in part is published again whole; rows of the one-event form an older
release left are relayed after the upgrade, before the rounds that follow them; a worker killed
between its commit and the relay's publishing loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import pytest

from bench.synthetic import export_bytes
from tests.harness import TOKEN, Events, listen, notification
from tests.rabbit import AMQP_URL, depth, eventually, temporary_topology, unique_prefix
from tests.state_db import fresh_database
from tests.tcpproxy import TcpProxy
from worker.adapters.broker import Broker
from worker.adapters.metrics import WorkerMetrics
from worker.adapters.state import backend, outbox_queries, queries, schema
from worker.adapters.state.store import Apply, Store
from worker.core import outbox_rounds
from worker.core.config import Settings
from worker.core.errors import TransientError
from worker.core.events import Event
from worker.service.relay import Relay

SHIPPED = Path(backend.__file__).parent / "migrations"
OPENED = "dtrack-worker.finding.opened.v1"


def _event(project: str, sequence: int) -> Event:
    """A change event as the relay sees it: its sequence and project in its body."""
    body = {
        "id": f"{project}-{sequence}",
        "type": OPENED,
        "sequence": f"{sequence:020d}",
        "data": {"project": {"uuid": project}},
    }
    return Event(f"{project}-{sequence}", "delta.opened.high", orjson.dumps(body), OPENED)


def _job(project: str, count: int) -> Apply:
    """A job's write of ``count`` events, numbered where the project's sequence stands."""
    return Apply(
        project=project,
        name="acme",
        version=None,
        expected_revision=None,
        writes=(),
        events=lambda first: outbox_rounds.framed(
            [_event(project, first + n) for n in range(count)]
        ),
        exported_at=None,
        outcome="test",
        now=time.time(),
    )


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    connection = backend.connector(url)()
    try:
        cursor = connection.cursor()
        cursor.execute(query)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        connection.close()


def _sequences(events: Events, project: str) -> list[int]:
    """The project's events as received, by sequence."""
    found = []
    for message in events.messages:
        event = orjson.loads(message.body)
        if event.get("data", {}).get("project", {}).get("uuid") == project:
            found.append(int(event["sequence"]))
    return found


@dataclass
class Wired:
    store: Store
    relay: Relay
    events: Events
    events_exchange: str
    url: str

    async def relay_all(self) -> None:
        while await self.relay.drain():
            pass


@pytest.fixture
async def wired(state_url: str, rabbitmq: str) -> AsyncIterator[Callable[..., Any]]:
    """``await wired(store=...)``: a Store (migrated), a started Broker on a topology of its
    own, its Relay, and every event published to the events exchange as received."""
    async with contextlib.AsyncExitStack() as stack:

        async def make() -> Wired:
            prefix = unique_prefix()
            topo = await stack.enter_async_context(temporary_topology(prefix))
            settings = Settings.from_env(
                {
                    "DTRACK_WORKER_PREFIX": prefix,
                    "DTRACK_WORKER_AMQP_URL": AMQP_URL,
                    "DTRACK_WORKER_STATE_URL": state_url,
                }
            )
            broker = Broker(settings.broker, topo)
            await broker.start()
            stack.push_async_callback(broker.close)
            await broker.wait_ready(within=30)
            store = await stack.enter_async_context(Store.open(settings.state))
            events = await stack.enter_async_context(listen(topo.events_exchange.name))
            relay = Relay(store, broker, WorkerMetrics.create())
            return Wired(store, relay, events, topo.events_exchange.name, state_url)

        yield make


async def test_a_job_writes_a_row_per_round_and_its_events_go_out_in_order(wired) -> None:
    w = await wired()
    first, other = str(uuid.uuid4()), str(uuid.uuid4())
    await w.store.apply(_job(first, 1201))
    await w.store.apply(_job(other, 120))
    await w.store.apply(_job(first, 600))  # a later job of the same project
    rows = _rows(w.url, "SELECT project, sequence, events FROM outbox ORDER BY id")
    assert rows == [
        (first, 1, 500), (first, 501, 500), (first, 1001, 201),
        (other, 1, 120),
        (first, 1202, 500), (first, 1702, 100),
    ]  # fmt: skip
    assert (await w.store.outbox_depth())[0] == 1921  # the gauge counts events, not rows

    await w.relay_all()
    await eventually(lambda: len(w.events.messages) >= 1921, within=20)
    assert _sequences(w.events, first) == list(range(1, 1802))
    assert _sequences(w.events, other) == list(range(1, 121))
    assert _rows(w.url, "SELECT COUNT(*) FROM outbox") == [(0,)]
    assert (await w.store.outbox_depth())[0] == 0


async def test_a_round_confirmed_in_part_is_published_again_whole(wired) -> None:
    w = await wired()
    project = str(uuid.uuid4())
    await w.store.apply(_job(project, 2001))  # rounds at 1, 501, 1001, 1501, 2001
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        full = await channel.declare_queue(  # takes 1200, nacks the rest: 1001-1200 confirmed
            f"full-{uuid.uuid4().hex[:8]}",
            arguments={"x-max-length": 1200, "x-overflow": "reject-publish"},
        )
        try:
            await full.bind(w.events_exchange, "#")
            with pytest.raises(TransientError, match="RabbitMQ"):
                await w.relay_all()
            # the first batch (rounds 1 and 501) was confirmed and deleted; the round at 1001,
            # confirmed up to 1200, stays whole, and so does what came after it
            assert _rows(w.url, "SELECT sequence FROM outbox ORDER BY sequence") == [
                (1001,), (1501,), (2001,),
            ]  # fmt: skip
        finally:
            await full.delete(if_unused=False, if_empty=False)
    await w.relay_all()

    def republished() -> bool:
        received = _sequences(w.events, project)
        return received.count(1001) == 2 and received[-1] == 2001

    await eventually(republished, within=20)
    received = _sequences(w.events, project)
    counts = Counter(received)
    assert all(counts[n] == 1 for n in range(1, 1001))  # confirmed rounds: never again
    assert all(counts[n] == 2 for n in range(1001, 1201))  # confirmed, in a round nacked
    # the pass after the refusal published from the round's first event on, in order
    again = len(received) - received[::-1].index(1001) - 1
    assert received[again:] == list(range(1001, 2002))
    assert _rows(w.url, "SELECT COUNT(*) FROM outbox") == [(0,)]


async def test_one_event_rows_of_the_release_before_are_relayed_after_the_upgrade(
    wired, state_url: str, tmp_path: Path
) -> None:
    before = tmp_path / "migrations"  # the schema an older release left: migrations 1 to 3
    before.mkdir()
    for path in sorted(SHIPPED.glob("000[123]_*.sql")):
        shutil.copy(path, before / path.name)
    connection = backend.connector(state_url)()
    try:
        dialect = backend.dialect_of(state_url)
        assert schema.migrate(connection, dialect, before) == [1, 2, 3]
        project = str(uuid.uuid4())
        cursor = connection.cursor()
        cursor.execute(dialect.begin)
        cursor.execute(
            dialect.sql("INSERT INTO projects (uuid, name, sequence) VALUES (%s, 'acme', 700)"),
            (project,),
        )
        for sequence in range(1, 701):  # as that release's apply wrote them: a row an event
            event = _event(project, sequence)
            cursor.execute(
                dialect.sql(
                    "INSERT INTO outbox (project, sequence, event_id, type, routing_key, body, "
                    "created_at, trace_parent) VALUES (%s, %s, %s, %s, %s, %s, %s, NULL)"
                ),
                (project, sequence, event.id, event.type, event.routing_key, event.body, 1.0),
            )
        cursor.execute("COMMIT")
    finally:
        connection.close()

    w = await wired()  # this release opens the store: migration 5 applied
    assert (5,) in _rows(state_url, "SELECT version FROM schema_migrations")
    await w.store.apply(_job(project, 600))  # rounds at 701 and 1201, after the old rows
    assert (await w.store.outbox_depth())[0] == 1300
    await w.relay_all()
    await eventually(lambda: len(_sequences(w.events, project)) >= 1300, within=20)
    assert _sequences(w.events, project) == list(range(1, 1301))
    ids = [orjson.loads(m.body)["id"] for m in w.events.messages]
    assert ids[:700] == [f"{project}-{n}" for n in range(1, 701)]  # the old rows' own events
    assert _rows(state_url, "SELECT COUNT(*) FROM outbox") == [(0,)]


def test_a_round_reads_back_as_written_and_a_damaged_one_is_refused() -> None:
    events = [_event("p", n) for n in range(1, 1202)]
    rounds = outbox_rounds.framed(events)
    assert [(r.offset, r.events, r.event_id) for r in rounds] == [
        (0, 500, "p-1"), (500, 500, "p-501"), (1000, 201, "p-1001"),
    ]  # fmt: skip
    back = [e for r in rounds for e in outbox_rounds.decode(r.body, r.events)]
    assert back == events
    body = rounds[2].body
    with pytest.raises(outbox_rounds.CorruptRound, match="of 200 events holds another header"):
        outbox_rounds.decode(body, 200)
    with pytest.raises(outbox_rounds.CorruptRound, match="bodies end at byte"):
        outbox_rounds.decode(body[:-1], 201)
    with pytest.raises(outbox_rounds.CorruptRound, match="starts with b'R1'"):
        outbox_rounds.decode(events[0].body, 1)


# -- a real worker process killed between its commit and the relay's publishing --------------


def _committed(path: Path) -> list[tuple[int, int]]:
    """(sequence, events) of the outbox rows, once there are any."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        rows = connection.execute("SELECT sequence, events FROM outbox ORDER BY sequence")
        return [(row[0], row[1]) for row in rows.fetchall()]


async def test_a_worker_killed_after_committing_rounds_loses_nothing(processes, tmp_path):
    dt, topo, workers, receiver = processes
    client, events = await receiver(coalesce_seconds="0")
    store = tmp_path / "state.sqlite3"
    project = str(uuid.uuid4())
    dt.exports[project] = export_bytes(1200, seed=5, project=project)
    async with TcpProxy(5672) as proxy:
        doomed = workers.start(
            emit="delta",
            state_url=f"sqlite:///{store}",
            amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/",
        )
        await workers.ready()
        dt.delay = 1.0  # the export takes a second: time to cut RabbitMQ off meanwhile
        await client.post("/webhook", data=notification(project), headers={"X-Api-Key": TOKEN})
        await eventually(lambda: len(dt.fetches_of(project)) == 1)
        proxy.cut()  # the worker commits to the store, but can neither publish nor ack
        await eventually(lambda: store.exists() and bool(_committed(store)), within=20)
        doomed.send_signal(signal.SIGKILL)
        await asyncio.to_thread(doomed.wait, 10)
    dt.delay = 0
    # 1200 opened and the summary: three rows
    assert _committed(store) == [(1, 500), (501, 500), (1001, 201)]
    assert _sequences(events, project) == []

    workers.start(emit="delta", state_url=f"sqlite:///{store}")  # its relay finds the rows
    await workers.ready()
    await eventually(lambda: len(set(_sequences(events, project))) >= 1201, within=30)
    received = _sequences(events, project)
    # in order, nothing lost; the redelivered job, compared again, adds its summary at 1202
    assert sorted(set(received)) in (list(range(1, 1202)), list(range(1, 1203)))
    assert received[:1201] == list(range(1, 1202))
    changes = [orjson.loads(m.body) for m in events.messages if m.routing_key.startswith("delta.")]
    assert len(changes) == len({e["id"] for e in changes}) == 1200
    await eventually(lambda: not _committed(store), within=10)
    assert await depth(topo.jobs_queue.name, topo.parked_queue.name) == 0


def test_postgresql_stores_rounds_compressed_with_lz4(postgres: str) -> None:
    with fresh_database() as url:
        connection = backend.connector(url)()
        try:
            schema.migrate(connection, backend.dialect_of(url))
        finally:
            connection.close()
        # pglz took most of a first sync's commit; this server is built with lz4
        assert _rows(
            url,
            "SELECT attcompression FROM pg_attribute "
            "WHERE attrelid = 'outbox'::regclass AND attname = 'body'",
        ) == [("l",)]


def test_the_depth_gauges_read_an_index_not_the_rounds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.sqlite3"
    connection = backend.connector(url)()
    try:
        schema.migrate(connection, backend.dialect_of(url))
        plan = connection.execute(f"EXPLAIN QUERY PLAN {outbox_queries.OUTBOX_DEPTH}").fetchall()
    finally:
        connection.close()
    assert "USING COVERING INDEX outbox_waiting" in " ".join(str(row[-1]) for row in plan)


def test_published_rounds_are_deleted_without_writing_their_pages_again(tmp_path: Path) -> None:
    """A round's pages are freed, not overwritten with zeros through the WAL first (a SQLite
    built with SECURE_DELETE, as Debian's is, did): the connection's own setting is back
    after the delete."""
    url = f"sqlite:///{tmp_path}/state.sqlite3"
    connection = backend.connector(url)()
    try:
        dialect = backend.dialect_of(url)
        schema.migrate(connection, dialect)
        connection.execute("PRAGMA secure_delete=ON")  # whatever the build's default
        padding = "x" * 2000
        events = [
            Event(f"e{n}", "delta.opened.high", orjson.dumps({"n": n, "pad": padding}), OPENED)
            for n in range(500)
        ]
        rounds = outbox_rounds.framed(events)
        queries.apply(
            connection.cursor(),
            dialect,
            Apply(project="p", name=None, version=None, expected_revision=None, writes=(),
                  events=lambda first: rounds, exported_at=None, outcome="test",
                  now=time.time()),
        )  # fmt: skip
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        ids = [row[0] for row in connection.execute("SELECT id FROM outbox")]
        outbox_queries.delete_outbox(connection.cursor(), dialect, ids)
        wal = Path(f"{tmp_path}/state.sqlite3-wal").stat().st_size
        assert connection.execute("SELECT COUNT(*) FROM outbox").fetchone() == (0,)
        assert connection.execute("PRAGMA secure_delete").fetchone() == (1,)
    finally:
        connection.close()
    assert wal < len(rounds[0].body) / 10  # a few pages of the b-tree, not the round's ~1 MB
