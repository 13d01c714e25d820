"""Prometheus metrics, one registry per process (tests make their own)."""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
