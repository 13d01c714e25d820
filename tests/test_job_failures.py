"""Failure handling in the job path (issue 25 part 3), against the real RabbitMQ and a fake DT:
a bug is a bug, not an outage; a retry copy that cannot be published keeps its attempt count;
the consumer asks RabbitMQ for a delivery timeout above the job budget; the background loops
come back after an unexpected exception."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import pytest
import structlog
import yaml
from aio_pika.abc import AbstractIncomingMessage

from tests.fake_dt import Fault
from tests.harness import REAL, TOKEN, notification, post
from tests.rabbit import AMQP_URL, temporary_topology, unique_prefix
from tests.tcpproxy import TcpProxy
from worker.adapters import amqp, frames, supervise
from worker.adapters import broker as broker_module
from worker.adapters.broker import Broker
from worker.adapters.parked import Parked
from worker.core import topology
from worker.core.config import Settings
from worker.core.job_budget import budget_of, consumer_timeout_ms
from worker.service import job_messages

pytestmark = pytest.mark.rabbitmq


async def _taken(name: str, count: int, within: float = 20) -> list[AbstractIncomingMessage]:
    """The first ``count`` messages of queue ``name``, taken as they arrive; fails naming what
    it waited for."""
    taken: list[AbstractIncomingMessage] = []
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel()
        queue = await channel.get_queue(name, ensure=False)
        try:
            async with asyncio.timeout(within), queue.iterator() as messages:
                async for message in messages:
                    await message.ack()
                    taken.append(message)
                    if len(taken) == count:
                        break
        except TimeoutError:
            raise AssertionError(
                f"{len(taken)} of {count} messages in {name} in {within} s"
            ) from None
    return taken


@pytest.mark.parametrize("bug", [RuntimeError("a bug"), FileNotFoundError(2, "a bug")])
async def test_a_bug_in_the_publish_path_is_a_500_not_an_outage(serve, monkeypatch, bug):
    client, _, _, _ = await serve(work=False)

    def broken(*_: object, **__: object) -> bytes:
        raise bug

    monkeypatch.setattr(frames, "header_frame", broken)  # our own code fails, the broker is fine
    response = await client.post(
        "/webhook", data=notification(str(uuid.uuid4())), headers={"X-Api-Key": TOKEN}
    )
    assert response.status == 500, await response.text()  # 503 would have DT retry it forever
    assert (await response.json())["message"] == "internal error"


async def test_a_bug_in_the_workers_publish_path_parks_the_job_at_once(serve, dt, monkeypatch):
    client, topo, _, _ = await serve(max_attempts="3")
    original = frames.message_parts

    def broken_for_events(channel: int, exchange: str, *args: Any, **kwargs: Any) -> Any:
        if exchange == topo.events_exchange.name:
            raise RuntimeError("a bug in making events")
        return original(channel, exchange, *args, **kwargs)

    monkeypatch.setattr(frames, "message_parts", broken_for_events)
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    (job,) = (await post(client, project))["jobs"]
    (parked,) = await _taken(topo.parked_queue.name, 1)
    assert parked.message_id == job["job_id"]
    assert parked.headers["x-park-reason"] == "unexpected"
    assert str(parked.headers["x-park-error"]).startswith("RuntimeError: a bug")
    assert len(dt.fetches_of(project)) == 1  # not retried as if RabbitMQ were away


async def test_a_retry_copy_that_cannot_be_published_backs_off_and_keeps_the_attempt_count(
    serve, dt, figures, monkeypatch
):
    decided: list[float] = []  # when the worker chose its pause: before it went back
    chosen = job_messages.unsettled_seconds

    def unsettled_seconds(attempt: int) -> float:
        decided.append(time.time())
        return chosen(attempt)

    monkeypatch.setattr(job_messages, "unsettled_seconds", unsettled_seconds)
    client, topo, _, _ = await serve(max_attempts="5", dt_http_attempts="1")
    first_tier, second_tier = topo.retry_queues[0].name, topo.retry_queues[1].name
    async with await aio_pika.connect(AMQP_URL) as connection:
        # the first retry tier refuses every message (a nack, as under a memory alarm)
        channel = await connection.channel()
        await channel.queue_delete(first_tier)
        full = await channel.declare_queue(
            first_tier, durable=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
        )
        await full.bind(topo.jobs_exchange.name, "retry.5s")
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    dt.always[project] = Fault(503)  # every attempt fails: a retry each time
    with structlog.testing.capture_logs() as lines:
        (job,) = (await post(client, project))["jobs"]
        (copy,) = await _taken(second_tier, 1)  # the redelivered job's retry, to the next tier
    fetches = dt.fetches_of(project)
    metrics = await (await client.get("/metrics")).text()
    (unsettled,) = [
        line
        for line in metrics.splitlines()
        if line.startswith("dtrack_worker_jobs_total{") and 'outcome="unsettled"' in line
    ]
    pause = fetches[1].started - fetches[0].started
    attempt = copy.headers["x-attempt"]
    figures(
        f"retry copy refused: {unsettled}; {len(fetches)} fetches {pause:.1f} s apart, then the "
        f"copy went to {second_tier.rsplit('.', 1)[-1]} with x-attempt={attempt!r}"
    )
    assert copy.message_id == job["job_id"]
    assert attempt == 3  # attempt 1 refused, attempt 2 retried: the 3rd next
    assert unsettled.endswith(" 1.0")  # counted, not swallowed
    assert len(fetches) == 2  # one fetch per attempt
    (refused,) = [line for line in lines if line["event"] == "job.unsettled"]
    assert refused["retry_in_s"] == 1.0  # the pause it took: logged with the refusal
    assert fetches[0].started <= decided[0] <= fetches[1].started  # then DT asked again


async def _consumer_arguments(queue: str) -> list[dict[str, Any]]:
    """The arguments of every consumer of ``queue``, as RabbitMQ records them."""
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        "list_consumers",
        "-q",
        "--formatter",
        "json",
        "queue_name",
        "arguments",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    consumers = [c for c in orjson.loads(out) if c["queue_name"] == queue]
    return [{key: value for key, _, value in c["arguments"]} for c in consumers]


async def test_the_worker_asks_rabbitmq_for_a_delivery_timeout_above_the_job_budget(serve):
    _, topo, _, settings = await serve(dt_export_timeout="900", dt_http_attempts="3")
    (arguments,) = await _consumer_arguments(topo.jobs_queue.name)
    budget = budget_of(settings)
    assert budget > 3 * 900  # three whole downloads, their pauses and the rest
    assert arguments.get("x-consumer-timeout", 0) >= budget * 1000, arguments


def test_the_compose_brokers_consumer_timeout_is_above_the_default_job_budget():
    conf = (Path(__file__).parent.parent / "deploy" / "rabbitmq" / "rabbitmq.conf").read_text()
    (line,) = [line for line in conf.splitlines() if line.startswith("consumer_timeout")]
    assert int(line.split("=")[1]) >= consumer_timeout_ms(Settings.from_env({}))


def test_the_kubernetes_brokers_consumer_timeout_is_above_the_default_job_budget():
    manifest = Path(__file__).parent.parent / "deploy" / "kubernetes" / "base" / "rabbitmq.yaml"
    (cluster,) = yaml.safe_load_all(manifest.read_text())
    conf = cluster["spec"]["rabbitmq"]["additionalConfig"]
    lines = [line for line in conf.splitlines() if line.startswith("consumer_timeout")]
    assert len(lines) == 1, conf
    assert int(lines[0].split("=")[1]) >= consumer_timeout_ms(Settings.from_env({}))


class Once:
    """A function that raises ``error`` at its first call and calls ``original`` after: a bug
    that strikes once (``wrapper`` also works as a method)."""

    def __init__(self, original: Any, error: Exception) -> None:
        self.original, self.error, self.calls = original, error, 0

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == 1:
                raise self.error
            return await self.original(*args, **kwargs)

        self.wrapper = wrapper


async def test_the_broker_connect_loop_survives_an_unexpected_exception(monkeypatch):
    failing = Once(amqp.declare, KeyError("a bug while declaring"))
    monkeypatch.setattr(broker_module, "declare", failing.wrapper)
    prefix = unique_prefix()
    async with temporary_topology(prefix):
        settings = Settings.from_env(
            {"DTRACK_WORKER_PREFIX": prefix, "DTRACK_WORKER_AMQP_URL": AMQP_URL}
        )
        broker = Broker(settings.broker, topology.configured(settings.broker))
        await broker.start()
        try:
            await broker.wait_ready(within=10)  # BrokerUnavailable if the loop died
        finally:
            await broker.close()
    assert failing.calls == 2


async def test_the_worker_starts_consuming_after_an_unexpected_exception(serve, monkeypatch):
    failing = Once(Broker.consume, KeyError("a bug while subscribing"))
    monkeypatch.setattr(Broker, "consume", failing.wrapper)
    client, _, _, _ = await serve()

    async def ready() -> bool:
        return bool((await client.get("/readyz")).status == 200)

    async with asyncio.timeout(10):  # fails the test if the worker never becomes ready
        while not await ready():  # noqa: ASYNC110 - the answer of the service under test
            await asyncio.sleep(0.1)
    assert failing.calls == 2


async def test_the_subscribe_loop_backs_off_doubling_its_pause(serve, monkeypatch):
    # the issue: "log, back off, retry"; a pause fixed at 1 s logged a traceback every second
    monkeypatch.setattr(supervise, "FIRST_PAUSE_SECONDS", 0.05)  # the doubling, not the wait
    calls = 0
    original = Broker.consume

    async def failing(self: Broker, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise KeyError("a bug while subscribing")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(Broker, "consume", failing)
    with structlog.testing.capture_logs() as lines:
        client, _, _, _ = await serve()
        async with asyncio.timeout(10):  # fails the test if the worker never becomes ready
            while (await client.get("/readyz")).status != 200:  # noqa: ASYNC110 - its answer
                await asyncio.sleep(0.05)
    failed = [line for line in lines if line["event"] == "worker.subscribe_failed"]
    assert [line.get("retry_in_s") for line in failed] == [0.05, 0.1, 0.2], failed


class Sniffer(TcpProxy):
    """A proxy to RabbitMQ that keeps what clients send, per connection: the AMQP methods a
    worker uses, read off the wire."""

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port)
        self.sent: dict[int, bytearray] = {}

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, upstream: bool
    ) -> None:
        if sink.transport.get_extra_info("peername")[1] != self.target[1]:
            return await super()._pipe(source, sink, upstream)  # the broker's side: as it is
        kept = self.sent.setdefault(id(source), bytearray())
        original = source.read

        async def read(size: int = -1) -> bytes:
            chunk = await original(size)
            kept.extend(chunk)
            return chunk

        source.read = read  # type: ignore[method-assign,assignment]
        return await super()._pipe(source, sink, upstream)

    def methods(self) -> list[tuple[int, int, bytes]]:
        """Every method frame clients sent: (class id, method id, arguments)."""
        found = []
        for data in self.sent.values():
            at = 8 if data.startswith(b"AMQP") else 0  # the protocol header
            while at + 7 <= len(data):
                kind, size = data[at], int.from_bytes(data[at + 3 : at + 7])
                payload = bytes(data[at + 7 : at + 7 + size])
                if kind == 1 and len(payload) >= 4:
                    found.append(
                        (int.from_bytes(payload[:2]), int.from_bytes(payload[2:4]), payload[4:])
                    )
                at += 7 + size + 1
        return found


BASIC, REJECT, NACK = 60, 90, 120


@pytest.fixture
async def sniffer() -> AsyncIterator[Sniffer]:
    proxy = Sniffer(5672)
    async with proxy:  # set up before serve, so it closes after it
        yield proxy


async def test_a_job_that_could_not_be_settled_goes_back_with_basic_reject(sniffer, serve, dt):
    # RabbitMQ 4.3+ counts basic.reject in x-delivery-count and basic.nack not: the job's
    # attempt count rises only with reject (on 3.10 and 4.0-4.2 both count)
    url = f"amqp://guest:guest@127.0.0.1:{sniffer.port}/"
    client, topo, _, _ = await serve(max_attempts="5", dt_http_attempts="1", amqp_url=url)
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel()  # the first retry tier refuses every copy
        await channel.queue_delete(topo.retry_queues[0].name)
        full = await channel.declare_queue(
            topo.retry_queues[0].name,
            durable=True,
            arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
        )
        await full.bind(topo.jobs_exchange.name, "retry.5s")
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    dt.always[project] = Fault(503)
    await post(client, project)
    await _taken(topo.retry_queues[1].name, 1)  # returned once, then retried further
    returns = [
        (method, arguments)
        for kind, method, arguments in sniffer.methods()
        if kind == BASIC and method in (REJECT, NACK)
    ]
    assert [method for method, _ in returns] == [REJECT], returns
    assert returns[0][1][-1] & 1  # requeue


async def _rabbitmqctl(*arguments: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *arguments, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, (out + err).decode()


async def test_a_job_over_the_brokers_delivery_limit_is_parked_not_dropped():
    # RabbitMQ 4.x gives quorum queues a delivery limit (20 by default) and drops what goes
    # over it unless the queue dead-letters: the jobs queue's policy parks it instead
    prefix = unique_prefix()
    async with temporary_topology(prefix) as topo:
        policy = topo.jobs_policy
        definition = policy.definition | {"delivery-limit": 1}  # 20 returns take too long
        async with await aio_pika.connect(AMQP_URL) as connection:
            await amqp.declare(connection, topo)
            channel = await connection.channel()
            await _rabbitmqctl(
                "set_policy",
                "--apply-to",
                policy.apply_to,
                "--priority",
                str(policy.priority),
                policy.name,
                policy.pattern,
                orjson.dumps(definition).decode(),
            )
            try:
                await channel.default_exchange.publish(
                    aio_pika.Message(b"{}", message_id="a-job"), routing_key=topo.jobs_queue.name
                )
                jobs = await channel.get_queue(topo.jobs_queue.name, ensure=False)
                for _ in range(20):  # returned until the broker takes it away
                    message = await jobs.get(fail=False, timeout=5)
                    if message is None:
                        break
                    await message.reject(requeue=True)
                (parked,) = await _taken(topo.parked_queue.name, 1)
            finally:
                await _rabbitmqctl("clear_policy", policy.name)
    assert parked.message_id == "a-job"
    assert Parked.of(parked).reason == "delivery_limit"
