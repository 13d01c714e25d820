"""The rounds a job committed go to its process's relay in memory (worker/service/handoff.py):
published as made, never read back from the store, while the outbox rows stay the truth. Against
the real RabbitMQ, SQLite and PostgreSQL: the events go out as the rows hold them, in order,
then the rows are deleted; a round kept in memory that another relay published meanwhile is not
published again; a worker killed while its relay publishes its job's rounds from memory loses
nothing: the next worker's relay publishes the rest from the store, with the same ids and bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from bench.synthetic import export_bytes
from tests.harness import TOKEN, notification
from tests.rabbit import depth, eventually
from tests.tcpproxy import TcpProxy
from tests.test_outbox_rounds import _committed, _job, _rows, _sequences
from tests.test_outbox_rounds import wired as wired  # the fixture
from worker.adapters.metrics import WorkerMetrics
from worker.core import outbox_rounds
from worker.service import handoff
from worker.service.relay import Relay


def _reads(store: Any, monkeypatch: Any) -> list[int]:
    """The batches the relay read from the store with their bodies (their first sequence)."""
    reads: list[int] = []
    batch = store.outbox_batch

    async def spied(project: str, limit: int, after: int = 0) -> Any:
        rows = await batch(project, limit, after)
        reads.extend([rows[0].sequence] if rows else [])
        return rows

    monkeypatch.setattr(store, "outbox_batch", spied)
    return reads


def _as_stored(url: str, project: str) -> list[bytes]:
    """The project's events as its outbox rows hold them, in order."""
    rows = _rows(url, f"SELECT body, events FROM outbox WHERE project = '{project}' "
                      "ORDER BY sequence")  # fmt: skip
    return [event.body for body, n in rows for event in outbox_rounds.decode(bytes(body), n)]


async def test_a_jobs_rounds_go_out_from_memory_as_its_rows_hold_them(wired, monkeypatch):
    w = await wired()
    project, other = str(uuid.uuid4()), str(uuid.uuid4())
    w.relay.committed(await w.store.apply(_job(project, 1201)))  # three rounds
    await w.store.apply(_job(other, 120))  # another process's job: not handed over
    w.relay.committed(await w.store.apply(_job(project, 600)))  # two more rounds
    stored = _as_stored(w.url, project)
    reads = _reads(w.store, monkeypatch)

    await w.relay_all()
    await eventually(lambda: len(w.events.messages) >= 1921, within=20)
    assert _sequences(w.events, project) == list(range(1, 1802))
    assert _sequences(w.events, other) == list(range(1, 121))
    mine = [m.body for m in w.events.messages if orjson.loads(m.body)["id"].startswith(project)]
    assert mine == stored  # the bytes the rows hold
    assert reads == [1]  # only the other project's row was read with its body
    assert _rows(w.url, "SELECT COUNT(*) FROM outbox") == [(0,)]
    assert w.relay.handoff.bytes == 0


async def test_rounds_another_relay_published_are_not_published_again_from_memory(wired):
    w = await wired()
    project = str(uuid.uuid4())
    w.relay.committed(await w.store.apply(_job(project, 1201)))
    elsewhere = Relay(w.store, w.relay._broker, WorkerMetrics.create())  # another process's
    while await elsewhere.drain():
        pass
    await w.store.apply(_job(project, 600))  # then a job another process committed
    await w.relay_all()
    await eventually(lambda: len(w.events.messages) >= 1801, within=20)
    await w.events.caught_up()  # a republish, confirmed in relay_all, would be in hand now
    assert _sequences(w.events, project) == list(range(1, 1802))  # each once, in order
    assert _rows(w.url, "SELECT COUNT(*) FROM outbox") == [(0,)]
    assert w.relay.handoff.bytes == 0  # the stale rounds were dropped


async def test_a_worker_killed_while_its_relay_publishes_its_jobs_rounds_loses_nothing(
    processes, tmp_path: Path
):
    dt, topo, workers, receiver = processes
    client, events = await receiver(coalesce_seconds="0")
    store = tmp_path / "state.sqlite3"
    project = str(uuid.uuid4())
    dt.exports[project] = export_bytes(1200, seed=7, project=project)
    async with TcpProxy(5672) as proxy:
        doomed = workers.start(
            emit="delta",
            state_url=f"sqlite:///{store}",
            amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/",
        )
        await workers.ready()
        # RabbitMQ is cut off as the relay writes the event at sequence 700: round 1
        # (at least) went out from memory, the rest did not
        cut = proxy.cut_on(b'"sequence":"00000000000000000700"')
        await client.post("/webhook", data=notification(project), headers={"X-Api-Key": TOKEN})
        async with asyncio.timeout(30):
            await cut.wait()
        doomed.send_signal(signal.SIGKILL)
        await asyncio.to_thread(doomed.wait, 10)
    # what went through before the cut reaches our queue in its own time: waited for
    await eventually(
        lambda: 1 in _sequences(events, project),
        within=10,
        what="the event at sequence 1, published before the cut",
        seen=lambda: sorted(_sequences(events, project))[:3],
    )
    before = set(_sequences(events, project))
    assert 700 not in before, sorted(before)[-3:]
    assert _committed(store)  # rows left for the next worker's relay
    with contextlib.closing(sqlite3.connect(store)) as connection, connection:
        # the dead relay's lease on the project, as if its 30 s had passed: when it still held
        # it (the relay lets it go in a finally on seeing RabbitMQ cut off, which may come
        # before the kill: then there is none to take over)
        assert connection.execute("UPDATE relay_leases SET expires_at = 0").rowcount in (0, 1)

    workers.start(emit="delta", state_url=f"sqlite:///{store}")  # its relay reads the store
    await workers.ready()
    await eventually(lambda: len(set(_sequences(events, project))) >= 1201, within=30)
    await eventually(lambda: not _committed(store), within=10)
    received = set(_sequences(events, project))
    # nothing lost; a redelivered job (its ack cut off too), compared again, adds a summary
    assert received in (set(range(1, 1202)), set(range(1, 1203)))
    copies: dict[str, set[bytes]] = defaultdict(set)
    for message in events.messages:
        event = orjson.loads(message.body)
        if event["type"].startswith("dtrack-worker.finding."):
            copies[event["id"]].add(message.body)
    assert len(copies) == 1200  # duplicates at most: one id per change
    assert all(len(bodies) == 1 for bodies in copies.values())  # the same bytes each time
    assert await depth(topo.jobs_queue.name, topo.parked_queue.name) == 0


async def test_rounds_kept_past_their_time_are_forgotten_though_many_projects_wait(wired):
    """A busy deployment's relays always see PROJECTS_PER_PASS projects pending: the rounds
    another process published must still leave memory (REVIEW-1 L2), and the rows, still the
    truth, are read from the store."""
    w = await wired()
    project = str(uuid.uuid4())
    done = await w.store.apply(_job(project, 600))
    w.relay.handoff.keep(done, 100.0)
    assert w.relay.handoff.holds(project)
    w.relay.handoff.expire(before=100.0)  # kept at 100: not older than that
    assert w.relay.handoff.holds(project)
    w.relay.handoff.expire(before=100.0 + handoff.KEPT_SECONDS)
    assert not w.relay.handoff.holds(project)
    assert w.relay.handoff.bytes == 0
    await w.relay_all()
    await eventually(lambda: len(w.events.messages) >= 600, within=20)
    assert _sequences(w.events, project) == list(range(1, 601))
