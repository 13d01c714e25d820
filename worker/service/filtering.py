"""The finding filter as a worker runs it: judged in its evaluator process, off the event loop
and within DTRACK_WORKER_FILTER_BUDGET_MS per event (``filter_process``); what it fails on is
published, counted, and logged once per reason, then at most once a minute with the count
since (never an event's content)."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence

import structlog

from worker.adapters.filter_process import FilterProcess
from worker.adapters.metrics import WorkerMetrics
from worker.core import output as outputs
from worker.core.config import OutputSettings
from worker.core.output import Output
from worker.core.selection import REASONS, Verdict

log = structlog.get_logger(__name__)

LOG_EVERY = 60.0  # seconds between two lines for the same reason


class ProcessJudge:
    """The filter's verdicts from its evaluator process (outputs.Judge), failures logged."""

    def __init__(
        self, expression: str, budget: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.expression = expression
        self._process = FilterProcess(expression, budget)
        self._clock = clock
        self._logged_at: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()

    @property
    def pending(self) -> int:
        return self._process.pending

    async def start(self) -> None:
        await self._process.start()

    async def close(self) -> None:
        await self._process.close()

    async def verdicts(self, events: Sequence[bytes]) -> list[Verdict]:
        verdicts = await self._process.verdicts(events)
        reasons = [verdict.reason for verdict in verdicts if verdict.reason]
        if reasons:
            self._log(reasons)
        return verdicts

    def _log(self, reasons: list[str]) -> None:
        self._unlogged.update(reasons)
        now = self._clock()
        for reason, count in list(self._unlogged.items()):
            last = self._logged_at.get(reason)
            if last is not None and now - last < LOG_EVERY:
                continue
            log.warning(
                "filter.failed",
                expression=self.expression,
                reason=reason,
                meaning=REASONS[reason],
                events=count,  # since the last line for this reason
                published=True,
            )
            self._logged_at[reason] = now
            del self._unlogged[reason]


def output(settings: OutputSettings, product_version: str) -> Output:
    """The filter (ConfigError for a bad one) with its judge, which ``running`` starts, and
    the format of finding events."""
    shown = outputs.from_settings(settings, product_version)
    if shown.filter is None:
        return shown
    judge = ProcessJudge(shown.filter.expression, settings.filter_budget)
    return dataclasses.replace(shown, judge=judge)


@contextlib.asynccontextmanager
async def running(shown: Output, metrics: WorkerMetrics) -> AsyncIterator[None]:
    """The judge's evaluator process while the worker runs (PermanentError if it cannot
    start); what the filter cannot be evaluated on, of the example events, logged."""
    judge = shown.judge
    if shown.filter is None or not isinstance(judge, ProcessJudge):
        yield
        return
    for example in shown.filter.unevaluable:
        log.warning(
            "filter.unevaluable",
            expression=judge.expression,
            type=example.type,
            problem=example.problem,
            effect="such events are published and counted as error",
        )
    await judge.start()
    metrics.filter_pending.set_function(lambda: judge.pending)
    try:
        yield
    finally:
        await judge.close()
