"""Declaring the topology over one declared before quorum sizes existed, on the real RabbitMQ."""

from __future__ import annotations

import aio_pika
import pytest

from tests.rabbit import AMQP_URL, temporary_topology, unique_prefix
from worker.adapters.amqp import declare
from worker.core import topology

pytestmark = pytest.mark.rabbitmq


async def test_a_topology_declared_without_quorum_sizes_is_declared_again_with_its_bindings():
    prefix = unique_prefix()
    async with temporary_topology(prefix):
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            await declare(connection, topology.build(prefix, delays=(1,)))
            # RabbitMQ refuses x-quorum-initial-group-size on the existing queues: each is
            # declared as it was, and every binding still made on a channel that is open
            sized = topology.build(prefix, delays=(1,), quorum_size=1)
            await declare(connection, sized)
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(sized.jobs_exchange.name, ensure=False)
            await exchange.publish(
                aio_pika.Message(b"{}"), topology.JOB_KEY, mandatory=True
            )  # routed: would raise if the binding were gone
            queue = await channel.get_queue(sized.jobs_queue.name, ensure=False)
            assert (await queue.get(timeout=5)).body == b"{}"
