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
        help="print the finding changes between two exports of a project (JSON lines)",
        description=(
            "Compare two FPF exports of one project and print, one per line, the change events "
            "the workers would publish had they applied OLD and then NEW: opened, changed "
            "(with each field's old and new value), resolved, reopened. Offline: no state store, "
            "no DT (a finding missing from NEW is resolved; only DT can tell it was suppressed). "
            "Exit 1 when a file is not a valid export, the two are of different projects, or "
            "NEW is older than OLD (the service's stale rule: it would change nothing)."
        ),
        examples="""
            dtrack-worker diff findings-monday.fpf findings-tuesday.fpf
            dtrack-worker diff old.fpf new.fpf | jq -r '.type + " " + .subject'
            dtrack-worker diff old.fpf new.fpf | jq 'select(.data.change.kind == "changed")'
            dtrack-worker diff old.fpf new.fpf --format ocsf
        """,
    )
    parser.add_argument("old", metavar="OLD", help="the earlier export, or - for stdin")
    parser.add_argument("new", metavar="NEW", help="the later export")
    parser.add_argument("--source", help="the DT instance named in each event's source")
    parser.add_argument("--dt-timezone", metavar="ZONE", help="the DT server's time zone")
    add_output_options(parser)


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from worker.adapters import schemas, timezones  # the compiled validator: see common.py
    from worker.core import diff

    shown = output_from(args, environ)  # a bad filter stops here, before any input is read
    zone = timezones.zone(args.dt_timezone or environ.get("DTRACK_WORKER_DT_TIMEZONE", "UTC"))
    source = args.source or environ.get("DTRACK_WORKER_SOURCE") or None
    try:
        old = read_input(args.old, sys.stdin.buffer)
        with old:
            new = read_input(args.new, sys.stdin.buffer)
            with new:
                events = diff.diff(old.raw, new.raw, schemas.load().fpf, source=source, zone=zone)
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
