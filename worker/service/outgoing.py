"""Events on their way out: through the finding filter (judged off the event loop) and the
output format, to the events exchange, confirmed, and counted. The snapshot rounds and the
outbox relay both send this way."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable

from worker.adapters.broker import Broker
from worker.adapters.metrics import WorkerMetrics
from worker.core.batches import Serialized
from worker.core.output import Output

WINDOW = 2  # rounds in flight: the next is written while RabbitMQ confirms the last


async def send(
    broker: Broker, output: Output, metrics: WorkerMetrics, items: list[Serialized]
) -> int:
    """Publish what ``output`` keeps of ``items``; how many went."""
    if output.transforms:
        verdicts = None
        if output.judge is not None:  # off the loop; its lock keeps the sends in order
            verdicts = await output.judge.verdicts(output.judged(items))
        items, counted = output.prepare(items, verdicts)
        metrics.count_filtered(counted)
    if items:
        await broker.publish_serialized(broker.topology.events_exchange.name, items)
    metrics.count_events(type_ for _, _, _, type_ in items)
    return len(items)


async def send_all(
    broker: Broker, output: Output, metrics: WorkerMetrics, rounds: Iterable[list[Serialized]]
) -> int:
    """Every round, in order, each written while the one before awaits its confirms (our
    making and writing overlaps RabbitMQ's storing); how many events went.

    Order holds: a send takes the filter judge's lock, then the channel's (both first come,
    first served), each before it first waits for anything, and each starts after the one
    before it.
    """
    sent = 0
    flying: collections.deque[asyncio.Future[int]] = collections.deque()
    try:
        for items in rounds:
            flying.append(asyncio.ensure_future(send(broker, output, metrics, items)))
            if len(flying) >= WINDOW:
                sent += await flying.popleft()
        while flying:
            sent += await flying.popleft()
    finally:  # a failed or cancelled round: the ones after it are not waited for
        for later in flying:
            later.cancel()
        await asyncio.gather(*flying, return_exceptions=True)
    return sent
