"""``dtrack-worker status``: the lines (DTRACK_WORKER_TRACK=line) or the sync log per project,
from the state store."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import orjson

from worker.commands import status_lines
from worker.commands.common import EXIT_INVALID, EXIT_OK, add_command, settings_from
from worker.core.events import SEVERITY_RANK

if TYPE_CHECKING:
    from worker.adapters.state.line_queries import LineReport
    from worker.adapters.state.reports import ProjectReport


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "status",
        run,
        description=(
            "With DTRACK_WORKER_TRACK=line (the default), once the store has lines: each line "
            "(name, group, track, its current version, the versions seen, open findings by "
            "severity, the last change published), and with LINE (a line id, NAME, "
            "GROUP/NAME, or NAME#TRACK for one track) that line's versions: version, project "
            "uuid, isLatest, active, lastBomImport and when an export of it was last applied. "
            "A name that names several lines (tracks, groups) is an error that lists them "
            "(exit 1). An argument that names no line is read as a project, as below; "
            "--projects shows projects only. "
            "Per project: name and version, the last export applied "
            "and when, the last job's outcome, open findings by severity, the oldest open "
            "finding's age, and the mean time to resolve by severity. The sync log a user "
            "follows; --json for tools. Reads only: a store that is not there, or not "
            "migrated, is said so (nothing is created)."
        ),
        examples="""
            dtrack-worker status                         # every line
            dtrack-worker status acme-app                # the line acme-app and its versions
            dtrack-worker status 'acme-app#2'            # its track 2 (DTRACK_WORKER_LINE_BY)
            dtrack-worker status --projects              # every project's own view
            dtrack-worker status 3f6c0b2e-8f3a-4c1e-9b7d-2a1e0c4b5d6f
            dtrack-worker status --projects acme-app     # each version's own view
            dtrack-worker status acme-app@2.0
            dtrack-worker status --json | jq '.[] | select(.open_counts.critical > 0) | .label'
            dtrack-worker status --projects --json | jq '.[] | select(.open.critical > 0) | .name'
        """,
    )
    parser.add_argument(
        "project",
        nargs="?",
        metavar="LINE|PROJECT",
        help="a line (its id, NAME, GROUP/NAME, NAME#TRACK), else a project's uuid, name "
        "(each version) or name@version, as in its last export",
    )
    parser.add_argument("--json", action="store_true", help="a JSON list, one object each")
    parser.add_argument(
        "--projects", action="store_true", help="projects only, each one's own view, as by line"
    )


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    # asyncio, psycopg: only when the command runs (see common.py)
    import asyncio

    from worker.adapters.state.store import Selector, Store

    settings = settings_from(environ, log=True)
    by_line = settings.state.track == "line" and not args.projects

    async def read() -> _Found:
        async with Store.open(settings.state, existing=True) as store:
            lines = await store.lines() if by_line else []
            chosen = status_lines.matching(lines, args.project) if args.project else lines
            if chosen:
                return _Found(chosen, await store.projects(), by_name=bool(args.project))
            return _Found(
                [], await store.projects(Selector.parse(args.project) if args.project else None)
            )

    found = asyncio.run(read())
    if found.lines:
        return _lines(found, args)
    reports = found.projects
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


@dataclasses.dataclass(frozen=True, slots=True)
class _Found:
    lines: list[LineReport]  # by line: those to show (none: projects are shown)
    projects: list[ProjectReport]
    by_name: bool = False  # the lines an argument named


def _lines(found: _Found, args: argparse.Namespace) -> int:
    applied = {p.uuid: p.last_seen_at for p in found.projects}
    if found.by_name and len(found.lines) > 1:
        print(
            f"dtrack-worker status: {status_lines.ambiguous(args.project, found.lines)}",
            file=sys.stderr,
        )
        return EXIT_INVALID
    if args.json:
        documents = [status_lines.document(line, applied) for line in found.lines]
        sys.stdout.buffer.write(orjson.dumps(documents) + b"\n")
    elif found.by_name:
        status_lines.print_line(found.lines[0], applied)
    else:
        status_lines.print_lines(found.lines, len(found.projects))
    return EXIT_OK


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


_when = status_lines.when


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
