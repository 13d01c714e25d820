"""RabbitMQ topology as data: every exchange, queue, argument and binding. Pure.

``broker.declare`` declares it; ``dtrack-worker topology`` prints and declares it;
``deploy/rabbitmq/definitions.json`` must match ``Topology.definitions()``. docs/topology.md
draws it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any, Literal, NotRequired, TypedDict

from worker.core.config import BrokerSettings

ExchangeType = Literal["direct", "topic", "fanout"]

# Routing keys on the jobs exchange.
JOB_KEY = "job"  # straight to the jobs queue
# delay.<ms>ms: held for a coalescing delay in a queue of that delay alone, then to JOB_KEY
DEFAULT_DELAY_SECONDS = 10.0
PARKED_KEY = "parked"  # jobs that cannot be processed, with the reason in their headers
RECONCILE_KEY = "reconcile"  # the reconciliation token, for the one active reconciler
RECONCILE_WAIT_KEY = "reconcile.wait"  # the token between two passes
# Retry tiers: a failed job waits in the tier for its attempt, then goes back to JOB_KEY.
RETRY_DELAYS_SECONDS = (5, 30, 120, 600)


class QueueArguments(TypedDict):
    """The x-arguments we use; a misspelt key fails the type check."""

    # RabbitMQ's own spellings, which are not Python identifiers, are mapped in _x_arguments.
    queue_type: Literal["quorum", "classic"]
    dead_letter_exchange: NotRequired[str]
    dead_letter_routing_key: NotRequired[str]
    dead_letter_strategy: NotRequired[Literal["at-least-once", "at-most-once"]]
    overflow: NotRequired[Literal["reject-publish", "drop-head"]]
    message_ttl: NotRequired[int]
    single_active_consumer: NotRequired[bool]
    quorum_initial_group_size: NotRequired[int]


@dataclasses.dataclass(frozen=True, slots=True)
class Exchange:
    name: str
    type: ExchangeType
    arguments: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Queue:
    name: str
    arguments: QueueArguments

    @property
    def x_arguments(self) -> dict[str, Any]:
        return {f"x-{key.replace('_', '-')}": value for key, value in self.arguments.items()}


@dataclasses.dataclass(frozen=True, slots=True)
class Binding:
    exchange: str
    queue: str
    routing_key: str


def _holding(name: str, back_to: str, ttl_ms: int | None = None, key: str = JOB_KEY) -> Queue:
    """A queue whose messages expire back into the jobs exchange (to ``key``), at least once."""
    arguments: QueueArguments = {
        "queue_type": "quorum",
        "dead_letter_exchange": back_to,
        "dead_letter_routing_key": key,
        "dead_letter_strategy": "at-least-once",  # quorum queues drop dead letters otherwise
        "overflow": "reject-publish",  # required by at-least-once dead-lettering
    }
    if ttl_ms is not None:
        arguments["message_ttl"] = ttl_ms
    return Queue(name, arguments)


# Returns of one job the broker takes before it parks the job itself (RabbitMQ 4.x gives
# quorum queues a limit of 20 and drops what goes over it unless the queue dead-letters). A
# worker parks a job after DTRACK_WORKER_MAX_ATTEMPTS (at most 100) attempts; returns at a
# drain or while RabbitMQ refuses the retry copy count too on 3.x and 4.0-4.2.
DELIVERY_LIMIT = 120


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    """A RabbitMQ policy: how arguments are given to a queue that already exists (a durable
    queue's own arguments cannot change once declared; a policy's can, and apply at once)."""

    name: str
    pattern: str
    definition: dict[str, Any]
    apply_to: Literal["queues"] = "queues"
    priority: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Topology:
    prefix: str
    jobs_exchange: Exchange
    jobs_queue: Queue
    delay_queues: tuple[Queue, ...]  # one per coalescing delay in use: none waits behind another
    retry_queues: tuple[Queue, ...]
    parked_queue: Queue
    reconcile_queue: Queue
    reconcile_wait_queue: Queue
    events_exchange: Exchange
    unrouted_exchange: Exchange
    unrouted_queue: Queue

    @property
    def jobs_policy(self) -> Policy:
        """The jobs queue's policy: a job over the broker's delivery limit is parked (reason
        ``delivery_limit`` in its x-death header), never dropped."""
        jobs = self.jobs_queue.name
        return Policy(
            name=jobs,
            pattern=f"^{re.escape(jobs)}$",
            definition={
                "delivery-limit": DELIVERY_LIMIT,
                "dead-letter-exchange": self.jobs_exchange.name,
                "dead-letter-routing-key": PARKED_KEY,
                "dead-letter-strategy": "at-least-once",
                "overflow": "reject-publish",  # required by at-least-once dead-lettering
            },
        )

    @property
    def policies(self) -> tuple[Policy, ...]:
        return (self.jobs_policy,)

    def delay_queue_name(self, seconds: float) -> str:
        """The name of the queue that holds jobs for a coalescing delay of ``seconds``."""
        return f"{self.jobs_exchange.name}.{delay_key(seconds)}"

    @property
    def exchanges(self) -> tuple[Exchange, ...]:
        return (self.jobs_exchange, self.events_exchange, self.unrouted_exchange)

    @property
    def queues(self) -> tuple[Queue, ...]:
        return (
            self.jobs_queue,
            *self.delay_queues,
            *self.retry_queues,
            self.parked_queue,
            self.reconcile_queue,
            self.reconcile_wait_queue,
            self.unrouted_queue,
        )

    @property
    def bindings(self) -> tuple[Binding, ...]:
        jobs = self.jobs_exchange.name
        return (
            Binding(jobs, self.jobs_queue.name, JOB_KEY),
            *(
                Binding(jobs, queue.name, queue.name.removeprefix(jobs + "."))
                for queue in self.delay_queues
            ),
            *(
                Binding(jobs, queue.name, retry_key(tier))
                for tier, queue in enumerate(self.retry_queues)
            ),
            Binding(jobs, self.parked_queue.name, PARKED_KEY),
            Binding(jobs, self.reconcile_queue.name, RECONCILE_KEY),
            Binding(jobs, self.reconcile_wait_queue.name, RECONCILE_WAIT_KEY),
            Binding(self.unrouted_exchange.name, self.unrouted_queue.name, ""),
        )

    def definitions(self) -> dict[str, Any]:
        """The topology in RabbitMQ's definitions format (as ``rabbitmqctl export_definitions``)."""
        return {
            "exchanges": [
                {
                    "name": exchange.name,
                    "vhost": "/",
                    "type": exchange.type,
                    "durable": True,
                    "auto_delete": False,
                    "internal": False,
                    "arguments": dict(exchange.arguments),
                }
                for exchange in self.exchanges
            ],
            "queues": [
                {
                    "name": queue.name,
                    "vhost": "/",
                    "durable": True,
                    "auto_delete": False,
                    "arguments": queue.x_arguments,
                }
                for queue in self.queues
            ],
            "bindings": [
                {
                    "source": binding.exchange,
                    "vhost": "/",
                    "destination": binding.queue,
                    "destination_type": "queue",
                    "routing_key": binding.routing_key,
                    "arguments": {},
                }
                for binding in self.bindings
            ],
            "policies": [
                {
                    "name": policy.name,
                    "vhost": "/",
                    "pattern": policy.pattern,
                    "apply-to": policy.apply_to,
                    "priority": policy.priority,
                    "definition": policy.definition,
                }
                for policy in self.policies
            ],
        }


def delay_key(seconds: float) -> str:
    """The routing key (and queue name suffix) of a coalescing delay, in whole milliseconds."""
    return f"delay.{round(seconds * 1000)}ms"


def retry_key(tier: int) -> str:
    return f"retry.{RETRY_DELAYS_SECONDS[tier]}s"


def build(
    prefix: str,
    *,
    delays: Iterable[float] = (DEFAULT_DELAY_SECONDS,),
    quorum_size: int | None = None,
) -> Topology:
    """Every name starts with ``prefix``, so deployments and tests can share one broker.

    ``delays``: the coalescing delays in use (seconds); each gets a queue whose messages all
    wait exactly that long, so a short delay never waits behind a long one. ``quorum_size``:
    the replicas each queue starts with (RabbitMQ uses fewer when fewer nodes run).
    """
    built = _build(prefix, delays)
    if quorum_size is None:
        return built

    def sized(queue: Queue) -> Queue:
        return Queue(queue.name, queue.arguments | {"quorum_initial_group_size": quorum_size})

    return dataclasses.replace(
        built,
        jobs_queue=sized(built.jobs_queue),
        delay_queues=tuple(map(sized, built.delay_queues)),
        retry_queues=tuple(map(sized, built.retry_queues)),
        parked_queue=sized(built.parked_queue),
        reconcile_queue=sized(built.reconcile_queue),
        reconcile_wait_queue=sized(built.reconcile_wait_queue),
        unrouted_queue=sized(built.unrouted_queue),
    )


def configured(broker: BrokerSettings, *, delays: Iterable[float] = ()) -> Topology:
    """The topology a process declares: its prefix, its quorum size, the delays it uses."""
    return build(broker.prefix, delays=delays, quorum_size=broker.quorum_group_size)


def _build(prefix: str, delays: Iterable[float]) -> Topology:
    jobs = f"{prefix}.jobs"
    unrouted = f"{prefix}.events.unrouted"
    return Topology(
        prefix=prefix,
        jobs_exchange=Exchange(jobs, "direct"),
        jobs_queue=Queue(jobs, {"queue_type": "quorum"}),
        delay_queues=tuple(
            _holding(f"{jobs}.{delay_key(seconds)}", jobs, ttl_ms=round(seconds * 1000))
            for seconds in sorted({seconds for seconds in delays if round(seconds * 1000) > 0})
        ),
        retry_queues=tuple(
            _holding(f"{jobs}.{retry_key(tier)}", jobs, ttl_ms=seconds * 1000)
            for tier, seconds in enumerate(RETRY_DELAYS_SECONDS)
        ),
        parked_queue=Queue(f"{jobs}.parked", {"queue_type": "quorum"}),
        # one token; RabbitMQ gives it to one consumer at a time: the only reconciler running
        reconcile_queue=Queue(
            f"{prefix}.reconcile", {"queue_type": "quorum", "single_active_consumer": True}
        ),
        reconcile_wait_queue=_holding(f"{prefix}.reconcile.wait", jobs, key=RECONCILE_KEY),
        # Events nobody has bound a queue for go to the alternate exchange, not into the void.
        events_exchange=Exchange(f"{prefix}.events", "topic", (("alternate-exchange", unrouted),)),
        unrouted_exchange=Exchange(unrouted, "fanout"),
        unrouted_queue=Queue(unrouted, {"queue_type": "quorum"}),
    )
