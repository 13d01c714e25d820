"""``dtrack-worker normalize``: an FPF export as the finding events the workers publish."""

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
        "normalize",
        run,
        description=(
            "Validate an FPF export and print one finding event per finding, as CloudEvents "
            "JSON, one per line: exactly what the workers publish (docs/events.md). Exit 1 "
            "with the problems on stderr when the export is invalid; nothing is printed then."
        ),
        examples="""
            dtrack-worker normalize findings.fpf > events.jsonl
            dtrack-worker normalize - --source https://dtrack.example.org < findings.fpf
            dtrack-worker normalize findings.fpf --dt-timezone Europe/Berlin | jq .subject
            dtrack-worker normalize findings.fpf --format ocsf > findings.ocsf.jsonl
            dtrack-worker normalize findings.fpf --filter 'data.vulnerability.kev == true'
        """,
    )
    parser.add_argument("file", metavar="FILE", help="an FPF file, or - for stdin")
    parser.add_argument(
        "--source",
        help="the DT instance named in each event's source "
        "(default: $DTRACK_WORKER_SOURCE, else the export's meta.baseUrl, else dependency-track)",
    )
    parser.add_argument(
        "--dt-timezone",
        metavar="ZONE",
        help="the DT server's time zone, for the zone-less dates DT 4.x writes "
        "(default: $DTRACK_WORKER_DT_TIMEZONE, else UTC)",
    )
    add_output_options(parser)


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from worker.adapters import schemas, timezones  # the compiled validator: see common.py
    from worker.core import fpf

    shown = output_from(args, environ)  # a bad filter stops here, before any input is read
    contract = schemas.load().fpf
    zone = timezones.zone(args.dt_timezone or environ.get("DTRACK_WORKER_DT_TIMEZONE", "UTC"))
    source = args.source or environ.get("DTRACK_WORKER_SOURCE") or None
    try:
        raw = read_input(args.file, sys.stdin.buffer)
    except OSError as exc:
        print(f"dtrack-worker normalize: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        with raw:
            export = fpf.process(raw.raw, contract, source=source, zone=zone, release=raw.release)
    except InvalidExport as exc:
        print(f"dtrack-worker normalize: {args.file}: {exc.args[0]}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    out = sys.stdout.buffer
    counted: Counter[Verdict] = Counter()
    for event in export.events():
        if not shown.transforms:
            out.write(event.body + b"\n")
            continue
        kept, verdicts = shown.prepare([("", event.body, "", event.type)])
        counted.update(verdicts)
        for _, line, _, _ in kept:
            out.write(line + b"\n")
    report_unevaluated("normalize", args, counted)
    return EXIT_OK
