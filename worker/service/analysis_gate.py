"""The analysis gate in a job: before the export is fetched, wait (polling DT) until DT has
finished analysing what it would show; still pending when the wait ends: AnalysisPending (the
job is retried, and parked ``analysis_pending`` on its last attempt). The decision is
``worker.core.analysis_gate``'s; DT is asked here, and the wait is logged, counted and
recorded as the project's last outcome (``status``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from worker.adapters.metrics import WorkerMetrics
from worker.core import analysis_gate, mass_resolve
from worker.core.analysis_gate import GateSettings, Reading
from worker.core.errors import DtMisconfigured, DtRejected
from worker.core.jobs import Job
from worker.core.mass_resolve import BomFacts
from worker.service import progress
from worker.service.freshness import Freshness

log = structlog.get_logger(__name__)

PENDING = "analysis_pending"  # the project's last outcome while a job waits, and the park reason


class VersionSource(Protocol):
    async def version(self) -> dict[str, Any]: ...


class AnalysisSource(Protocol):
    async def analysis_processing(self, token: str) -> bool: ...

    async def project(self, project_uuid: str, *, retry: bool = True) -> dict[str, Any] | None: ...

    async def version(self) -> dict[str, Any]: ...


async def dt_records_analyses(dt: VersionSource) -> bool:
    """DT's version (``GET /api/version``, cached by the client) is 4.13 or later: it records
    ``lastVulnerabilityAnalysis``, so a project with a BOM and none has not been analysed."""
    version = (await dt.version()).get("version")
    return mass_resolve.records_analyses(version if isinstance(version, str) else None)


Recorder = Callable[[str, str], Awaitable[None]]  # (project, outcome): the state store's


class AnalysisGate:
    def __init__(
        self,
        dt: AnalysisSource,
        metrics: WorkerMetrics,
        settings: GateSettings,
        *,
        record: Recorder | None = None,
    ) -> None:
        self._dt = dt
        self._metrics = metrics
        self._settings = settings
        self._record = record

    async def passed(self, job: Job, fields: dict[str, Any]) -> datetime | None:
        """Returns once DT's analysis is done (or DT gives no signal): for a job with a token,
        the moment it was seen done (a fetch that started earlier cannot stand in for the job);
        else None. AnalysisPending when the wait ends first."""
        if not self._settings.enabled:
            return None
        started = time.monotonic()
        reading = await self._read(job)
        if reading.pending:
            reading = await self._wait(job, reading, started, fields)
        else:
            self._metrics.analysis_gate.labels(basis=reading.basis, outcome="ready").inc()
        fields["analysis"] = reading.basis
        return datetime.now(UTC) if reading.basis == "token" else None

    async def _wait(
        self, job: Job, reading: Reading, started: float, fields: dict[str, Any]
    ) -> Reading:
        log.info("job.analysis_pending", project_uuid=job.project_uuid, job_id=job.job_id,
                 basis=reading.basis, detail=reading.detail,
                 wait_s=self._settings.wait)  # fmt: skip
        if self._record is not None:  # `status` says why nothing was applied yet
            await self._record(job.project_uuid, PENDING)
        await progress.step(progress.ANALYSIS_PENDING, {"detail": reading.detail})  # sync --wait
        deadline = started + self._settings.wait
        self._metrics.analysis_waiting.inc()
        try:
            while time.monotonic() + self._settings.poll <= deadline:
                await asyncio.sleep(self._settings.poll)
                reading = await self._read(job)
                if not reading.pending:
                    waited = time.monotonic() - started
                    fields["analysis_waited_ms"] = round(waited * 1e3, 1)
                    self._metrics.analysis_gate.labels(basis=reading.basis, outcome="waited").inc()
                    log.info("job.analysis_done", project_uuid=job.project_uuid,
                             basis=reading.basis, waited_ms=round(waited * 1e3, 1))  # fmt: skip
                    return reading
        finally:
            self._metrics.analysis_waiting.dec()
        self._metrics.analysis_gate.labels(basis=reading.basis, outcome="pending").inc()
        fields["analysis"] = reading.basis
        raise analysis_gate.refusal(reading, job.project_uuid, time.monotonic() - started)

    async def _read(self, job: Job) -> Reading:
        """One question to DT; its refusals count as the auth/config failures they are."""
        try:
            reading = await self._ask(job)
        except (DtRejected, DtMisconfigured):
            self._metrics.dt_auth_failures.inc()  # the key or the address: the same alert
            raise
        return reading

    async def _ask(self, job: Job) -> Reading:
        if job.analysis_token is not None:
            token = job.analysis_token
            return analysis_gate.by_token(token, await self._dt.analysis_processing(token))
        try:
            found = await self._dt.project(job.project_uuid)
        except DtRejected as exc:
            if exc.status != 403:  # 401: the key itself, which the export would fail on too
                raise
            # VIEW_PORTFOLIO is not required by the export: no signal, as DT 4.12 gives none
            log.warning("job.analysis_unknown", project_uuid=job.project_uuid, error=str(exc))
            return analysis_gate.unreadable(str(exc))
        facts = BomFacts.of(found, records_analyses=await dt_records_analyses(self._dt))
        return analysis_gate.by_facts(facts, time.time())


async def coalesced(
    freshness: Freshness, gate: AnalysisGate | None, job: Job, fields: dict[str, Any]
) -> bool:
    """A fresher fetch stands in for the job; else it is free to fetch (DT's analysis done,
    the gate says). A job with a BOM upload's token is covered only by a fetch started once DT
    had analysed that upload; others may be before DT is asked."""
    early = gate is None or job.analysis_token is None
    covered = early and await freshness.covers(job)
    if not covered and gate is not None:
        since = await gate.passed(job, fields)
        # nothing awaited between this check and the fetch's start: coalescing depends on it
        # (a lookup in between let a burst's jobs all pass the check)
        covered = await freshness.covers(job, since=since)
    return covered
