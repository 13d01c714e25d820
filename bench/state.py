"""Benchmark: the change stream's path through the state store (not a test).

    .venv/bin/python -m bench.state [--sizes 10000,50000] [--backends sqlite,postgresql]
        [--repeat 2]

For each size and store, in one run:

* unchanged: a re-export with the same findings (a later timestamp), from bytes to committed
  state (read the state in brief, compare by fingerprint, commit the project row and the
  summary), against ``orjson.loads`` of the same bytes, best of N taken in turns. Targets:
  <= 2.5x (SQLite), <= 3x (PostgreSQL).
* 1% changed: the same with 1% of the findings re-scored (their transitions committed).
* first sync: an empty store, every finding opened, from bytes to RabbitMQ's last confirm (the
  relay publishing the outbox), against today's snapshot mode in the same run (bytes to the last
  confirm of every finding event, in rounds as the worker sends them), best of ``--repeat``
  each, taken in turns. Target: >= 0.6x its events/s (issue 28). A second line splits the best
  first sync into its commit (bytes to committed state and outbox rounds) and its relay
  (outbox to the last confirm), each with this process's CPU time (threads included) and, on
  PostgreSQL, its server processes' (read from /proc: the server is local): the relay waits on
  RabbitMQ storing the messages about as long as the whole snapshot does. A third line is the
  bound: reading the export and making its events (what the snapshot does, with no store) plus
  the relay gives the best ratio a store that cost nothing would reach, and how long the
  store's own work (the commit less the reading) may take for 0.6x, beside how long it takes.
* the line case (``--line-size``, 10,000 by default; 0: none): ``bench.line_stream`` for each
  store after the table (DTRACK_WORKER_TRACK=line: unchanged, 1% changed, version switch, the
  switch against issue 26 §7's target).
* peak RSS: a fresh process applying the unchanged re-export, read from a mapped file as a
  worker reads its spooled export; its growth over its baseline divided by the export's bytes.
  Target: <= 3x.

Needs the local RabbitMQ (127.0.0.1:5672) and PostgreSQL (127.0.0.1:5432, trust auth).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import psycopg

from bench.synthetic import rescored_bytes
from worker.adapters import schemas
from worker.adapters.broker import Broker
from worker.adapters.metrics import WorkerMetrics
from worker.adapters.state.store import Store
from worker.core import batches, fpf, topology
from worker.core.config import Settings
from worker.core.jobs import Job
from worker.core.output import AS_MADE
from worker.service import outgoing
from worker.service.delta import DeltaOptions, Deltas
from worker.service.relay import Relay

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
PROJECT = "7b0c6e52-5a1f-4bb2-8d53-2f7e1c0a9d44"


def variant(size: int, second: int, rescore: float = 0.0) -> bytes:
    """The synthetic export of PROJECT at 10:00:<second>, ``rescore`` of its findings changed."""
    return rescored_bytes(size, project=PROJECT, seconds=second, rescore=rescore)


class NoSuppressions:
    async def findings(self, project_uuid: str) -> list[dict[str, Any]]:
        raise AssertionError("nothing disappears in this benchmark")

    async def project(self, project_uuid: str, *, retry: bool = True) -> dict[str, Any] | None:
        raise AssertionError("nothing resolves in this benchmark: the guard never asks")

    async def version(self) -> dict[str, Any]:
        raise AssertionError("nothing resolves in this benchmark: the guard never asks")

    async def list_projects(
        self,
        page: int,
        size: int,
        *,
        active_only: bool = False,
        name: str | None = None,
        search: str | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        raise AssertionError("the per-project cases run with DTRACK_WORKER_TRACK=project")


@contextlib.contextmanager
def database(backend: str, folder: Path) -> Any:
    if backend == "sqlite":
        yield f"sqlite:///{folder}/{uuid.uuid4().hex}.sqlite3"
        return
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def job(n: int) -> tuple[Job, dict[str, Any]]:
    made = Job(
        job_id=str(uuid.uuid4()),
        project_uuid=PROJECT,
        project_name="bench",
        trigger="BENCH",
        notification_id=f"bench-{n}",
        accepted_at="2026-11-30T10:00:00.000000Z",
        correlation_id="bench",
    )
    ref = {"job_id": made.job_id, "trigger": "BENCH", "correlation_id": "bench", "accepted_at": ""}
    return made, ref


@contextlib.asynccontextmanager
async def harness(url: str, broker: Broker) -> AsyncIterator[tuple[Deltas, Relay]]:
    settings = Settings.from_env({"DTRACK_WORKER_STATE_URL": url})
    async with Store.open(settings.state) as store:
        metrics = WorkerMetrics.create()
        relay = Relay(store, broker, metrics)
        options = DeltaOptions(source="bench", zone=UTC, epss_delta=None, baseline=False)
        deltas = Deltas(  # wired as a worker is: the relay gets the rounds the job committed
            store, NoSuppressions(), schemas.load().fpf, metrics, options, committed=relay.committed
        )
        yield deltas, relay


async def timed(run: Callable[[], Any]) -> float:
    gc.collect()
    started = time.perf_counter()
    await run()
    return time.perf_counter() - started


async def measure(
    backend: str, size: int, broker: Broker, folder: Path, repeat: int = 2
) -> dict[str, float]:
    first, unchanged, changed = (variant(size, 1), variant(size, 2), variant(size, 3, 0.01))
    loads = min_time(lambda: orjson.loads(unchanged), 5)
    contract = schemas.load().fpf
    figures: dict[str, float] = {"bytes": len(first), "loads": loads}
    metrics = WorkerMetrics.create()

    async def snapshot() -> None:  # the worker's snapshot mode: every finding event, confirmed
        made = fpf.process(first, contract, source="bench", project=PROJECT)
        rounds = (
            [(event.routing_key, event.body, event.id, event.type) for event in batch]
            for batch in batches.rounds(made.events(), broker.events_per_round)
        )
        await outgoing.send_all(broker, AS_MADE, metrics, rounds)

    figures["reading"] = min_time(lambda: reading(first), 3)
    counter = iter(range(1_000_000))
    figures["snapshot"] = figures["first sync"] = float("inf")
    for _ in range(repeat):  # best of N each, in turns: this VM's speed drifts
        figures["snapshot"] = min(figures["snapshot"], await timed(snapshot))
        await purge(broker)  # events nobody consumes pile up in the unrouted queue
        with database(backend, folder) as url:
            async with harness(url, broker) as (deltas, relay):
                phases: dict[str, float] = {}

                async def first_sync(
                    deltas: Deltas = deltas, relay: Relay = relay, phases: dict[str, float] = phases
                ) -> None:
                    made, ref = job(next(counter))
                    server = server_cpu(url)
                    started, cpu = time.perf_counter(), time.process_time()
                    await deltas.export(made, first, started, ref)
                    committed, committed_cpu = time.perf_counter(), time.process_time()
                    server_committed = server_cpu(url)
                    while await relay.drain():
                        pass
                    phases.update(
                        commit=committed - started,
                        commit_cpu=committed_cpu - cpu,
                        commit_server_cpu=server_committed - server,
                        relay=time.perf_counter() - committed,
                        relay_cpu=time.process_time() - committed_cpu,
                        relay_server_cpu=server_cpu(url) - server_committed,
                    )

                took = await timed(first_sync)
                if took < figures["first sync"]:
                    figures["first sync"] = took
                    figures |= {f"first sync {name}": value for name, value in phases.items()}
        await purge(broker)
    with database(backend, folder) as url:
        async with harness(url, broker) as (deltas, relay):

            async def apply(raw: bytes) -> None:
                made, ref = job(next(counter))
                await deltas.export(made, raw, time.perf_counter(), ref)

            await apply(first)
            while await relay.drain():
                pass
            best = float("inf")
            for _ in range(5):  # the same unchanged export, again and again (each commits)
                best = min(best, await timed(lambda: apply(unchanged)))
            figures["unchanged"] = best
            figures["1% changed"] = await timed(lambda: apply(changed))
            while await relay.drain():
                pass
        figures["rss"] = peak_rss(url, unchanged, folder)
    return figures


async def purge(broker: Broker) -> None:
    """Empty the unrouted queue, and give RabbitMQ a moment to drop what it held."""
    connection = await aio_pika.connect(AMQP)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(broker.topology.unrouted_queue.name, ensure=False)
        await queue.purge()
    await asyncio.sleep(2)


def server_cpu(url: str) -> float:
    """CPU seconds used so far by the PostgreSQL server processes of ``url``'s database (the
    store's connections), read from /proc: the server here is local. 0 for SQLite, whose work
    is this process's."""
    if not url.startswith("postgresql"):
        return 0.0
    with psycopg.connect(url, autocommit=True) as connection:
        pids = [
            row[0]
            for row in connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        ]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):  # a connection that closed meanwhile
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def reading(raw: bytes) -> None:
    """What any first sync does before its store: read the export, make its events."""
    for _ in fpf.process(raw, schemas.load().fpf, source="bench", project=PROJECT).events():
        pass


def bound(f: dict[str, float]) -> str:
    """What the ratio can be with a store that costs nothing: the first sync reads the export
    and makes its events (as the snapshot does), and the relay may only start after the commit;
    and how long the store's own work may take for 0.6x, beside how long it takes."""
    floor = f["reading"] + f["first sync relay"]
    allowed = f["snapshot"] / 0.6 - floor
    own = f["first sync commit"] - f["reading"]
    return (
        f"{'':>10} bound: reading the export and making its events {f['reading']:.2f} s, then "
        f"the relay {f['first sync relay']:.2f} s: {f['snapshot'] / floor:.2f}x at best with a "
        f"store that costs nothing; 0.6x leaves the store's own work {allowed:.2f} s, it "
        f"takes {own:.2f} s"
    )


def min_time(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def peak_rss(url: str, raw: bytes, folder: Path) -> float:
    """Peak RSS growth of a fresh process applying ``raw`` to the store at ``url``."""
    path = folder / "export.json"
    path.write_bytes(raw)
    child = (
        "import asyncio, sys, time\n"
        "from pathlib import Path\n"
        "from bench.state import harness, job\n"
        "from worker.adapters.spool import Spool\n"
        "def hwm():\n"
        "    status = Path('/proc/self/status').read_text()\n"
        "    return int(status.split('VmHWM:')[1].split()[0]) * 1024\n"
        "async def main():\n"
        "    async with harness(sys.argv[1], None) as (deltas, _):\n"
        "        base = hwm()\n"
        "        made, ref = job(0)\n"
        "        with Spool.of_path(sys.argv[2]) as text:\n"  # mapped, as a worker's spool
        "            await deltas.export(\n"
        "                made, text.raw, time.perf_counter(), ref, release=text.release\n"
        "            )\n"
        "        print(hwm() - base)\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", child, url, str(path)], capture_output=True, check=True, text=True
    ).stdout
    return int(out.split()[-1]) / len(raw)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--repeat", type=int, default=2, help="first syncs and snapshots, best of (default 2)"
    )
    parser.add_argument(
        "--line-size", type=int, default=10_000,
        help="the line case (bench.line_stream: issue 26 §7) at this size after the table; 0: none",
    )  # fmt: skip
    args = parser.parse_args()
    prefix = f"bench-state-{uuid.uuid4().hex[:6]}"
    settings = Settings.from_env({"DTRACK_WORKER_PREFIX": prefix, "DTRACK_WORKER_AMQP_URL": AMQP})
    topo = topology.configured(settings.broker)
    broker = Broker(settings.broker, topo)
    await broker.start()
    await broker.wait_ready(within=30)
    print(
        f"{'store':>10} {'findings':>8} {'MB':>6} {'loads ms':>8} {'unchanged ms':>12} "
        f"{'ratio':>5} {'1% ms':>7} {'first sync s':>12} {'snapshot s':>10} "
        f"{'events/s vs snapshot':>20} {'RSS/bytes':>9}"
    )
    try:
        with tempfile.TemporaryDirectory() as folder:
            for backend in args.backends.split(","):
                for size in (int(n) for n in args.sizes.split(",")):
                    f = await measure(backend, size, broker, Path(folder), args.repeat)
                    print(
                        f"{backend:>10} {size:>8} {f['bytes'] / 1e6:>6.1f} "
                        f"{f['loads'] * 1e3:>8.1f} {f['unchanged'] * 1e3:>12.1f} "
                        f"{f['unchanged'] / f['loads']:>5.2f} {f['1% changed'] * 1e3:>7.1f} "
                        f"{f['first sync']:>12.2f} {f['snapshot']:>10.2f} "
                        f"{f['snapshot'] / f['first sync']:>20.2f} {f['rss']:>9.2f}",
                        flush=True,
                    )
                    print(
                        f"{'':>10} first sync, its best run: commit {f['first sync commit']:.2f} s "
                        f"(this process's CPU {f['first sync commit_cpu']:.2f} s, the database "
                        f"server's {f['first sync commit_server_cpu']:.2f} s), relay "
                        f"{f['first sync relay']:.2f} s (CPU {f['first sync relay_cpu']:.2f} s, "
                        f"server {f['first sync relay_server_cpu']:.2f} s); "
                        f"0.6x the snapshot's events/s needs it all within "
                        f"{f['snapshot'] / 0.6:.2f} s",
                        flush=True,
                    )
                    print(bound(f), flush=True)
            if args.line_size:
                from bench import line_stream  # the line case; it imports this module

                for backend in args.backends.split(","):
                    figures = await line_stream.measure(backend, args.line_size, Path(folder))
                    print(line_stream.report(backend, args.line_size, figures), flush=True)
    finally:
        await broker.close()
        connection = await aio_pika.connect(AMQP)
        async with connection:
            for queue in topo.queues:
                with contextlib.suppress(aio_pika.exceptions.ChannelNotFoundEntity):
                    channel = await connection.channel()
                    await channel.queue_delete(queue.name)
            channel = await connection.channel()
            for exchange in topo.exchanges:
                await channel.exchange_delete(exchange.name)


if __name__ == "__main__":
    asyncio.run(main())
