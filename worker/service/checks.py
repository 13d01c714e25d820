"""What a deployment needs, checked: RabbitMQ and its topology, DT and the API key, the state
store, a place to spool exports.

``dtrack-worker check`` prints every result; ``serve`` and ``worker`` log the DT and spool ones
at start.
Each check says what it found, and when it fails, what to do about it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os

import aio_pika

from worker.adapters import spool as spooling
from worker.adapters.amqp import BROKER_ERRORS, CONNECT_ERRORS, BrokerUnavailable, connect_once
from worker.adapters.dtrack import DtClient
from worker.adapters.state.store import (
    SchemaRefused,
    StateUnavailable,
    Store,
    StoreMissing,
    Usable,
)
from worker.core import job_budget
from worker.core.config import PREFIX, DtSettings, Settings, StateSettings
from worker.core.errors import DtMisconfigured, DtRejected, DtUnavailable
from worker.core.topology import Topology
from worker.core.urls import redact

NEEDED_PERMISSIONS = ("VIEW_PORTFOLIO", "VIEW_VULNERABILITY")
TAKES_CONSUMER_TIMEOUT = (3, 11, 15)  # the first RabbitMQ honouring x-consumer-timeout
CHECK_SECONDS = 10.0  # per check: a check answers in seconds or says it could not


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # passes, but what it cannot see from here needs a look

    def line(self) -> str:
        if self.ok and self.warning:
            return f"warn  {self.name}: {self.detail}" + (
                f"\n      fix: {self.fix}" if self.fix else ""
            )
        if self.ok:
            return f"ok    {self.name}: {self.detail}"
        return f"FAIL  {self.name}: {self.detail}" + (
            f"\n      fix: {self.fix}" if self.fix else ""
        )


async def broker(settings: Settings, topology: Topology) -> list[Check]:
    """Every node reachable, and the topology declared on the cluster."""
    results = []
    versions = []
    for url in settings.broker.urls:
        shown = redact(url.reveal())
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                connection = await aio_pika.connect(url.reveal(), timeout=CHECK_SECONDS)
                versions.append(_version_of(connection))
                await connection.close()
        except CONNECT_ERRORS as exc:
            results.append(
                Check(
                    "rabbitmq",
                    False,
                    redact(f"cannot reach {shown}: {type(exc).__name__}: {exc}"),
                    f"check {PREFIX}AMQP_URL (host, port, user, password, vhost) and that "
                    "RabbitMQ runs",
                )
            )
        else:
            results.append(Check("rabbitmq", True, f"{shown} answers"))
    if any(result.ok for result in results):
        results.append(await _topology(settings, topology))
        results.append(consumer_timeout(min(versions, key=_release), settings))
    return results


def _version_of(connection: aio_pika.abc.AbstractConnection) -> str:
    """The node's RabbitMQ version, from the connection's server properties."""
    transport = getattr(connection, "transport", None)
    properties = transport.connection.server_properties if transport is not None else {}
    version = properties.get("version", "")
    return version.decode(errors="replace") if isinstance(version, bytes) else str(version)


def _release(version: str) -> tuple[int, ...]:
    """(major, minor, patch) of a RabbitMQ version ("4.0.0-beta.1": 4, 0, 0); () if none."""
    numbers = []
    for part in version.split("-")[0].split(".")[:3]:
        if not part.isdigit():
            return ()
        numbers.append(int(part))
    return tuple(numbers)


def takes_consumer_timeout(version: str) -> bool:
    """Whether RabbitMQ ``version`` honours a consumer's own x-consumer-timeout."""
    release = _release(version)
    return bool(release) and release >= TAKES_CONSUMER_TIMEOUT


def consumer_timeout(version: str, settings: Settings) -> Check:
    """Whether the workers' job budget (their x-consumer-timeout) is in force on a broker of
    ``version`` (the oldest node's); when the broker ignores it, its own consumer_timeout
    applies, which AMQP does not show: a warning, with the value to set."""
    wanted = job_budget.consumer_timeout_ms(settings)
    minutes = f"{wanted / 60000:.0f} min"
    if wanted <= job_budget.RABBITMQ_DEFAULT_SECONDS * 1000:
        return Check("consumer timeout", True, f"the job budget ({minutes}) is within 30 min")
    if takes_consumer_timeout(version):
        return Check(
            "consumer timeout",
            True,
            f"RabbitMQ {version} takes the workers' x-consumer-timeout ({minutes}, the job budget)",
        )
    return Check(
        "consumer timeout",
        True,
        f"RabbitMQ {version or '(version unknown)'} ignores the workers' x-consumer-timeout "
        f"(taken from 3.11.15 on): its own consumer_timeout applies (30 min unless set), and "
        f"the job budget is {minutes}",
        f"set consumer_timeout = {wanted} or more in rabbitmq.conf (compose: "
        "deploy/rabbitmq/rabbitmq.conf; Kubernetes: the RabbitmqCluster's additionalConfig), "
        "or run RabbitMQ 3.12 or later",
        warning=True,
    )


async def _topology(settings: Settings, topology: Topology) -> Check:
    missing = []
    try:
        async with asyncio.timeout(CHECK_SECONDS), await connect_once(settings.broker) as conn:
            for exchange in topology.exchanges:
                try:
                    await (await conn.channel()).declare_exchange(exchange.name, passive=True)
                except aio_pika.exceptions.ChannelNotFoundEntity:
                    missing.append(f"exchange {exchange.name}")
            for queue in topology.queues:
                try:
                    await (await conn.channel()).declare_queue(queue.name, passive=True)
                except aio_pika.exceptions.ChannelNotFoundEntity:
                    missing.append(f"queue {queue.name}")
    except (BrokerUnavailable, *BROKER_ERRORS, TimeoutError) as exc:
        return Check("topology", False, redact(f"cannot look: {type(exc).__name__}: {exc}"))
    if missing:
        return Check(
            "topology",
            False,
            f"{len(missing)} missing under prefix {topology.prefix}: {', '.join(missing[:4])}"
            + (" ..." if len(missing) > 4 else ""),
            f"run `dtrack-worker topology` (the receiver and workers declare it when they "
            f"start), or check {PREFIX}PREFIX",
        )
    count = len(topology.exchanges) + len(topology.queues)
    return Check("topology", True, f"{count} exchanges and queues under prefix {topology.prefix}")


async def dt(client: DtClient, display_url: str) -> list[Check]:
    """DT answers as DT (and which version), and the key is valid with the permissions needed."""
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            about = await client.version()
    except (DtMisconfigured, DtUnavailable, TimeoutError) as exc:
        detail = redact(str(exc)) or f"no answer within {CHECK_SECONDS:g} s"
        return [
            Check(
                "dt",
                False,
                detail,
                f"set {PREFIX}DT_URL to DT's API server (with or without /api), reachable from "
                "here",
            )
        ]
    version = Check("dt", True, f"Dependency-Track {about.get('version', '?')} at {display_url}")
    return [version, await _key(client)]


async def _key(client: DtClient) -> Check:
    fix = (
        "give the API key's team VIEW_PORTFOLIO and VIEW_VULNERABILITY (Administration, "
        f"Access Management, Teams), or set {PREFIX}DT_API_KEY to a key of a team that has them"
    )
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            team = await client.team()
            if team is None:  # before DT 4.11: try what the workers do instead
                await client.list_projects(1, 1)
                return Check(
                    "api key",
                    True,
                    "valid, VIEW_PORTFOLIO works (this DT cannot list a key's permissions: "
                    "VIEW_VULNERABILITY is checked by the first export)",
                )
    except DtRejected as exc:
        if exc.status == 401:
            fix = (
                f"set {PREFIX}DT_API_KEY to a valid key (DT: Administration, Access Management, "
                "Teams, the team's API keys)"
            )
        return Check("api key", False, redact(str(exc)), fix)
    except (DtMisconfigured, DtUnavailable, TimeoutError) as exc:
        return Check("api key", False, redact(f"cannot check: {exc}"))
    granted = {p.get("name") for p in team.get("permissions") or () if isinstance(p, dict)}
    missing = [name for name in NEEDED_PERMISSIONS if name not in granted]
    if missing:
        return Check("api key", False, f"team {team.get('name')!r} lacks {', '.join(missing)}", fix)
    return Check("api key", True, f"team {team.get('name')!r} has {', '.join(NEEDED_PERMISSIONS)}")


async def state(settings: StateSettings) -> Check:
    """The state store there, migrated by this release, and taking writes the way jobs write
    (a write probe: a full disk or a read-only store fails here as a job would). Creates and
    migrates nothing."""
    if not settings.deltas:
        return Check("state", True, "not used (DTRACK_WORKER_EMIT=snapshot)")
    try:
        async with (
            asyncio.timeout(CHECK_SECONDS),
            Store.open(settings, existing=True) as store,
        ):
            usable = await store.usable(max_age=0)
    except StoreMissing as exc:
        return Check("state", False, exc.problem, exc.remedy)
    except SchemaRefused as exc:
        return Check(
            "state",
            False,
            str(exc),
            "run the dtrack-worker release the store was migrated by, or a newer one",
        )
    except (StateUnavailable, TimeoutError) as exc:
        return Check(
            "state",
            False,
            redact(str(exc)) or f"no answer within {CHECK_SECONDS:g} s",
            f"check {PREFIX}STATE_URL, and that the database runs and accepts this user",
        )
    if not usable.ok:
        return Check(
            "state", False, f"{settings.display_url}: {usable.detail}", _unusable_fix(usable)
        )
    return Check("state", True, f"{settings.display_url} writable, migrations current")


def _unusable_fix(usable: Usable) -> str:
    if usable.category == "disk full":
        return "free space on the store's disk (or grow it): jobs wait and retry meanwhile"
    if usable.category == "read-only":
        return (
            "make the store writable for this user: the file and its directory (SQLite), the "
            "mount, or the database's and role's default_transaction_read_only (PostgreSQL)"
        )
    return f"check {PREFIX}STATE_URL, and that the database runs and accepts this user"


def spool(requested: str | None, dt: DtSettings) -> Check:
    """A temporary file can be made for exports, where ``TMPDIR`` (``requested``) says; the
    room there, beside the most that jobs can spool at once."""
    fix = (
        "give the workers a writable TMPDIR (deploy/ mounts a volume at /tmp; docs/worker.md, "
        "Memory)"
    )
    try:
        directory, free = spooling.probe()
    except OSError as exc:
        return Check(
            "spool",
            False,
            f"no temporary file can be made ({exc}): each export is held in memory whole",
            fix,
        )
    if requested and os.path.abspath(requested) != directory:
        return Check(
            "spool", False, f"TMPDIR {requested} is not usable: exports go to {directory}", fix
        )
    most = dt.concurrency * dt.max_export
    return Check(
        "spool",
        True,
        f"exports spooled in {directory} ({_gib(free)} free; at most {_gib(most)} at once: "
        f"{PREFIX}DT_CONCURRENCY x {PREFIX}MAX_EXPORT)",
    )


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"
