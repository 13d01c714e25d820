"""Worker processes as they are run: `dtrack-worker worker` subprocesses, real RabbitMQ, fake DT."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest

from tests.fake_dt import API_KEY, FakeDt
from tests.harness import REAL, TOKEN, listen, notification
from tests.rabbit import AMQP_URL, drain, eventually, temporary_topology, unique_prefix
from worker import service
from worker.config import Settings

pytestmark = pytest.mark.rabbitmq

SCRIPT = shutil.which("dtrack-worker", path=str(Path(sys.executable).parent))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Workers:
    def __init__(self, prefix: str, dt: FakeDt) -> None:
        self.prefix, self.dt = prefix, dt
        self.processes: list[tuple[subprocess.Popen[bytes], int]] = []

    def start(self, **env: str) -> subprocess.Popen[bytes]:
        assert SCRIPT
        port = _free_port()
        variables = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DTRACK_WORKER_PREFIX": self.prefix,
            "DTRACK_WORKER_AMQP_URL": AMQP_URL,
            "DTRACK_WORKER_DT_URL": self.dt.url,
            "DTRACK_WORKER_DT_API_KEY": API_KEY,
            "DTRACK_WORKER_LISTEN": f"127.0.0.1:{port}",
        } | {f"DTRACK_WORKER_{key.upper()}": value for key, value in env.items()}
        process = subprocess.Popen(
            [SCRIPT, "worker"], env=variables, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.processes.append((process, port))
        return process

    async def ready(self) -> None:
        """Wait until every worker started and not yet stopped answers /readyz with 200."""
        async with aiohttp.ClientSession() as session:
            for process, port in self.processes:
                if process.returncode is not None:  # stopped by the test
                    continue
                for _ in range(300):
                    assert process.poll() is None, process.stdout.read() if process.stdout else ""
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                            if response.status == 200:
                                break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("a worker did not become ready")

    def stop_all(self) -> None:
        for process, _ in self.processes:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(Exception):
                process.communicate(timeout=10)


@pytest.fixture
async def setup(aiohttp_client) -> AsyncIterator[tuple[Any, ...]]:
    async with contextlib.AsyncExitStack() as stack:
        dt = await stack.enter_async_context(FakeDt())
        prefix = unique_prefix()
        topo = await stack.enter_async_context(temporary_topology(prefix))
        workers = Workers(prefix, dt)
        stack.callback(workers.stop_all)

        async def receiver(**env: str):
            settings = Settings.from_env(
                {
                    "DTRACK_WORKER_PREFIX": prefix,
                    "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
                    "DTRACK_WORKER_AMQP_URL": AMQP_URL,
                }
                | {f"DTRACK_WORKER_{key.upper()}": value for key, value in env.items()}
            )
            app, broker, _ = service.build(settings, receive=True, work=False)
            client = await aiohttp_client(app)
            await eventually(lambda: broker.ready)
            events = await stack.enter_async_context(listen(topo.events_exchange.name))
            return client, events

        yield dt, topo, workers, receiver


async def _depth(*queues: str) -> int:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        total = 0
        for name in queues:
            queue = await channel.declare_queue(name, passive=True)
            total += queue.declaration_result.message_count or 0
        return total


async def test_a_burst_for_one_project_costs_at_most_one_fetch_per_worker_and_a_fresh_one(
    setup, figures
):
    dt, topo, workers, receiver = setup
    client, events = await receiver(coalesce_seconds="2")
    workers.start(prefetch="8")
    workers.start(prefetch="8")
    await workers.ready()
    project = str(uuid.uuid4())
    dt.exports[project] = REAL

    async def send(n: int) -> str:
        response = await client.post(
            "/webhook", data=notification(project, n), headers={"X-Api-Key": TOKEN}
        )
        assert response.status == 202
        return str((await response.json())["accepted_at"])

    started = asyncio.get_running_loop().time()
    accepted = await asyncio.gather(*(send(n) for n in range(100)))
    burst = asyncio.get_running_loop().time() - started
    last_accepted = max(datetime.fromisoformat(a).timestamp() for a in accepted)

    await eventually(lambda: len(events.of("export.summary")) >= 1, within=30)
    for _ in range(200):  # until every job has been taken and settled
        if await _depth(topo.delay_queue.name, topo.jobs_queue.name) == 0:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    fetches = dt.fetches_of(project)
    freshest = max(f.started for f in fetches) - last_accepted
    figures(
        f"coalescing: 100 notifications in {burst:.2f} s, 2 worker processes -> "
        f"{len(fetches)} fetches, latest fetch {freshest:+.2f} s after the last acceptance"
    )
    assert burst <= 1.5
    assert 1 <= len(fetches) <= 1 + 2
    assert max(fetch.started for fetch in fetches) > last_accepted  # freshness
    assert await drain(topo.parked_queue.name) == []


async def test_sigterm_under_load_finishes_or_returns_every_job(setup, figures):
    dt, topo, workers, receiver = setup
    client, events = await receiver(coalesce_seconds="0")
    dt.delay = 0.5  # each export takes half a second
    first = workers.start(prefetch="4", dt_concurrency="4", shutdown_grace="10")
    await workers.ready()
    projects = [str(uuid.uuid4()) for _ in range(16)]  # each served the same real export
    for project in projects:
        dt.exports[project] = REAL
        response = await client.post(
            "/webhook", data=notification(project), headers={"X-Api-Key": TOKEN}
        )
        assert response.status == 202

    await eventually(lambda: len(events.of("export.summary")) >= 2, within=30)
    first.send_signal(signal.SIGTERM)
    out, _ = await asyncio.to_thread(first.communicate, timeout=30)
    assert first.returncode == 0, out.decode()[-2000:]
    done_by_first = len(events.summaries())

    workers.start(prefetch="4", dt_concurrency="4")
    await workers.ready()
    await eventually(lambda: len(events.summaries()) == len(projects), within=40)
    parked = len(await drain(topo.parked_queue.name))
    figures(
        f"shutdown under load: 16 jobs, first worker finished {done_by_first} and exited 0 on "
        f"SIGTERM, the second finished the rest; lost=0, parked={parked}"
    )
    assert parked == 0
    assert b"worker.draining" in out or done_by_first == len(projects)
    assert await _depth(topo.jobs_queue.name) == 0
