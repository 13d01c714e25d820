"""Benchmark: the finding filter's path, events per second and the event loop's longest stall
(not a test).

    .venv/bin/python -m bench.filter [--findings 2000] [--repeat 5] [--batch 1000]

The events of a synthetic export (bench/synthetic.py), in batches of ``--batch`` (a relay batch,
a snapshot round), through a cheap filter three ways, taken in turns, best of N:

* "in the loop": ``Output.prepare(items)``, the filter evaluated where it is called: the workers'
  path before issue 25, and the offline commands' path still;
* "evaluator process": ``ProcessJudge.verdicts`` (the filter in its own process, off the loop) then
  ``Output.prepare(items, verdicts)``: the workers' path now;
* "no filter": ``Output.prepare`` without one, for scale.

Beside each, the CPU time of this process (the event loop's) per event, and the longest the
loop went without running a task that sleeps 1 ms in a loop: in the loop it is a whole batch;
with the evaluator process it stays near 1 ms on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Mapping

from bench.synthetic import export_bytes
from worker.adapters import schemas
from worker.core import fpf
from worker.core.batches import Serialized
from worker.core.output import Output
from worker.core.selection import Filter
from worker.service.filtering import ProcessJudge

CHEAP = 'data.vulnerability.severity in ["critical", "high"] || data.vulnerability.kev == true'


async def _timed(run: Callable[[], Awaitable[None]]) -> tuple[float, float, float]:
    """Seconds the run took, the longest gap between two ticks of a 1 ms sleeper, and this
    process's CPU seconds (the loop's, the evaluator process's not included)."""
    longest = 0.0
    stop = False

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not stop:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    await run()
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    stop = True
    await ticking
    return took, longest, cpu


async def _best_of(
    repeat: int, runs: Mapping[str, Callable[[], Awaitable[None]]]
) -> dict[str, tuple[float, float, float]]:
    """Each run's figures of its fastest time, the runs taken in turns (this machine's speed
    drifts: interleaving keeps the drift out of the comparison)."""
    best = {name: (float("inf"), 0.0, 0.0) for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            figures = await _timed(run)
            if figures[0] < best[name][0]:
                best[name] = figures
    return best


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()

    export = fpf.process(export_bytes(options.findings), schemas.load().fpf, source="bench")
    items: list[Serialized] = [(e.routing_key, e.body, e.id, e.type) for e in export.events()]
    batches = [items[at : at + options.batch] for at in range(0, len(items), options.batch)]
    chosen = Filter(CHEAP)
    judge = ProcessJudge(CHEAP, budget=1.0)
    await judge.start()
    in_loop = Output(filter=chosen)
    judged = Output(filter=chosen, judge=judge)
    plain = Output()
    kept = {"in the loop": 0, "evaluator process": 0}

    async def loop_path() -> None:
        for batch in batches:
            kept["in the loop"] += len(in_loop.prepare(batch)[0])
            await asyncio.sleep(0)  # the loop runs between batches, as between sends

    async def process_path() -> None:
        for batch in batches:
            verdicts = await judge.verdicts(judged.judged(batch))
            kept["evaluator process"] += len(judged.prepare(batch, verdicts)[0])

    async def plain_path() -> None:
        for batch in batches:
            plain.prepare(batch)
            await asyncio.sleep(0)

    runs = {"in the loop": loop_path, "evaluator process": process_path, "no filter": plain_path}
    try:
        best = await _best_of(options.repeat, runs)
    finally:
        await judge.close()
    print(f"{len(items)} events in batches of {options.batch}; filter: {CHEAP}")
    for name, (took, stall, cpu) in best.items():
        print(
            f"  {name:18} {len(items) / took:9.0f} events/s   "
            f"loop CPU {cpu / len(items) * 1e6:6.1f} us/event   "
            f"longest loop stall {stall * 1e3:7.1f} ms"
        )
    assert kept["in the loop"] == kept["evaluator process"], kept  # the same verdicts


if __name__ == "__main__":
    import uvloop  # the workers' loop

    uvloop.run(main())
