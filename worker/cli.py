"""The ``dtrack-worker`` command: the composition root, and the only reader of the environment."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from worker import __version__, fpf, schemas
from worker.errors import ConfigError, InvalidExport, Problem

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a command killed by SIGPIPE

Command = Callable[[argparse.Namespace, Mapping[str, str]], int]


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r}: use an IANA name such as UTC or Europe/Berlin"
        ) from exc


def _read(path: str, stdin: BinaryIO) -> bytes:
    if path == "-":
        return stdin.read()
    return Path(path).read_bytes()


def _file_report(path: str, raw: bytes | None, error: Exception | None) -> dict[str, Any]:
    if isinstance(error, OSError):
        reason = error.strerror or str(error)
        return {"path": path, "valid": False, "problems": [{"pointer": "", "message": reason}]}
    if isinstance(error, InvalidExport):
        return {
            "path": path,
            "valid": False,
            "error": str(error.args[0]),
            "problems": error.report(),
        }
    assert raw is not None
    return {"path": path, "valid": True, "problems": []}


def cmd_validate(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    contract = schemas.load().fpf
    reports = []
    for path in args.files:
        raw: bytes | None = None
        error: Exception | None = None
        summary: dict[str, Any] = {}
        try:
            raw = _read(path, sys.stdin.buffer)
            document = fpf.parse(raw)
            contract.check(document, InvalidExport, "FPF export")
            findings = document["findings"]
            summary = {"fpf_version": document["version"], "findings": len(findings)}
        except (OSError, InvalidExport) as exc:
            error = exc
        reports.append(_file_report(path, raw, error) | summary)
    valid = all(report["valid"] for report in reports)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps({"valid": valid, "files": reports}) + b"\n")
    else:
        for report in reports:
            _print_report(report)
    return EXIT_OK if valid else EXIT_INVALID


def _print_report(report: Mapping[str, Any]) -> None:
    path = report["path"]
    if report["valid"]:
        count = report["findings"]
        print(
            f"{path}: valid FPF {report['fpf_version']}, {count} finding{'' if count == 1 else 's'}"
        )
        return
    print(f"{path}: {report.get('error', 'cannot read the file')}")
    for problem in report["problems"]:
        print(f"{path}: {Problem(**problem)}")


def cmd_normalize(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    contract = schemas.load().fpf
    zone = _zone(args.dt_timezone or environ.get("DTRACK_WORKER_DT_TIMEZONE", "UTC"))
    source = args.source or environ.get("DTRACK_WORKER_SOURCE") or None
    try:
        raw = _read(args.file, sys.stdin.buffer)
    except OSError as exc:
        print(f"dtrack-worker normalize: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        export = fpf.process(raw, contract, source=source, zone=zone)
    except InvalidExport as exc:
        print(f"dtrack-worker normalize: {args.file}: {exc.args[0]}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    out = sys.stdout.buffer
    for event in export.events():
        out.write(event.body + b"\n")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="dtrack-worker",
        description="Dependency-Track findings as versioned CloudEvents on RabbitMQ.",
        formatter_class=formatter,
        epilog=textwrap.dedent(
            """\
            examples:
              dtrack-worker validate findings-*.fpf
              dtrack-worker normalize findings.fpf --source https://dtrack.example.org

            Settings come from DTRACK_WORKER_* environment variables; see README.md.
            """
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    validate = commands.add_parser(
        "validate",
        help="check FPF exports against the bundled FPF schema",
        description=(
            "Check each FPF export (a Dependency-Track findings export, .fpf or .json) against "
            "the bundled FPF 1.0-1.5 schema. Exit 0 when every file is valid, 1 otherwise, "
            "with one line per problem: the file, a JSON Pointer, what is wrong, the value."
        ),
        formatter_class=formatter,
        epilog=textwrap.dedent(
            """\
            examples:
              dtrack-worker validate findings-1.fpf findings-2.fpf
              dtrack-worker validate --json exports/*.json | jq '.files[] | select(.valid|not)'
              curl -s -H "X-Api-Key: $KEY" $DT/api/v1/finding/project/$UUID/export \\
                | dtrack-worker validate -
            """
        ),
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="an FPF file, or - for stdin")
    validate.add_argument("--json", action="store_true", help="print one JSON report on stdout")
    validate.set_defaults(run=cmd_validate)

    normalize = commands.add_parser(
        "normalize",
        help="turn an FPF export into finding events (JSON lines)",
        description=(
            "Validate an FPF export and print one finding event per finding, as CloudEvents "
            "JSON, one per line: exactly what the workers publish (docs/events.md). Exit 1 "
            "with the problems on stderr when the export is invalid; nothing is printed then."
        ),
        formatter_class=formatter,
        epilog=textwrap.dedent(
            """\
            examples:
              dtrack-worker normalize findings.fpf > events.jsonl
              dtrack-worker normalize - --source https://dtrack.example.org < findings.fpf
              dtrack-worker normalize findings.fpf --dt-timezone Europe/Berlin | jq .subject
            """
        ),
    )
    normalize.add_argument("file", metavar="FILE", help="an FPF file, or - for stdin")
    normalize.add_argument(
        "--source",
        help="the DT instance named in each event's source "
        "(default: $DTRACK_WORKER_SOURCE, else the export's meta.baseUrl, else dependency-track)",
    )
    normalize.add_argument(
        "--dt-timezone",
        metavar="ZONE",
        help="the DT server's time zone, for the zone-less dates DT 4.x writes "
        "(default: $DTRACK_WORKER_DT_TIMEZONE, else UTC)",
    )
    normalize.set_defaults(run=cmd_normalize)
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run: Command = args.run
    try:
        return run(args, os.environ if environ is None else environ)
    except ConfigError as exc:
        print(f"dtrack-worker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `dtrack-worker normalize big.fpf | head`: stop quietly, like cat
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
