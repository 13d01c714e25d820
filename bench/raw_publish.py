"""The ceiling for bench/receiver.py: raw confirmed publishes with aiormq, no HTTP at all.

    .venv/bin/python -m bench.raw_publish PREFIX SECONDS [IN_FLIGHT]

Publishes a job-sized body, persistent and mandatory, to the jobs queue of the topology under
PREFIX (a quorum queue, declared by the receiver) with IN_FLIGHT publishes awaiting their
confirms at any time (aiormq's own basic_publish, one per message), and prints msg/s.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

import aiormq
from aiormq import spec

from worker.core import topology
from worker.service.serve import _loop

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
BODY = b'{"job_id": "%s", "project_uuid": "%s", "notification": "bench"}' % (
    uuid.uuid4().hex.encode(),
    uuid.uuid4().hex.encode(),
)


async def run(prefix: str, seconds: float, in_flight: int) -> float:
    topo = topology.build(prefix)
    connection = await aiormq.connect(AMQP_URL)
    channel = await connection.channel(publisher_confirms=True)
    sent = 0
    deadline = time.perf_counter() + seconds

    async def publisher() -> None:
        nonlocal sent
        while time.perf_counter() < deadline:
            await channel.basic_publish(
                BODY,
                exchange=topo.jobs_exchange.name,
                routing_key=topology.JOB_KEY,
                properties=spec.Basic.Properties(
                    content_type="application/json",
                    delivery_mode=2,
                    message_id=uuid.uuid4().hex,
                ),
                mandatory=True,
            )
            sent += 1

    started = time.perf_counter()
    await asyncio.gather(*(publisher() for _ in range(in_flight)))
    rate = sent / (time.perf_counter() - started)
    await connection.close()
    return rate


def main() -> None:
    prefix, seconds = sys.argv[1], float(sys.argv[2])
    in_flight = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    print(f"{_loop().run_until_complete(run(prefix, seconds, in_flight)):.0f}")


if __name__ == "__main__":
    main()
