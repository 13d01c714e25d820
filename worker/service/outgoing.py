"""Events on their way out: through the finding filter and the output format, to the events
exchange, confirmed, and counted. The snapshot rounds and the outbox relay both send this way."""

from __future__ import annotations

from worker.adapters.broker import Broker
from worker.adapters.metrics import WorkerMetrics
from worker.core.batches import Serialized
from worker.core.output import Output


async def send(
    broker: Broker, output: Output, metrics: WorkerMetrics, items: list[Serialized]
) -> int:
    """Publish what ``output`` keeps of ``items``; how many went."""
    if output.transforms:
        items, outcomes = output.prepare(items)
        metrics.count_filtered(outcomes)
    if items:
        await broker.publish_serialized(broker.topology.events_exchange.name, items)
    metrics.count_events(type_ for _, _, _, type_ in items)
    return len(items)
