"""``dtrack-worker sync``: refresh the named projects now, and with ``--wait`` follow them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from worker.commands.common import EXIT_INVALID, EXIT_OK, add_command, seconds, settings_from
from worker.core import topology
from worker.core.config import Settings
from worker.core.errors import ConfigError

if TYPE_CHECKING:
    from worker.adapters.broker import Broker
    from worker.adapters.dtrack import DtClient
    from worker.service import sync


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "sync",
        run,
        description=(
            "Queue a job (trigger SYNC) for each PROJECT: a UUID, or a name or name@version "
            "as DT knows it (an unknown or ambiguous name is an error that lists the "
            "candidates, exit 2). With DTRACK_WORKER_TRACK=line (the default) a name without "
            "@version names a LINE, all versions of the project: NAME, NAME#TRACK "
            "(DTRACK_WORKER_LINE_BY's track) or GROUP/NAME; its versions are listed from DT "
            "and its current version is synced (the one DT flags isLatest, else the active "
            "version last imported). A line DT does not know, that names several lines, or "
            "with no active version is an error (exit 1), and nothing is queued. "
            "With --wait, print what each job does as it happens "
            "(fetching, findings and transitions, retries, the park reason) and exit 0 when "
            "every project synced, 1 otherwise."
        ),
        examples="""
            dtrack-worker sync 3b1c0e1e-5a0f-4c6e-9d43-6a1b2c3d4e5f
            dtrack-worker sync acme-shop@2.1.0 acme-blog --wait
            dtrack-worker sync acme-shop --wait --timeout 120   # the line's current version
            dtrack-worker sync 'acme-shop#2' --wait             # track 2 of the line
        """,
    )
    parser.add_argument(
        "projects",
        nargs="+",
        metavar="PROJECT|LINE",
        help="UUID, name@version, or (by line) NAME, NAME#TRACK or GROUP/NAME",
    )
    parser.add_argument("--wait", action="store_true", help="follow each job until it settles")
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=600.0,
        metavar="SECONDS",
        help="with --wait, give up waiting after this long (default 600; the jobs go on)",
    )


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    import asyncio  # ssl, sockets, logging: not for --help (see common.py)

    settings = settings_from(environ, log=True)
    settings.dt.require()
    return asyncio.run(_sync(settings, args))


async def _sync(settings: Settings, args: argparse.Namespace) -> int:
    # aiohttp, aio-pika: only when the command runs (see common.py)
    from worker.adapters.broker import Broker
    from worker.adapters.dtrack import DtClient
    from worker.service.sync_lines import LineRefused

    async with DtClient.open(settings.dt) as dt:
        try:
            targets = [await _target(settings, dt, argument) for argument in args.projects]
        except LineRefused as exc:
            print(f"dtrack-worker sync: {exc}", file=sys.stderr)
            return EXIT_INVALID
    broker = Broker(settings.broker, topology.configured(settings.broker))
    await broker.start()
    try:
        await broker.wait_ready(within=30)
        return await _enqueue_and_follow(settings, broker, targets, args)
    finally:
        await broker.close()


async def _target(settings: Settings, dt: DtClient, argument: str) -> sync.Target:
    """The project ``argument`` names, or by line (TRACK=line) its line's current version."""
    from worker.service import sync
    from worker.service.sync_lines import LineRefused, resolve_line

    if settings.state.track != "line" or sync.UUID.match(argument):
        return await sync.resolve(dt, argument)
    line = await resolve_line(dt, argument, settings.state.line_by, settings.dt.event_source)
    if line is not None:
        print(
            f"{line.label}: the line's current version is {line.target.label} "
            f"({line.target.uuid}: {line.because})",
            flush=True,
        )
        return line.target
    try:
        return await sync.resolve(dt, argument)  # name@version: a project
    except ConfigError as exc:
        raise LineRefused(str(exc)) from None  # by line, a name that names nothing: exit 1


async def _enqueue_and_follow(
    settings: Settings, broker: Broker, targets: list[sync.Target], args: argparse.Namespace
) -> int:
    from worker.adapters.amqp import connect_once
    from worker.core import jobs  # its validation loads jsonschema-rs: not for --help
    from worker.service import sync

    planned = sync.run_for(targets)
    run_id, queued, made = planned.id, planned.targets, planned.jobs
    if not args.wait:
        await broker.enqueue(made)
        for job in made:
            print(f"{queued[job.job_id].label}: queued (job {job.job_id})")
        return EXIT_OK
    connection = await connect_once(settings.broker)  # any node of the cluster that answers
    async with connection:
        channel = await connection.channel()
        # declared before the jobs go, so no report is missed; gone with this connection
        queue = await channel.declare_queue(
            f"{settings.broker.prefix}.sync.{run_id.split(':')[1][:8]}", exclusive=True
        )
        await broker.enqueue(made, headers={jobs.PROGRESS_HEADER: queue.name})
        for job in made:
            print(f"{queued[job.job_id].label}: queued (job {job.job_id})", flush=True)
        last = await sync.follow(
            channel, queue, queued, within=args.timeout, say=lambda line: print(line, flush=True)
        )
    synced = sum(step in sync.SYNCED for step in last.values())
    print(f"sync: {synced} of {len(last)} projects synced")  # the result: with the story
    return EXIT_OK if synced == len(last) else EXIT_INVALID
