"""How long a job may hold its delivery: what RabbitMQ's consumer timeout must allow. Pure.

RabbitMQ closes the channel of a consumer that holds a delivery unacknowledged longer than its
consumer timeout (30 minutes by default) and gives the job to another worker: a long job then
fails on a dead channel and is done twice. A job holds its delivery while it waits for a DT slot
(``DTRACK_WORKER_PREFETCH`` deliveries share ``DTRACK_WORKER_DT_CONCURRENCY`` fetches), while
every try of its download runs to ``DTRACK_WORKER_DT_EXPORT_TIMEOUT``, during the pauses between
tries, and while its events are made and published; before all that, while it waits for DT
to finish analysing the project's BOM (the analysis gate).
"""

from __future__ import annotations

import math

from worker.core.config import Settings

RABBITMQ_DEFAULT_SECONDS = 1800.0  # consumer_timeout when nobody set it
MAX_PAUSE_SECONDS = 120.0  # the longest Retry-After a fetch honours (dthttp)
AFTER_DOWNLOAD_SECONDS = 600.0  # validate, normalize, store, publish: generous for 512 MiB


def fetch_seconds(settings: Settings) -> float:
    """The longest one fetch can take: every try to its deadline, every pause at its longest
    (Retry-After, or the backoff with +50 % jitter)."""
    dt = settings.dt
    pauses = sum(
        max(MAX_PAUSE_SECONDS, 1.5 * dt.backoff_seconds * 2.0 ** (attempt - 1))
        for attempt in range(1, dt.http_attempts)
    )
    return dt.http_attempts * dt.export_timeout + pauses


def budget_of(settings: Settings) -> float:
    """Seconds from a job's delivery to its ack at the worst: its wait for DT's analysis (the
    analysis gate, with a last question to DT), the fetches queued before it for a DT slot,
    its own, and what follows the download."""
    rounds = math.ceil(settings.worker.prefetch / settings.dt.concurrency)
    gate = settings.worker.analysis
    waiting = gate.wait + settings.dt.read_timeout if gate.enabled else 0.0
    return waiting + rounds * fetch_seconds(settings) + AFTER_DOWNLOAD_SECONDS


def consumer_timeout_ms(settings: Settings) -> int:
    """The ``x-consumer-timeout`` the worker asks for: the budget, never below RabbitMQ's
    default."""
    return math.ceil(max(budget_of(settings), RABBITMQ_DEFAULT_SECONDS) * 1000)
