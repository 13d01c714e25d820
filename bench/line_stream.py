"""Benchmark: the line stream (DTRACK_WORKER_TRACK=line) through the state store (not a test).

    .venv/bin/python -m bench.line_stream [--size 10000] [--backends sqlite,postgresql]

For each store, with the line's versions listed by an in-process DT stand-in:

* unchanged: a re-export of the line's current version (a later timestamp), from bytes to
  committed state, best of 5, against ``orjson.loads`` of the same bytes. The fast path
  (nothing changed in the project's view, the line's state is this view's) groups nothing.
  Targets: <= 2.5x (SQLite), <= 3x (PostgreSQL).
* 1% changed: a re-export of the current version with 1% of its findings re-scored (the line
  grouped and compared, its events and state committed); best of 3 (re-scored, back, again).
* version switch: the next version (a new project UUID, new component UUIDs, 1% of components
  bumped) becoming current: its first per-project sync plus the line's comparison against the
  stored state; best of 3, each switch to the next version of the one before.
* group: ``line_findings.group`` of the switched export's rows (the identity work), best of 3
  with the collector held back as a job runs it, same run.

Issue 26 §7: a version switch costs no more than a 1%-changed re-export plus the identity work.
Every export is applied to its own project's view, so a switch (a new DT project) includes that
view's first sync: the target printed is ``line 1% - project 1% + project switch + group`` (the
line's own work on a switch <= its own work on a 1% change, plus the identity work); the strict
reading, ``line 1% + group``, beside it.

Needs the local PostgreSQL (127.0.0.1:5432, trust auth) for that backend.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson

from bench.lines import next_version
from bench.state import PROJECT, database, min_time, variant
from worker.adapters import schemas
from worker.adapters.metrics import WorkerMetrics
from worker.adapters.state.store import Store
from worker.core.config import Settings
from worker.core.jobs import Job
from worker.core.line_findings import group
from worker.core.lines import Line
from worker.service import collector
from worker.service.delta import DeltaOptions, Deltas

NAME = "bench"
SWITCHES = 3  # versions switched to in turn: the best of them is the figure


class Versions:
    """DT's version list of the line: the projects given, the last one flagged latest."""

    def __init__(self) -> None:
        self.projects: list[dict[str, Any]] = []

    def add(self, raw: bytes) -> None:
        project = orjson.loads(raw)["project"]
        for other in self.projects:
            other["isLatest"] = False
        self.projects.append(
            {"uuid": project["uuid"], "name": NAME, "version": project.get("version"),
             "active": True, "isLatest": True, "tags": [], "lastBomImport": 1}
        )  # fmt: skip

    async def list_projects(
        self, page: int, size: int, **_: Any
    ) -> tuple[list[dict[str, Any]], int | None]:
        return self.projects[(page - 1) * size : page * size], len(self.projects)

    async def findings(self, project_uuid: str) -> list[dict[str, Any]]:
        return []

    async def project(self, project_uuid: str, *, retry: bool = True) -> dict[str, Any] | None:
        raise AssertionError("nothing resolves in this benchmark: the guard never asks")

    async def version(self) -> dict[str, Any]:
        raise AssertionError("nothing resolves in this benchmark: the guard never asks")


def named(raw: bytes) -> bytes:
    document = orjson.loads(raw)
    document["project"]["name"] = NAME
    return orjson.dumps(document)


async def measure(backend: str, size: int, folder: Path) -> dict[str, float]:
    first, unchanged = named(variant(size, 1)), named(variant(size, 2))
    # each 1% off the one before: re-scored, back, re-scored again
    changed = [named(variant(size, 3 + n, 0.01 if n % 2 == 0 else 0.0)) for n in range(3)]
    switched, document = [], orjson.loads(changed[-1])
    for number in range(2, 2 + SWITCHES):  # each the next version of the one before
        document = next_version(document, 0.01)
        document["project"]["version"] = f"{number}.0.0"
        switched.append(orjson.dumps(document))
    figures = {"loads": min_time(lambda: orjson.loads(unchanged), 5)}
    document = orjson.loads(switched[0])
    rows, version = document["findings"], document["project"].get("version")
    line = Line("bench", "", NAME)
    with collector.paused():  # as a worker's job runs it
        figures["group"] = min_time(lambda: group(line, rows, project_version=version), 3)
    for track in ("project", "line"):  # the per-project stream as the yardstick, same run
        figures |= await _run(backend, folder, track, first, unchanged, changed, switched)
    return figures


async def _run(
    backend: str,
    folder: Path,
    track: str,
    first: bytes,
    unchanged: bytes,
    changed: list[bytes],
    switched: list[bytes],
) -> dict[str, float]:
    figures: dict[str, float] = {}
    dt = Versions()
    with database(backend, folder) as url:
        settings = Settings.from_env({"DTRACK_WORKER_STATE_URL": url})
        async with Store.open(settings.state) as store:
            options = DeltaOptions(
                source="bench", zone=UTC, epss_delta=None, baseline=False, track=track
            )
            deltas = Deltas(store, dt, schemas.load().fpf, WorkerMetrics.create(), options)

            async def apply(raw: bytes) -> float:
                made = Job(
                    job_id=str(uuid.uuid4()), project_uuid=_project(raw), project_name=NAME,
                    trigger="BENCH", notification_id=str(uuid.uuid4()),
                    accepted_at="2026-11-30T10:00:00.000000Z", correlation_id="bench",
                )  # fmt: skip
                gc.collect()
                started = time.perf_counter()
                await deltas.export(made, raw, started, {"job_id": made.job_id})
                return time.perf_counter() - started

            dt.add(first)
            figures[f"{track}: first sync"] = await apply(first)
            figures[f"{track}: unchanged"] = min([await apply(unchanged) for _ in range(5)])
            figures[f"{track}: 1% changed"] = min([await apply(raw) for raw in changed])
            took = []
            for raw in switched:
                dt.add(raw)
                took.append(await apply(raw))
            figures[f"{track}: version switch"] = min(took)
    return figures


def _project(raw: bytes) -> str:
    return str(orjson.loads(raw)["project"]["uuid"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    assert PROJECT
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backends.split(","):
            figures = asyncio.run(measure(backend, args.size, Path(folder)))
            print(report(backend, args.size, figures))


def report(backend: str, size: int, figures: dict[str, float]) -> str:
    """The figures of ``measure``, each against ``orjson.loads``, then the switch's targets."""
    loads = figures["loads"]
    return (
        f"{backend} {size} findings: loads {loads * 1e3:.0f} ms;\n  "
        + ";\n  ".join(
            f"{name} {value * 1e3:.0f} ms ({value / loads:.2f}x)"
            for name, value in figures.items()
            if name != "loads"
        )
        + "\n"
        + _targets(figures)
    )


def _targets(figures: dict[str, float]) -> str:
    """The version switch against issue 26 §7's target, both readings (see the docstring)."""
    switch, group = figures["line: version switch"], figures["group"]
    own = figures["line: 1% changed"] - figures["project: 1% changed"]
    line_own = switch - figures["project: version switch"]
    target = own + figures["project: version switch"] + group
    strict = figures["line: 1% changed"] + group
    return (
        f"  switch target (line 1% - project 1% + project switch + group) {target * 1e3:.0f} ms:"
        f" switch/target {switch / target:.2f};\n"
        f"  strict (line 1% + group) {strict * 1e3:.0f} ms: switch/strict {switch / strict:.2f};"
        f" the line's own work on the switch {line_own * 1e3:.0f} ms, budget"
        f" {(own + group) * 1e3:.0f} ms"
    )


if __name__ == "__main__":
    main()
