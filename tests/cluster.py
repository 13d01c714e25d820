"""A RabbitMQ cluster of our own for a test: nodes on spare ports, in a temporary directory,
never touching the machine's broker on 5672 (its node name, ports, data and config are left
alone: each node gets its own name, ports, data and log directories, config and plugins file).

Started with ``rabbitmq-server -detached`` (the Debian wrapper runs it as the rabbitmq user, so
every node shares that user's Erlang cookie) and joined with ``rabbitmqctl join_cluster``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

ADVANCED_CONFIG = Path(__file__).parent.parent / "deploy" / "rabbitmq" / "advanced.config"


def _free_ports(count: int) -> list[int]:
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@dataclasses.dataclass
class Node:
    name: str  # e.g. dtw-3f2a-1@localhost
    port: int  # AMQP
    dist_port: int  # Erlang distribution
    home: Path

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        return os.environ | {
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.home / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.home / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.home / "rabbitmq-env.conf"),
        }


async def _run(*command: str, env: dict[str, str] | None = None, check: bool = True) -> int:
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    if check and process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}: {err.decode()}")
    return process.returncode or 0


class Cluster:
    def __init__(self, size: int) -> None:
        if shutil.which("rabbitmq-server") is None:
            raise RuntimeError("rabbitmq-server is not installed: run scripts/ensure-rabbitmq")
        self.root = Path(tempfile.mkdtemp(prefix="dtrack-worker-cluster-"))
        tag = uuid.uuid4().hex[:6]
        ports = _free_ports(2 * size)
        self.nodes = [
            Node(f"dtw{tag}n{n}@localhost", ports[2 * n], ports[2 * n + 1], self.root / f"n{n}")
            for n in range(size)
        ]

    @property
    def urls(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def node_at(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)

    async def start(self) -> None:
        for node in self.nodes:
            (node.home / "mnesia").mkdir(parents=True)
            (node.home / "log").mkdir()
            (node.home / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{node.port}\n")
            (node.home / "enabled_plugins").write_text("[].\n")
            shutil.copy(ADVANCED_CONFIG, node.home / "advanced.config")  # as deploy/ runs it
            (node.home / "rabbitmq-env.conf").write_text("")
        await _run("chown", "-R", "rabbitmq:rabbitmq", str(self.root))
        await asyncio.gather(*(self.start_node(node) for node in self.nodes))
        first, *others = self.nodes
        for node in others:
            await self.ctl(node, "stop_app")
            await self.ctl(node, "join_cluster", first.name)
            await self.ctl(node, "start_app")

    async def start_node(self, node: Node) -> None:
        await _run("rabbitmq-server", "-detached", env=node.env())
        # await_startup fails at once until the detached node has registered itself
        for _ in range(60):
            if await self.ctl(node, "await_startup", "--timeout", "60", check=False) == 0:
                return
            await asyncio.sleep(1)
        raise RuntimeError(f"{node.name} did not start; see {node.home / 'log'}")

    async def stop_node(self, node: Node) -> None:
        await self.ctl(node, "stop", check=False)

    async def messages(self, node: Node, names: list[str]) -> int:
        """Messages in the named queues, ready or not (unacked, or dead-lettered but not yet
        confirmed by their target), as RabbitMQ counts them."""
        process = await asyncio.create_subprocess_exec(
            "rabbitmqctl", "-n", node.name, "-q", "list_queues", "name", "messages",
            env=node.env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await process.communicate()
        counts = dict(line.split("\t") for line in out.decode().splitlines() if "\t" in line)
        return sum(int(counts.get(name, "0") or 0) for name in names)

    async def running(self) -> int:
        """How many nodes answer."""
        answers = await asyncio.gather(
            *(self.ctl(node, "ping", check=False) for node in self.nodes)
        )
        return sum(1 for code in answers if code == 0)

    async def ctl(self, node: Node, *args: str, check: bool = True) -> int:
        return await _run("rabbitmqctl", "-n", node.name, *args, env=node.env(), check=check)

    async def close(self) -> None:
        await asyncio.gather(*(self.stop_node(node) for node in self.nodes))
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.asynccontextmanager
async def cluster(size: int = 3) -> AsyncIterator[Cluster]:
    nodes = Cluster(size)
    try:
        await nodes.start()
        yield nodes
    finally:
        await nodes.close()
