"""Benchmark: grouping an export's findings into line findings (not a test).

    .venv/bin/python -m bench.lines [--sizes 10000,50000] [--rounds 3] [--per-component 4]

For each size: a synthetic DT 4.14-shaped export (``bench.synthetic``) whose components are
shared as in real exports (``--per-component`` vulnerabilities per component), its rows
grouped by ``line_findings.group`` (package keys, alias groups, stable ids, instances), best of
``rounds`` in CPU time (the machine is shared), plain and with the collector held back as a
worker's job runs; beside it ``orjson.loads`` of the same bytes, for scale. Figures:
docs/lines.md, "Cost".
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from bench.synthetic import export
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
        print(
            f"{size:>6} rows ({len(raw) / 1e6:.1f} MB, {findings} line findings): "
            f"group {grouped:.3f} s, collector held back {held:.3f} s; "
            f"orjson.loads {loads:.3f} s ({grouped / loads:.1f}x, {held / loads:.1f}x)"
        )


if __name__ == "__main__":
    main()
