"""Hardening of the commands as an operator runs them (issue 14 items 2, 4, 8, 12, 13, 14):
the installed console script in subprocesses, the real RabbitMQ, a fake DT on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import aiohttp
import orjson
import pytest

from tests.fake_dt import API_KEY, FakeDt, Fault
from tests.harness import REAL, TOKEN, notification
from tests.rabbit import AMQP_URL, drain, eventually, temporary_topology, unique_prefix
from tests.test_operations import SCRIPT, _env, _portfolio, cli
from tests.waiting import until

pytestmark = pytest.mark.rabbitmq


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Running:
    """A `dtrack-worker` process, its output collected as it runs."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process, self.port, self.output = process, port, bytearray()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while chunk := await self.process.stdout.read(65536):
            self.output += chunk

    async def ready(self) -> None:
        async with aiohttp.ClientSession() as session:

            async def answer() -> tuple[int, str]:
                assert self.process.returncode is None, self.text  # exited: its output
                async with session.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                    return response.status, await response.text()

            await until(
                answer,
                lambda seen: seen[0] == 200,
                what=f"/readyz on port {self.port} answering 200 (status, body)",
                within=30,
                errors=(aiohttp.ClientError, OSError),
            )

    async def wait(self, within: float = 30) -> int:
        code = await asyncio.wait_for(self.process.wait(), within)
        await self._reader
        return code

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.output.splitlines() if line.startswith(b"{")]


@contextlib.asynccontextmanager
async def running(command: str, env: dict[str, str]) -> AsyncIterator[Running]:
    assert SCRIPT
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        SCRIPT,
        command,
        env={"PATH": "/usr/bin:/bin", "DTRACK_WORKER_LISTEN": f"127.0.0.1:{port}"} | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    handle = Running(process, port)
    try:
        yield handle
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


# -- 2. passwords in URLs are never logged or published ---------------------------------------


async def test_passwords_in_urls_never_reach_logs_or_events(dt: FakeDt):
    prefix = unique_prefix()
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    host = dt.url.removeprefix("http://")
    async with (
        temporary_topology(prefix) as topo,
        running(
            "serve",
            {
                "DTRACK_WORKER_PREFIX": prefix,
                "DTRACK_WORKER_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/",
                "DTRACK_WORKER_DT_URL": f"http://dtuser:dt-pass-w0rd@{host}",
                "DTRACK_WORKER_DT_API_KEY": API_KEY,
                "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
                "DTRACK_WORKER_COALESCE_SECONDS": "0",
                "DTRACK_WORKER_EMIT": "snapshot",
            },
        ) as service,
    ):
        await service.ready()
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(topo.events_exchange.name, "#")
            async with aiohttp.ClientSession() as session:
                await session.post(
                    f"http://127.0.0.1:{service.port}/webhook",
                    data=notification(project),
                    headers={"X-Api-Key": TOKEN},
                )
            events: list[dict[str, Any]] = []
            async with asyncio.timeout(20):
                while not any(e["type"].endswith("summary.v1") for e in events):
                    message = await queue.get(fail=False)
                    if message is None:
                        await asyncio.sleep(0.05)
                        continue
                    events.append(orjson.loads(message.body))
        service.process.send_signal(signal.SIGTERM)
        assert await service.wait() == 0
    starting = next(line for line in service.lines() if line["event"] == "serve.starting")
    assert starting["dt_url"] == f"http://dtuser:***@{host}"
    assert {event["source"] for event in events} == {f"http://{host}"}
    assert "dt-pass-w0rd" not in service.text


@pytest.mark.parametrize(
    "url",
    ["amqp:/guest:s3cr3t-pw@127.0.0.1/", "amqp://guest:s3cr3t-pw@127.0.0.1:notaport/", "notaurl"],
)
async def test_a_malformed_amqp_url_stops_at_start_without_showing_its_password(url):
    code, out, err = await cli(
        "worker",
        env={"DTRACK_WORKER_AMQP_URL": url, "DTRACK_WORKER_DT_URL": "http://dt",
             "DTRACK_WORKER_DT_API_KEY": "k"},
    )  # fmt: skip
    assert code == 2
    assert err.count("\n") == 1
    assert "DTRACK_WORKER_AMQP_URL" in err
    assert "s3cr3t-pw" not in out + err
    assert "Traceback" not in err


async def test_reconnect_lines_never_show_the_broker_password():
    closed = _free_port()
    async with running(
        "receiver",
        {
            "DTRACK_WORKER_AMQP_URL": f"amqp://guest:br0ker-pw@127.0.0.1:{closed}/",
            "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
        },
    ) as service:
        await eventually(lambda: service.text.count("broker.connect_failed") >= 2, within=20)
        service.process.send_signal(signal.SIGTERM)
        assert await service.wait() == 0
    assert "br0ker-pw" not in service.text
    assert "guest:***@127.0.0.1" in service.text


# -- 4. backfill misses nothing silently -------------------------------------------------------


async def test_backfill_without_a_total_count_pages_until_a_short_page(serve, dt: FakeDt):
    _, topo, _, settings = await serve(work=False)
    dt.projects = _portfolio(250)
    dt.total_count = lambda _: None
    code, out, err = await cli("backfill", env=_env(settings.broker.prefix, dt))
    assert code == 0, err
    assert "250 jobs enqueued for 250 projects" in out
    assert len(await drain(topo.jobs_queue.name)) == 250


async def test_backfill_queues_a_project_added_while_another_was_deleted(serve, dt: FakeDt):
    _, topo, _, settings = await serve(work=False)
    dt.projects = _portfolio(250)
    newcomer = {"uuid": str(uuid.uuid4()), "name": "aaaa-first", "active": True, "tags": []}
    deleted = dt.projects[10]

    def churn(page: int) -> None:  # between pages 1 and 2: same total, shifted pages
        if page == 2 and newcomer not in dt.projects:
            dt.projects.remove(deleted)
            dt.projects.insert(0, newcomer)

    dt.on_page = churn
    env = _env(settings.broker.prefix, dt)
    code, _out, err = await cli("backfill", "--strict", env=env)
    queued = {orjson.loads(m.body)["project_uuid"] for m in await drain(topo.jobs_queue.name)}
    assert newcomer["uuid"] in queued
    assert {p["uuid"] for p in dt.projects} <= queued
    assert code == 1
    assert "the portfolio changed under the backfill: 1 appeared" in err
    assert "1 disappeared" in err


async def test_backfill_says_so_when_the_portfolio_never_stops_moving(serve, dt: FakeDt):
    _, _, _, settings = await serve(work=False)
    dt.projects = _portfolio(150)

    def grow(page: int) -> None:
        dt.projects.insert(0, _portfolio(1)[0])

    dt.on_page = grow
    code, _, err = await cli("backfill", "--strict", env=_env(settings.broker.prefix, dt))
    assert code == 1
    assert "still changing after 3 passes" in err
    code, _, err = await cli("backfill", env=_env(settings.broker.prefix, dt))
    assert code == 0  # said, but not fatal without --strict
    assert "still changing" in err


@pytest.mark.parametrize(
    ("body", "total", "message"),
    [
        (b"<!doctype html><html>DT frontend</html>", "1", "not JSON"),
        (b'{"projects": []}', "1", "JSON dict, not a list of projects"),
        (b'["a", "b"]', "2", "item 0 is not a project with a uuid"),
        (None, "lots", "X-Total-Count is 'lots', not a number"),
    ],
)
async def test_backfill_refuses_what_is_not_a_project_list_clearly(
    serve, dt: FakeDt, body, total, message
):
    _, topo, _, settings = await serve(work=False)
    dt.projects = _portfolio(3)
    dt.portfolio_body = body
    dt.total_count = lambda _: total
    code, _out, err = await cli("backfill", env=_env(settings.broker.prefix, dt))
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert await drain(topo.jobs_queue.name) == []


# -- 8. an address that cannot be listened on ---------------------------------------------------


@pytest.mark.parametrize("where", ["in use", "unresolvable"])
async def test_a_listen_address_that_cannot_be_used_exits_2_with_one_line(where):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        listen = f"127.0.0.1:{port}" if where == "in use" else "no-such-host.invalid:8080"
        started = time.monotonic()
        code, out, err = await cli(
            "receiver",
            env={"DTRACK_WORKER_LISTEN": listen, "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
                 "DTRACK_WORKER_AMQP_URL": AMQP_URL},
        )  # fmt: skip
    assert code == 2
    assert time.monotonic() - started < 10
    assert err.count("\n") == 1
    assert f"DTRACK_WORKER_LISTEN={listen}" in err
    assert ("cannot listen there" if where == "in use" else "cannot resolve") in err
    assert "Traceback" not in out + err


# -- 12. repeated signals during a shutdown -----------------------------------------------------


async def test_a_second_sigterm_on_an_idle_serve_still_exits_0(dt: FakeDt):
    prefix = unique_prefix()
    async with temporary_topology(prefix), running("serve", _serve_env(prefix, dt)) as service:
        await service.ready()
        service.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):  # an idle serve may be gone already
            # os.kill: Popen.send_signal would first reap an exited serve (bpo-38630's poll),
            # and asyncio's child watcher would then report 255, not its exit code
            os.kill(service.process.pid, signal.SIGTERM)
        assert await service.wait() == 0, service.text
    events = [line["event"] for line in service.lines()]
    assert "serve.stopped" in events
    assert "signal.ignored" in events or events.count("signal.received") == 1


async def test_a_second_sigterm_during_a_drain_is_ignored_and_the_drain_finishes(dt: FakeDt):
    prefix = unique_prefix()
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    dt.always[project] = Fault(delay=2.0)
    async with (
        temporary_topology(prefix) as topo,
        running("serve", _serve_env(prefix, dt)) as service,
    ):
        await service.ready()
        async with aiohttp.ClientSession() as session:
            await session.post(
                f"http://127.0.0.1:{service.port}/webhook",
                data=notification(project),
                headers={"X-Api-Key": TOKEN},
            )
        await eventually(lambda: len(dt.fetches_of(project)) == 1)
        service.process.send_signal(signal.SIGTERM)
        # the second signal lands mid-drain: once the worker says it is draining its job
        await until(
            lambda: re.findall(r'"event":\s*"([^"]+)"', service.text),
            lambda events: "worker.draining" in events,
            what="the worker.draining log line after the first SIGTERM (the events logged)",
        )
        service.process.send_signal(signal.SIGTERM)
        assert await service.wait() == 0, service.text
        assert await drain(topo.jobs_queue.name) == []  # settled: acked, not redelivered
    lines = service.lines()
    assert [line["event"] for line in lines].count("signal.ignored") == 1
    settled = [line for line in lines if line["event"] == "job.settled"]
    assert [line["outcome"] for line in settled] == ["done"]
    assert lines[-1]["event"] == "serve.stopped"


def _serve_env(prefix: str, dt: FakeDt) -> dict[str, str]:
    return {
        "DTRACK_WORKER_PREFIX": prefix,
        "DTRACK_WORKER_AMQP_URL": AMQP_URL,
        "DTRACK_WORKER_DT_URL": dt.url,
        "DTRACK_WORKER_DT_API_KEY": API_KEY,
        "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
        "DTRACK_WORKER_COALESCE_SECONDS": "0",
        "DTRACK_WORKER_EMIT": "snapshot",
        "DTRACK_WORKER_SHUTDOWN_GRACE": "10",
    }


# -- 13. settings that would break later stop the start --------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DT_CONCURRENCY", "inf"),
        ("DT_HTTP_ATTEMPTS", "1e400"),
        ("MAX_ATTEMPTS", "nan"),
        ("SHUTDOWN_GRACE", "nan"),
        ("COALESCE_SECONDS", "nan"),
        ("COALESCE_SECONDS", "4294967.296"),
        ("COALESCE_SECONDS", "1e10"),
        ("PREFETCH", "1e9"),
        ("BATCH", "0"),
        ("BATCH", "10001"),
        ("AMQP_URL", "notaurl"),
        ("DT_URL", "http://h:99999"),
    ],
)
async def test_a_setting_out_of_range_exits_2_naming_the_variable(variable, value):
    code, out, err = await cli(
        "serve",
        env={"DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN, "DTRACK_WORKER_DT_URL": "http://dt",
             "DTRACK_WORKER_DT_API_KEY": "k", f"DTRACK_WORKER_{variable}": value},
    )  # fmt: skip
    assert code == 2, out + err
    assert err.count("\n") == 1
    assert err.startswith(f"dtrack-worker: DTRACK_WORKER_{variable}")
    assert "Traceback" not in out + err


# -- 14. the operator commands on odd input ---------------------------------------------------


async def test_parked_on_a_prefix_never_declared_says_so(dt: FakeDt):
    env = _env(unique_prefix(), dt)
    for action in (["list"], ["replay", "--all"], ["show", "x"]):
        code, out, err = await cli("parked", *action, env=env)
        assert code == 1, (action, out, err)
        assert "there is no parked queue" in err
        assert "Traceback" not in err


async def test_parked_survives_odd_headers_and_replay_names_what_is_not_parked(serve, dt):
    _, topo, _, settings = await serve(work=False)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(
                b"{}",
                message_id="odd-one",
                headers={"x-attempt": "abc", "x-park-reason": "x", "x-park-problems": "{not"},
            ),
            topo.parked_queue.name,
        )
    env = _env(settings.broker.prefix, dt)
    code, out, err = await cli("parked", "list", env=env)
    assert code == 0, err
    assert "odd-one" in out
    code, out, err = await cli("parked", "show", "odd-one", env=env)
    assert code == 0, err
    assert orjson.loads(out)["problems"] == "{not"
    code, out, err = await cli("parked", "replay", "nosuch", env=env)
    assert code == 1
    assert "replayed 0 jobs" in out
    assert "not parked: nosuch" in err


async def test_tail_refuses_a_routing_key_amqp_cannot_carry(dt: FakeDt):
    code, _out, err = await cli(
        "tail", "--routing-key", "finding." + "x" * 300, env=_env(unique_prefix(), dt)
    )
    assert code == 2
    assert "--routing-key must be 1 to 255 bytes" in err
    assert "Traceback" not in err


async def test_backfill_logs_as_log_level_and_log_format_say_to_stderr(serve, dt: FakeDt):
    _, _, _, settings = await serve(work=False)
    dt.projects = _portfolio(2)
    env = _env(settings.broker.prefix, dt)

    code, out, err = await cli("backfill", env=env | {"DTRACK_WORKER_LOG_LEVEL": "INFO"})
    assert code == 0, err
    assert out.startswith("backfill done")  # stdout carries the summary alone
    logged = [orjson.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert "broker.connected" in [line["event"] for line in logged]

    code, _, err = await cli("backfill", env=env | {"DTRACK_WORKER_LOG_LEVEL": "WARNING"})
    assert code == 0
    assert "broker.connected" not in err

    code, _, err = await cli("backfill", env=env | {"DTRACK_WORKER_LOG_FORMAT": "console"})
    assert code == 0
    (line,) = [line for line in err.splitlines() if "broker.connected" in line]
    assert not line.startswith("{")


# -- issue 25: the quick start's token on a network -----------------------------------------------


@pytest.mark.parametrize(
    ("token", "warned"),
    [("change-me", True), ("s3cret", True), ("Change-Me", True), ("7f3e9c2a41b8d6e5", False)],
)
async def test_a_webhook_token_from_the_docs_examples_is_warned_about_at_start(token, warned):
    prefix = unique_prefix()
    async with (
        temporary_topology(prefix),
        running(
            "receiver",
            {"DTRACK_WORKER_PREFIX": prefix, "DTRACK_WORKER_AMQP_URL": AMQP_URL,
             "DTRACK_WORKER_WEBHOOK_TOKEN": token},
        ) as service,
    ):  # fmt: skip
        await service.ready()  # started, its signal handlers in place
        service.process.send_signal(signal.SIGTERM)
        assert await service.wait() == 0
    events = [line["event"] for line in service.lines()]
    assert ("receiver.example_token" in events) is warned, service.text
    if warned:  # said before the start, once, and without the token itself
        assert events.index("receiver.example_token") < events.index("receiver.starting")
        (line,) = [line for line in service.lines() if line["event"] == "receiver.example_token"]
        assert line["level"] == "warning"
        assert token not in service.text


# -- review 2 L3: signing secrets are checked as the token is --------------------------------------

STRONG = "9c4b1e7a2f6d8035be71"


@pytest.mark.parametrize(
    ("current", "previous", "warned"),
    [
        ("change-me", None, {"DTRACK_WORKER_WEBHOOK_SIGNING_SECRET": "example"}),
        ("Qz7#kx", None, {"DTRACK_WORKER_WEBHOOK_SIGNING_SECRET": "short"}),
        (STRONG, "Secret", {"DTRACK_WORKER_WEBHOOK_SIGNING_SECRET_PREVIOUS": "example"}),
        (STRONG, None, {}),
    ],
)
async def test_a_weak_signing_secret_is_warned_about_at_start(current, previous, warned):
    prefix = unique_prefix()
    env = {"DTRACK_WORKER_PREFIX": prefix, "DTRACK_WORKER_AMQP_URL": AMQP_URL,
           "DTRACK_WORKER_WEBHOOK_SIGNING_SECRET": current}  # fmt: skip
    if previous is not None:
        env["DTRACK_WORKER_WEBHOOK_SIGNING_SECRET_PREVIOUS"] = previous
    async with temporary_topology(prefix), running("receiver", env) as service:
        await service.ready()  # started, its signal handlers in place
        service.process.send_signal(signal.SIGTERM)
        assert await service.wait() == 0
    lines = [line for line in service.lines() if line["event"] == "receiver.weak_signing_secret"]
    found = {line["variable"]: line["weakness"] for line in lines}
    assert found == warned, service.text
    assert all(line["level"] == "warning" for line in lines)
    for secret in (current, previous):
        if secret is not None:
            assert secret not in service.text
