"""What every command shares: exit codes, settings from the environment, sub-parser shape."""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from worker import __version__
from worker.commands import catalog
from worker.core import output
from worker.core.config import (
    FORMATS,
    PREFIX,
    SECRET_VARIABLES,
    OutputSettings,
    Settings,
    output_settings,
)
from worker.core.errors import ConfigError
from worker.core.output import Output
from worker.core.selection import Verdict

if TYPE_CHECKING:
    from worker.adapters.spool import Spool

# A command's module is imported to build its parser (its --help; `--help` alone lists the
# catalog): what a command needs beyond the standard library and worker.core is imported in
# its run function (issue 28).

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a command killed by SIGPIPE

Command = Callable[[argparse.Namespace, Mapping[str, str]], int]


def with_file_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment with each ``DTRACK_WORKER_X_FILE`` read into ``DTRACK_WORKER_X``."""
    resolved = dict(environ)
    for name in SECRET_VARIABLES:
        variable, file_variable = PREFIX + name, PREFIX + name + "_FILE"
        path = environ.get(file_variable, "").strip()
        if not path:
            continue
        if environ.get(variable, "").strip():
            raise ConfigError(f"set {variable} or {file_variable}, not both")
        try:
            value = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{file_variable}: cannot read {path}: {exc.strerror}") from None
        if not value:  # an unpopulated secret mount: "" would read as "not set" (review 2 M3)
            raise ConfigError(f"{file_variable}: {path} is empty; set the secret in it")
        resolved[variable] = value
    return resolved


def read_input(path: str, stdin: BinaryIO) -> Spool:
    """A file's text, mapped, or standard input's for ``-``, spooled (see ``spool``)."""
    from worker.adapters.spool import Spool

    if path == "-":
        return Spool.of_stream(stdin)
    return Spool.of_path(path)


def settings_from(environ: Mapping[str, str], *, log: bool = False) -> Settings:
    """The settings, with ``*_FILE`` secrets read; ``log``: configure logging from them too,
    to stderr (a command's own output is on stdout). On a terminal, and unless
    DTRACK_WORKER_LOG_FORMAT says otherwise, in the console format: a person reads it there,
    next to the command's output."""
    settings = Settings.from_env(with_file_secrets(environ))
    if log:
        from worker.adapters import logs  # structlog and OpenTelemetry's API

        chosen = bool(environ.get(f"{PREFIX}LOG_FORMAT", "").strip())
        json = settings.log_format == "json" and (chosen or not sys.stderr.isatty())
        logs.configure(
            settings.log_level, json=json, stream=sys.stderr, secrets=settings.secret_values()
        )
    return settings


# a shorter timeout fails before anything could answer (1e-300 was accepted, review 2 L1)
MIN_SECONDS, MAX_SECONDS = 0.1, 1e9  # the longest: about 31 years, any longer is a mistake
# a lower rate is one job per 1000 s or slower: 1e-320 made 1/rate infinite, a sleep forever
MIN_RATE, MAX_RATE = 0.001, 1e6


def seconds(raw: str) -> float:
    """An argparse type: a number of seconds within [MIN_SECONDS, MAX_SECONDS] (``-5``, ``nan``,
    ``inf``, ``1e-300`` refused with exit 2, naming the option)."""
    value = _number(raw)
    if value is None or not MIN_SECONDS <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a number of seconds from {MIN_SECONDS:g} to {MAX_SECONDS:g}"
        )
    return value


def rate(raw: str) -> float:
    """An argparse type: jobs per second within [MIN_RATE, MAX_RATE]."""
    value = _number(raw)
    if value is None or not MIN_RATE <= value <= MAX_RATE:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a number of jobs per second from {MIN_RATE:g} to {MAX_RATE:g}"
        )
    return value


def _number(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    run: Command,
    *,
    description: str,
    examples: str,
) -> argparse.ArgumentParser:
    """A sub-parser with the house layout: a description, then ``examples:``; its one-line
    help and aliases are the catalog's (what ``--help`` lists without importing commands)."""
    listed = catalog.entry(name)
    parser = commands.add_parser(
        name,
        aliases=list(listed.aliases),
        help=listed.help,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip("\n"), "  ") + "\n",
    )
    parser.set_defaults(run=run)
    return parser


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """--format and --filter, as DTRACK_WORKER_FORMAT and DTRACK_WORKER_FILTER set them."""
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="print finding events as CloudEvents or as OCSF Vulnerability Findings "
        "(default: $DTRACK_WORKER_FORMAT, else cloudevents)",
    )
    parser.add_argument(
        "--filter",
        metavar="CEL",
        help="print only the finding events this CEL expression is true for, e.g. "
        "'data.vulnerability.severity == \"critical\"' (default: $DTRACK_WORKER_FILTER)",
    )


def output_from(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    tried: Sequence[Mapping[str, Any]] | None = None,
) -> Output:
    """The offline commands' output: the options, else the variables (ConfigError, exit 2,
    for a filter that does not compile or fails on every example event; ``tried``: examples
    of the events the command prints, by default those the workers publish)."""
    settings = output_settings(environ)
    chosen = OutputSettings(
        format=args.format or settings.format,
        filter=args.filter if args.filter is not None else settings.filter,
    )
    return output.from_settings(chosen, __version__, filter_name=filter_name(args), tried=tried)


def filter_name(args: argparse.Namespace) -> str:
    return "--filter" if args.filter is not None else "DTRACK_WORKER_FILTER"


def report_unevaluated(command: str, args: argparse.Namespace, counted: Counter[Verdict]) -> None:
    """Once, on stderr: the finding events the filter could not be evaluated on (printed all
    the same, as the workers publish them), by reason."""
    failed = Counter(
        {verdict.reason: count for verdict, count in counted.items() if verdict.reason}
    )
    if not failed:
        return
    reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(failed.items()))
    print(
        f"dtrack-worker {command}: {filter_name(args)} could not be evaluated on "
        f"{failed.total()} of {counted.total()} finding events, printed all the same "
        f"({reasons}; the reasons: docs/events.md)",
        file=sys.stderr,
    )
