"""The console's pages over a big store: 1,000 projects (each its own line) and 300,000 findings
(SQLite), with the
history tables full (a finding history row per finding plus a changed one per ten, the job
history at its cap of 10,000 rows, three DT tags per project, 50 sync runs), the server time of
the overview, the projects list (first page, a search, a tag, a deep page), a project's page
and the lines list (the same four) (not a test).

    .venv/bin/python -m bench.console [--projects 1000] [--findings 300]

The store is written with bulk SQL in the store's own schema (migrations applied by the store's
code); the counters the projects table keeps are filled to match the findings. The console runs
in this process against the real RabbitMQ (a topology of its own, deleted at the end); each
page is asked for 30 times after a warm-up, and a middleware records each handler's time.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bench.receiver import delete_topology
from worker.adapters.state import backend, console_runs, history_queries, schema
from worker.adapters.state.queries import SEVERITIES
from worker.core.config import Settings
from worker.service.console.app import create_app

TOKEN = "bench-console-token-0123456789"
REPEAT = 30
STATUSES = ("open",) * 6 + ("resolved",) * 3 + ("suppressed",)
TAGS = [f"team-{n:02d}" for n in range(20)]


def build_store(path: Path, projects: int, per_project: int) -> None:
    url = f"sqlite:///{path}"
    dialect = backend.dialect_of(url)
    connection = backend.connector(url)()
    schema.migrate(connection, dialect)
    cursor = connection.cursor()
    rng = random.Random(26)
    now = time.time()
    uuids: list[str] = []
    cursor.execute("BEGIN")
    for n in range(projects):
        project = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        counts = dict.fromkeys(SEVERITIES, 0)
        rows = []
        for k in range(per_project):
            status = rng.choice(STATUSES)
            severity = rng.choice(SEVERITIES[:5])
            opened = now - rng.uniform(3600, 400 * 86400)
            resolved = None if status == "open" else opened + rng.uniform(600, 90 * 86400)
            if status == "open":
                counts[severity] += 1
            rows.append(
                (project, f"{project}:{k:05d}", status, severity, "f" * 16, "{}", None,
                 '{"vulnerability": {"vulnId": "CVE-2026-0000"}}', opened, opened, resolved)
            )  # fmt: skip
        cursor.executemany(
            "INSERT INTO findings (project, finding_key, status, severity, fingerprint, tracked, "
            "epss, snapshot, first_seen, opened_at, resolved_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        history: list[tuple[object, ...]] = [
            (project, row[1], "opened", row[9], row[9], row[3], None, None) for row in rows
        ]
        history += [
            (project, row[1], "changed", row[9] + 86400, row[9] + 86400, row[3],
             '{"severity":["medium","high"],"cvss_v3_score":[6.7,8.1]}', None)
            for row in rows[::10]
        ]  # fmt: skip
        cursor.executemany(
            "INSERT INTO finding_history (project, finding_key, kind, at, recorded_at, severity, "
            "changes, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            history,
        )
        tags = sorted(rng.sample(TAGS, 3))
        cursor.executemany(
            "INSERT INTO project_tags (tag, project) VALUES (?, ?)", [(t, project) for t in tags]
        )
        columns = ", ".join(f"open_{s}" for s in SEVERITIES)
        cursor.execute(
            "INSERT INTO projects (uuid, name, version, last_exported_at, last_seen_at, "
            f"last_outcome, last_outcome_at, tags, {columns}) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, {', '.join('?' * len(SEVERITIES))})",
            (project, f"project-{n:04d}", "1.0", "2026-12-01T00:00:00Z",
             now - rng.uniform(0, 86400), "done", now - rng.uniform(0, 86400),
             orjson.dumps(tags).decode(), *counts.values()),
        )  # fmt: skip
        uuids.append(project)
        # its line (one version: the current one), counted like the project
        line = str(uuid.UUID(int=rng.getrandbits(128), version=5))
        cursor.execute(
            "INSERT INTO lines (id, source, grp, name, current_project, current_version, "
            f"revision, updated_at, {columns}) "
            f"VALUES (?, 'dependency-track', '', ?, ?, '1.0', 1, ?, "
            f"{', '.join('?' * len(SEVERITIES))})",
            (line, f"project-{n:04d}", project, now, *counts.values()),
        )
        cursor.execute(
            "INSERT INTO line_versions (line, project, version, is_latest, active, "
            "last_applied_at) VALUES (?, ?, '1.0', 1, 1, ?)",
            (line, project, now),
        )
    jobs = []
    for k in range(history_queries.MAX_JOBS):  # the job history at its cap, the last day's
        finished = now - 86400 + k * 8.64
        jobs.append((f"job-{k}", rng.choice(uuids), "SYNC", f"sync:run-{k % 50}", 1, "done",
                     finished - rng.uniform(0.05, 3), finished, 13))  # fmt: skip
    cursor.executemany(
        "INSERT INTO job_history (job_id, project, kind, run_id, attempt, outcome, started_at, "
        "finished_at, transitions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        jobs,
    )
    for k in range(console_runs.MAX_RUNS):
        cursor.execute(
            "INSERT INTO sync_runs (id, started_at, targets, summary, settled) "
            "VALUES (?, ?, '{}', 'sync: 0 of 0 projects synced', '{}')",
            (f"sync:{uuid.UUID(int=rng.getrandbits(128), version=4)}", now - k * 600),
        )
    cursor.execute("COMMIT")
    cursor.execute("ANALYZE")
    connection.close()


async def measure(
    client: TestClient[web.Request, web.Application], times: list[float], path: str, shows: str
) -> tuple[float, float]:
    for _ in range(50):  # warm-up, until the page shows what it is measured for (RabbitMQ)
        if shows in await (await client.get(path)).text():
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"{path} never showed {shows!r}")
    times.clear()
    for _ in range(REPEAT):
        response = await client.get(path)
        assert response.status == 200, (path, response.status, await response.text())
    return statistics.median(times) * 1000, sorted(times)[int(len(times) * 0.95) - 1] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--findings", type=int, default=300, help="per project")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.sqlite3"
        started = time.perf_counter()
        build_store(path, args.projects, args.findings)
        print(
            f"store: {args.projects} projects, {args.projects * args.findings} findings, "
            f"{path.stat().st_size / 2**20:.0f} MiB, built in {time.perf_counter() - started:.1f} s"
        )
        prefix = f"bench-console-{uuid.uuid4().hex[:8]}"
        settings = Settings.from_env(
            {
                "DTRACK_WORKER_PREFIX": prefix,
                "DTRACK_WORKER_STATE_URL": f"sqlite:///{path}",
                "DTRACK_WORKER_CONSOLE_TOKEN": TOKEN,
            }
        )
        app = create_app(settings, TOKEN)
        times: list[float] = []

        @web.middleware
        async def timed(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            began = time.perf_counter()
            try:
                return await handler(request)
            finally:
                times.append(time.perf_counter() - began)

        app.middlewares.insert(0, timed)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            await client.get(f"/login?token={TOKEN}")
            middle = f"project-{args.projects // 2:04d}"
            first = await client.get(f"/projects?q={middle}")
            found = (await first.text()).split('href="/projects/', 1)[1].split('"', 1)[0]
            pages = {
                "overview /": ("/", "<td>jobs.parked</td>"),
                "projects, first page": ("/projects", "project-0049"),
                "projects, search": (f"/projects?q={middle[:-1]}", middle),
                "projects, a tag": ("/projects?tag=team-07", "team-07</a>"),
                "projects, page 10": ("/projects?offset=500", "project-0549"),
                "a project's page": (f"/projects/{found}", middle),
                "lines, first page": ("/lines", "project-0049"),
                "lines, search": (f"/lines?q={middle[:-1]}", middle),
                "lines, a tag": ("/lines?tag=team-07", "team-07</a>"),
                "lines, page 10": ("/lines?offset=500", "project-0549"),
            }
            for name, (page, shows) in pages.items():
                median, p95 = await measure(client, times, page, shows)
                print(f"{name:<24} median {median:6.1f} ms   p95 {p95:6.1f} ms  (server time)")
        finally:
            await client.close()
            await delete_topology(prefix)


if __name__ == "__main__":
    asyncio.run(main())
