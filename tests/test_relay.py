"""The outbox relay (worker.service.relay), in this process against the real RabbitMQ (through
a proxy the test can cut or slow), SQLite and PostgreSQL: its lease on a project is kept while
a batch takes longer than the lease; at the stop, while the grace lasts a hiccup is waited out,
never taken for the end; and a store that hangs on a delete cannot hold the stop past the
halt."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import psycopg
import pytest

from bench.synthetic import export_bytes
from tests import test_state
from tests.rabbit import AMQP_URL, eventually, temporary_topology, unique_prefix
from tests.tcpproxy import TcpProxy
from tests.test_state import export
from worker.adapters.broker import Broker
from worker.adapters.metrics import WorkerMetrics
from worker.adapters.state import store as store_module
from worker.core import topology
from worker.core.config import Settings
from worker.service import relay as relay_module
from worker.service.relay import Relay

pytestmark = pytest.mark.rabbitmq

project = test_state.project  # the fixture: one project's syncs through Deltas, Store and DT


@contextlib.asynccontextmanager
async def _broker(url: str) -> AsyncIterator[Broker]:
    """A connected Broker at ``url``, on a topology of its own."""
    prefix = unique_prefix()
    async with temporary_topology(prefix):
        settings = Settings.from_env(
            {"DTRACK_WORKER_PREFIX": prefix, "DTRACK_WORKER_AMQP_URL": url}
        )
        broker = Broker(settings.broker, topology.build(prefix))
        await broker.start()
        try:
            await broker.wait_ready(within=10)
            yield broker
        finally:
            await broker.close()


async def _rows(p: Any) -> int:
    depth, _ = await p.store.outbox_depth()
    return int(depth)


async def test_a_broker_reconnecting_at_the_stop_is_waited_for_within_the_grace(project):
    p = await project()
    assert await p.sync(export(p.uuid, 1)) == ("done", 13)
    assert await _rows(p) == 14  # 13 opened and the export's summary
    proxy = TcpProxy(5672)
    async with proxy, _broker(f"amqp://guest:guest@127.0.0.1:{proxy.port}/") as broker:
        relay = Relay(p.store, broker, WorkerMetrics.create())
        proxy.cut()  # a reconnect under way when SIGTERM comes
        await eventually(lambda: not broker.ready)
        await relay.start()
        loop = asyncio.get_running_loop()
        finishing = asyncio.ensure_future(relay.finish(loop.time() + 20))
        # a relay that took the hiccup for the end is done by now; one that waits is not
        await asyncio.wait([finishing], timeout=1.0)
        proxy.restore()
        async with asyncio.timeout(20):
            await finishing
        assert await _rows(p) == 0  # delivered within the grace, not left


@pytest.mark.parametrize("state_url", ["postgresql"], indirect=True)
async def test_a_delete_that_hangs_cannot_hold_the_stop_past_the_halt(project, state_url):
    p = await project()
    # three batches: the second's confirm waits on the first's delete, which hangs; the halt
    # cancels the relay there, and its window's close must not wait on that delete for ever
    document = orjson.loads(export_bytes(2500, seed=3, project=p.uuid))
    assert await p.sync(document) == ("done", 2500)
    # another session holds a lock that lets the relay read the outbox but not delete from it
    blocker = await psycopg.AsyncConnection.connect(state_url)
    try:
        await blocker.execute("BEGIN")
        await blocker.execute("LOCK TABLE outbox IN SHARE MODE")
        async with _broker(AMQP_URL) as broker:
            relay = Relay(p.store, broker, WorkerMetrics.create(), halt_seconds=0.5)
            await relay.start()
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(15):
                    await relay.finish(loop.time() + 0.5)
            except TimeoutError:
                raise AssertionError(
                    "relay.finish still waiting 15 s after a 0.5 s grace and 0.5 s halt, on "
                    "a delete the store never finishes"
                ) from None
    finally:
        await blocker.execute("ROLLBACK")  # the delete in its thread goes through now
        await blocker.close()


async def test_the_lease_is_kept_while_a_batch_takes_longer_than_it(project, monkeypatch):
    # a batch may take long (the filter judges each event within its budget; here RabbitMQ's
    # confirms are slow): another relay must not take the project meanwhile, or it would
    # publish the same rows out of order beside this one. A lease of 1 s, renewed every third
    # of it, outlasts a pause of the loop up to 0.6 s or so (one of 0.5 s, a pause of 0.33 s)
    lease_seconds = 1.0
    monkeypatch.setattr(store_module, "LEASE_SECONDS", lease_seconds)
    monkeypatch.setattr(relay_module, "LEASE_SECONDS", lease_seconds, raising=False)
    p = await project()
    assert await p.sync(export(p.uuid, 1)) == ("done", 13)
    proxy = TcpProxy(5672)
    async with proxy, _broker(f"amqp://guest:guest@127.0.0.1:{proxy.port}/") as broker:
        relay = Relay(p.store, broker, WorkerMetrics.create())
        # each way, per chunk: the batch's confirms come 2 s or more after it was written (not
        # much more: RabbitMQ's confirm must come within the publish timeout, 5 s)
        proxy.latency = 1.0
        loop = asyncio.get_running_loop()
        taken: list[float] = []  # when the relay took the project: the other's tries begin
        released = asyncio.Event()  # the relay let it go, its batch done: the tries end
        lease, release = p.store.lease, p.store.release

        async def spied(project_uuid: str, owner: str) -> bool:
            held = bool(await lease(project_uuid, owner))
            if held and owner != "another-relay" and not taken:
                taken.append(loop.time())
            return held

        async def spied_release(project_uuid: str, owner: str) -> None:
            released.set()  # before the release: a try that follows it may take the project
            await release(project_uuid, owner)

        monkeypatch.setattr(p.store, "lease", spied)
        monkeypatch.setattr(p.store, "release", spied_release)
        passing = asyncio.ensure_future(relay.drain())
        refused_for = 0.0  # how long after the relay took it the other was still refused
        try:
            await eventually(lambda: bool(taken), within=5, what="the relay taking the project")
            while not released.is_set():  # another relay tries all along the batch (2 s)
                held = await p.store.lease(p.uuid, "another-relay")
                if released.is_set():
                    break  # the batch done and the project let go meanwhile: no lapse
                assert not held, f"lapsed {loop.time() - taken[0]:.2f} s after it was taken"
                refused_for = loop.time() - taken[0]
                await asyncio.sleep(0.1)
        finally:
            proxy.latency = 0.0
            await passing
    # refused long after a lease not renewed would have lapsed (the batch outlasted it)
    assert refused_for >= 1.5 * lease_seconds, refused_for
    assert await _rows(p) == 0
