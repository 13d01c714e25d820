"""The service under test: fixtures and helpers shared by the worker and operations tests.

``serve`` starts the receiver and a worker in this process against the real RabbitMQ and a fake
DT (a real HTTP server on loopback); ``listen`` collects every event published.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.conftest import FPF, NOTIFICATIONS
from tests.fake_dt import API_KEY, FakeDt
from tests.rabbit import AMQP_URL, eventually, temporary_topology, unique_prefix
from tests.waiting import until
from worker.core.config import Settings
from worker.service import serve as service

TOKEN = "webhook-token-never-logged"
TEMPLATE = orjson.loads((NOTIFICATIONS / "v4__dt-docs-4.14.3__BOM_CONSUMED.json").read_bytes())


def notification(project: str, n: int = 0) -> bytes:
    """A DT 4.x BOM_PROCESSED notification for ``project`` (``n`` makes it a distinct one)."""
    body = TEMPLATE["notification"] | {
        "group": "BOM_PROCESSED",
        "timestamp": f"2026-11-22T07:00:00.{n:06d}",
        "subject": TEMPLATE["notification"]["subject"]
        | {"project": {"uuid": project, "name": "p"}},
    }
    return orjson.dumps({"notification": body})


CAUGHT_UP = "test.caught-up."  # routing keys of our own markers, never counted as events


class Events:
    """Every event published, read by a queue of our own bound to ``#``."""

    def __init__(self) -> None:
        self.messages: list[AbstractIncomingMessage] = []
        self.marks: set[str] = set()
        self.publish_mark: Callable[[str], Awaitable[object]] | None = None

    async def caught_up(self, within: float = 15) -> None:
        """Until every event confirmed to its publisher before this call is in ``messages``:
        a marker of ours, published to the same exchange now, lands behind them in our queue."""
        assert self.publish_mark is not None
        mark = uuid.uuid4().hex
        await self.publish_mark(mark)
        await eventually(
            lambda: mark in self.marks,
            what=f"our marker {mark} back from the events exchange",
            within=within,
        )

    def of(self, routing_key: str) -> list[dict[str, Any]]:
        return [orjson.loads(m.body) for m in self.messages if m.routing_key == routing_key]

    def findings(self, project: str) -> list[dict[str, Any]]:
        return [
            orjson.loads(m.body)
            for m in self.messages
            if (m.routing_key or "").startswith("finding.")
            and orjson.loads(m.body)["data"]["finding_key"].startswith(project)
        ]

    def summaries(self) -> dict[str, dict[str, Any]]:
        """By job id."""
        return {event["data"]["job"]["job_id"]: event for event in self.of("export.summary")}


@contextlib.asynccontextmanager
async def listen(exchange: str) -> AsyncIterator[Events]:
    events = Events()
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, "#")
        events_exchange = await channel.get_exchange(exchange, ensure=False)

        async def collect(message: AbstractIncomingMessage) -> None:
            key = message.routing_key or ""
            if key.startswith(CAUGHT_UP):
                events.marks.add(key.removeprefix(CAUGHT_UP))
            else:
                events.messages.append(message)
            await message.ack()

        def publish_mark(mark: str) -> Awaitable[object]:
            return events_exchange.publish(aio_pika.Message(b""), routing_key=CAUGHT_UP + mark)

        events.publish_mark = publish_mark
        await queue.consume(collect)
        yield events


@pytest.fixture
async def dt() -> AsyncIterator[FakeDt]:
    async with FakeDt() as server:
        yield server


@pytest.fixture
async def serve(aiohttp_client, dt: FakeDt, rabbitmq: str):
    """Start ``serve`` (receiver and worker in one process) against the fake DT."""
    stack = contextlib.AsyncExitStack()

    async def start(prefix: str | None = None, work: bool = True, **env: str):
        prefix = prefix or unique_prefix()
        settings = Settings.from_env(
            {
                "DTRACK_WORKER_PREFIX": prefix,
                "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
                "DTRACK_WORKER_COALESCE_SECONDS": "0",
                # today's one event per finding; the change stream's tests say delta
                "DTRACK_WORKER_EMIT": "snapshot",
                # the per-project v1 stream the existing tests assert; line tests say track=line
                "DTRACK_WORKER_TRACK": "project",
                "DTRACK_WORKER_AMQP_URL": rabbitmq,
                "DTRACK_WORKER_DT_URL": dt.url,
                "DTRACK_WORKER_DT_API_KEY": API_KEY,
                "DTRACK_WORKER_DT_BACKOFF_SECONDS": "0.05",
                "DTRACK_WORKER_SHUTDOWN_GRACE": "5",
            }
            | {f"DTRACK_WORKER_{key.upper()}": value for key, value in env.items()}
        )
        delay = settings.receiver.coalesce_seconds  # its delay queue is cleaned up too
        topo = await stack.enter_async_context(temporary_topology(prefix, [delay] if delay else []))
        app, broker = service.build(settings, receive=True, work=work)
        client = await aiohttp_client(app)
        stack.push_async_callback(client.close)  # stop the service before its queues go
        await eventually(lambda: broker.ready, what="the service connected to RabbitMQ")
        await until(
            lambda: readiness(client),
            lambda answer: answer[0] == 200,
            what="the service's /readyz answering 200",
            errors=(aiohttp.ClientError, OSError),
        )
        events = await stack.enter_async_context(listen(topo.events_exchange.name))
        return client, topo, events, settings

    async with stack:
        yield start


async def readiness(client) -> tuple[int, str]:
    """/readyz's status and body, of a test client (``serve``, a receiver)."""
    response = await client.get("/readyz")
    return response.status, await response.text()


async def post(client, project: str, n: int = 0) -> dict[str, Any]:
    response = await client.post(
        "/webhook", data=notification(project, n), headers={"X-Api-Key": TOKEN}
    )
    assert response.status == 202, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


class WebhookLoad:
    """Notifications for ``projects`` sent ``concurrency`` at a time; the 202s are remembered
    with their acceptance time, to check later that each one was fetched after it."""

    def __init__(self, client: Any, projects: list[str], notifications: int) -> None:
        self._client = client
        self._projects = projects
        self._notifications = notifications
        self.accepted: list[tuple[str, float]] = []
        self.statuses: Counter[int] = Counter()
        self.sent = 0

    async def _send(self, n: int) -> None:
        project = self._projects[n % len(self._projects)]
        response = await self._client.post(
            "/webhook", data=notification(project, n), headers={"X-Api-Key": TOKEN}
        )
        self.statuses[response.status] += 1
        if response.status == 202:
            at = datetime.fromisoformat((await response.json())["accepted_at"]).timestamp()
            self.accepted.append((project, at))

    async def run(self, concurrency: int = 50) -> None:
        pending: set[asyncio.Task[None]] = set()
        for n in range(self._notifications):
            pending.add(asyncio.create_task(self._send(n)))
            self.sent += 1
            if len(pending) >= concurrency:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.gather(*pending)

    def lost(self, dt: FakeDt) -> int:
        """Accepted notifications whose project was never fetched (200) after acceptance."""
        return sum(
            1
            for project, at in self.accepted
            if not any(f.started > at and f.status == 200 for f in dt.fetches_of(project))
        )


def _project() -> str:
    return str(uuid.uuid4())


REAL = (FPF / "real" / "defectdojo__deptrack_php_4.14.1.json").read_bytes()


# -- worker processes, as they are run -----------------------------------------------------

SCRIPT = shutil.which("dtrack-worker", path=str(Path(sys.executable).parent))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class WorkerProcess(subprocess.Popen[bytes]):
    """A `dtrack-worker worker` subprocess whose output (stdout and stderr) goes to a file: no
    pipe to fill up and block the worker however long it runs and whatever it logs."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, port: int) -> None:
        self.log, self.port = log, port
        with log.open("wb") as out:  # the child keeps its own descriptor
            super().__init__(args, env=env, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> bytes:
        """Everything the worker wrote so far."""
        return self.log.read_bytes()

    def communicate(  # type: ignore[override]
        self, input: bytes | None = None, timeout: float | None = None
    ) -> tuple[bytes, None]:
        """As Popen's: wait for the exit, then its output (from the file)."""
        assert input is None, "a worker reads no input"
        self.wait(timeout)
        return self.output(), None


class Workers:
    def __init__(self, prefix: str, dt: FakeDt, amqp_url: str, logs: Path) -> None:
        self.prefix, self.dt, self.amqp_url, self.logs = prefix, dt, amqp_url, logs
        self.processes: list[WorkerProcess] = []

    def start(self, **env: str) -> WorkerProcess:
        assert SCRIPT
        port = _free_port()
        variables = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DTRACK_WORKER_PREFIX": self.prefix,
            "DTRACK_WORKER_AMQP_URL": self.amqp_url,
            "DTRACK_WORKER_DT_URL": self.dt.url,
            "DTRACK_WORKER_DT_API_KEY": API_KEY,
            "DTRACK_WORKER_LISTEN": f"127.0.0.1:{port}",
            "DTRACK_WORKER_EMIT": "snapshot",
            "DTRACK_WORKER_TRACK": "project",  # v1 per project; line tests say track=line
        } | {f"DTRACK_WORKER_{key.upper()}": value for key, value in env.items()}
        log = self.logs / f"worker-{len(self.processes) + 1}.log"
        process = WorkerProcess([SCRIPT, "worker"], variables, log, port)
        self.processes.append(process)
        return process

    async def ready(self) -> None:
        """Wait until every worker started and not yet stopped answers /readyz with 200; a
        worker that exits meanwhile fails the test with its output."""
        async with aiohttp.ClientSession() as session:
            for process in self.processes:
                if process.returncode is not None:  # stopped by the test
                    continue

                async def probe(process: WorkerProcess = process) -> tuple[int, str]:
                    if process.poll() is not None:
                        output = process.output().decode(errors="replace")[-3000:]
                        raise AssertionError(
                            f"worker {process.pid} exited with {process.returncode}:\n{output}"
                        )
                    url = f"http://127.0.0.1:{process.port}/readyz"
                    async with session.get(url) as response:
                        return response.status, await response.text()

                await until(
                    probe,
                    lambda answer: answer[0] == 200,
                    what=f"worker {process.pid} answering /readyz on port {process.port}",
                    within=30,
                    every=0.1,
                    errors=(aiohttp.ClientError, OSError),
                )

    async def settled(self) -> Counter[str]:
        """The jobs settled so far by the running workers, by outcome (their /metrics)."""
        outcomes: Counter[str] = Counter()
        async with aiohttp.ClientSession() as session:
            for process in self.processes:
                if process.poll() is not None:
                    continue
                url = f"http://127.0.0.1:{process.port}/metrics"
                async with session.get(url) as response:
                    exposition = await response.text()
                outcomes.update(
                    {
                        sample.labels["outcome"]: int(sample.value)
                        for sample in samples(exposition, "dtrack_worker_jobs_total")
                    }
                )
        return outcomes

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)


def samples(exposition: str, name: str) -> list[Sample]:
    """The samples called ``name`` in a Prometheus text exposition."""
    return [
        sample
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    ]


async def enqueued(client) -> int:
    """The jobs a receiver (a test client of it) has in RabbitMQ, from its /metrics."""
    response = await client.get("/metrics")
    exposition = await response.text()
    return sum(int(s.value) for s in samples(exposition, "dtrack_worker_jobs_enqueued_total"))


async def all_jobs_settled(client, *, within: float = 30) -> Counter[str]:
    """For ``serve`` (receiver and worker in one process, one /metrics): wait until every job
    its webhooks enqueued has settled (a retry settles again later, so retries are left out);
    then nothing is left that could publish or fetch. The outcomes, by name."""

    async def state() -> tuple[int, Counter[str]]:
        response = await client.get("/metrics")
        exposition = await response.text()
        jobs = sum(int(s.value) for s in samples(exposition, "dtrack_worker_jobs_enqueued_total"))
        outcomes = Counter(
            {
                s.labels["outcome"]: int(s.value)
                for s in samples(exposition, "dtrack_worker_jobs_total")
            }
        )
        return jobs, outcomes

    _, outcomes = await until(
        state,
        lambda seen: seen[1].total() - seen[1]["retried"] >= seen[0],
        what="every job enqueued settled (jobs enqueued, outcomes)",
        within=within,
    )
    return outcomes


@pytest.fixture
async def processes(
    aiohttp_client, rabbitmq: str, tmp_path: Path
) -> AsyncIterator[tuple[Any, ...]]:
    """A fake DT, a topology, `dtrack-worker worker` subprocesses on demand (their output in
    ``tmp_path``), and a receiver."""
    async with contextlib.AsyncExitStack() as stack:
        dt = await stack.enter_async_context(FakeDt())
        prefix = unique_prefix()
        topo = await stack.enter_async_context(temporary_topology(prefix))
        workers = Workers(prefix, dt, rabbitmq, tmp_path)
        stack.callback(workers.stop_all)

        async def receiver(**env: str):
            settings = Settings.from_env(
                {
                    "DTRACK_WORKER_PREFIX": prefix,
                    "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
                    "DTRACK_WORKER_AMQP_URL": rabbitmq,
                }
                | {f"DTRACK_WORKER_{key.upper()}": value for key, value in env.items()}
            )
            app, broker = service.build(settings, receive=True, work=False)
            client = await aiohttp_client(app)
            stack.push_async_callback(client.close)  # stop the service before its queues go
            await eventually(lambda: broker.ready, what="the receiver connected to RabbitMQ")
            events = await stack.enter_async_context(listen(topo.events_exchange.name))
            return client, events

        yield dt, topo, workers, receiver
