"""``dtrack-worker check`` (or ``doctor``): is everything a deployment needs there?"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING

from worker.commands.common import EXIT_INVALID, EXIT_OK, add_command, settings_from
from worker.core import topology
from worker.core.config import PREFIX, Settings

if TYPE_CHECKING:
    from worker.service import checks


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "check",
        run,
        description=(
            "Check, in a few seconds, what a deployment needs: every RabbitMQ node reachable "
            "and the topology declared, Dependency-Track reachable (and its version), the API "
            "key valid with VIEW_PORTFOLIO and VIEW_VULNERABILITY, the state store there, "
            "migrated by this release and taking writes (a write probe, rolled back: a full "
            "disk or a read-only store fails; nothing is created or migrated). One line per "
            "check, with a fix when it fails; exit 0 only when every check passes. Reads the "
            "same DTRACK_WORKER_* settings as the service."
        ),
        examples="""
            dtrack-worker check
            dtrack-worker doctor --receiver-only      # a receiver needs no DT
            kubectl exec deploy/dtrack-worker -- dtrack-worker check
        """,
    )
    parser.add_argument(
        "--receiver-only",
        action="store_true",
        help="skip the DT checks (a receiver alone never talks to DT)",
    )


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    import asyncio  # ssl, sockets, logging: not for --help (see common.py)

    settings = settings_from(environ, log=True)
    results = asyncio.run(
        _checks(settings, receiver_only=args.receiver_only, tmpdir=environ.get("TMPDIR"))
    )
    for result in results:
        print(result.line(), flush=True)
    failed = sum(1 for result in results if not result.ok)
    print(f"{len(results) - failed} passed, {failed} failed")
    return EXIT_OK if failed == 0 else EXIT_INVALID


async def _checks(
    settings: Settings, *, receiver_only: bool, tmpdir: str | None
) -> list[checks.Check]:
    # aiohttp, aio-pika, psycopg: only when the command runs (see common.py)
    from worker.adapters.dtrack import DtClient
    from worker.service import checks

    topo = topology.configured(settings.broker, delays=(settings.receiver.coalesce_seconds,))
    results = await checks.broker(settings, topo)
    if receiver_only:
        return results
    results.append(await checks.state(settings.state))
    results.append(checks.spool(tmpdir, settings.dt))  # a receiver never spools exports
    if not settings.dt.url or settings.dt.api_key is None:
        return [
            *results,
            checks.Check(
                "dt",
                False,
                f"{PREFIX}DT_URL or {PREFIX}DT_API_KEY is not set",
                "set both (workers fetch exports from DT), or check a receiver with "
                "--receiver-only",
            ),
        ]
    async with DtClient.open(settings.dt) as client:
        return [*results, *await checks.dt(client, settings.dt.display_url or "")]
