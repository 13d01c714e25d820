"""``dtrack-worker status``: the sync log per project, from the state store."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

from worker.commands.common import EXIT_INVALID, EXIT_OK, add_command, settings_from
from worker.core.events import SEVERITY_RANK

if TYPE_CHECKING:
    from worker.adapters.state.reports import ProjectReport


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "status",
        run,
        help="per project: last export applied, last outcome, open findings, time to resolve",
        description=(
            "What the state store knows, per project: name and version, the last export applied "
            "and when, the last job's outcome, open findings by severity, the oldest open "
            "finding's age, and the mean time to resolve by severity. The sync log a user "
            "follows; --json for tools. Reads only: a store that is not there, or not "
            "migrated, is said so (nothing is created)."
        ),
        examples="""
            dtrack-worker status
            dtrack-worker status 3f6c0b2e-8f3a-4c1e-9b7d-2a1e0c4b5d6f
            dtrack-worker status acme-app                # every version of it
            dtrack-worker status acme-app@2.0
            dtrack-worker status --json | jq '.[] | select(.open.critical > 0) | .name'
        """,
    )
    parser.add_argument(
        "project",
        nargs="?",
        metavar="PROJECT",
        help="a project's uuid, name (each version) or name@version, as in its last export",
    )
    parser.add_argument("--json", action="store_true", help="a JSON list, one object each")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    # asyncio, psycopg: only when the command runs (see common.py)
    import asyncio

    from worker.adapters.state.store import Selector, Store

    settings = settings_from(environ, log=True)

    async def read() -> list[ProjectReport]:
        async with Store.open(settings.state, existing=True) as store:
            return await store.projects(Selector.parse(args.project) if args.project else None)

    reports = asyncio.run(read())
    if args.project and not reports:
        print(
            f"dtrack-worker status: {args.project}: not found in the state store at "
            f"{settings.state.display_url}",
            file=sys.stderr,
        )
        return EXIT_INVALID
    if args.json:
        sys.stdout.buffer.write(orjson.dumps([r.document() for r in reports]) + b"\n")
        return EXIT_OK
    _print(reports)
    return EXIT_OK


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _when(moment: float | None) -> str:
    if moment is None:
        return "never"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _print(reports: Sequence[ProjectReport]) -> None:
    print(f"{len(reports)} project{'' if len(reports) == 1 else 's'}")
    for report in reports:
        name = f"{report.name or '?'}" + (f" {report.version}" if report.version else "")
        gone = "  (deleted in DT)" if report.deleted else ""
        print(f"{name}  {report.uuid}{gone}")
        print(
            f"  last export {report.last_exported_at or 'none'}, applied "
            f"{_when(report.last_seen_at)}; last outcome {report.last_outcome or '-'} at "
            f"{_when(report.last_outcome_at)}"
        )
        opens = ", ".join(f"{report.open[s]} {s}" for s in SEVERITY_RANK if report.open[s])
        print(f"  open: {opens or 'none'}; oldest open {_age(report.oldest_open_seconds)}")
        if report.mean_time_to_resolve_seconds:
            mttr = ", ".join(
                f"{severity} {_age(seconds)}"
                for severity, seconds in sorted(
                    report.mean_time_to_resolve_seconds.items(),
                    key=lambda item: SEVERITY_RANK[item[0]],
                )
            )
            print(f"  mean time to resolve: {mttr}")
