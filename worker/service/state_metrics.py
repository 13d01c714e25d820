"""Gauges over the whole state store, refreshed in the background (every worker process shows
the same portfolio-wide values: aggregate them with max, not sum)."""

from __future__ import annotations

import asyncio
import dataclasses

import structlog
from prometheus_client import CollectorRegistry, Gauge

from worker.adapters.state.store import Store
from worker.core.errors import TransientError

log = structlog.get_logger(__name__)

REFRESH_SECONDS = 15.0


@dataclasses.dataclass(frozen=True, slots=True)
class StateGauges:
    open_findings: Gauge
    oldest_open: Gauge
    outbox_rows: Gauge
    outbox_oldest: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> StateGauges:
        return cls(
            open_findings=Gauge(
                "dtrack_worker_open_findings",
                "Open findings in the state store, over every project, by severity.",
                ["severity"],
                registry=registry,
            ),
            oldest_open=Gauge(
                "dtrack_worker_oldest_open_finding_seconds",
                "Age of the oldest open finding, by severity (for SLA alerts).",
                ["severity"],
                registry=registry,
            ),
            outbox_rows=Gauge(
                "dtrack_worker_outbox_rows",
                "Events committed with the state and not yet published by a relay.",
                registry=registry,
            ),
            outbox_oldest=Gauge(
                "dtrack_worker_outbox_oldest_seconds",
                "Age of the oldest event waiting in the outbox (0 when it is empty).",
                registry=registry,
            ),
        )

    async def refresh(self, store: Store) -> None:
        overview = await store.open_by_severity()
        for severity, count in overview.open.items():
            self.open_findings.labels(severity=severity).set(count)
            self.oldest_open.labels(severity=severity).set(
                overview.oldest_open_seconds.get(severity, 0.0)
            )
        self.outbox_rows.set(overview.outbox_rows)
        self.outbox_oldest.set(overview.outbox_oldest_seconds)


async def refresh_forever(gauges: StateGauges, store: Store) -> None:
    while True:
        try:
            await gauges.refresh(store)
        except TransientError as exc:
            log.warning("state.metrics_unavailable", error=str(exc))
        await asyncio.sleep(REFRESH_SECONDS)
