"""Prometheus metrics, one registry per process (tests make their own)."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from worker.core.selection import Verdict


@dataclasses.dataclass(frozen=True, slots=True)
class ReceiverMetrics:
    registry: CollectorRegistry
    requests: Counter
    jobs: Counter
    enqueue_seconds: Histogram
    broker_connected: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> ReceiverMetrics:
        registry = registry or CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "dtrack_worker_webhook_requests",
                "Webhook requests by notification group and outcome "
                "(enqueued, ignored, invalid, unauthorized, too_large, unavailable).",
                ["group", "outcome"],
                registry=registry,
            ),
            jobs=Counter(
                "dtrack_worker_jobs_enqueued",
                "Jobs safely in RabbitMQ (publisher-confirmed), by trigger group.",
                ["group"],
                registry=registry,
            ),
            enqueue_seconds=Histogram(
                "dtrack_worker_enqueue_seconds",
                "Time from a notification's arrival to the broker's confirm of all its jobs.",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                registry=registry,
            ),
            broker_connected=Gauge(
                "dtrack_worker_broker_connected",
                "1 while the connection to RabbitMQ is open and the topology declared, else 0.",
                registry=registry,
            ),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerMetrics:
    registry: CollectorRegistry
    jobs: Counter
    in_flight: Gauge
    coalesced: Counter
    parked: Counter
    fetch_seconds: Histogram
    fetch_bytes: Histogram
    dt_responses: Counter
    dt_auth_failures: Counter
    findings_published: Counter
    validation_failures: Counter
    transitions: Counter
    time_to_resolve: Histogram
    outbox_published: Counter
    job_seconds: Histogram
    events_published: Counter
    filtered: Counter
    filter_errors: Counter
    filter_pending: Gauge
    clock_skewed: Counter
    analysis_gate: Counter
    analysis_waiting: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> WorkerMetrics:
        registry = registry or CollectorRegistry()
        return cls(
            registry=registry,
            jobs=Counter(
                "dtrack_worker_jobs",
                "Jobs settled, by outcome (done, coalesced, gone, retried, parked; unsettled: "
                "neither retried nor parked, RabbitMQ refused the copy, the job went back).",
                ["outcome"],
                registry=registry,
            ),
            in_flight=Gauge(
                "dtrack_worker_jobs_in_flight", "Jobs being processed now.", registry=registry
            ),
            coalesced=Counter(
                "dtrack_worker_coalesced_jobs",
                "Jobs answered by a fetch of the same project that started after they were "
                "accepted.",
                registry=registry,
            ),
            parked=Counter(
                "dtrack_worker_parked_jobs",
                "Jobs moved to the parked queue, by reason (invalid_export, dt_rejected, "
                "too_large, attempts_exhausted, invalid_job, suspicious_export, analysis_pending, "
                "unexpected).",
                ["reason"],
                registry=registry,
            ),
            fetch_seconds=Histogram(
                "dtrack_worker_fetch_seconds",
                "Time of one GET of an FPF export from DT, by response.",
                buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
                registry=registry,
            ),
            fetch_bytes=Histogram(
                "dtrack_worker_fetch_bytes",
                "Size of the FPF exports fetched.",
                buckets=(1e4, 1e5, 1e6, 1e7, 5e7, 1e8, 5e8),
                registry=registry,
            ),
            dt_responses=Counter(
                "dtrack_worker_dt_responses",
                "Responses from DT's export endpoint, by HTTP status.",
                ["status"],
                registry=registry,
            ),
            dt_auth_failures=Counter(
                "dtrack_worker_dt_auth_failures",
                "DT answered 401 or 403: the API key or its permissions need fixing.",
                registry=registry,
            ),
            findings_published=Counter(
                "dtrack_worker_findings_published",
                "Finding events confirmed by RabbitMQ.",
                registry=registry,
            ),
            validation_failures=Counter(
                "dtrack_worker_validation_failures",
                "Exports that broke the FPF contract.",
                registry=registry,
            ),
            transitions=Counter(
                "dtrack_worker_transitions",
                "Finding transitions committed (their events are in the outbox), by kind.",
                ["kind"],
                registry=registry,
            ),
            time_to_resolve=Histogram(
                "dtrack_worker_time_to_resolve_seconds",
                "From a finding's opening to its resolution, by severity.",
                ["severity"],
                buckets=(3600, 86400, 7 * 86400, 30 * 86400, 90 * 86400, 180 * 86400, 365 * 86400),
                registry=registry,
            ),
            outbox_published=Counter(
                "dtrack_worker_outbox_published",
                "Outbox events the relay published (confirmed) and deleted.",
                registry=registry,
            ),
            job_seconds=Histogram(
                "dtrack_worker_job_seconds",
                "Time of a job attempt, from its delivery to its settling, by outcome.",
                ["outcome"],
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
                registry=registry,
            ),
            events_published=Counter(
                "dtrack_worker_events_published",
                "Events confirmed by RabbitMQ (snapshot, change and service events), by type.",
                ["type"],
                registry=registry,
            ),
            filtered=Counter(
                "dtrack_worker_filter_events",
                "Finding events through DTRACK_WORKER_FILTER, by outcome (passed, "
                "filtered_out, error: published, since it could not be evaluated).",
                ["outcome"],
                registry=registry,
            ),
            filter_errors=Counter(
                "dtrack_worker_filter_errors",
                "Finding events DTRACK_WORKER_FILTER could not be evaluated on (published), "
                "by reason (missing_field, index_out_of_range, division_by_zero, overflow, "
                "wrong_type, function_error, not_boolean, evaluation_error, over_budget, "
                "evaluator_failed).",
                ["reason"],
                registry=registry,
            ),
            filter_pending=Gauge(
                "dtrack_worker_filter_pending_events",
                "Finding events handed to the filter's evaluator process and not yet judged.",
                registry=registry,
            ),
            clock_skewed=Counter(
                "dtrack_worker_clock_skewed_exports",
                "Exports stamped further ahead of this host's clock than "
                "DTRACK_WORKER_CLOCK_SKEW_TOLERANCE: applied with the time they were received.",
                registry=registry,
            ),
            analysis_gate=Counter(
                "dtrack_worker_analysis_gate",
                "Jobs through the analysis gate, by basis (token, facts, none: DT gives no "
                "signal) and outcome (ready; waited: DT finished while the job waited; pending: "
                "still analysing when the job's wait ended, the job retried or parked).",
                ["basis", "outcome"],
                registry=registry,
            ),
            analysis_waiting=Gauge(
                "dtrack_worker_analysis_waiting_jobs",
                "Jobs waiting now for DT to finish analysing their project's BOM.",
                registry=registry,
            ),
        )

    def count_filtered(self, verdicts: Mapping[Verdict, int]) -> None:
        for verdict, count in verdicts.items():
            self.filtered.labels(outcome=verdict.outcome).inc(count)
            if verdict.reason:
                self.filter_errors.labels(reason=verdict.reason).inc(count)

    def count_events(self, types: Iterable[str]) -> None:
        """Events of these types were confirmed."""
        for type_, count in collections.Counter(types).items():
            self.events_published.labels(type=type_).inc(count)
