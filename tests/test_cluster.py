"""R6: the service on a real three-node RabbitMQ cluster of its own, losing the node it is
connected to in the middle of a load, and getting it back. Nothing accepted is lost."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import aio_pika
import orjson
import pytest
from yarl import URL

from tests.cluster import cluster
from tests.conftest import FPF
from tests.fake_dt import API_KEY, FakeDt
from tests.harness import TOKEN, WebhookLoad, all_jobs_settled
from tests.rabbit import eventually
from worker.adapters import schemas
from worker.core import fpf
from worker.core.config import Settings
from worker.service import serve as service

pytestmark = pytest.mark.rabbitmq

SCALE = float(os.environ.get("DTRACK_WORKER_SOAK_SCALE", "1"))
SMALL = (FPF / "docs" / "defectdojo__one_finding.json").read_bytes()


async def _queued(node_url: str, names: list[str]) -> int:
    connection = await aio_pika.connect(node_url)
    async with connection:
        total = 0
        for name in names:
            channel = await connection.channel()
            queue = await channel.declare_queue(name, passive=True)
            total += queue.declaration_result.message_count or 0
            await channel.close()
        return total


async def _read_all(node_url: str, queue_name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    connection = await aio_pika.connect(node_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=False)
        while (message := await queue.get(fail=False)) is not None:
            events.append(orjson.loads(message.body))
            await message.ack()
        await queue.delete(if_unused=False, if_empty=False)
    return events


@pytest.mark.timeout(180)
async def test_r6_losing_the_connected_node_loses_nothing_accepted(aiohttp_client, figures):
    notifications, projects = int(2000 * SCALE), int(200 * SCALE)
    started = time.monotonic()
    async with cluster(3) as nodes, FakeDt() as dt:
        assert await nodes.running() == 3
        settings = Settings.from_env(
            {
                "DTRACK_WORKER_PREFIX": f"r6-{uuid.uuid4().hex[:8]}",
                "DTRACK_WORKER_AMQP_URL": nodes.urls,
                "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
                "DTRACK_WORKER_COALESCE_SECONDS": "1",
                "DTRACK_WORKER_DT_URL": dt.url,
                "DTRACK_WORKER_DT_API_KEY": API_KEY,
                "DTRACK_WORKER_DT_BACKOFF_SECONDS": "0.05",
                "DTRACK_WORKER_EMIT": "snapshot",
            }
        )
        source = dt.url
        app, broker = service.build(settings, receive=True, work=True)
        client = await aiohttp_client(app)
        await eventually(lambda: broker.ready, within=30)
        assert broker.node is not None
        connected = nodes.node_at(URL(broker.node).port or 0)
        survivor = next(node for node in nodes.nodes if node is not connected)
        topo = broker.topology
        listener = f"r6-events-{uuid.uuid4().hex[:8]}"
        connection = await aio_pika.connect(survivor.url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(
                listener, durable=True, arguments={"x-queue-type": "quorum"}
            )
            await queue.bind(topo.events_exchange.name, "#")

        uuids = [str(uuid.uuid4()) for _ in range(projects)]
        for project in uuids:
            dt.exports[project] = SMALL
        load = WebhookLoad(client, uuids, notifications)

        reconnect_s = 0.0

        async def lose_the_node() -> None:
            nonlocal reconnect_s
            await eventually(lambda: load.sent >= notifications // 3, within=60)
            before = broker.connections
            stopped = time.monotonic()
            await nodes.stop_node(connected)
            await eventually(lambda: broker.connections > before and broker.ready, within=30)
            reconnect_s = time.monotonic() - stopped

        await asyncio.gather(load.run(), lose_the_node())
        assert URL(broker.node).port != connected.port
        await nodes.start_node(connected)  # back, and a member again
        assert await nodes.running() == 3

        holding = [q.name for q in (topo.jobs_queue, *topo.delay_queues, *topo.retry_queues)]
        async with asyncio.timeout(60):  # dead letters a lost node held are resent within 10 s
            while await nodes.messages(survivor, holding) > 0:  # noqa: ASYNC110 - broker state
                await asyncio.sleep(0.5)
        # a job acks after its events are confirmed, and counts as settled after its ack: once
        # every enqueued job has settled, every event it published is in the listener's queue
        await all_jobs_settled(client, within=60)
        await client.close()
        events = await _read_all(survivor.url, listener)
        parked = await _queued(survivor.url, [topo.parked_queue.name])

    lost = load.lost(dt)
    contract = schemas.load().fpf
    published = {event["id"] for event in events}
    summaries = [event for event in events if event["type"].endswith("export.summary.v1")]
    missing = 0
    for summary in summaries:  # every job that finished: every one of its events is there
        project = summary["data"]["project"]["uuid"]
        export = fpf.process(dt.exports[project], contract, source=source, project=project)
        missing += sum(1 for event in export.events() if event.id not in published)
    figures(
        f"R6 cluster accepted={len(load.accepted)} lost={lost} node_stopped={connected.name} "
        f"reconnect_s={reconnect_s:.1f} (sent={notifications}, 503={load.statuses[503]}, "
        f"jobs_done={len(summaries)}, events_missing={missing}, parked={parked}, "
        f"took {time.monotonic() - started:.0f} s)"
    )
    assert set(load.statuses) <= {202, 503}
    assert lost == 0
    assert missing == 0
    assert parked == 0
    assert summaries
