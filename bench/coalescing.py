"""Benchmark: a burst of webhooks for one project, accepted and coalesced (not a test).

    .venv/bin/python -m bench.coalescing [--notifications 100] [--workers 2] [--rounds 3]

A `dtrack-worker receiver` process (DTRACK_WORKER_COALESCE_SECONDS=2) takes N concurrent DT
4.x BOM_PROCESSED notifications for one project; `--workers` `dtrack-worker worker` processes
take the jobs, fetching from the tests' fake DT (tests/fake_dt.py, in this process) a real
export. Measured per round:
the time until every notification has its 202 (target: 100 in <= 1.5 s on the 2-core development
machine; tests/test_worker_processes.py asserted it until timing left the tests), the fetches DT
saw (at most one per worker and a fresh one: <= 1 + workers) and how long after the last
acceptance the freshest fetch started (> 0: no acceptance is answered by an older fetch).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from bench.receiver import delete_topology, free_port
from tests.fake_dt import API_KEY, FakeDt

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
TEMPLATE = orjson.loads(
    (FIXTURES / "notifications" / "v4__dt-docs-4.14.3__BOM_CONSUMED.json").read_bytes()
)
EXPORT = (FIXTURES / "fpf" / "real" / "defectdojo__deptrack_php_4.14.1.json").read_bytes()
TOKEN = "bench-token"
TARGET_SECONDS = 1.5  # for 100 notifications
JOBS = "dtrack_worker_jobs_enqueued_total"


def notification(project: str, n: int) -> bytes:
    body = TEMPLATE["notification"] | {
        "group": "BOM_PROCESSED",
        "timestamp": f"2026-11-22T07:00:00.{n:06d}",
        "subject": TEMPLATE["notification"]["subject"]
        | {"project": {"uuid": project, "name": "p"}},
    }
    return orjson.dumps({"notification": body})


async def answers(session: aiohttp.ClientSession, url: str) -> str:
    """The body of a GET, waiting (30 s at most) for the server to start answering 200."""
    deadline = time.monotonic() + 30
    last: object = "no answer"
    while time.monotonic() < deadline:
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return await response.text()
                last = response.status
        except aiohttp.ClientError as exc:
            last = exc
        await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not answer 200 within 30 s (last: {last})")


def counted(exposition: str, name: str, label: str | None = None) -> dict[str, int]:
    found: dict[str, int] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name:
                key = sample.labels.get(label, "") if label else ""
                found[key] = found.get(key, 0) + int(sample.value)
    return found


async def one_round(
    session: aiohttp.ClientSession,
    dt: FakeDt,
    receiver: str,
    workers: list[str],
    notifications: int,
) -> tuple[float, int, float]:
    """Seconds to accept the burst, fetches, freshest fetch after the last acceptance."""
    project = str(uuid.uuid4())
    dt.exports[project] = EXPORT  # served as that project's own

    async def send(n: int) -> float:
        async with session.post(
            f"{receiver}/webhook",
            data=notification(project, n),
            headers={"X-Api-Key": TOKEN},
        ) as response:
            assert response.status == 202, await response.text()
            accepted = (await response.json())["accepted_at"]
        return datetime.fromisoformat(accepted).timestamp()

    before = await settled(session, workers)
    started = time.perf_counter()
    accepted = await asyncio.gather(*(send(n) for n in range(notifications)))
    burst = time.perf_counter() - started
    enqueued = sum(counted(await answers(session, f"{receiver}/metrics"), JOBS).values())
    deadline = time.monotonic() + 60
    while await settled(session, workers) - before < notifications:
        if time.monotonic() > deadline:
            raise SystemExit(f"the workers did not settle {notifications} jobs within 60 s")
        await asyncio.sleep(0.2)
    fetches = [fetch.started for fetch in dt.fetches_of(project)]
    assert enqueued >= notifications, (enqueued, notifications)
    return burst, len(fetches), max(fetches) - max(accepted)


async def settled(session: aiohttp.ClientSession, workers: list[str]) -> int:
    """Jobs settled by every worker so far, retries left out (they settle again later)."""
    total = 0
    for url in workers:
        outcomes = counted(await answers(session, f"{url}/metrics"), "dtrack_worker_jobs_total")
        total += sum(n for outcome, n in outcomes.items() if outcome != "retried")
    return total


def spawn(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    script = shutil.which("dtrack-worker", path=str(Path(sys.executable).parent))
    assert script, "install the project first: scripts/setup"
    with log.open("wb") as out:  # a file, not a pipe: nothing to fill up and block
        return subprocess.Popen([script, command], env=env, stdout=out, stderr=out)


async def run(
    dt: FakeDt, prefix: str, logs: Path, notifications: int, worker_count: int, rounds: int
) -> list[tuple[float, int, float]]:
    """A receiver and the workers started, ``rounds`` bursts sent, the processes stopped."""
    base = dict(os.environ) | {
        "DTRACK_WORKER_PREFIX": prefix,
        "DTRACK_WORKER_LOG_LEVEL": "WARNING",
        "DTRACK_WORKER_EMIT": "snapshot",
    }
    port = free_port()
    receiver_env = base | {
        "DTRACK_WORKER_LISTEN": f"127.0.0.1:{port}",
        "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
        "DTRACK_WORKER_COALESCE_SECONDS": "2",
    }
    processes = [spawn("receiver", receiver_env, logs / "receiver.log")]
    workers = []
    for n in range(worker_count):
        worker_port = free_port()
        worker_env = base | {
            "DTRACK_WORKER_LISTEN": f"127.0.0.1:{worker_port}",
            "DTRACK_WORKER_DT_URL": dt.url,
            "DTRACK_WORKER_DT_API_KEY": API_KEY,
            "DTRACK_WORKER_PREFETCH": "8",
        }
        processes.append(spawn("worker", worker_env, logs / f"worker-{n + 1}.log"))
        workers.append(f"http://127.0.0.1:{worker_port}")
    receiver = f"http://127.0.0.1:{port}"
    rows = []
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=notifications)
        ) as session:
            for url in [receiver, *workers]:
                await answers(session, f"{url}/readyz")
            for _ in range(rounds):
                rows.append(await one_round(session, dt, receiver, workers, notifications))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
    return rows


async def main(notifications: int, worker_count: int, rounds: int) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    logs = Path(tempfile.mkdtemp(prefix="bench-coalescing-"))
    try:
        async with FakeDt() as dt:
            rows = await run(dt, prefix, logs, notifications, worker_count, rounds)
    finally:
        await delete_topology(prefix)

    print(
        f"{notifications} notifications for one project per round, 1 receiver and "
        f"{worker_count} worker processes, coalescing 2 s, {os.cpu_count()} cores (logs: {logs})"
    )
    print(f"{'round':>5} {'accepted in s':>14} {'fetches':>8} {'freshest fetch s':>17}")
    for n, (burst, fetches, freshest) in enumerate(rows, 1):
        print(f"{n:>5} {burst:>14.2f} {fetches:>8} {freshest:>+17.2f}")
    target = TARGET_SECONDS * notifications / 100
    print(
        f"targets: accepted in <= {target:.2f} s (1.5 s per 100), "
        f"fetches <= {1 + worker_count}, freshest fetch > 0 s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(arguments.notifications, arguments.workers, arguments.rounds))
