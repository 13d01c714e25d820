"""Rounds of events sent with the next written while the last awaits its confirms
(worker.service.outgoing.send_all), against the real RabbitMQ: order kept, a refused round
fails the whole send, and nothing is left running after it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import aio_pika
import pytest

from tests.rabbit import AMQP_URL
from worker.adapters.amqp import BrokerUnavailable
from worker.adapters.broker import Broker
from worker.adapters.metrics import WorkerMetrics
from worker.core import topology
from worker.core.batches import Serialized
from worker.core.config import Settings
from worker.core.output import AS_MADE
from worker.service import outgoing


@pytest.fixture
async def wired(rabbitmq: str) -> AsyncIterator[tuple[Broker, str]]:
    """A started Broker on its own topology, and a queue bound to its events exchange that
    refuses (nacks) what goes past its first 300 messages."""
    prefix = f"test-outgoing-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(
        {"DTRACK_WORKER_PREFIX": prefix, "DTRACK_WORKER_AMQP_URL": AMQP_URL}
    )
    topo = topology.configured(settings.broker)
    broker = Broker(settings.broker, topo)
    await broker.start()
    connection = await aio_pika.connect(AMQP_URL)
    try:
        await broker.wait_ready(within=30)
        channel = await connection.channel()
        queue = await channel.declare_queue(
            f"{prefix}.seen", arguments={"x-max-length": 300, "x-overflow": "reject-publish"}
        )
        await queue.bind(topo.events_exchange.name, "#")
        yield broker, queue.name
    finally:
        await broker.close()
        for name in [f"{prefix}.seen", *(queue.name for queue in topo.queues)]:
            with contextlib.suppress(aio_pika.exceptions.ChannelNotFoundEntity):
                await (await connection.channel()).queue_delete(name)
        cleanup = await connection.channel()
        for exchange in topo.exchanges:
            await cleanup.exchange_delete(exchange.name)
        await connection.close()


def _rounds(count: int, size: int) -> Iterator[list[Serialized]]:
    for number in range(count):
        yield [
            ("finding.high", f'{{"n":{number * size + i}}}'.encode(), f"id-{number}-{i}", "t")
            for i in range(size)
        ]


async def _bodies(queue_name: str, expected: int) -> list[bytes]:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        queue = await (await connection.channel()).get_queue(queue_name, ensure=False)
        bodies: list[bytes] = []
        while len(bodies) < expected:
            message = await queue.get(fail=False, timeout=5)
            if message is None:
                break
            bodies.append(message.body)
            await message.ack()
        return bodies


async def test_rounds_in_flight_together_arrive_in_order(wired: tuple[Broker, str]) -> None:
    broker, queue = wired
    sent = await outgoing.send_all(broker, AS_MADE, WorkerMetrics.create(), _rounds(12, 25))
    assert sent == 300
    expected = [f'{{"n":{n}}}'.encode() for n in range(300)]
    assert await _bodies(queue, 300) == expected


async def test_a_refused_round_fails_the_send_and_leaves_no_send_running(
    wired: tuple[Broker, str],
) -> None:
    broker, _ = wired
    before = asyncio.all_tasks()
    made: list[int] = []

    def rounds() -> Iterator[list[Serialized]]:
        for number, items in enumerate(_rounds(40, 25)):
            made.append(number)
            yield items

    with pytest.raises(BrokerUnavailable):  # the queue takes 300: the 13th round is nacked
        await outgoing.send_all(broker, AS_MADE, WorkerMetrics.create(), rounds())
    assert len(made) < 16  # it stopped at the refusal, one round ahead at most in flight
    assert {task for task in asyncio.all_tasks() - before if not task.done()} == set()
