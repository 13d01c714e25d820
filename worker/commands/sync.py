"""``dtrack-worker sync``: refresh the named projects now, and with ``--wait`` follow them."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING

from worker.commands.common import EXIT_INVALID, EXIT_OK, add_command, seconds, settings_from
from worker.core import topology
from worker.core.config import Settings

if TYPE_CHECKING:
    from worker.adapters.broker import Broker
    from worker.service import sync


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "sync",
        run,
        help="queue a job for the named projects now, and follow them with --wait",
        description=(
            "Queue a job (trigger SYNC) for each PROJECT: a UUID, or a name or name@version "
            "as DT knows it (an unknown or ambiguous name is an error that lists the "
            "candidates, exit 2). With --wait, print what each job does as it happens "
            "(fetching, findings and transitions, retries, the park reason) and exit 0 when "
            "every project synced, 1 otherwise."
        ),
        examples="""
            dtrack-worker sync 3b1c0e1e-5a0f-4c6e-9d43-6a1b2c3d4e5f
            dtrack-worker sync acme-shop@2.1.0 acme-blog --wait
            dtrack-worker sync acme-shop --wait --timeout 120
        """,
    )
    parser.add_argument("projects", nargs="+", metavar="PROJECT", help="UUID, name or name@version")
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
    from worker.service import sync

    async with DtClient.open(settings.dt) as dt:
        targets = [await sync.resolve(dt, argument) for argument in args.projects]
    broker = Broker(settings.broker, topology.configured(settings.broker))
    await broker.start()
    try:
        await broker.wait_ready(within=30)
        return await _enqueue_and_follow(settings, broker, targets, args)
    finally:
        await broker.close()


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
