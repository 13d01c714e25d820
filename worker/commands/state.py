"""``dtrack-worker state``: migrate the state store, baseline projects, resync a consumer."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from worker.adapters import schemas, timezones
from worker.adapters.broker import Broker
from worker.adapters.dtrack import DtClient
from worker.adapters.metrics import WorkerMetrics
from worker.adapters.state.store import Store
from worker.commands.common import EXIT_OK, add_command, settings_from
from worker.core import topology
from worker.core.config import Settings
from worker.core.errors import ConfigError
from worker.core.jobs import Job, utc_timestamp
from worker.service.backfill import PAGE_SIZE
from worker.service.delta import DeltaOptions, Deltas
from worker.service.relay import Relay


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "state",
        run,
        help="the finding state store: migrate, baseline projects, resync a consumer",
        description=(
            "migrate: apply the state store's migrations (the workers do it at start too). "
            "baseline: record the current findings of projects without publishing events, for "
            "a downstream that already has them (fetches each export from DT). resync: publish "
            "`opened` again for every open finding (marked as a resync), from the store, for a "
            "consumer that lost its copy. Projects are named by uuid, or --all."
        ),
        examples="""
            dtrack-worker state migrate
            dtrack-worker state baseline --all            # before the first webhook arrives
            dtrack-worker state resync 3f6c0b2e-...       # one project's consumer lost its copy
        """,
    )
    parser.add_argument("action", choices=["migrate", "baseline", "resync"])
    parser.add_argument("projects", nargs="*", metavar="PROJECT", help="project uuids")
    parser.add_argument("--all", action="store_true", help="every project (DT's, or the store's)")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    settings = settings_from(environ, log=True)
    if args.action != "migrate" and not args.all and not args.projects:
        raise ConfigError(f"state {args.action}: name project uuids, or --all")
    started = time.monotonic()
    if args.action == "migrate":
        applied = asyncio.run(_migrate(settings))
        print(f"state store {settings.state.display_url}: applied {applied or 'nothing: current'}")
    elif args.action == "baseline":
        count = asyncio.run(_baseline(settings, args.projects, every=args.all))
        print(f"baseline: recorded the findings of {count} projects, without events")
    else:
        projects, events = asyncio.run(_resync(settings, args.projects, every=args.all))
        print(f"resync: published {events} opened events for {projects} projects")
    print(f"took {time.monotonic() - started:.1f} s")
    return EXIT_OK


async def _migrate(settings: Settings) -> list[int]:
    async with Store.open(settings.state, migrate=False) as store:
        return await store.migrate()


def _deltas(settings: Settings, store: Store, dt: Any, relay: Relay | None = None) -> Deltas:
    options = DeltaOptions(
        source=settings.dt.event_source,
        zone=timezones.zone(settings.dt.timezone),
        epss_delta=settings.state.epss_delta,
        baseline=True,
    )
    return Deltas(
        store,
        dt,
        schemas.load().fpf,
        WorkerMetrics.create(),
        options,
        committed=relay.wake if relay else lambda: None,
    )


async def _baseline(settings: Settings, projects: list[str], *, every: bool) -> int:
    settings.dt.require()
    async with Store.open(settings.state) as store, DtClient.open(settings.dt) as dt:
        deltas = _deltas(settings, store, dt)
        if every:
            projects = await _portfolio(dt)
        run = f"baseline:{uuid.uuid4()}"
        for project in projects:
            job = Job(
                job_id=run + ":" + project,
                project_uuid=project.lower(),
                project_name=None,
                trigger="BASELINE",
                notification_id=run,
                accepted_at=utc_timestamp(datetime.now(UTC)),
                correlation_id=run,
            )
            ref = {"job_id": job.job_id, "trigger": "BASELINE", "correlation_id": run,
                   "accepted_at": job.accepted_at}  # fmt: skip
            with await dt.fetch_export(job.project_uuid) as raw:
                await deltas.export(
                    job, raw.raw, time.perf_counter(), ref, silent=True, release=raw.release
                )
            print(f"baseline: {project}", file=sys.stderr, flush=True)
        return len(projects)


async def _portfolio(dt: DtClient) -> list[str]:
    found: list[str] = []
    page = 1
    while True:
        projects, _ = await dt.list_projects(page, PAGE_SIZE)
        found += [p["uuid"].lower() for p in projects if p["uuid"].lower() not in found]
        if len(projects) < PAGE_SIZE:
            return found
        page += 1


async def _resync(settings: Settings, projects: list[str], *, every: bool) -> tuple[int, int]:
    broker = Broker(settings.broker, topology.configured(settings.broker))
    await broker.start()
    try:
        await broker.wait_ready(within=30)
        async with Store.open(settings.state) as store:
            relay = Relay(store, broker, WorkerMetrics.create())
            deltas = _deltas(settings, store, None, relay)
            if every:
                projects = await store.all_projects()
            run = str(uuid.uuid4())
            events = 0
            for project in projects:
                events += await deltas.resync(project.lower(), run)
            while await relay.drain():  # publish them now; a worker's relay would, later
                pass
            return len(projects), events
    finally:
        await broker.close()
