"""Benchmark: one worker process publishing the events of a 10k and a 50k-finding export, one
event per message and in CloudEvents batches, against the raw pipelined confirm rate of the same
client to the same broker (not a test).

    .venv/bin/python -m bench.worker [--sizes 10000,50000] [--batches 1,200]

A fake DT (aiohttp, in this process) serves a synthetic export (bench/synthetic.py); a real
`dtrack-worker worker` subprocess (one per DTRACK_WORKER_BATCH setting) takes one job for it.
Measured: the time from publishing the job to the export's summary event arriving (the worker
acks after it), events/s over that time, that time over ``orjson.loads`` of the export, and the
worker's peak RSS growth while doing it (VmHWM, against its idle baseline). The raw rate is
outgoing.send_all (the worker's own way out: rounds of single events, the next written while
the last is confirmed) sending the same number of same-sized messages from this process.
Targets: single events/s >= 0.8x the raw rate (issue 4); peak worker RSS <= 3x (issue 4),
<= 2x (issue 17) the export's bytes; with batches of 200, job -> ack <= 3x loads at 50k and
events/s >= 5x the single events' (issue 17).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import orjson
from aio_pika.abc import AbstractQueue
from aiohttp import web

from bench.synthetic import export_bytes
from tests.fake_dt import VERSION
from worker.adapters import schemas
from worker.adapters.broker import Broker
from worker.adapters.metrics import WorkerMetrics
from worker.core import fpf, jobs, topology
from worker.core.config import Settings
from worker.core.events import Event
from worker.core.output import AS_MADE
from worker.service import outgoing

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def hwm(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024


async def fake_dt(exports: dict[str, bytes]) -> tuple[web.AppRunner, str]:
    async def export(request: web.Request) -> web.Response:
        return web.Response(
            body=exports[request.match_info["uuid"]], content_type="application/json"
        )

    async def project(request: web.Request) -> web.Response:
        project = request.match_info["uuid"]
        if project not in exports:
            return web.Response(status=404, text="The project could not be found.")
        return web.json_response({"uuid": project, "name": "p", "active": True, "tags": []})

    async def version(request: web.Request) -> web.Response:
        return web.json_response(VERSION)

    app = web.Application()
    app.router.add_get("/api/v1/finding/project/{uuid}/export", export)
    # what the analysis gate asks before each fetch, and what a 404 is checked against: without
    # them every job was parked as DtMisconfigured
    app.router.add_get("/api/v1/project/{uuid}", project)
    app.router.add_get("/api/version", version)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def raw_rate(broker: Broker, count: int, body_size: int) -> float:
    body = b"x" * body_size
    events = [Event(str(n), "finding.high", body) for n in range(count)]
    items = [(event.routing_key, event.body, event.id, event.type) for event in events]
    window = broker.events_per_round
    rounds = (items[start : start + window] for start in range(0, count, window))
    started = time.perf_counter()
    await outgoing.send_all(broker, AS_MADE, WorkerMetrics.create(), rounds)
    return count / (time.perf_counter() - started)


async def main(sizes: list[int], batch_sizes: list[int]) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    exports: dict[str, bytes] = {}
    runner, dt_url = await fake_dt(exports)
    env = dict(os.environ) | {
        "DTRACK_WORKER_PREFIX": prefix,
        "DTRACK_WORKER_DT_URL": dt_url,
        "DTRACK_WORKER_DT_API_KEY": KEY,
        "DTRACK_WORKER_LISTEN": f"127.0.0.1:{free_port()}",
        "DTRACK_WORKER_LOG_LEVEL": "WARNING",
        "DTRACK_WORKER_EMIT": "snapshot",  # today's events; bench.state measures deltas
    }
    settings = Settings.from_env(env).broker
    topo = topology.configured(settings)  # as the worker declares it
    broker = Broker(settings, topo)
    await broker.start()
    while not broker.ready:  # noqa: ASYNC110 - the broker connects in its own task
        await asyncio.sleep(0.05)
    connection = await aio_pika.connect(AMQP)
    rows = []
    try:
        channel = await connection.channel()
        summaries = await channel.declare_queue(exclusive=True)  # gone with the connection
        await summaries.bind(topo.events_exchange.name, "export.summary")
        contract = schemas.load().fpf
        for size in sizes:
            project = str(uuid.uuid4())
            raw = exports[project] = export_bytes(size, project=project)
            export = fpf.process(raw, contract, source=dt_url)
            count = export.finding_count
            event_size = sum(len(e.body) for e in export.events()) // count
            del export
            loads = min_time(functools.partial(orjson.loads, raw), 3)
            raw_eps = await raw_rate(broker, count, event_size)
            for batch in batch_sizes:
                worker_env = env | {"DTRACK_WORKER_BATCH": str(batch)}
                elapsed, peak = await one_job(worker_env, project, summaries, broker)
                rows.append((size, batch, len(raw), elapsed, loads, count / elapsed, raw_eps, peak))
            exports.pop(project)
    finally:
        await connection.close()
        await broker.close()
        await runner.cleanup()
        async with await aio_pika.connect(AMQP) as cleanup:
            channel = await cleanup.channel()
            for queue in topo.queues:
                await channel.queue_delete(queue.name)
            for exchange in topo.exchanges:
                await channel.exchange_delete(exchange.name)
    report(rows)


def min_time(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


async def one_job(
    env: dict[str, str], project: str, summaries: AbstractQueue, broker: Broker
) -> tuple[float, int]:
    """A fresh worker process takes a job for ``project``: seconds to its summary, peak RSS."""
    script = shutil.which("dtrack-worker", path=str(Path(sys.executable).parent))
    assert script, "install the project first: scripts/setup"
    process = subprocess.Popen([script, "worker"], env=env, stdout=subprocess.DEVNULL)  # noqa: ASYNC220
    try:
        await asyncio.sleep(3)  # the worker connects and starts consuming
        baseline = hwm(process.pid)
        job = jobs.Job(
            job_id=str(uuid.uuid4()),
            project_uuid=project,
            project_name="bench",
            trigger="BENCHMARK",
            notification_id="bench",
            correlation_id="bench",
            accepted_at=jobs.utc_timestamp(datetime.now(UTC)),
        )
        started = time.perf_counter()
        await broker.enqueue([job])
        async with summaries.iterator() as messages:
            async for message in messages:
                await message.ack()
                break
        return time.perf_counter() - started, hwm(process.pid) - baseline
    finally:
        process.terminate()
        process.wait(timeout=40)


def report(rows: list[tuple[int, int, int, float, float, float, float, int]]) -> None:
    print(f"{os.cpu_count()} cores; worker subprocess, fake DT and broker on this machine")
    print(
        f"{'findings':>9} {'batch':>6} {'export MB':>10} {'job->ack s':>11} {'x loads':>8} "
        f"{'events/s':>9} {'raw/s':>8} {'ratio':>6} {'x single':>8} {'RSS/bytes':>9}"
    )
    single: dict[int, float] = {}
    for size, batch, nbytes, elapsed, loads, eps, raw_eps, peak in rows:
        single.setdefault(size, eps)  # the first setting of a size is the reference
        print(
            f"{size:>9} {batch:>6} {nbytes / 1e6:>10.1f} {elapsed:>11.2f} {elapsed / loads:>8.2f} "
            f"{eps:>9.0f} {raw_eps:>8.0f} {eps / raw_eps:>6.2f} {eps / single[size]:>8.2f} "
            f"{peak / nbytes:>9.2f}"
        )
    print(
        "targets: batch 1 ratio >= 0.8, RSS/bytes <= 2 (issue 17; 3 in issue 4); "
        "batch 200 at 50k: x loads <= 3, x single >= 5"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--batches", default="1,200", help="DTRACK_WORKER_BATCH settings")
    arguments = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            main(
                [int(s) for s in arguments.sizes.split(",")],
                [int(b) for b in arguments.batches.split(",")],
            )
        )
