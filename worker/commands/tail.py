"""``dtrack-worker tail``: what downstream receives, as JSON lines on stdout."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Mapping

from worker.adapters import feed
from worker.commands.common import EXIT_OK, add_command, seconds, settings_from
from worker.core.errors import ConfigError

MAX_ROUTING_KEY_BYTES = 255


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "tail",
        run,
        help="print the events downstream receives, as JSON lines",
        description=(
            "Bind a temporary exclusive queue to the events exchange and print each event "
            "(the CloudEvent JSON) on its own line: to check what consumers receive."
        ),
        examples="""
            dtrack-worker tail
            dtrack-worker tail --routing-key 'finding.critical' --count 10
            dtrack-worker tail --routing-key 'export.*' --timeout 60 | jq .data.finding_count
        """,
    )
    parser.add_argument(
        "--routing-key",
        default="#",
        metavar="PATTERN",
        help="topic pattern to bind: finding.*, finding.critical, export.summary, error.*, "
        "# for everything (default)",
    )
    parser.add_argument("--count", type=int, metavar="N", help="stop after N events")
    parser.add_argument("--timeout", type=seconds, metavar="S", help="stop after S seconds")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    settings = settings_from(environ, log=True)
    if args.count is not None and args.count < 1:
        raise ConfigError("--count must be at least 1")
    if not args.routing_key or len(args.routing_key.encode()) > MAX_ROUTING_KEY_BYTES:
        raise ConfigError(
            f"--routing-key must be 1 to {MAX_ROUTING_KEY_BYTES} bytes (AMQP's limit), "
            "such as finding.* or #"
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
