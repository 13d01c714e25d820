"""The webhook receiver against the real RabbitMQ: DT notification in, durable jobs out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
import structlog
from aiohttp.test_utils import TestClient

from tests.conftest import NOTIFICATIONS, fixture_files
from tests.rabbit import AMQP_URL, drain, eventually, temporary_topology, unique_prefix
from tests.tcpproxy import TcpProxy
from tests.test_notifications import EXPECTED
from worker.adapters.broker import Broker
from worker.adapters.schemas import Contracts
from worker.core import jobs
from worker.core.config import DEFAULT_TRIGGER_GROUPS, Settings
from worker.service import serve as service

pytestmark = pytest.mark.rabbitmq

TOKEN = "t0ken-never-logged"
ClientFactory = Callable[..., Awaitable[tuple[TestClient[Any, Any], Broker, Any]]]


@pytest.fixture
async def receiver(aiohttp_client) -> AsyncIterator[ClientFactory]:
    """Start receivers (each with its own prefix) on loopback; clean their topology up after."""
    stack = contextlib.AsyncExitStack()

    async def start(wait_ready: bool = True, **env: str):
        prefix = unique_prefix()
        topo = await stack.enter_async_context(temporary_topology(prefix))
        settings = Settings.from_env(
            {
                "DTRACK_WORKER_PREFIX": prefix,
                "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
                "DTRACK_WORKER_COALESCE_SECONDS": "0",
                "DTRACK_WORKER_AMQP_URL": AMQP_URL,
                "DTRACK_WORKER_PUBLISH_TIMEOUT": "3",
            }
            | {f"DTRACK_WORKER_{key.upper()}": value for key, value in env.items()}
        )
        app, broker = service.build(settings)
        client = await aiohttp_client(app)
        stack.push_async_callback(client.close)  # stop the service before its queues go
        if wait_ready:
            await eventually(lambda: broker.ready)
        return client, broker, topo

    async with stack:
        yield start


# DT sends BOM_PROCESSED in the same shape as BOM_CONSUMED (dtrack-reference.md §1.3)
BOM_PROCESSED = (
    (NOTIFICATIONS / "v4__dt-docs-4.14.3__BOM_CONSUMED.json")
    .read_bytes()
    .replace(b'"group": "BOM_CONSUMED"', b'"group": "BOM_PROCESSED"')
)
assert b'"BOM_PROCESSED"' in BOM_PROCESSED


def bom_processed(n: int) -> bytes:
    """BOM_PROCESSED again, as another notification (the receiver answers repeats itself)."""
    document = orjson.loads(BOM_PROCESSED)
    document["notification"]["timestamp"] = f"2026-01-01T00:00:00.{n:06d}"
    return orjson.dumps(document)


def _post(client: TestClient[Any, Any], body: bytes, token: str | None = TOKEN, **headers: str):
    if token is not None:
        headers.setdefault("X-Api-Key", token)
    return client.post("/webhook", data=body, headers=headers)


async def test_every_notification_fixture_enqueues_exactly_its_jobs(receiver, contracts: Contracts):
    client, _, topo = await receiver()
    expected_projects: list[str] = []
    for path in fixture_files(NOTIFICATIONS):
        group, projects = EXPECTED[path.name]
        response = await _post(client, path.read_bytes())
        body = await response.json()
        if group in DEFAULT_TRIGGER_GROUPS:
            assert response.status == 202, (path.name, body)
            assert [job["project_uuid"] for job in body["jobs"]] == projects
            expected_projects += projects
        else:
            assert response.status == 200, (path.name, body)
            assert body["status"] == "ignored"
            assert group in body["reason"]

    messages = await drain(topo.jobs_queue.name)
    queued = [jobs.Job.from_json(message.body, contracts.job) for message in messages]
    assert sorted(job.project_uuid for job in queued) == sorted(expected_projects)
    for message, job in zip(messages, queued, strict=True):
        assert message.delivery_mode == 2  # persistent
        assert message.message_id == job.job_id
        assert message.correlation_id == job.correlation_id
        assert message.type == "dtrack-worker.job.v1"


async def test_a_202_names_every_job_and_the_correlation_id_comes_back(receiver):
    client, _, topo = await receiver()
    body = BOM_PROCESSED
    response = await _post(client, body, **{"X-Request-Id": "dt-request-42"})
    payload = await response.json()
    assert response.status == 202
    assert response.headers["X-Correlation-Id"] == payload["correlation_id"] == "dt-request-42"
    assert payload["group"] == "BOM_PROCESSED"
    (message,) = await drain(topo.jobs_queue.name)
    job = orjson.loads(message.body)
    assert payload["jobs"] == [{"job_id": job["job_id"], "project_uuid": job["project_uuid"]}]
    assert job["correlation_id"] == "dt-request-42"
    assert job["project_name"] == "Acme Example"


async def test_several_projects_make_several_jobs(receiver):
    client, _, topo = await receiver()
    document = orjson.loads(
        (NOTIFICATIONS / "v4__dt-docs-4.14.3__NEW_VULNERABILITY.json").read_bytes()
    )
    document["notification"]["subject"]["affectedProjects"] = [
        {"uuid": f"00000000-0000-4000-8000-00000000000{n}", "name": f"p{n}"} for n in range(5)
    ]
    response = await _post(client, orjson.dumps(document))
    assert response.status == 202
    assert len((await response.json())["jobs"]) == 5
    assert len(await drain(topo.jobs_queue.name)) == 5


@pytest.mark.parametrize(
    ("headers", "token"),
    [({}, None), ({"X-Api-Key": "wrong"}, None), ({"Authorization": f"Bearer {TOKEN}"}, None)],
)
async def test_a_missing_or_wrong_token_is_401_and_enqueues_nothing(receiver, headers, token):
    client, _, topo = await receiver()
    body = BOM_PROCESSED
    response = await _post(client, body, token=token, **headers)
    assert response.status == 401
    assert (await response.json())["message"] == "missing or wrong token in the X-Api-Key header"
    assert await drain(topo.jobs_queue.name) == []


async def test_the_token_header_name_is_a_setting(receiver):
    client, _, _ = await receiver(webhook_token_header="X-DT-Token")
    body = BOM_PROCESSED
    assert (await _post(client, body, token=None, **{"X-DT-Token": TOKEN})).status == 202
    assert (await _post(client, body)).status == 401  # X-Api-Key is not it any more


async def test_bodies_over_the_limit_are_413_announced_or_chunked(receiver):
    client, _, topo = await receiver(max_body="2KiB")
    big = orjson.dumps({"notification": {"padding": "x" * 4096}})
    response = await _post(client, big)
    assert response.status == 413
    assert "DTRACK_WORKER_MAX_BODY" in (await response.json())["message"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 1024

    response = await client.post("/webhook", data=chunks(), headers={"X-Api-Key": TOKEN})
    assert response.status == 413
    assert (await response.json())["status"] == "too_large"
    assert await drain(topo.jobs_queue.name) == []


@pytest.mark.parametrize(
    ("body", "error", "pointer"),
    [
        (b"", "invalid_json", ""),
        (b"{not json", "invalid_json", ""),
        (
            (NOTIFICATIONS / "invalid" / "v4__dt-docs-4.14.3__USER_CREATED.json").read_bytes(),
            "invalid_json",
            "",
        ),
        (b'{"notification": {"group": "BOM_PROCESSED"}}', "invalid_notification", "/notification"),
        (b"[]", "invalid_notification", ""),
        (
            b'{"notification": {"group": "BOM_PROCESSED", "scope": "PORTFOLIO", '
            b'"level": "INFORMATIONAL", "subject": null}}',
            "invalid_notification",
            "/notification/subject",
        ),
    ],
)
async def test_bad_bodies_are_400_with_what_failed_and_where(receiver, body, error, pointer):
    client, _, topo = await receiver()
    response = await _post(client, body)
    payload = await response.json()
    assert response.status == 400
    assert payload["error"] == error
    assert payload["problems"][0]["pointer"] == pointer
    assert payload["problems"][0]["message"]
    assert await drain(topo.jobs_queue.name) == []


async def test_groups_outside_the_trigger_list_are_200_ignored(receiver):
    client, _, topo = await receiver(trigger_groups="GROUP_BOM_PROCESSED")
    body = (NOTIFICATIONS / "v4__dt-docs-4.14.3__NEW_VULNERABILITY.json").read_bytes()
    response = await _post(client, body)
    assert response.status == 200
    assert (await response.json())["reason"] == (
        "NEW_VULNERABILITY is not a trigger group (DTRACK_WORKER_TRIGGER_GROUPS)"
    )
    assert await drain(topo.jobs_queue.name) == []


async def test_a_latin_1_body_from_dt_before_4_14_is_read(receiver):
    client, _, topo = await receiver()
    text = BOM_PROCESSED.decode()
    renamed = text.replace('"Acme Example"', '"Acme Ökonomie \u2013 Straße"')
    body = renamed.encode("latin-1", "replace")  # the dash is outside Latin-1: "?", as DT did
    assert b"\xd6konomie" in body  # Ö as one Latin-1 byte: not valid UTF-8
    response = await _post(client, body)
    assert response.status == 202, await response.text()
    (message,) = await drain(topo.jobs_queue.name)
    assert orjson.loads(message.body)["project_name"] == "Acme Ökonomie ? Straße"


async def test_with_a_coalescing_delay_jobs_wait_in_the_delay_queue_first(receiver):
    client, _, topo = await receiver(coalesce_seconds="1")
    body = BOM_PROCESSED
    assert (await _post(client, body)).status == 202
    (message,) = await drain(topo.jobs_queue.name, settle=2.5)  # after ~1 s in the delay queue
    assert message.headers["x-first-death-queue"] == topo.delay_queue_name(1)
    assert message.headers["x-first-death-reason"] == "expired"


async def test_health_readiness_and_metrics(receiver):
    client, _, _ = await receiver()
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert (ready.status, await ready.json()) == (200, {"status": "ready", "broker": "connected"})
    await _post(client, BOM_PROCESSED)
    await _post(client, b"{}", token="wrong")
    metrics = await (await client.get("/metrics")).text()
    assert (
        'dtrack_worker_webhook_requests_total{group="BOM_PROCESSED",outcome="enqueued"} 1.0'
        in metrics
    )
    assert 'dtrack_worker_webhook_requests_total{group="-",outcome="unauthorized"} 1.0' in metrics
    assert 'dtrack_worker_jobs_enqueued_total{group="BOM_PROCESSED"} 1.0' in metrics
    assert "dtrack_worker_enqueue_seconds_count 1.0" in metrics
    assert "dtrack_worker_broker_connected 1.0" in metrics
    missing = await client.get("/nope")
    assert (missing.status, (await missing.json())["status"]) == (404, "error")


async def test_one_log_line_per_request_without_token_or_body(receiver):
    client, _, _ = await receiver()
    body = BOM_PROCESSED
    with structlog.testing.capture_logs() as lines:
        await _post(client, body, **{"X-Correlation-Id": "corr-7"})
        await _post(client, body, token="wrong-" + TOKEN)
    requests = [line for line in lines if line["event"] == "http.request"]
    assert [(r["status"], r["outcome"]) for r in requests] == [
        (202, "enqueued"),
        (401, "unauthorized"),
    ]
    assert requests[0]["correlation_id"] == "corr-7"
    assert requests[0]["group"] == "BOM_PROCESSED"
    assert requests[0]["projects"] == ["6fb1820f-5280-4577-ac51-40124aabe307"]
    assert requests[0]["latency_ms"] >= 0
    everything = repr(lines)
    assert TOKEN not in everything
    assert "Acme Example" not in everything  # nothing of the body


# -- the broker goes away ---------------------------------------------------------------------


async def test_a_broker_that_is_not_there_gives_503_then_recovers(receiver):
    async with TcpProxy(5672) as proxy:
        proxy.cut()
        client, broker, topo = await receiver(
            wait_ready=False, amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
        )
        body = BOM_PROCESSED
        response = await _post(client, body)
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert (await response.json())["status"] == "unavailable"
        assert (await client.get("/readyz")).status == 503

        proxy.restore()
        await eventually(lambda: broker.ready, within=20)
        assert (await client.get("/readyz")).status == 200
        assert (await _post(client, body)).status == 202
        assert len(await drain(topo.jobs_queue.name)) == 1


async def test_a_cut_connection_gives_503_and_heals_by_itself(receiver):
    async with TcpProxy(5672) as proxy:
        client, broker, topo = await receiver(
            amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
        )
        assert (await _post(client, bom_processed(1))).status == 202

        proxy.cut()
        await eventually(lambda: not broker.ready)
        assert (await _post(client, bom_processed(2))).status == 503
        metrics = await (await client.get("/metrics")).text()
        assert "dtrack_worker_broker_connected 0.0" in metrics
        # a repeat of a notification already in RabbitMQ is answered without the broker
        repeat = await _post(client, bom_processed(1))
        assert repeat.status == 202
        assert (await repeat.json())["duplicate"] is True

        proxy.restore()
        await eventually(lambda: broker.ready, within=20)
        assert (await _post(client, bom_processed(2))).status == 202
        assert len(await drain(topo.jobs_queue.name)) == 2


async def test_every_202_under_load_with_an_outage_has_its_job_in_the_queue(receiver, figures):
    async with TcpProxy(5672) as proxy:
        client, broker, topo = await receiver(
            amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
        )
        template = orjson.loads(BOM_PROCESSED)
        accepted: list[str] = []
        statuses: list[int] = []
        done = asyncio.Event()

        async def send(n: int) -> None:
            document = {"notification": template["notification"] | {"timestamp": f"2026-01-01T{n}"}}
            response = await _post(client, orjson.dumps(document))
            statuses.append(response.status)
            if response.status == 202:
                accepted.extend(job["job_id"] for job in (await response.json())["jobs"])

        async def load() -> None:  # 20 requests in flight until the outage is over
            pending: set[asyncio.Task[None]] = set()
            n = 0
            while not done.is_set():
                pending.add(asyncio.create_task(send(n)))
                n += 1
                if len(pending) >= 20:
                    _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            await asyncio.gather(*pending)

        async def outage() -> None:
            await eventually(lambda: len(statuses) >= 200)
            proxy.cut()
            await eventually(lambda: statuses[-20:].count(503) == 20)
            await asyncio.sleep(0.5)
            proxy.restore()
            await eventually(lambda: broker.ready, within=20)
            after = len(statuses)
            await eventually(lambda: len(statuses) >= after + 200)
            done.set()

        await asyncio.gather(load(), outage())
        queued = {message.message_id for message in await drain(topo.jobs_queue.name, settle=1.0)}
        lost = set(accepted) - queued
        figures(
            f"receiver outage under load: sent={len(statuses)} accepted={statuses.count(202)} "
            f"unavailable={statuses.count(503)} queued={len(queued)} lost={len(lost)}"
        )
        assert set(statuses) <= {202, 503}
        assert statuses.count(503) >= 20
        assert statuses[-50:] == [202] * 50  # healed by itself
        assert lost == set()
