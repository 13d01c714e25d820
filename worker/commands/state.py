"""``dtrack-worker state``: migrate the state store, baseline projects, resync a consumer."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from worker.commands.common import EXIT_INVALID, EXIT_OK, add_command, settings_from
from worker.core import topology
from worker.core.config import Settings
from worker.core.errors import ConfigError, GuardPending, ProjectGone, SuspiciousExport

if TYPE_CHECKING:
    from worker.adapters.dtrack import DtClient
    from worker.adapters.state.store import Compacted, Store
    from worker.service.delta import Deltas
    from worker.service.relay import Relay

# aiohttp, aio-pika, psycopg, the service: imported where used, when the command runs (see
# common.py)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "state",
        run,
        description=(
            "migrate: apply the state store's migrations (the workers do it at start too), then "
            "pack the findings an older release stored in full, a project at a time while "
            "workers run; a SQLite store an older release created is then rewritten once "
            "(VACUUM: jobs wait meanwhile) to give the space back (on PostgreSQL, with "
            "--rewrite only: VACUUM FULL of the findings table, jobs wait meanwhile). With "
            "DTRACK_WORKER_TRACK=line (the default) it then moves the stored projects to lines, "
            "without publishing anything: each line's state is built from the stored findings "
            "of its current version (DT's, when DTRACK_WORKER_DT_URL is set; else the version "
            "applied last), and lines that have a state already are left as they are; "
            "--dry-run only says what it would write. "
            "baseline: record the current findings of projects without publishing events, for "
            "a downstream that already has them (fetches each export from DT); a project whose "
            "export is older than the one the store holds, or that the mass-resolve guard "
            "holds back (unless --force), is not recorded, and the command exits 1 naming it. "
            "resync: publish `opened` again for every open finding (marked as a resync), from "
            "the store, for a consumer that lost its copy (DTRACK_WORKER_TRACK=line: every open "
            "finding of the project's lines, as finding-change.v2, once per line; after "
            "`state migrate` this gives a v2 consumer the open set); a project the store does "
            "not hold is refused (exit 1, nothing published). Projects are named by uuid, or --all."
        ),
        examples="""
            dtrack-worker state migrate
            dtrack-worker state migrate --rewrite         # give the packed rows' space back
            dtrack-worker state migrate --dry-run         # the lines it would build, no write
            dtrack-worker state baseline --all            # before the first webhook arrives
            dtrack-worker state resync 3f6c0b2e-...       # one project's consumer lost its copy
        """,
    )
    parser.add_argument("action", choices=["migrate", "baseline", "resync"])
    parser.add_argument("projects", nargs="*", metavar="PROJECT", help="project uuids")
    parser.add_argument("--all", action="store_true", help="every project (DT's, or the store's)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="baseline: record exports even past the mass-resolve guard",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help=(
            "migrate: apply nothing, write nothing; say which lines the store's projects would "
            "move to, from which version, with how many findings"
        ),
    )
    parser.add_argument(
        "--rewrite",
        action="store_true",
        help=(
            "migrate: rewrite the findings without their free space after packing them "
            "(SQLite: VACUUM, done once anyway for a store an older release created; "
            "PostgreSQL: VACUUM FULL findings). Jobs wait meanwhile: see docs/state.md"
        ),
    )


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    import asyncio  # ssl, sockets, logging: not for --help (see common.py)

    settings = settings_from(environ, log=True)
    _refuse_misused(args)
    started = time.monotonic()
    code = EXIT_OK
    if args.action == "migrate" and args.dry_run:
        code = asyncio.run(_lines(settings, dry_run=True))
    elif args.action == "migrate":
        applied, compacted, rewritten = asyncio.run(_migrate(settings, full=args.rewrite))
        print(f"state store {settings.state.display_url}: applied {applied or 'nothing: current'}")
        if compacted.findings:
            print(
                f"packed {compacted.findings} findings of {compacted.projects} projects stored "
                "in full by an older release"
            )
        if rewritten:
            print("rewrote the findings without their free space (VACUUM)")
        code = asyncio.run(_lines(settings, dry_run=False))
    elif args.action == "baseline":
        count, refused = asyncio.run(
            _baseline(settings, args.projects, every=args.all, force=args.force)
        )
        print(f"baseline: recorded the findings of {count} projects, without events")
        for line in refused:
            print(f"baseline: {line}", file=sys.stderr)
        code = EXIT_INVALID if refused else EXIT_OK
    else:
        unknown, (projects, events) = asyncio.run(_resync(settings, args.projects, every=args.all))
        if unknown:
            for project in unknown:
                print(f"state resync: no project {project} in the state store", file=sys.stderr)
            print("state resync: nothing published", file=sys.stderr)
            return EXIT_INVALID
        print(f"resync: published {events} opened events for {projects} projects")
    print(f"took {time.monotonic() - started:.1f} s")
    return code


def _refuse_misused(args: argparse.Namespace) -> None:
    if args.action != "migrate" and not args.all and not args.projects:
        raise ConfigError(f"state {args.action}: name project uuids, or --all")
    if args.force and args.action != "baseline":
        raise ConfigError(f"state {args.action}: --force is for baseline only")
    if args.rewrite and args.action != "migrate":
        raise ConfigError(f"state {args.action}: --rewrite is for migrate only")
    if args.dry_run and (args.action != "migrate" or args.rewrite):
        raise ConfigError(f"state {args.action}: --dry-run is for migrate only, without --rewrite")


async def _migrate(settings: Settings, *, full: bool) -> tuple[list[int], Compacted, bool]:
    from worker.adapters.state.store import Store

    async with Store.open(settings.state, migrate=False) as store:
        applied = await store.migrate()
        compacted = await store.compact()
        return applied, compacted, await store.rewrite(full=full)


async def _lines(settings: Settings, *, dry_run: bool) -> int:
    """The lines step of migrate (``service.line_migration``); a dry run reads only."""
    from worker.adapters import timezones
    from worker.adapters.dtrack import DtClient
    from worker.adapters.state.store import Store
    from worker.service import line_migration

    if settings.state.track != "line":
        return EXIT_OK
    options = line_migration.Options(
        source=settings.dt.event_source,
        zone=timezones.zone(settings.dt.timezone),
        line_by=settings.state.line_by,
        dry_run=dry_run,
    )
    async with contextlib.AsyncExitStack() as stack:
        store = await stack.enter_async_context(Store.open(settings.state, existing=True))
        dt = None
        if settings.dt.url:
            settings.dt.require()  # an address without a key: said as every command says it
            dt = await stack.enter_async_context(DtClient.open(settings.dt))
        migrated = await line_migration.migrate(store, dt, options)
    if migrated.refused:
        print(f"lines: {migrated.refused}", file=sys.stderr)
        return EXIT_OK  # the store is migrated: the jobs build the lines
    if not migrated.outcomes and not migrated.built:
        return EXIT_OK  # no project to move: nothing to say
    asked = "DT's versions" if settings.dt.url else "the store's projects only (DT not asked)"
    print(
        f"lines: {len(migrated.outcomes)} from {asked}, without events; "
        f"{migrated.built} built before, left as they are"
    )
    for outcome in migrated.outcomes:
        print(f"  {line_migration.describe(outcome)}")
    return EXIT_OK


def _deltas(settings: Settings, store: Store, dt: Any, relay: Relay | None = None) -> Deltas:
    from worker.adapters import schemas, timezones
    from worker.adapters.metrics import WorkerMetrics
    from worker.service.delta import DeltaOptions, Deltas

    options = DeltaOptions(
        source=settings.dt.event_source,
        zone=timezones.zone(settings.dt.timezone),
        epss_delta=settings.state.epss_delta,
        baseline=True,
        clock_skew_tolerance=settings.state.clock_skew_tolerance,
        guard=settings.state.mass_resolve,
        track=settings.state.track,
        line_by=settings.state.line_by,
        carry_triage=settings.state.carry_triage,
    )
    return Deltas(
        store,
        dt,
        schemas.load().fpf,
        WorkerMetrics.create(),
        options,
        committed=relay.committed if relay else lambda _: None,
    )


async def _baseline(
    settings: Settings, projects: list[str], *, every: bool, force: bool
) -> tuple[int, list[str]]:
    """The projects recorded, and a line for each one that was not (with why)."""
    from worker.adapters.dtrack import DtClient
    from worker.adapters.state.store import Store
    from worker.core.jobs import Job, utc_timestamp

    settings.dt.require()
    recorded, refused = 0, []
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
            try:
                with await dt.fetch_export(job.project_uuid) as raw:
                    outcome, _ = await deltas.export(
                        job,
                        raw.raw,
                        time.perf_counter(),
                        ref,
                        silent=True,
                        force=force,
                        release=raw.release,
                    )
            except (SuspiciousExport, GuardPending, ProjectGone) as exc:
                refused.append(f"{project}: not recorded: {exc}")
                continue
            if outcome == "stale":  # the store holds a later export: recording would go back
                (report,) = await store.projects(job.project_uuid)
                refused.append(
                    f"{project}: not recorded: the store holds an export taken at "
                    f"{report.last_exported_at}, later than DT's export now (stale); DT's "
                    "clock may be behind, or another export was applied meanwhile"
                )
                continue
            recorded += 1
            print(f"baseline: {project}", file=sys.stderr, flush=True)
        return recorded, refused


async def _portfolio(dt: DtClient) -> list[str]:
    from worker.service.backfill import PAGE_SIZE

    found: list[str] = []
    page = 1
    while True:
        projects, _ = await dt.list_projects(page, PAGE_SIZE)
        found += [p["uuid"].lower() for p in projects if p["uuid"].lower() not in found]
        if len(projects) < PAGE_SIZE:
            return found
        page += 1


async def _resync(
    settings: Settings, projects: list[str], *, every: bool
) -> tuple[list[str], tuple[int, int]]:
    """The named projects the store does not hold (then nothing is published), else the
    projects and the events published."""
    from worker.adapters.state.store import Store

    # first only read (StoreMissing for a mistyped path: no file, directory or migration made)
    async with Store.open(settings.state, existing=True) as store:
        known = await store.all_projects()
    unknown = [] if every else sorted({p.lower() for p in projects} - set(known))
    if unknown:  # refused before anything is written: no project is made up
        return unknown, (0, 0)
    async with Store.open(settings.state) as store:
        return [], await _republish(settings, store, known if every else projects)


async def _republish(settings: Settings, store: Store, projects: list[str]) -> tuple[int, int]:
    from worker.adapters.broker import Broker
    from worker.adapters.metrics import WorkerMetrics
    from worker.service.relay import Relay

    broker = Broker(settings.broker, topology.configured(settings.broker))
    await broker.start()
    try:
        await broker.wait_ready(within=30)
        relay = Relay(store, broker, WorkerMetrics.create())
        deltas = _deltas(settings, store, None, relay)
        run = str(uuid.uuid4())
        events = 0
        for project in projects:
            events += await deltas.resync(project.lower(), run)
        while await relay.drain():  # publish them now; a worker's relay would, later
            pass
        return len(projects), events
    finally:
        await broker.close()
