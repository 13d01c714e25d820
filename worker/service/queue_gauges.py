"""The service's queues as gauges: messages ready in each, read from RabbitMQ in the background
(every worker process shows the same values: aggregate them with max, not sum)."""

from __future__ import annotations

import asyncio
import dataclasses

import structlog
from prometheus_client import CollectorRegistry, Gauge

from worker.adapters.amqp import BROKER_ERRORS
from worker.adapters.broker import Broker
from worker.core.errors import TransientError

log = structlog.get_logger(__name__)

REFRESH_SECONDS = 15.0


@dataclasses.dataclass(frozen=True, slots=True)
class QueueGauges:
    messages: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> QueueGauges:
        return cls(
            messages=Gauge(
                "dtrack_worker_queue_messages",
                "Messages ready in each queue of the topology, by its name without the prefix "
                "(jobs, jobs.parked, jobs.retry.5s, events.unrouted...).",
                ["queue"],
                registry=registry,
            )
        )

    async def refresh(self, broker: Broker) -> None:
        prefix = broker.topology.prefix + "."
        for queue in broker.topology.queues:
            count = await broker.depth(queue.name)
            self.messages.labels(queue=queue.name.removeprefix(prefix)).set(count)


async def refresh_forever(gauges: QueueGauges, broker: Broker) -> None:
    while True:
        if not broker.ready:  # connecting: read the queues as soon as it is up
            await asyncio.sleep(1.0)
            continue
        try:
            await gauges.refresh(broker)
        except (TransientError, *BROKER_ERRORS) as exc:
            log.warning("queues.metrics_unavailable", error=f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(REFRESH_SECONDS)
