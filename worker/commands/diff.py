"""``dtrack-worker diff OLD NEW``: the transitions between two exports, offline."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Mapping

from worker.commands.common import (
    EXIT_INVALID,
    EXIT_OK,
    add_command,
    add_output_options,
    output_from,
    read_input,
    report_unevaluated,
)
from worker.core.errors import InvalidExport
from worker.core.selection import Verdict


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "diff",
        run,
        description=(
            "Compare two FPF exports and print, one per line, the change events between them. "
            "--by line (the default): OLD and NEW are two versions of one project line (the same "
            "project name; DT makes each version its own project with new UUIDs); findings are "
            "matched by package and vulnerability (a GHSA and its CVE are one finding, a library "
            "present in two versions is one finding with two instances), so a version bump that "
            "keeps a vulnerability is 'changed' with component.version and component.purl old "
            "and new, not resolved + opened; events are finding-change.v2 (docs/events.md). "
            "--by project: today's per-project comparison (the same project uuid), events "
            "finding-change.v1, as the live stream publishes them. "
            "Offline: no state store, no DT (a finding missing from NEW is resolved; only DT "
            "can tell it was suppressed, unless NEW lists it suppressed, as DT's findings API "
            "with ?suppressed=true does). Exit 1 when a file is not a valid export, the two are "
            "of different lines (or projects, with --by project), or NEW is older than OLD "
            "(the service's stale rule: it would change nothing)."
        ),
        examples="""
            dtrack-worker diff app-1.4.0.fpf app-1.5.0.fpf
            dtrack-worker diff old.fpf new.fpf | jq -r '[.data.change.kind, .data.package.key,
                .data.vulnerability_id] | join(" ")'
            dtrack-worker diff old.fpf new.fpf | jq -c 'select(.data.change.kind == "changed")
                | .data.change.changes'
            dtrack-worker diff findings-monday.fpf findings-tuesday.fpf --by project
            dtrack-worker diff old.fpf new.fpf --format ocsf
        """,
    )
    parser.add_argument("old", metavar="OLD", help="the earlier export, or - for stdin")
    parser.add_argument("new", metavar="NEW", help="the later export")
    parser.add_argument(
        "--by",
        choices=("line", "project"),
        default="line",
        help="line (default): two versions of one project line, finding-change.v2 events; "
        "project: two exports of one DT project, finding-change.v1 events",
    )
    parser.add_argument("--source", help="the DT instance named in each event's source")
    parser.add_argument("--dt-timezone", metavar="ZONE", help="the DT server's time zone")
    add_output_options(parser)


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from worker.adapters import schemas, timezones  # the compiled validator: see common.py
    from worker.core import diff, line_change_events, line_diff, selection

    # a bad filter stops here, before any input is read; it is tried on what will be printed
    tried = selection.line_examples() if args.by == "line" else None
    shown = output_from(args, environ, tried)
    zone = timezones.zone(args.dt_timezone or environ.get("DTRACK_WORKER_DT_TIMEZONE", "UTC"))
    source = args.source or environ.get("DTRACK_WORKER_SOURCE") or None
    try:
        old = read_input(args.old, sys.stdin.buffer)
        with old:
            new = read_input(args.new, sys.stdin.buffer)
            with new:
                contract = schemas.load().fpf
                if args.by == "project":
                    events = diff.diff(old.raw, new.raw, contract, source=source, zone=zone)
                else:
                    found = line_diff.diff(old.raw, new.raw, contract, source=source, zone=zone)
                    events = line_change_events.of_diff(found)
    except OSError as exc:
        print(f"dtrack-worker diff: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INVALID
    except InvalidExport as exc:
        print(f"dtrack-worker diff: {exc.args[0]}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    out = sys.stdout.buffer
    counted: Counter[Verdict] = Counter()
    for event in events:
        if not shown.transforms:
            out.write(event.body + b"\n")
            continue
        kept, verdicts = shown.prepare([("", event.body, "", event.type)])
        counted.update(verdicts)
        for _, line, _, _ in kept:
            out.write(line + b"\n")
    report_unevaluated("diff", args, counted)  # as normalize: failures said once, on stderr
    return EXIT_OK
