"""Capacity simulation: a portfolio of N projects through a burst of BOM uploads and a daily
re-analysis wave, measured beside what the model of docs/capacity.md predicts (not a test).

    .venv/bin/python -m bench.soak --portfolio 1000      # or: python -m bench.portfolio 1000
    .venv/bin/python -m bench.portfolio 100 --backend postgresql

A fake DT (aiohttp, in this process) serves one synthetic export per project, 50 to 500
findings each (bench/synthetic.py, drawn from a fixed seed); one `dtrack-worker serve`
subprocess (receiver and worker, EMIT=delta, SQLite state) takes the webhooks. Three waves:

1. calibration: 20 projects of one finding each, which gives the model its cost per job;
2. burst: a webhook for every project, as a CI pipeline uploading BOMs sends them (the first
   export of each: every finding opened);
3. re-analysis: every project again, each export a minute later with 1% of its findings
   re-scored (the daily wave).

For each wave it prints the measured duration, jobs/s, events and event bytes beside the
model's prediction, then the state store's size per finding, and where its bytes go (tables,
indexes, free pages, WAL: bench/store_size.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import aiohttp
import orjson
from aio_pika.abc import AbstractIncomingMessage

from bench import store_size
from bench.receiver import BODY, TOKEN, delete_topology, free_port
from bench.state import database
from bench.synthetic import rescored_bytes
from bench.worker import fake_dt
from worker.adapters.state import space
from worker.adapters.state.backend import connector, dialect_of
from worker.core import topology

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
CONCURRENCY = 20  # webhooks in flight, as a busy CI system sends them

# The model's costs on this machine (2 cores shared with RabbitMQ), from the benchmarks:
# bench.state, 10k findings on SQLite: a first sync (every finding opened, committed and
# relayed to RabbitMQ's confirm) 1.6 s; a re-export with 1% re-scored 0.20 s.
FIRST_SYNC_S_PER_FINDING = 160e-6
RESCORED_S_PER_FINDING = 20e-6


@dataclass
class Wave:
    name: str
    jobs: int
    findings: int
    seconds: float = 0.0
    events: int = 0
    event_bytes: int = 0


class Counter:
    """Every event published, counted by a queue of our own bound to ``#``."""

    def __init__(self) -> None:
        self.events = 0
        self.bytes = 0
        self.summaries = 0

    async def take(self, message: AbstractIncomingMessage) -> None:
        self.bytes += len(message.body)
        if message.routing_key == "export.summary":
            self.summaries += 1
        else:
            self.events += 1
        await message.ack()


def notification(project: str, stamp: str) -> bytes:
    document = orjson.loads(BODY)
    document["notification"]["timestamp"] = stamp  # a new notification, not a repeat
    document["notification"]["subject"]["project"]["uuid"] = project
    return orjson.dumps(document)


def exported(findings: int, project: str, seed: int, minute: int, rescore: float) -> bytes:
    return rescored_bytes(
        findings, project=project, seconds=minute * 60, rescore=rescore, seed=seed
    )


async def post_all(port: int, projects: list[str], stamp: str) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession() as session:

        async def post(project: str) -> None:
            async with (
                gate,
                session.post(
                    f"http://127.0.0.1:{port}/webhook",
                    data=notification(project, stamp),
                    headers={"X-Api-Key": TOKEN, "Content-Type": "application/json"},
                ) as response,
            ):
                if response.status != 202:
                    raise SystemExit(f"webhook answered {response.status}: {await response.text()}")

        await asyncio.gather(*(post(project) for project in projects))


async def run_wave(
    wave: Wave, port: int, projects: list[str], counter: Counter, stamp: str
) -> Wave:
    events, size, summaries = counter.events, counter.bytes, counter.summaries
    started = time.perf_counter()
    await post_all(port, projects, stamp)
    while counter.summaries - summaries < len(projects):  # noqa: ASYNC110 - counted by a consumer
        await asyncio.sleep(0.05)
    wave.seconds = time.perf_counter() - started
    wave.events, wave.event_bytes = counter.events - events, counter.bytes - size
    return wave


def size_of(url: str, folder: Path) -> tuple[int, store_size.Sizes]:
    """Bytes of the state store (SQLite: its files, database and WAL; PostgreSQL: its tables,
    indexes and TOAST), and where they go."""
    sizes = store_size.measure(url)
    if url.startswith("sqlite:"):
        return sum(path.stat().st_size for path in folder.iterdir()), sizes
    return sizes.total, sizes


def reclaim(url: str) -> int:
    """Free pages given back, as the workers' background step does (SQLite): all of them."""
    connection = connector(url, create=False)()
    try:
        total = 0
        while (step := space.reclaim(connection.cursor(), dialect_of(url))).pages:
            total += step.pages
        return total
    finally:
        connection.close()


async def main(count: int, backend: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="portfolio-"))
    try:
        with database(backend, folder) as url:
            await run(count, url, folder)
    finally:
        shutil.rmtree(folder)


async def run(count: int, url: str, folder: Path) -> None:
    rng = random.Random(17)
    exports: dict[str, bytes] = {}
    runner, dt_url = await fake_dt(exports)
    prefix = f"portfolio-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = dict(os.environ) | {
        "DTRACK_WORKER_PREFIX": prefix,
        "DTRACK_WORKER_DT_URL": dt_url,
        "DTRACK_WORKER_DT_API_KEY": "bench-key",
        "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
        "DTRACK_WORKER_LISTEN": f"127.0.0.1:{port}",
        "DTRACK_WORKER_COALESCE_SECONDS": "0",
        "DTRACK_WORKER_EMIT": "delta",
        "DTRACK_WORKER_STATE_URL": url,
        "DTRACK_WORKER_LOG_LEVEL": "WARNING",
    }
    tiny = [str(uuid.uuid4()) for _ in range(20)]
    for project in tiny:
        exports[project] = exported(1, project, 1, 0, 0.0)
    sizes = {str(uuid.uuid4()): rng.randint(50, 500) for _ in range(count)}
    seeds = {project: rng.randrange(1 << 30) for project in sizes}
    print(f"generating {count} exports, {sum(sizes.values())} findings ...", flush=True)
    for project, findings in sizes.items():
        exports[project] = exported(findings, project, seeds[project], 0, 0.0)
    export_bytes = sum(len(exports[project]) for project in sizes)

    script = shutil.which("dtrack-worker", path=str(Path(sys.executable).parent))
    assert script, "install the project first: scripts/setup"
    process = subprocess.Popen([script, "serve"], env=env, stdout=subprocess.DEVNULL)  # noqa: ASYNC220
    connection = await aio_pika.connect(AMQP)
    try:
        await asyncio.sleep(3)
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1000)
        events = await channel.declare_queue(exclusive=True)
        await events.bind(topology.build(prefix).events_exchange.name, "#")
        counter = Counter()
        await events.consume(counter.take)

        calibration = await run_wave(Wave("calibration", len(tiny), len(tiny)), port, tiny,
                                     counter, "calibration")  # fmt: skip
        per_job = calibration.seconds / len(tiny)
        projects = list(sizes)
        burst = await run_wave(Wave("burst", count, sum(sizes.values())), port, projects,
                               counter, "burst")  # fmt: skip
        for project in projects:
            exports[project] = exported(sizes[project], project, seeds[project], 1, 0.01)
        wave = await run_wave(Wave("re-analysis", count, sum(sizes.values())), port, projects,
                              counter, "wave")  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=60)
        await connection.close()
        await runner.cleanup()
        await delete_topology(prefix)
    state_bytes, breakdown = size_of(url, folder)
    started = time.perf_counter()
    reclaimed = reclaim(url)
    reclaim_seconds = time.perf_counter() - started
    after_bytes, after = size_of(url, folder)

    predicted = {
        "burst": per_job * count + FIRST_SYNC_S_PER_FINDING * burst.findings,
        "re-analysis": per_job * count + RESCORED_S_PER_FINDING * wave.findings,
    }
    store = "SQLite" if url.startswith("sqlite:") else "PostgreSQL"
    print(f"{os.cpu_count()} cores; one serve process ({store} state), fake DT and RabbitMQ here")
    print(f"{count} projects, {burst.findings} findings, exports {export_bytes / 1e6:.0f} MB")
    print(f"model: {per_job * 1e3:.1f} ms per job (calibration), "
          f"{FIRST_SYNC_S_PER_FINDING * 1e6:.0f} us per finding opened, "
          f"{RESCORED_S_PER_FINDING * 1e6:.0f} us per finding re-exported")  # fmt: skip
    print(
        f"{'wave':<12} {'jobs':>6} {'findings':>9} {'predicted s':>12} {'measured s':>11} "
        f"{'ratio':>6} {'jobs/s':>7} {'events':>8} {'event MB':>9}"
    )
    for measured in (burst, wave):
        guess = predicted[measured.name]
        print(
            f"{measured.name:<12} {measured.jobs:>6} {measured.findings:>9} {guess:>12.1f} "
            f"{measured.seconds:>11.1f} {measured.seconds / guess:>6.2f} "
            f"{measured.jobs / measured.seconds:>7.1f} {measured.events:>8} "
            f"{measured.event_bytes / 1e6:>9.1f}"
        )
    print(
        f"state store: {state_bytes / 1e6:.0f} MB, {state_bytes / burst.findings:.0f} bytes "
        f"per finding; events {burst.event_bytes / max(burst.events, 1):.0f} bytes each"
    )
    print("\n".join(breakdown.lines()))
    if reclaimed:
        print(
            f"after the workers gave back {reclaimed} free pages (state/space.py, in the "
            f"background once the outbox is empty; {reclaim_seconds:.1f} s in all): "
            f"{after_bytes / 1e6:.0f} MB, "
            f"{after_bytes / burst.findings:.0f} bytes per finding"
        )
        print("\n".join(after.lines()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("projects", type=int, nargs="?", default=1000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.projects, arguments.backend))
