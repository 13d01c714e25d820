"""Benchmark: grouping an export's findings into line findings (not a test).

    .venv/bin/python -m bench.lines [--sizes 10000,50000] [--rounds 3] [--per-component 4]

For each size: a synthetic DT 4.14-shaped export (``bench.synthetic``) whose components are
shared as in real exports (``--per-component`` vulnerabilities per component), its rows
grouped by ``line_findings.group`` (package keys, alias groups, stable ids, instances), best of
``rounds`` in CPU time (the machine is shared), plain and with the collector held back as a
worker's job runs; beside it ``orjson.loads`` of the same bytes, for scale. Then
``line_diff.diff`` (what ``dtrack-worker diff`` does, from bytes: validation, grouping,
transitions) of that export and its next version with 1% of its components bumped. Figures:
docs/lines.md, "Cost".
"""

from __future__ import annotations

import argparse
import copy
import time
import uuid
from collections.abc import Callable
from datetime import UTC
from functools import partial
from typing import Any

import orjson

from bench.synthetic import export
from worker.adapters import schemas
from worker.core import line_diff
from worker.core.line_findings import group
from worker.core.lines import Line
from worker.service import collector

LINE = Line("http://dtrack.example.org", "", "synthetic")


def best(rounds: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return min(times)


def shared(rows: list[dict[str, Any]], per_component: int) -> None:
    """Give every ``per_component`` consecutive rows the first one's component (and matrix)."""
    for index, row in enumerate(rows):
        first = rows[index - index % per_component]
        row["component"] = first["component"]
        project, _, vulnerability = row["matrix"].split(":")
        row["matrix"] = f"{project}:{first['component']['uuid']}:{vulnerability}"


def next_version(document: dict[str, Any], bumped: float) -> dict[str, Any]:
    """The next version as DT exports it: a new project UUID, new component UUIDs, ``bumped``
    of the components at a new version (their vulnerabilities kept), an hour later."""
    out = copy.deepcopy(document)
    project = str(uuid.uuid5(uuid.NAMESPACE_URL, out["project"]["uuid"]))
    out["project"] |= {"uuid": project, "version": "2.0.0"}
    out["meta"]["timestamp"] = "2026-04-24T20:39:49Z"
    step = int(1 / bumped)
    renamed: dict[str, dict[str, Any]] = {}
    for index, row in enumerate(out["findings"]):
        old = row["component"]
        component = renamed.get(old["uuid"])
        if component is None:
            component = dict(old, uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, old["uuid"])))
            component["project"] = project
            if index % step == 0:
                component["version"] += ".1"
                component["purl"] = f"pkg:npm/{component['name']}@{component['version']}"
            renamed[old["uuid"]] = component
        row["component"] = component
        row["matrix"] = f"{project}:{component['uuid']}:{row['vulnerability']['uuid']}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-component", type=int, default=4)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        document = export(size)
        shared(document["findings"], args.per_component)
        raw = orjson.dumps(document)
        rows = document["findings"]
        loads = best(args.rounds, partial(orjson.loads, raw))
        grouped = best(args.rounds, partial(group, LINE, rows))
        with collector.paused():  # as a worker's job runs it
            held = best(args.rounds, partial(group, LINE, rows))
        findings = len(group(LINE, rows).findings)
        later = orjson.dumps(next_version(document, 0.01))
        contract = schemas.load().fpf
        compared = partial(line_diff.diff, raw, later, contract, source=None, zone=UTC)
        with collector.paused():
            diffed = best(args.rounds, compared)
        changed = len(line_diff.diff(raw, later, contract, source=None, zone=UTC).transitions)
        print(
            f"{size:>6} rows ({len(raw) / 1e6:.1f} MB, {findings} line findings): "
            f"group {grouped:.3f} s, collector held back {held:.3f} s; "
            f"orjson.loads {loads:.3f} s ({grouped / loads:.1f}x, {held / loads:.1f}x)"
        )
        print(
            f"{'':>6} diff of two versions (1% of components bumped, {changed} changed), "
            f"from bytes, collector held back: {diffed:.3f} s "
            f"({diffed / (2 * loads):.1f}x orjson.loads of both)"
        )


if __name__ == "__main__":
    main()
