"""``dtrack-worker backfill``: a job for every DT project, to catch up or reconcile."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from worker.commands.common import (
    EXIT_INVALID,
    EXIT_OK,
    add_command,
    rate,
    settings_from,
)
from worker.core import topology, urls
from worker.core.errors import PermanentError

if TYPE_CHECKING:
    from worker.service.backfill import Progress


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "backfill",
        run,
        description=(
            "Page through DT's projects (GET /api/v1/project; needs VIEW_PORTFOLIO) and queue "
            "one job per project, trigger BACKFILL, for the workers. Run it when dtrack-worker "
            "starts next to an existing DT, or after an outage. Safe to run twice, and while "
            "projects come and go. Progress goes to stderr, the summary to stdout."
        ),
        examples="""
            dtrack-worker backfill
            dtrack-worker backfill --active-only --rate 5
            dtrack-worker backfill --tag production
        """,
    )
    parser.add_argument("--active-only", action="store_true", help="skip inactive projects")
    parser.add_argument("--tag", help="only projects with this tag")
    parser.add_argument(
        "--rate",
        type=rate,
        metavar="N",
        help="at most N jobs per second, 0.001 to 1e6 (default: no limit)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when the portfolio changed while it was read (every project seen is "
        "still queued; the message on stderr says what moved)",
    )


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    # asyncio, aiohttp, aio-pika, OpenTelemetry: only when the command runs (see common.py)
    import asyncio

    from worker.adapters import tracing
    from worker.adapters.broker import Broker
    from worker.adapters.dtrack import DtClient
    from worker.service.backfill import backfill

    settings = settings_from(environ, log=True)
    settings.dt.require()

    def report(progress: Progress) -> None:
        print(f"backfill: {progress.line()}", file=sys.stderr, flush=True)

    async def main() -> Progress:
        broker = Broker(settings.broker, topology.configured(settings.broker))
        await broker.start()
        try:
            await broker.wait_ready(within=30)
            async with DtClient.open(settings.dt) as dt:
                return await backfill(
                    dt,
                    broker,
                    active_only=args.active_only,
                    tag=args.tag,
                    rate=args.rate,
                    report=report,
                    scope=settings.worker.scope,
                )
        finally:
            await broker.close()

    tracing.configure(environ)
    try:
        progress = asyncio.run(main())
    except PermanentError as exc:
        print(f"dtrack-worker backfill: {urls.redact(str(exc))}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        tracing.shutdown()  # exports the backfill's trace before the process ends
    print(
        f"backfill done: {progress.enqueued} jobs enqueued for {progress.seen} projects "
        f"({progress.skipped} skipped: out of scope or without --tag) in "
        f"{time.monotonic() - progress.started:.1f} s, "
        f"{progress.passes} listings"
    )
    if progress.moved:
        print(f"dtrack-worker backfill: {progress.movement()}", file=sys.stderr)
        if args.strict:
            return EXIT_INVALID
    return EXIT_OK
