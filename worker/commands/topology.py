"""``dtrack-worker topology``: declare the exchanges, queues and bindings, and list them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

import orjson

from worker.commands.common import EXIT_OK, add_command, settings_from
from worker.core import topology


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "topology",
        run,
        description=(
            "Declare every exchange, queue and binding dtrack-worker uses (idempotent), then list "
            "them. The receiver and workers declare them at start too. docs/topology.md draws it."
        ),
        examples="""
            dtrack-worker topology
            DTRACK_WORKER_PREFIX=staging dtrack-worker topology
            dtrack-worker topology --print-only > definitions.json    # no broker needed
        """,
    )
    parser.add_argument(
        "--print-only",
        action="store_true",
        help="print the topology in RabbitMQ's definitions format instead of declaring it",
    )


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    import asyncio  # ssl, sockets, logging: not for --help (see common.py)

    settings = settings_from(environ, log=not args.print_only)
    topo = topology.configured(settings.broker, delays=(settings.receiver.coalesce_seconds,))
    if args.print_only:
        sys.stdout.buffer.write(
            orjson.dumps(topo.definitions(), option=orjson.OPT_INDENT_2) + b"\n"
        )
        return EXIT_OK
    from worker.adapters.amqp import declare_once  # aio-pika: only to declare (see common.py)

    asyncio.run(declare_once(settings.broker, topo))
    for queue in topo.queues:
        print(f"queue    {queue.name}  {orjson.dumps(queue.x_arguments).decode()}")
    for exchange in topo.exchanges:
        print(f"exchange {exchange.name}  ({exchange.type})")
    for binding in topo.bindings:
        print(f"binding  {binding.exchange} --{binding.routing_key or '(any)'}--> {binding.queue}")
    return EXIT_OK
