"""The worker: one job at a time per message, settled in exactly one place.

fetch the export -> validate -> normalize -> publish every finding event (confirmed) ->
publish the export summary -> ack. A passing failure sends the job to a retry tier with its
attempt count in the ``x-attempt`` header; a permanent one, or the last attempt, parks it with
the reason in its headers. Nothing is acked before its events are confirmed; nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Protocol

import structlog
from aio_pika.abc import AbstractIncomingMessage
from opentelemetry.trace import SpanKind

from worker.adapters import supervise, tracing
from worker.adapters.amqp import BROKER_ERRORS, copy_of
from worker.adapters.broker import Broker
from worker.adapters.metrics import WorkerMetrics
from worker.adapters.schemas import Contracts
from worker.adapters.spool import Spool
from worker.adapters.subscription import Subscription
from worker.core import batches, events, fpf, topology
from worker.core.errors import (
    DtMisconfigured,
    DtRejected,
    InvalidExport,
    PermanentError,
    ProjectGone,
    TransientError,
)
from worker.core.fpf import ProjectFacts
from worker.core.jobs import Job
from worker.core.output import AS_MADE, Output
from worker.core.scope import EVERYTHING, Scope
from worker.service import analysis_gate, job_messages, outgoing, progress, projects
from worker.service.analysis_gate import AnalysisGate
from worker.service.deliveries import Deliveries
from worker.service.delta import Deltas
from worker.service.freshness import Freshness
from worker.service.job_history import JobHistory
from worker.service.projects import Directory

log = structlog.get_logger(__name__)

SUBSCRIBE_SECONDS = 30.0


class ExportSource(Protocol):
    async def fetch_export(self, project_uuid: str, *, arrived: progress.Arrived) -> Spool: ...


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    source: str
    zone: tzinfo
    max_attempts: int
    prefetch: int
    shutdown_grace: float
    snapshots: bool = True  # publish every finding of every export (DTRACK_WORKER_EMIT)
    output: Output = AS_MADE  # the filter and the format of finding events
    scope: Scope = EVERYTHING  # which projects are worked for
    # RabbitMQ's delivery timeout for our consumer, above the job budget (worker.core.job_budget)
    consumer_timeout_ms: int | None = None
    settle_seconds: float = 10.0  # past the grace, for jobs settling: a publish timeout and 5 s


class Worker:
    def __init__(
        self,
        broker: Broker,
        dt: ExportSource,
        contracts: Contracts,
        metrics: WorkerMetrics,
        options: WorkerOptions,
        deltas: Deltas | None = None,
        directory: Directory | None = None,
        gate: AnalysisGate | None = None,
        history: JobHistory | None = None,
    ) -> None:
        self._gate = gate  # waits for DT's analysis before a fetch (service.analysis_gate)
        self._history = history  # each settled job's row, for the console (with a store)
        self._directory = directory  # DT's project facts: tags, activity, for scope and events
        self._deltas = deltas  # the change stream, through the state store (delta or both)
        self._broker = broker
        self._dt = dt
        self._contracts = contracts
        self._metrics = metrics
        self._options = options
        self._freshness = Freshness()
        self._subscription: Subscription | None = None
        self._deliveries = Deliveries()
        self._starter: asyncio.Task[None] | None = None
        self.consuming = False

    @property
    def ready(self) -> bool:
        return self.consuming and self._broker.ready

    async def start(self) -> None:
        """Begin consuming as soon as the broker is connected (in the background)."""
        self._starter = asyncio.create_task(self._start_when_ready(), name="worker-start")

    async def _start_when_ready(self) -> None:
        pause = supervise.FIRST_PAUSE_SECONDS  # doubled per failure, as the broker's loop
        while True:
            while not self._broker.ready:  # noqa: ASYNC110 - the broker reconnects on its own
                await asyncio.sleep(0.1)
            try:  # bounded: a broker that accepts the connection may still not answer
                async with asyncio.timeout(SUBSCRIBE_SECONDS):
                    arguments = job_messages.consumer_arguments(self._options.consumer_timeout_ms)
                    self._subscription = await self._broker.consume(
                        self._broker.topology.jobs_queue,
                        self._on_message,
                        prefetch=self._options.prefetch,
                        arguments=arguments,
                    )
                break
            except Exception as exc:  # the broker away, or a bug (traceback): tried again
                bug = not isinstance(exc, (*BROKER_ERRORS, TransientError))
                log.warning("worker.subscribe_failed", error=repr(exc), exc_info=bug,
                            retry_in_s=pause)  # fmt: skip
                await asyncio.sleep(pause)
                pause = min(pause * 2, supervise.MAX_PAUSE_SECONDS)
        self.consuming = True
        queue, timeout = self._broker.topology.jobs_queue.name, self._options.consumer_timeout_ms
        log.info("worker.consuming", queue=queue, consumer_timeout_ms=timeout)

    async def stop(self) -> None:
        """Stop taking jobs, let those in flight finish and ack within the grace, return the
        rest to the queue (nack, requeue), then close the channel they were delivered on."""
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starter
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.stop_taking()  # the channel stays: the drained jobs ack on it
        self.consuming = False
        pending = self._deliveries.pending()
        if pending:
            log.info(
                "worker.draining", in_flight=len(pending), grace_s=self._options.shutdown_grace
            )
            _, unfinished = await asyncio.wait(pending, timeout=self._options.shutdown_grace)
            if unfinished:
                given = await self._deliveries.give_back(unfinished, self._options.settle_seconds)
                if given.jobs:
                    log.warning("worker.returned", jobs=given.jobs, nacked=given.nacked)
        if subscription is not None:
            await subscription.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.create_task(self._handle(message))
        self._deliveries.add(task, message)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:  # retrieved: never lost
            log.error("job.crashed", error=repr(task.exception()))

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        """The job in its span, which continues the trace the job message carries."""
        attempt = job_messages.attempt(message)
        with tracing.span(
            f"process {self._broker.topology.jobs_queue.name}",
            kind=SpanKind.CONSUMER,
            context=tracing.extract(message.headers),
            attributes=job_messages.job_attributes(message, attempt),
        ):
            await self._attempt(message, attempt)

    async def _attempt(self, message: AbstractIncomingMessage, attempt: int) -> None:
        started = time.perf_counter()
        fields: dict[str, Any] = {"message_id": message.message_id, "attempt": attempt}
        await progress.report(self._broker, message, "started", fields)
        self._metrics.in_flight.inc()
        try:
            outcome = await self._settle(message, attempt, fields)
        except TransientError as exc:  # could not even retry or park it: the broker refuses
            # Back after a pause, rejected (RabbitMQ 4.3+ counts only a reject): its next
            # delivery is its next attempt (job_messages.attempt); it still ends parked.
            pause = job_messages.unsettled_seconds(attempt)
            fields["error"] = str(exc)  # the refusal; the job's own error was logged before
            log.error("job.unsettled", retry_in_s=pause, **fields)
            self._metrics.jobs.labels(outcome="unsettled").inc()
            await asyncio.sleep(pause)
            with contextlib.suppress(*BROKER_ERRORS):  # a closed channel returns it anyway
                await message.reject(requeue=True)
            return
        except BROKER_ERRORS as exc:  # the channel went while we acked: RabbitMQ redelivers it
            fields["error"] = f"{type(exc).__name__}: {exc}"
            log.warning("job.unsettled", **fields)
            return
        finally:
            self._metrics.in_flight.dec()
        seconds = time.perf_counter() - started
        self._metrics.jobs.labels(outcome=outcome).inc()
        self._metrics.job_seconds.labels(outcome=outcome).observe(seconds)
        tracing.annotate({"dtrack_worker.job.outcome": outcome})
        if self._history is not None:  # first: whoever is told it settled finds its row
            await self._history.settled(message, outcome, fields, seconds)
        await progress.report(self._broker, message, outcome, fields)
        level = "warning" if outcome == "parked" else "info"
        getattr(log, level)(
            "job.settled", outcome=outcome, duration_ms=round(seconds * 1e3, 1), **fields
        )

    async def _settle(
        self, message: AbstractIncomingMessage, attempt: int, fields: dict[str, Any]
    ) -> str:
        job: Job | None = None
        try:
            job = Job.from_json(message.body, self._contracts.job, job_messages.forced(message))
            fields.update(
                job_id=job.job_id,
                project_uuid=job.project_uuid,
                trigger=job.trigger,
                correlation_id=job.correlation_id,
            )
            tracing.annotate(
                {"dtrack_worker.project.uuid": job.project_uuid, "dtrack_worker.job.id": job.job_id}
            )
            outcome = await self._process(job, fields)
        except TransientError as exc:
            fields["error"] = str(exc)
            if attempt < self._options.max_attempts:
                await self._retry(message, attempt, exc)
                return "retried"
            reason = job_messages.exhausted_reason(exc)  # analysis_pending, attempts_exhausted
            return await self._park(message, reason, exc, attempt, fields)
        except InvalidExport as exc:
            fields["error"] = str(exc.args[0])
            self._metrics.validation_failures.inc()
            assert job is not None
            await self._publish_invalid(job, exc)
            return await self._park(message, "invalid_export", exc, attempt, fields)
        except PermanentError as exc:
            fields["error"] = str(exc)
            return await self._park(message, job_messages.park_reason(exc), exc, attempt, fields)
        except asyncio.CancelledError:
            raise  # shutdown: unsettled, RabbitMQ redelivers it
        except Exception as exc:  # a bug: park it, never hot-loop it
            fields["error"] = f"{type(exc).__name__}: {exc}"
            log.exception("job.unexpected_error", **fields)
            return await self._park(message, "unexpected", exc, attempt, fields)
        self._deliveries.settling()
        await message.ack()
        return outcome

    async def _process(self, job: Job, fields: dict[str, Any]) -> str:
        facts, outside = await projects.about(self._directory, self._options.scope, job)
        if outside is not None:  # never fetched; its state, if any, stays as it was
            fields["reason"] = outside
            return "out_of_scope"
        if await analysis_gate.coalesced(self._freshness, self._gate, job, fields):
            self._metrics.coalesced.inc()
            return "coalesced"
        started = time.perf_counter()
        with self._freshness.fetching(job.project_uuid) as fetch:
            try:
                raw = await self._dt.fetch_export(job.project_uuid, arrived=progress.fetched)
            except ProjectGone:
                return await self._gone(job, fields)
            except DtRejected as exc:
                if exc.status in (401, 403):
                    self._metrics.dt_auth_failures.inc()
                raise
            except DtMisconfigured:
                self._metrics.dt_auth_failures.inc()  # the auth/config failure alert
                raise
            with raw:  # a mapped temporary file: gone when the job is done with it
                outcome = "done"
                if self._options.snapshots:
                    fields["events"] = await self._snapshot(job, raw, started, facts)
                if self._deltas is not None:
                    outcome, fields["transitions"] = await self._deltas.export(
                        job,
                        raw.raw,
                        started,
                        job_messages.job_ref(job),
                        facts=facts,
                        release=raw.release,
                        retracted=fetch.retracted(),  # this job's and those it stands in for
                    )
        return outcome

    async def _gone(self, job: Job, fields: dict[str, Any]) -> str:
        if self._deltas is None:
            await self._publish_one(job_messages.gone(job, self._options.source))
            return "gone"
        # its open findings resolve, then project.gone; its lines follow DT (line_gone)
        gone = await self._deltas.gone(job, job_messages.job_ref(job))
        fields["transitions"] = gone.published
        if gone.follow:  # its lines' new current versions: their exports move the lines
            await self._broker.enqueue(gone.follow)
            fields["queued"] = [j.project_uuid for j in gone.follow]
        return "gone"

    async def _snapshot(self, job: Job, raw: Spool, started: float, facts: ProjectFacts) -> int:
        """Every finding of the export as an event, published now (snapshot mode)."""
        with tracing.span(
            "validate and normalize", attributes={"dtrack_worker.export.bytes": len(raw)}
        ):
            # validated here; its events are made as they are sent, run by run (the spool's
            # text stays until the job ends): the job never holds all its events
            export = fpf.process(
                raw.raw,
                self._contracts.fpf,
                source=self._options.source,
                zone=self._options.zone,
                project=job.project_uuid,
                facts=facts,
                release=raw.release,
                streamed=True,
            )
        # An export read whole holds its parsed tree: many objects without reference cycles;
        # frozen, the collector stops walking them all again for every round.
        gc.freeze()
        try:
            return await self._publish(job, export, started, summary=self._deltas is None)
        finally:
            gc.unfreeze()  # whatever the job leaves behind is collectable again

    async def _publish(
        self, job: Job, export: fpf.Export, started: float, *, summary: bool = True
    ) -> int:
        """Every finding event, then (unless the change stream sends it) the summary; all
        confirmed. Returns the finding count."""
        severities: dict[str, int] = {}
        rounds = (
            [(event.routing_key, event.body, event.id, event.type) for event in batch]
            for batch in batches.rounds(export.events(severities), self._broker.events_per_round)
        )
        published = await outgoing.send_all(
            self._broker, self._options.output, self._metrics, rounds
        )
        self._metrics.findings_published.inc(published)
        if not summary:  # with both streams, one summary: the change stream's, with its counts
            return published
        duration_ms = (time.perf_counter() - started) * 1e3
        await self._publish_one(job_messages.summary(job, export, severities, duration_ms))
        return published

    async def _publish_one(self, event: events.Event) -> None:
        await self._broker.publish_events([event])
        self._metrics.count_events([event.type])

    async def _publish_invalid(self, job: Job, exc: InvalidExport) -> None:
        event = job_messages.invalid_export(job, self._options.source, exc)
        with contextlib.suppress(TransientError):  # the parked job carries the report anyway
            await self._publish_one(event)

    async def _retry(self, message: AbstractIncomingMessage, attempt: int, exc: Exception) -> None:
        tier = min(attempt - 1, len(topology.RETRY_DELAYS_SECONDS) - 1)
        headers = job_messages.retry_headers(attempt, exc)
        await self._republish(message, topology.retry_key(tier), headers)
        await message.ack()

    async def _park(
        self,
        message: AbstractIncomingMessage,
        reason: str,
        exc: Exception,
        attempt: int,
        fields: dict[str, Any],
    ) -> str:
        fields["reason"] = reason
        self._metrics.parked.labels(reason=reason).inc()
        await self._republish(
            message, topology.PARKED_KEY, job_messages.park_headers(reason, exc, attempt)
        )
        await message.ack()
        return "parked"

    async def _republish(
        self, message: AbstractIncomingMessage, routing_key: str, headers: dict[str, Any]
    ) -> None:
        """A copy of the job to ``routing_key``, confirmed, before the original is acked."""
        self._deliveries.settling()
        copy = copy_of(message, headers)
        try:
            await self._broker.publish(
                self._broker.topology.jobs_exchange.name, [(routing_key, copy)]
            )
        except BaseException:
            self._deliveries.unsettled()  # not published: the job may be given back
            raise
