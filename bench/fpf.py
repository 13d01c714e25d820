"""Benchmark: the pure FPF pipeline against orjson.loads of the same bytes (not a test).

    .venv/bin/python -m bench.fpf [--sizes 1000,10000,50000] [--repeat 7]

For each synthetic export (bench/synthetic.py, DT 4.14 shape) it times, in one run and one
process, ``orjson.loads(raw)`` and the whole pipeline (``fpf.process``: bytes -> parsed in
runs of findings -> validated with the compiled validator -> normalized -> serialized events),
best of N, and prints both and their ratio; "streamed" is ``streamed=True``, a worker job's
way (every run validated first, then parsed again as its events are made and sent). Peak RSS is
measured in a fresh process per size, which runs the pipeline once on the export's file: its
growth over the process's baseline, divided by the export's size. "RSS/bytes": the file
mapped, its pages given back as the runs are parsed (``worker.adapters.spool``), the events
kept until every run passed (``normalize``); "streamed": the same, events made as they are
read, none kept (a worker job); "as bytes": the file read into one bytes object first and
``fpf.process`` (the export's bytes and its events held together); "loads alone":
``orjson.loads`` by itself (orjson builds a yyjson tree before the Python objects, so the
parse alone peaks near 4.7x the bytes). The pipeline parses runs of about 128 KiB and keeps
only the serialized events (about 1.35x the bytes) until every run has passed.
Targets: ratio <= 2.0 (issue 2), <= 1.5 (issue 17) at 10k and 50k findings; peak RSS growth
<= 3x (issue 2), <= 2x (issue 17) the bytes.
"""

from __future__ import annotations

import argparse
import functools
import gc
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from bench.synthetic import export_bytes
from worker.adapters import schemas
from worker.core import fpf
from worker.core.split import Raw, Release, keep
from worker.core.validation import Contract


def best_of_each(repeat: int, *runs: Callable[[], object]) -> list[float]:
    """The best time of each run, taken in turns so that both see the same machine.

    This machine's speed drifts by a third from one second to the next (a shared VM);
    interleaving keeps the drift out of the ratio.
    """
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for index, run in enumerate(runs):
            gc.collect()
            started = time.perf_counter()
            run()
            best[index] = min(best[index], time.perf_counter() - started)
    return best


def run_pipeline(
    raw: Raw, contract: Contract, release: Release = keep, *, streamed: bool = False
) -> int:
    """Every event built and serialized, none kept: ``fpf.process`` (normalize; events made
    with the validation) or streamed (a worker job: validated, then made as sent)."""
    export = fpf.process(raw, contract, release=release, streamed=streamed)
    severities: dict[str, int] = {}  # the worker's summary event needs these
    return sum(len(event.body) for event in export.events(severities))


def peak_rss_growth(path: Path, step: str) -> int:
    """Bytes a fresh process's peak RSS grew by reading the export and running ``step`` on it."""
    child = (
        "import sys\n"
        "import orjson\n"
        "from pathlib import Path\n"
        "from bench.fpf import run_pipeline\n"
        "from worker.adapters import schemas\n"
        "from worker.adapters.spool import Spool\n"
        "def hwm():\n"  # ru_maxrss survives exec on Linux; VmHWM starts afresh
        "    status = Path('/proc/self/status').read_text()\n"
        "    return int(status.split('VmHWM:')[1].split()[0]) * 1024\n"
        "contract = schemas.load().fpf\n"
        "base = hwm()\n"
        "if sys.argv[2] in ('mapped', 'streamed'):\n"  # as normalize, as a worker job
        "    streamed = sys.argv[2] == 'streamed'\n"
        "    with Spool.of_path(sys.argv[1]) as text:\n"
        "        run_pipeline(text.raw, contract, text.release, streamed=streamed)\n"
        "else:\n"
        "    raw = Path(sys.argv[1]).read_bytes()\n"
        "    run_pipeline(raw, contract) if sys.argv[2] == 'bytes' else orjson.loads(raw)\n"
        "print(hwm() - base)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", child, str(path), step], capture_output=True, check=True, text=True
    ).stdout
    return int(out.split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    contract = schemas.load().fpf
    print(f"python {sys.version.split()[0]}, gc thresholds {gc.get_threshold()}")
    print(
        f"{'findings':>9} {'MB':>7} {'loads ms':>9} {'pipeline ms':>12} {'ratio':>6} "
        f"{'us/finding':>10} {'streamed ms':>11} {'ratio':>6} {'peak RSS MB':>12} "
        f"{'RSS/bytes':>9} {'streamed':>8} {'as bytes':>8} {'loads alone':>11}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        raw = export_bytes(size)
        loads, pipeline, streamed = best_of_each(
            args.repeat,
            functools.partial(orjson.loads, raw),
            functools.partial(run_pipeline, raw, contract),
            functools.partial(run_pipeline, raw, contract, streamed=True),
        )
        with tempfile.NamedTemporaryFile(suffix=".json") as file:
            file.write(raw)
            file.flush()
            rss = peak_rss_growth(Path(file.name), "mapped")
            rss_streamed = peak_rss_growth(Path(file.name), "streamed")
            rss_bytes = peak_rss_growth(Path(file.name), "bytes")
            rss_loads = peak_rss_growth(Path(file.name), "loads")
        print(
            f"{size:>9} {len(raw) / 1e6:>7.1f} {loads * 1e3:>9.1f} {pipeline * 1e3:>12.1f} "
            f"{pipeline / loads:>6.2f} {pipeline / size * 1e6:>10.1f} {streamed * 1e3:>11.1f} "
            f"{streamed / loads:>6.2f} {rss / 1e6:>12.1f} {rss / len(raw):>9.2f} "
            f"{rss_streamed / len(raw):>8.2f} {rss_bytes / len(raw):>8.2f} "
            f"{rss_loads / len(raw):>11.2f}"
        )


if __name__ == "__main__":
    main()
