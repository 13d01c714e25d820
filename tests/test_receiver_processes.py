"""``receiver --processes N``: N processes on one port, supervised, on the real RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.harness import TOKEN, notification
from tests.rabbit import AMQP_URL, depth, eventually, temporary_topology, unique_prefix
from tests.test_operations import SCRIPT

pytestmark = pytest.mark.rabbitmq


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _children(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


@contextlib.asynccontextmanager
async def supervisor(prefix: str, port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    assert SCRIPT
    process = await asyncio.create_subprocess_exec(
        SCRIPT, "receiver", "--processes", "2",
        env={"PATH": "/usr/bin:/bin", "DTRACK_WORKER_LISTEN": f"127.0.0.1:{port}",
             "DTRACK_WORKER_PREFIX": prefix, "DTRACK_WORKER_AMQP_URL": AMQP_URL,
             "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN, "DTRACK_WORKER_COALESCE_SECONDS": "0"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # a group of its own: a failed test kills the receivers too
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            # the whole group: an orphaned receiver would keep the output pipe, and wait(), open
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await asyncio.wait_for(process.wait(), 30)


async def _connected(process: asyncio.subprocess.Process, count: int = 2) -> bytes:
    """The output until each of the ``count`` processes is connected to RabbitMQ (a process
    that has just joined the port answers 503 until then, as it should)."""
    assert process.stdout is not None
    seen = b""
    async with asyncio.timeout(30):
        while seen.count(b'"event":"broker.connected"') < count:
            line = await process.stdout.readline()
            assert line, seen.decode()
            seen += line
    return seen


async def test_two_processes_share_the_port_and_stop_together_on_sigterm() -> None:
    prefix, port = unique_prefix(), _free_port()
    async with temporary_topology(prefix) as topo, supervisor(prefix, port) as process:
        started = await _connected(process)
        assert process.stdout is not None
        # read on while the webhooks run: an unread pipe fills up and blocks the receivers' logging
        rest = asyncio.create_task(process.stdout.read())
        await eventually(lambda: len(_children(process.pid)) == 2)
        for n in range(40):  # a connection each: the kernel spreads them over both
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    f"http://127.0.0.1:{port}/webhook",
                    data=notification(str(uuid.uuid4()), n),
                    headers={"X-Api-Key": TOKEN, "Content-Type": "application/json"},
                ) as response,
            ):
                assert response.status == 202, await response.text()
        assert await depth(topo.jobs_queue.name) == 40
        children = _children(process.pid)
        process.send_signal(signal.SIGTERM)
        output = started + await asyncio.wait_for(rest, 30)
        assert await process.wait() == 0
        assert not any(_alive(pid) for pid in children)
        assert output.count(b'"event":"receiver.stopped"') == 2


async def test_a_process_that_dies_stops_the_others_and_fails_the_whole() -> None:
    prefix, port = unique_prefix(), _free_port()
    async with temporary_topology(prefix), supervisor(prefix, port) as process:
        await _connected(process)
        await eventually(lambda: len(_children(process.pid)) == 2)
        victim, survivor = _children(process.pid)
        os.kill(victim, signal.SIGKILL)
        assert process.stdout is not None
        output = await asyncio.wait_for(process.stdout.read(), 30)  # until every process exits
        assert await process.wait() == 128 + signal.SIGKILL
        assert not _alive(survivor)
        assert b'"event":"receiver.process_exited"' in output
        assert output.count(b'"event":"receiver.stopped"') == 1  # the survivor, drained
