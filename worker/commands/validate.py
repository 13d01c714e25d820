"""``dtrack-worker validate``: check FPF exports against the bundled FPF schema, offline."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

import orjson

from worker.commands.common import EXIT_INVALID, EXIT_OK, add_command, read_input
from worker.core.errors import InvalidExport, Problem


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "validate",
        run,
        description=(
            "Check each FPF export (a Dependency-Track findings export, .fpf or .json) against "
            "the bundled FPF 1.0-1.5 schema. Exit 0 when every file is valid, 1 otherwise, "
            "with one line per problem: the file, a JSON Pointer, what is wrong, the value."
        ),
        examples="""
            dtrack-worker validate findings-1.fpf findings-2.fpf
            dtrack-worker validate --json exports/*.json | jq '.files[] | select(.valid|not)'
            curl -s -H "X-Api-Key: $KEY" $DT/api/v1/finding/project/$UUID/export \\
              | dtrack-worker validate -
        """,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="an FPF file, or - for stdin")
    parser.add_argument("--json", action="store_true", help="print one JSON report on stdout")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from worker.adapters import schemas  # the compiled validator: see common.py
    from worker.core import fpf

    contract = schemas.load().fpf
    reports = []
    for path in args.files:
        error: Exception | None = None
        summary: dict[str, Any] = {}
        try:
            with read_input(path, sys.stdin.buffer) as text:
                document = fpf.parse(text.raw)
            contract.check(document, InvalidExport, "FPF export")
            summary = {"fpf_version": document["version"], "findings": len(document["findings"])}
        except (OSError, InvalidExport) as exc:
            error = exc
        reports.append(_file_report(path, error) | summary)
    valid = all(report["valid"] for report in reports)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps({"valid": valid, "files": reports}) + b"\n")
    else:
        for report in reports:
            _print_report(report)
    return EXIT_OK if valid else EXIT_INVALID


def _file_report(path: str, error: Exception | None) -> dict[str, Any]:
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
    return {"path": path, "valid": True, "problems": []}


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
