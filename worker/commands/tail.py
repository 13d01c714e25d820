"""``dtrack-worker tail``: what downstream receives, as JSON lines on stdout."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Mapping

from worker.commands.common import EXIT_OK, add_command, seconds, settings_from
from worker.core import routing
from worker.core.errors import ConfigError

MAX_ROUTING_KEY_BYTES = 255


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "tail",
        run,
        description=(
            "Bind a temporary exclusive queue to the events exchange and print each event "
            "(the CloudEvent JSON) on its own line: to check what consumers receive."
        ),
        examples="""
            dtrack-worker tail
            dtrack-worker tail --routing-key 'delta.opened.*' --count 10   # new findings
            dtrack-worker tail --routing-key '#.critical'                 # every critical
            dtrack-worker tail --routing-key 'export.*' --timeout 60 | jq .data.finding_count
        """,
    )
    parser.add_argument(
        "--routing-key",
        default="#",
        metavar="PATTERN",
        help="topic pattern to bind. The change stream (DTRACK_WORKER_EMIT=delta, the "
        "default): delta.# for every change, delta.opened.*, delta.resolved.critical; "
        "snapshots (EMIT=snapshot or both): finding.*, finding.critical; #.critical for "
        "both; export.summary, project.gone, error.*; # for everything (default). A pattern "
        "no event of this EMIT can match is pointed out at start",
    )
    parser.add_argument("--count", type=int, metavar="N", help="stop after N events")
    parser.add_argument("--timeout", type=seconds, metavar="S", help="stop after S seconds")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    # asyncio, aio-pika: only when the command runs (see common.py)
    import asyncio

    from worker.adapters import feed

    settings = settings_from(environ, log=True)
    if args.count is not None and args.count < 1:
        raise ConfigError("--count must be at least 1")
    if not args.routing_key or len(args.routing_key.encode()) > MAX_ROUTING_KEY_BYTES:
        raise ConfigError(
            f"--routing-key must be 1 to {MAX_ROUTING_KEY_BYTES} bytes (AMQP's limit), "
            "such as finding.* or #"
        )
    unmatched = routing.finds_nothing(args.routing_key, settings.state.emit)
    if unmatched is not None:  # it would show nothing, silently: say so, then wait anyway
        print(
            f"dtrack-worker tail: --routing-key {args.routing_key} matches none of the keys "
            f"events have with DTRACK_WORKER_EMIT={settings.state.emit} "
            f"({unmatched.described}): try {unmatched.try_patterns}",
            file=sys.stderr,
            flush=True,
        )
    out = sys.stdout.buffer

    def write(body: bytes) -> None:
        out.write(body + b"\n")
        out.flush()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            feed.follow(
                settings, write, pattern=args.routing_key, count=args.count, seconds=args.timeout
            )
        )
    return EXIT_OK
