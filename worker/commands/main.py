"""The ``dtrack-worker`` entry point: assembles each command's sub-parser and runs the one named.

The only reader of the process environment: commands get it as a mapping. Building every
sub-parser (``--help``) imports the standard library and worker.core only: each command imports
the rest in its run function (tests/test_startup.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from worker import __version__
from worker.commands import (
    backfill,
    check,
    console,
    diff,
    normalize,
    parked,
    run,
    state,
    status,
    sync,
    tail,
    topology,
    validate,
)
from worker.commands.common import EXIT_BROKEN_PIPE, EXIT_INVALID, EXIT_USAGE, Command
from worker.core import urls
from worker.core.errors import ConfigError, PermanentError, TransientError

# in the order --help lists them
COMMANDS = (
    validate,
    normalize,
    diff,
    run,
    tail,
    status,
    sync,
    backfill,
    parked,
    state,
    topology,
    check,
    console,
)


def parser() -> argparse.ArgumentParser:
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
    for command in COMMANDS:
        command.register(commands)
    return top


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parser().parse_args(argv)
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
