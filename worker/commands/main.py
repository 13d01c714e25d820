"""The ``dtrack-worker`` entry point: assembles the sub-parsers and runs the command named.

The only reader of the process environment: commands get it as a mapping. ``--help`` lists the
commands from ``catalog`` without importing them; the command the arguments name is imported
to build its own sub-parser (its ``--help`` imports the standard library and worker.core only:
each command imports the rest in its run function; tests/test_startup.py).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from worker import __version__
from worker.commands import catalog
from worker.core import urls
from worker.core.errors import ConfigError, PermanentError, TransientError

if TYPE_CHECKING:
    from worker.commands.common import Command


def parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv`` (default: this process's arguments): every command listed,
    only the named one (if any) with its options."""
    top = argparse.ArgumentParser(
        prog="dtrack-worker",
        description="Dependency-Track findings as versioned CloudEvents on RabbitMQ.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  dtrack-worker validate findings-*.fpf\n"
            "  dtrack-worker normalize findings.fpf --source https://dtrack.example.org\n"
            "\n"
            "Settings come from DTRACK_WORKER_* environment variables; see README.md.\n"
        ),
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = top.add_subparsers(title="commands", metavar="COMMAND", required=True)
    chosen = catalog.named(sys.argv[1:] if argv is None else argv)
    registered = False  # the chosen command's module: once (run.py: receiver, worker, serve)
    for entry in catalog.CATALOG:
        if chosen is not None and entry.module == chosen.module:
            if not registered:
                registered = True
                importlib.import_module(f"worker.commands.{entry.module}").register(commands)
        else:  # listed, never parsed: the arguments name another command
            commands.add_parser(entry.name, aliases=list(entry.aliases), help=entry.help)
    return top


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parser(argv).parse_args(argv)
    from worker.commands.common import EXIT_BROKEN_PIPE, EXIT_INVALID, EXIT_USAGE

    command: Command = args.run
    try:
        return command(args, os.environ if environ is None else environ)
    except ConfigError as exc:
        print(f"dtrack-worker: {urls.redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except (TransientError, PermanentError) as exc:  # RabbitMQ unreachable, DT refusing, ...
        print(f"dtrack-worker: {urls.redact(str(exc))}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:  # `dtrack-worker normalize big.fpf | head`: stop quietly, like cat
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
