"""The commands: name, module and one-line help, in the order ``--help`` lists them.

``dtrack-worker --help`` is built from this table alone; a command's module (and what it
imports: worker.core's settings, output and state modules are tens of milliseconds) is
imported only when the arguments name that command (issue 28 §3: ``--help`` within 10x a bare
interpreter). Standard library only. A new command: an entry here, and ``add_command`` in its
module's ``register`` (which takes the help and aliases from here: tests/test_startup.py runs
every command's ``--help``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    name: str
    module: str  # in worker.commands: its ``register`` adds this command's sub-parser
    help: str
    aliases: tuple[str, ...] = ()


CATALOG = (
    Entry("validate", "validate", "check FPF exports against the bundled FPF schema"),
    Entry("normalize", "normalize", "turn an FPF export into finding events (JSON lines)"),
    Entry(
        "diff",
        "diff",
        "print the finding changes between two exports (versions of a project) as JSON lines",
    ),
    Entry("receiver", "run", "accept DT webhooks and queue one job per project on RabbitMQ"),
    Entry(
        "worker",
        "run",
        "consume jobs: fetch each project's FPF export, publish its finding events",
    ),
    Entry("serve", "run", "receiver and worker in one process"),
    Entry("tail", "tail", "print the events downstream receives, as JSON lines"),
    Entry(
        "status",
        "status",
        "per line, or per project: current version, open findings, last export applied",
    ),
    Entry("sync", "sync", "queue a job for the named projects now, and follow them with --wait"),
    Entry("backfill", "backfill", "queue a job for every DT project (catch up, or reconcile)"),
    Entry("parked", "parked", "list, show, replay or purge parked jobs"),
    Entry(
        "state",
        "state",
        "the finding state store: migrate, baseline projects, resync a consumer",
    ),
    Entry(
        "topology",
        "topology",
        "declare the RabbitMQ exchanges, queues and bindings, and list them",
    ),
    Entry(
        "check",
        "check",
        "check RabbitMQ, the topology, the state store, DT and the API key; print fixes",
        aliases=("doctor",),
    ),
    Entry(
        "console",
        "console",
        "serve the operators' web console (health, projects, syncs, parked jobs)",
    ),
)


def entry(name: str) -> Entry:
    """The command ``name`` (or one of its aliases) names; KeyError if none."""
    for found in CATALOG:
        if name == found.name or name in found.aliases:
            return found
    raise KeyError(name)


def named(argv: Sequence[str]) -> Entry | None:
    """The command the arguments name: the first that is not an option (the top level's
    options take no value), if it is one."""
    for arg in argv:
        if not arg.startswith("-"):
            try:
                return entry(arg)
            except KeyError:
                return None
    return None
