"""Benchmark: whole processes, start to exit: the CLI's start-up and ``normalize`` (not a test).

    .venv/bin/python -m bench.startup [--sizes 10000,50000] [--repeat 5] [--baseline DIR]

Times, best of N runs taken in turns (this 2-core machine drifts), each a fresh process:
``python -c pass`` (the bare interpreter), ``dtrack-worker --help``, ``dtrack-worker validate``
of a small export (20 findings), and ``dtrack-worker normalize`` of synthetic exports
(bench/synthetic.py) to /dev/null against a process that only reads the same file and
``orjson.loads`` it. "x bare" divides by the bare interpreter, "x loads" by the loads process.
Peak RSS is each process's own (GNU time's %M), and over the export's bytes. "imports ms" is what
``-X importtime`` counts at the top level in one more run (it inflates what it measures; a
share, not a duration to add up).

``--baseline DIR``: a source tree of another commit (``git archive REV | tar -x -C DIR``),
run the same way in the same turns (``PYTHONPATH=DIR`` puts its ``worker`` first): before and
after from one run.
Targets (issue 28): --help <= 10x bare, validate <= 15x, normalize <= 1.5x loads at 10k and
50k findings with peak RSS <= 2x the bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.synthetic import export_bytes

LOADS = "import sys, orjson\nwith open(sys.argv[1], 'rb') as f:\n    orjson.loads(f.read())\n"


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]
    tree: str | None = None  # PYTHONPATH for a baseline tree
    size: int = 0  # the input's bytes, for RSS/bytes
    loads: str = ""  # the loads case to divide by


@dataclasses.dataclass
class Result:
    best: float = float("inf")
    peak_rss: int = 0  # bytes; the largest of the runs
    imports: float = 0.0  # seconds, from -X importtime


def _env(tree: str | None, *, importtime: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree
    if importtime:
        env["PYTHONPROFILEIMPORTTIME"] = "1"
    return env


def timed(case: Case) -> float:
    """Seconds from start to exit."""
    started = time.perf_counter()
    subprocess.run(case.argv, stdout=subprocess.DEVNULL, env=_env(case.tree), check=True)
    return time.perf_counter() - started


def peak_rss(case: Case) -> int:
    """The process's own peak RSS in bytes, as GNU time reports it: a child forked from this
    process (vfork included) would carry this process's high-water mark through exec."""
    with tempfile.NamedTemporaryFile() as report:
        subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", report.name, *case.argv],
            stdout=subprocess.DEVNULL,
            env=_env(case.tree),
            check=True,
        )
        return int(Path(report.name).read_text().split()[-1]) * 1024


def import_seconds(case: Case) -> float:
    """The top-level imports' cumulative time in one run under -X importtime."""
    result = subprocess.run(
        case.argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(case.tree, importtime=True),
        check=True,
    )
    total = 0
    for line in result.stderr.decode().splitlines():
        columns = line.split("|")
        if len(columns) == 3 and columns[1].strip().isdigit():
            name = columns[2]
            if not name.startswith("  ") and name.strip() not in ("site", "encodings"):
                total += int(columns[1])
    return total / 1e6


def cases(sizes: Sequence[int], folder: Path, trees: Sequence[str | None]) -> list[Case]:
    python = sys.executable
    script = shutil.which("dtrack-worker", path=str(Path(python).parent))
    assert script, "dtrack-worker is not installed next to this Python"
    small = folder / "small.json"
    small.write_bytes(export_bytes(20))
    made = [Case("python -c pass", [python, "-c", "pass"])]
    for tree in trees:
        tag = " (baseline)" if tree else ""
        made += [
            Case(f"--help{tag}", [script, "--help"], tree),
            Case(f"validate 20{tag}", [script, "validate", str(small)], tree),
        ]
    for size in sizes:
        path = folder / f"{size}.json"
        path.write_bytes(export_bytes(size))
        loads = f"loads {size}"
        made.append(Case(loads, [python, "-c", LOADS, str(path)], None, path.stat().st_size))
        made += [
            Case(
                f"normalize {size}{' (baseline)' if tree else ''}",
                [script, "normalize", str(path)],
                tree,
                path.stat().st_size,
                loads,
            )
            for tree in trees
        ]
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", metavar="DIR", help="a source tree to compare with")
    args = parser.parse_args()
    trees: list[str | None] = [None]
    if args.baseline:
        trees.append(str(Path(args.baseline).resolve()))
    with tempfile.TemporaryDirectory() as folder:
        runs = cases([int(s) for s in args.sizes.split(",") if s], Path(folder), trees)
        results = {case.name: Result() for case in runs}
        for _ in range(args.repeat):
            for case in runs:
                result = results[case.name]
                result.best = min(result.best, timed(case))
        for case in runs:
            results[case.name].peak_rss = peak_rss(case)
            results[case.name].imports = import_seconds(case)
        _print(runs, results)


def _ratio(value: float, of: float | None, width: int, digits: int) -> str:
    return f"{value / of:>{width}.{digits}f}" if of else f"{'-':>{width}}"


def _print(runs: Sequence[Case], results: dict[str, Result]) -> None:
    bare = results["python -c pass"].best
    print(f"python {sys.version.split()[0]}, best of the runs, each a whole process")
    print(f"{'what':<26} {'ms':>8} {'x bare':>7} {'x loads':>8} {'imports ms':>10} "
          f"{'peak RSS MB':>11} {'RSS/bytes':>9}")  # fmt: skip
    for case in runs:
        result = results[case.name]
        loads = results[case.loads].best if case.loads else None
        print(
            f"{case.name:<26} {result.best * 1e3:>8.1f} {result.best / bare:>7.1f} "
            f"{_ratio(result.best, loads, 8, 2)} {result.imports * 1e3:>10.1f} "
            f"{result.peak_rss / 1e6:>11.1f} {_ratio(result.peak_rss, case.size, 9, 2)}"
        )


if __name__ == "__main__":
    main()
