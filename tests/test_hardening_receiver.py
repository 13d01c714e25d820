"""Hardening of the receiver (issue 14 items 5, 6, 9, 10, 11): hostile clients and huge
notifications against the real service on loopback and the real RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import uuid
import zlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import structlog

from tests.conftest import NOTIFICATIONS
from tests.rabbit import AMQP_URL, depth, drain, eventually, temporary_topology, unique_prefix
from tests.tcpproxy import TcpProxy
from tests.test_hardening_cli import running
from worker.core.config import Settings
from worker.service import serve as service

pytestmark = pytest.mark.rabbitmq

TOKEN = "hardening-token"
NEW_VULNERABILITY = orjson.loads(
    (NOTIFICATIONS / "v4__dt-docs-4.14.3__NEW_VULNERABILITY.json").read_bytes()
)


def bom_processed(n: int = 0) -> bytes:
    return orjson.dumps(
        {
            "notification": {
                "level": "INFORMATIONAL",
                "scope": "PORTFOLIO",
                "group": "BOM_PROCESSED",
                "timestamp": f"2026-11-22T07:00:00.{n:06d}",
                "title": "Bill of Materials Processed",
                "content": "A CycloneDX BOM was processed",
                "subject": {"project": {"uuid": str(uuid.uuid4()), "name": "p"}},
            }
        }
    )


def fan_out(projects: int) -> bytes:
    """A DT 4.x NEW_VULNERABILITY naming ``projects`` projects (DT lists every project with a
    component of the same identity)."""
    notification = NEW_VULNERABILITY["notification"]
    affected = [{"uuid": str(uuid.uuid4()), "name": f"p{n}"} for n in range(projects)]
    subject = notification["subject"] | {"affectedProjects": affected}
    return orjson.dumps({"notification": notification | {"subject": subject}})


@pytest.fixture
async def start(aiohttp_client) -> AsyncIterator[Any]:
    """Start receivers on loopback; ``prefix`` shares one topology between several."""
    stack = contextlib.AsyncExitStack()

    async def start(prefix: str | None = None, **env: str):
        prefix = prefix or unique_prefix()
        topo = await stack.enter_async_context(temporary_topology(prefix))
        settings = Settings.from_env(
            {
                "DTRACK_WORKER_PREFIX": prefix,
                "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
                "DTRACK_WORKER_COALESCE_SECONDS": "0",
                "DTRACK_WORKER_AMQP_URL": AMQP_URL,
            }
            | {f"DTRACK_WORKER_{key.upper()}": value for key, value in env.items()}
        )
        app, broker = service.build(settings)
        client = await aiohttp_client(app)
        stack.push_async_callback(client.close)
        await eventually(lambda: broker.ready, within=20)
        return client, topo

    async with stack:
        yield start


async def _raw(port: int, request: bytes, *, then_close: bool = False) -> bytes:
    """Send ``request`` bytes as they are; the answer's bytes (or b"" if we hung up first)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        if then_close:
            return b""
        return await asyncio.wait_for(reader.read(), timeout=15)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def _status_and_json(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


def _webhook_request(headers: dict[str, bytes], body: bytes, *, length: int | None = None) -> bytes:
    lines = [b"POST /webhook HTTP/1.1", b"Host: localhost", b"Connection: close"]
    lines += [name.encode() + b": " + value for name, value in headers.items()]
    lines.append(b"Content-Length: " + str(len(body) if length is None else length).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# -- 5. a huge fan-out: all of it enqueued, or none ------------------------------------------


@pytest.mark.timeout(120)
async def test_a_50000_project_notification_is_enqueued_whole_and_once(start, figures):
    client, topo = await start()
    body = fan_out(50_000)
    response = await client.post("/webhook", data=io.BytesIO(body), headers={"X-Api-Key": TOKEN})
    answer = await response.json()
    assert response.status == 202, answer
    assert answer["job_count"] == 50_000
    assert await depth(topo.jobs_queue.name) == 50_000
    again = await client.post("/webhook", data=io.BytesIO(body), headers={"X-Api-Key": TOKEN})
    assert again.status == 202
    assert (await again.json())["duplicate"] is True
    assert await depth(topo.jobs_queue.name) == 50_000  # DT 5's retry does not double it
    figures(
        f"fan-out: 1 notification naming 50000 projects ({len(body) / 1e6:.1f} MB) -> 202, "
        "50000 jobs; sent again -> 202 duplicate, still 50000"
    )


@pytest.mark.timeout(120)
async def test_a_fan_out_cut_off_midway_enqueues_nothing_and_answers_503(start, figures):
    async with TcpProxy(5672) as proxy:
        client, topo = await start(amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/")
        body = fan_out(20_000)
        # RabbitMQ goes away as the job of the 10,000th project is on its way to it: inside
        # the transaction, whatever the machine's speed
        middle = orjson.loads(body)["notification"]["subject"]["affectedProjects"][10_000]
        cut = proxy.cut_on(middle["uuid"].encode())
        loop = asyncio.get_running_loop()
        started = loop.time()
        cut_after: list[float] = []

        async def note_the_cut() -> None:
            await cut.wait()
            cut_after.append(loop.time() - started)

        watcher = asyncio.create_task(note_the_cut())
        response = await client.post(
            "/webhook", data=io.BytesIO(body), headers={"X-Api-Key": TOKEN}
        )
        assert cut.is_set(), "the 10,000th job never reached the broker's connection"
        await watcher
        assert response.status == 503
        assert "nothing was enqueued" in (await response.json())["message"]
        answered = loop.time() - started
        proxy.restore()
    assert await depth(topo.jobs_queue.name) == 0
    figures(
        f"fan-out of 20000 jobs cut as the 10000th project's went out, {cut_after[0]:.2f} s "
        f"after the POST: 503 after {answered:.2f} s, 0 jobs queued"
    )


# -- 6. coalescing delays do not wait behind each other --------------------------------------


async def test_a_short_delay_is_not_held_behind_a_long_one(start):
    prefix = unique_prefix()
    slow, topo = await start(prefix, coalesce_seconds="30")
    fast, _ = await start(prefix, coalesce_seconds="1")
    assert (await slow.post("/webhook", data=bom_processed(1), headers={"X-Api-Key": TOKEN})).ok
    posted = asyncio.get_running_loop().time()
    assert (await fast.post("/webhook", data=bom_processed(2), headers={"X-Api-Key": TOKEN})).ok
    (job,) = await drain(topo.jobs_queue.name, settle=2.5)
    assert job.headers["x-first-death-queue"] == topo.delay_queue_name(1)
    assert asyncio.get_running_loop().time() - posted < 4
    assert await depth(topo.delay_queue_name(30)) == 1  # the long one waits on its own


# -- 9. slow bodies, and clients that leave ----------------------------------------------------


async def test_slow_bodies_get_408_and_leaving_clients_an_info_line(start, caplog):
    client, topo = await start(body_timeout="1")
    port = client.port
    head = _webhook_request({"X-Api-Key": TOKEN.encode()}, b'{"notif', length=100)
    with structlog.testing.capture_logs() as lines:
        answers = await asyncio.gather(*(_raw(port, head) for _ in range(50)))
        await _raw(port, head, then_close=True)  # and one that hangs up mid-body
        await eventually(lambda: any(line.get("outcome") == "client_gone" for line in lines))
    statuses = {_status_and_json(answer)[0] for answer in answers}
    assert statuses == {408}
    _status, body = _status_and_json(answers[0])
    assert "DTRACK_WORKER_BODY_TIMEOUT" in body["message"]
    assert [line for line in lines if line["log_level"] in ("error", "critical")] == []
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    gone = [line for line in lines if line.get("outcome") == "client_gone"]
    assert gone[0]["log_level"] == "info"
    assert await depth(topo.jobs_queue.name) == 0


# -- 10. a token header of any bytes is a 401, never a 500 -----------------------------------


@pytest.mark.parametrize("token", [b"\xff\xfe", b"caf\xe9", TOKEN.encode() + b"\x80"])
async def test_a_token_header_that_is_not_utf8_is_401(start, token):
    client, _ = await start()
    answer = await _raw(client.port, _webhook_request({"X-Api-Key": token}, bom_processed()))
    status, body = _status_and_json(answer)
    assert status == 401
    assert body["status"] == "unauthorized"


# -- 11. encodings: JSON answers, 4xx, one log line each, counted ----------------------------


async def test_content_encodings_get_json_4xx_logged_and_counted(start):
    client, topo = await start(max_body="64KiB")
    port = client.port
    key = {"X-Api-Key": TOKEN.encode()}
    cases = [
        ({"Content-Encoding": b"gzip"}, gzip.compress(bom_processed(1)), 202, "enqueued"),
        ({"Content-Encoding": b"deflate"}, zlib.compress(bom_processed(2)), 202, "enqueued"),
        ({"Content-Encoding": b"gzip"}, b"\x1f\x8b\x08\x00corrupt", 400, "invalid"),
        ({"Content-Encoding": b"gzip"}, gzip.compress(bom_processed(3))[:-9], 400, "invalid"),
        ({"Content-Encoding": b"br"}, b"\x0b\x02\x80{}\x03", 415, "unsupported"),
        ({"Content-Encoding": b"zstd"}, b"(\xb5/\xfd", 415, "unsupported"),
        ({"Content-Encoding": b"gzip"}, gzip.compress(b" " * 2**20), 413, "too_large"),  # bomb
    ]
    with structlog.testing.capture_logs() as lines:
        for headers, body, expected, outcome in cases:
            answer = await _raw(port, _webhook_request(key | headers, body))
            status, document = _status_and_json(answer)
            assert (status, document["status"]) == (expected, outcome), document
            assert status < 300 or document["message"]
        chunked = (
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Api-Key: "
            + TOKEN.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"4000\r\n" + b" " * 0x4000 + b"\r\n" for _ in range(6)) + b"0\r\n\r\n"
        )  # fmt: skip
        status, document = _status_and_json(await _raw(port, chunked))
        assert (status, document["status"]) == (413, "too_large")
    requests = [line for line in lines if line["event"] == "http.request"]
    assert len(requests) == len(cases) + 1  # one line each, and nothing else
    assert [line for line in lines if line["log_level"] == "error"] == []
    metrics = await (await client.get("/metrics")).text()
    for outcome, count in (("invalid", 2), ("unsupported", 2), ("too_large", 2), ("enqueued", 2)):
        group = "BOM_PROCESSED" if outcome == "enqueued" else "-"
        line = f'dtrack_worker_webhook_requests_total{{group="{group}",outcome="{outcome}"}}'
        assert f"{line} {count}.0" in metrics, outcome
    assert len(await drain(topo.jobs_queue.name)) == 2


# -- issue 25: a client that never finishes its headers is not held -----------------------------


async def _closed_within(reader: asyncio.StreamReader, bound: float) -> tuple[bytes, float]:
    """What the server sent until it closed the connection, and after how long."""
    started = asyncio.get_running_loop().time()
    answer = await asyncio.wait_for(reader.read(), bound)  # b"" ... until EOF
    return answer, asyncio.get_running_loop().time() - started


async def test_a_client_that_never_finishes_its_headers_is_disconnected(figures):
    """The request line and headers must arrive within DTRACK_WORKER_HEADER_TIMEOUT of the
    connection's start (or of a later request's first byte): else a 408 and the connection
    closed, before any authentication ran. A client that finishes in time is answered."""
    prefix = unique_prefix()
    async with (
        temporary_topology(prefix),
        running(
            "receiver",
            {"DTRACK_WORKER_PREFIX": prefix, "DTRACK_WORKER_AMQP_URL": AMQP_URL,
             "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN, "DTRACK_WORKER_HEADER_TIMEOUT": "0.5"},
        ) as service,
    ):  # fmt: skip
        await service.ready()
        seen = []
        for opening in (b"", b"POST /webhook HTTP/1.1\r\nHost: localhost\r\nX-Api-Key: hard"):
            reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
            writer.write(opening)
            answer, after = await _closed_within(reader, 30)  # closed, not held for minutes
            writer.close()
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert b'"error":"header_timeout"' in answer
            seen.append(after)
        # a second request on a kept-alive connection: its headers are timed from its first byte
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        await asyncio.sleep(0.1)  # slow, but within the timeout: answered
        writer.write(b"\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert head.startswith(b"HTTP/1.1 200 "), head
        length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(
            b"content-length:")).split(b":")[1])  # fmt: skip
        await reader.readexactly(length)
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        answer, after = await _closed_within(reader, 30)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        seen.append(after)
        # a body is not a header: one slower than the header timeout is still read (and the
        # body's own timeout, DTRACK_WORKER_BODY_TIMEOUT, applies)
        body = bom_processed()
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        writer.write(_webhook_request({"X-Api-Key": TOKEN.encode()}, b"", length=len(body)))
        for start in range(0, len(body), len(body) // 3 + 1):
            await asyncio.sleep(0.3)  # 0.9 s in all, over the 0.5 s header timeout
            writer.write(body[start : start + len(body) // 3 + 1])
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 202 "), answer
    assert "http.header_timeout" in service.text
    figures(
        "header timeout 0.5 s: connections closed after "
        + ", ".join(f"{s:.2f} s" for s in seen)
        + " (nothing sent; half a request line and headers; a second request's first line)"
    )


# -- review 2 H1: an idle kept-alive connection is closed after DTRACK_WORKER_KEEPALIVE_TIMEOUT --


async def kept_alive(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that sent one complete GET and read its whole answer; then it stays idle."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path.encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert b"connection: close" not in head.lower(), head  # kept alive
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )  # fmt: skip
    await reader.readexactly(length)
    return reader, writer


async def closed_when_idle(reader: asyncio.StreamReader, *, within: float, setting: str) -> float:
    """Seconds until the server closed the idle connection (without sending anything)."""
    started = asyncio.get_running_loop().time()
    try:
        rest = await asyncio.wait_for(reader.read(), within)
    except TimeoutError:
        pytest.fail(f"an idle kept-alive connection was still open after {within} s ({setting})")
    assert rest == b"", rest  # closed quietly: no answer to a request never made
    return asyncio.get_running_loop().time() - started


async def test_an_idle_kept_alive_connection_is_closed(figures):
    """One complete request, then nothing: the header timeout does not run (no request began),
    so the keep-alive timeout must close it, not aiohttp's default hour. A client that comes
    back within the keep-alive timeout is answered on the same connection."""
    prefix = unique_prefix()
    async with (
        temporary_topology(prefix),
        running(
            "receiver",
            {"DTRACK_WORKER_PREFIX": prefix, "DTRACK_WORKER_AMQP_URL": AMQP_URL,
             "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN, "DTRACK_WORKER_HEADER_TIMEOUT": "30",
             "DTRACK_WORKER_KEEPALIVE_TIMEOUT": "1"},
        ) as service,
    ):  # fmt: skip
        await service.ready()
        reader, writer = await kept_alive(service.port, "/healthz")
        try:
            after = await closed_when_idle(reader, within=10, setting="KEEPALIVE_TIMEOUT=1")
        finally:
            writer.close()
        # back within the keep-alive timeout: the same connection answers
        reader, writer = await kept_alive(service.port, "/healthz")
        await asyncio.sleep(0.2)  # idle, but for less than the 1 s keep-alive timeout
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        writer.close()
        assert head.startswith(b"HTTP/1.1 200 "), head
    figures(f"keep-alive timeout 1 s: an idle connection closed after {after:.2f} s")
