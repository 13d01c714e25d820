"""Migration 0004 on a large store of the release before, and the plans of the store's queries
on it (not a test).

    .venv/bin/python -m bench.compaction [--projects 1000] [--findings 300] [--backends ...]

Builds a store with the schema of the release before (migrations 0001-0003 as shipped) and
``projects`` x ``findings`` rows in its form (tracked fields and snapshot as JSON; synthetic
findings from bench/synthetic.py, one in ten resolved), then times what an upgrade does: the
migration (``Store.migrate``, which workers run at start) and the packing of the older rows
(``Store.compact``, which `dtrack-worker state migrate` runs: a project at a time, in
transactions of ``compaction.BATCH`` rows), with the longest transaction (what a job of that
project may wait). Prints the store's size before and after (bench/store_size.py), then the
plan of each query the store runs on findings (EXPLAIN QUERY PLAN / EXPLAIN).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson

from bench import store_size
from bench.state import database
from bench.synthetic import export
from worker.adapters.state import backend, compaction, schema
from worker.adapters.state.store import Store
from worker.core import finding
from worker.core.config import Settings
from worker.core.tracking import fingerprint, snapshot, tracked

MIGRATIONS = Path(backend.__file__).parent / "migrations"
LEGACY = (1, 2, 3)

# the findings queries of worker/adapters/state (queries.py, reports.py), one project named
QUERIES = {
    "read_state": "SELECT finding_key, status, fingerprint, epss FROM findings WHERE project = %s",
    "read_stored": "SELECT * FROM findings WHERE project = %s AND finding_key IN (%s, %s)",
    "read_open": "SELECT * FROM findings WHERE project = %s AND status = 'open'",
    "open counts (apply)": "SELECT severity, COUNT(*) FROM findings "
    "WHERE project = %s AND status = 'open' GROUP BY severity",
    "oldest open per project (status)": "SELECT MIN(f.opened_at) FROM findings f "
    "WHERE f.project = %s AND f.status = 'open'",
    "resolve times (status)": "SELECT project, severity, AVG(resolved_at - opened_at) "
    "FROM findings WHERE status = 'resolved' GROUP BY project, severity",
    "oldest open (metrics)": "SELECT severity, MIN(opened_at) FROM findings "
    "WHERE status = 'open' GROUP BY severity",
    "upsert (apply)": "INSERT INTO findings (project, finding_key, status, severity, "
    "fingerprint, tracked, epss, snapshot, first_seen, opened_at) "
    "VALUES (%s, %s, 'open', 'low', '', '', NULL, '', 0, 0) ON CONFLICT (project, finding_key) "
    "DO UPDATE SET status = excluded.status",
    "legacy projects (compact)": "SELECT DISTINCT project FROM findings WHERE snapshot <> '' "
    "ORDER BY project",
    "legacy rows (compact)": "SELECT finding_key, tracked, snapshot FROM findings "
    "WHERE project = %s AND snapshot <> '' LIMIT 1000",
}


def legacy_rows(projects: list[str], per: int) -> list[tuple[Any, ...]]:
    """Rows as the release before wrote them: ``per`` synthetic findings for each project."""
    document = export(per, seed=11, project=str(uuid.UUID(int=0)))
    own = []
    for row in document["findings"]:
        fields = tracked(row)
        shot = snapshot(finding.parts(row, UTC))
        suffix = row["matrix"].split(":", 1)[1]
        own.append((suffix, fields, orjson.dumps(fields).decode(), orjson.dumps(shot).decode()))
    rng = random.Random(3)
    rows = []
    for project in projects:
        for suffix, fields, tracked_text, shot_text in own:
            resolved = rng.random() < 0.1
            at = 1.7e9 + rng.random() * 1e7
            rows.append(
                (
                    project, f"{project}:{suffix}", "resolved" if resolved else "open",
                    fields["severity"], fingerprint(fields), tracked_text, None, shot_text,
                    at, at, at + 86400 if resolved else None,
                )
            )  # fmt: skip
    return rows


def build(url: str, projects: int, per: int, folder: Path) -> list[str]:
    legacy = folder / "legacy"
    legacy.mkdir(exist_ok=True)
    for path in MIGRATIONS.glob("*.sql"):
        if int(path.name[:4]) in LEGACY:
            shutil.copy(path, legacy / path.name)
    uuids = [str(uuid.uuid4()) for _ in range(projects)]
    dialect = backend.dialect_of(url)
    file = backend.sqlite_path(url)
    # as the release before created it: SQLite's file without incremental auto-vacuum
    connection: Any = (
        backend.connector(url)()
        if file is None
        else sqlite3.connect(file, isolation_level=None, check_same_thread=False)
    )
    try:
        if file is not None:
            connection.execute("PRAGMA journal_mode=WAL")
        schema.migrate(connection, dialect, legacy)
        cursor = connection.cursor()
        cursor.execute(dialect.begin)
        cursor.executemany(
            dialect.sql("INSERT INTO projects (uuid, name, version) VALUES (%s, 'bench', '1')"),
            [(project,) for project in uuids],
        )
        rows = legacy_rows(uuids, per)
        if dialect.name == "postgresql":
            with cursor.copy(
                "COPY findings (project, finding_key, status, severity, fingerprint, tracked, "
                "epss, snapshot, first_seen, opened_at, resolved_at) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(
                "INSERT INTO findings (project, finding_key, status, severity, fingerprint, "
                "tracked, epss, snapshot, first_seen, opened_at, resolved_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        cursor.execute("COMMIT")
        cursor.execute("ANALYZE")
    finally:
        connection.close()
    return uuids


def plans(url: str, project: str) -> list[str]:
    connection = backend.connector(url)()
    dialect = backend.dialect_of(url)
    try:
        cursor = connection.cursor()
        cursor.execute("ANALYZE")
        lines = []
        for name, query in QUERIES.items():
            params: tuple[str, ...] = (project,) * query.count("%s")
            if "IN (%s, %s)" in query:
                params = (project, f"{project}:a", f"{project}:b")
            if dialect.name == "sqlite":
                cursor.execute("EXPLAIN QUERY PLAN " + dialect.sql(query), params)
                plan = "; ".join(row[-1] for row in cursor.fetchall())
            else:
                cursor.execute("BEGIN")  # the upsert is explained, not run
                cursor.execute("EXPLAIN (COSTS OFF) " + query, params)
                plan = "; ".join(" ".join(row[0].split()) for row in cursor.fetchall())
                cursor.execute("ROLLBACK")
            lines.append(f"  {name}: {plan}")
        return lines
    finally:
        connection.close()


async def measure(url: str, projects: int, per: int, folder: Path) -> None:
    started = time.perf_counter()
    uuids = build(url, projects, per, folder)
    print(f"built {projects * per} findings of the release before in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    before = store_size.measure(url)
    settings = Settings.from_env({"DTRACK_WORKER_STATE_URL": url})
    async with Store.open(settings.state, migrate=False) as store:
        started = time.perf_counter()
        applied = await store.migrate()
        migrated = time.perf_counter() - started
        longest = 0.0
        original = compaction.compact_batch

        def timed(cursor: Any, dialect: backend.Dialect, project: str, limit: int) -> int:
            nonlocal longest
            began = time.perf_counter()
            try:
                return original(cursor, dialect, project, limit)
            finally:
                longest = max(longest, time.perf_counter() - began)

        compaction.compact_batch = timed  # type: ignore[assignment]
        try:
            started = time.perf_counter()
            compacted = await store.compact()
            packing = time.perf_counter() - started
        finally:
            compaction.compact_batch = original
        packed = store_size.measure(url)
        started = time.perf_counter()
        rewritten = await store.rewrite()
        if not rewritten:  # PostgreSQL: only asked for (state migrate --rewrite)
            started = time.perf_counter()
            rewritten = await store.rewrite(full=True)
        rewriting = time.perf_counter() - started
    after = store_size.measure(url)
    print(
        f"migration {applied}: {migrated:.2f} s; packed {compacted.findings} findings of "
        f"{compacted.projects} projects in {packing:.1f} s "
        f"({packing / max(compacted.findings, 1) * 1e6:.0f} us each), longest transaction "
        f"{longest * 1e3:.0f} ms"
    )
    if rewritten:
        print(f"findings rewritten (state migrate's VACUUM; PostgreSQL's with --rewrite): "
              f"{rewriting:.1f} s")  # fmt: skip
    print(f"size before: {before.total / 1e6:.0f} MB ({before.total / before.findings:.0f} "
          f"bytes per finding); packed: {packed.total / 1e6:.0f} MB "
          f"({packed.total / packed.findings:.0f}); after: {after.total / 1e6:.0f} MB "
          f"({after.total / after.findings:.0f})")  # fmt: skip
    print("\n".join(after.lines()))
    print(f"plans on {projects} projects:")
    print("\n".join(plans(url, uuids[len(uuids) // 2])))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--findings", type=int, default=300, help="per project")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        for chosen in args.backends.split(","):
            print(f"== {chosen}", flush=True)
            with database(chosen, Path(name)) as url:
                await measure(url, args.projects, args.findings, Path(name))


if __name__ == "__main__":
    asyncio.run(main())
