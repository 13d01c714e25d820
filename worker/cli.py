"""The ``dtrack-worker`` command: the composition root, and the only reader of the environment."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from worker import __version__, fpf, logs, schemas, timezones, topology
from worker.config import PREFIX, SECRET_VARIABLES, Settings
from worker.errors import ConfigError, InvalidExport, PermanentError, Problem, TransientError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a command killed by SIGPIPE

Command = Callable[[argparse.Namespace, Mapping[str, str]], int]


def _read(path: str, stdin: BinaryIO) -> bytes:
    if path == "-":
        return stdin.read()
    return Path(path).read_bytes()


def _file_report(path: str, error: Exception | None) -> dict[str, Any]:
    if isinstance(error, OSError):
        reason = error.strerror or str(error)
        return {"path": path, "valid": False, "problems": [{"pointer": "", "message": reason}]}
    if isinstance(error, InvalidExport):
        return {
            "path": path,
            "valid": False,
            "error": str(error.args[0]),
            "problems": error.report(),
        }
    return {"path": path, "valid": True, "problems": []}


def cmd_validate(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    contract = schemas.load().fpf
    reports = []
    for path in args.files:
        error: Exception | None = None
        summary: dict[str, Any] = {}
        try:
            document = fpf.parse(_read(path, sys.stdin.buffer))
            contract.check(document, InvalidExport, "FPF export")
            summary = {"fpf_version": document["version"], "findings": len(document["findings"])}
        except (OSError, InvalidExport) as exc:
            error = exc
        reports.append(_file_report(path, error) | summary)
    valid = all(report["valid"] for report in reports)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps({"valid": valid, "files": reports}) + b"\n")
    else:
        for report in reports:
            _print_report(report)
    return EXIT_OK if valid else EXIT_INVALID


def _print_report(report: Mapping[str, Any]) -> None:
    path = report["path"]
    if report["valid"]:
        count = report["findings"]
        print(
            f"{path}: valid FPF {report['fpf_version']}, {count} finding{'' if count == 1 else 's'}"
        )
        return
    print(f"{path}: {report.get('error', 'cannot read the file')}")
    for problem in report["problems"]:
        print(f"{path}: {Problem(**problem)}")


def cmd_normalize(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    contract = schemas.load().fpf
    zone = timezones.zone(args.dt_timezone or environ.get("DTRACK_WORKER_DT_TIMEZONE", "UTC"))
    source = args.source or environ.get("DTRACK_WORKER_SOURCE") or None
    try:
        raw = _read(args.file, sys.stdin.buffer)
    except OSError as exc:
        print(f"dtrack-worker normalize: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        export = fpf.process(raw, contract, source=source, zone=zone)
    except InvalidExport as exc:
        print(f"dtrack-worker normalize: {args.file}: {exc.args[0]}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    out = sys.stdout.buffer
    for event in export.events():
        out.write(event.body + b"\n")
    return EXIT_OK


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
            resolved[variable] = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{file_variable}: cannot read {path}: {exc.strerror}") from None
    return resolved


def _run_service(
    args: argparse.Namespace, environ: Mapping[str, str], *, receive: bool, work: bool
) -> int:
    from worker import service  # imports aiohttp and aio-pika only for the servers

    settings = Settings.from_env(with_file_secrets(environ))
    if receive and settings.receiver.webhook_token is None and not args.insecure_no_auth:
        raise ConfigError(
            f"no webhook token: set {PREFIX}WEBHOOK_TOKEN (or {PREFIX}WEBHOOK_TOKEN_FILE) to the "
            "token configured in Dependency-Track, or start with --insecure-no-auth"
        )
    if work:
        settings.dt.require()
        timezones.zone(settings.dt.timezone)
    logs.configure(settings.log_level, json=settings.log_format == "json")
    service.run(settings, receive=receive, work=work)
    return EXIT_OK


def cmd_receiver(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    return _run_service(args, environ, receive=True, work=False)


def cmd_worker(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    return _run_service(args, environ, receive=False, work=True)


def cmd_serve(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    return _run_service(args, environ, receive=True, work=True)


def cmd_tail(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from worker import tail

    settings = Settings.from_env(with_file_secrets(environ))
    if args.count is not None and args.count < 1:
        raise ConfigError("--count must be at least 1")
    tail.run(settings, pattern=args.routing_key, count=args.count, timeout=args.timeout)
    return EXIT_OK


def cmd_backfill(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    import asyncio

    from worker.backfill import Progress, backfill
    from worker.broker import Broker
    from worker.dtrack import DtClient

    settings = Settings.from_env(with_file_secrets(environ))
    settings.dt.require()
    if args.rate is not None and args.rate <= 0:
        raise ConfigError("--rate must be a positive number of projects per second")

    def report(progress: Progress) -> None:
        print(f"backfill: {progress.line()}", file=sys.stderr, flush=True)

    async def main() -> Progress:
        broker = Broker(settings.broker, topology.build(settings.broker.prefix))
        await broker.start()
        try:
            async with asyncio.timeout(30):
                while not broker.ready:  # noqa: ASYNC110 - the broker connects in its own task
                    await asyncio.sleep(0.05)
        except TimeoutError:
            await broker.close()
            raise TransientError(
                f"cannot reach RabbitMQ at {settings.broker.display_url} within 30 s"
            ) from None
        try:
            async with DtClient.open(settings.dt) as dt:
                return await backfill(
                    dt,
                    broker,
                    active_only=args.active_only,
                    tag=args.tag,
                    rate=args.rate,
                    report=report,
                )
        finally:
            await broker.close()

    try:
        progress = asyncio.run(main())
    except PermanentError as exc:
        print(f"dtrack-worker backfill: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(
        f"backfill done: {progress.enqueued} jobs enqueued for {progress.seen} projects "
        f"({progress.skipped} skipped by --tag) in {time.monotonic() - progress.started:.1f} s"
    )
    return EXIT_OK


def _print_parked(jobs: Sequence[Any]) -> None:
    from datetime import datetime

    now = datetime.now(UTC)
    print(f"{len(jobs)} parked job{'' if len(jobs) == 1 else 's'}")
    for job in jobs:
        print(
            f"{job.id}  {job.reason:<18} attempts={job.attempts}  age={job.age(now):>4}  "
            f"{job.error[:100]}"
        )


def _show_parked(jobs: Sequence[Any], ids: Sequence[str]) -> int:
    matches = [job for job in jobs if job.id in ids]
    for job in matches:
        body: Any = job.body.decode("utf-8", "replace")
        with contextlib.suppress(orjson.JSONDecodeError):
            body = orjson.loads(job.body)
        document = {
            "id": job.id,
            "reason": job.reason,
            "error": job.error,
            "attempts": job.attempts,
            "parked_at": job.parked_at,
            "problems": orjson.loads(job.problems) if job.problems else None,
            "job": body,
        }
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    missing = sorted(set(ids) - {job.id for job in matches})
    if missing:
        print(f"dtrack-worker parked show: not parked: {', '.join(missing)}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _confirmed(question: str, *, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigError("parked purge deletes jobs for good: confirm with --yes")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def cmd_parked(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from worker import parked

    settings = Settings.from_env(with_file_secrets(environ))
    if args.action == "list":
        _print_parked(parked.collect(settings))
        return EXIT_OK
    if args.action == "show":
        return _show_parked(parked.collect(settings), args.ids)
    if not args.all and not args.ids:
        raise ConfigError(f"parked {args.action}: name job ids, or --all")
    ids = None if args.all else args.ids
    if args.action == "replay":
        count = parked.replay(settings, ids)
        print(f"replayed {count} job{'' if count == 1 else 's'} to the jobs queue")
        return EXIT_OK
    what = "every parked job" if args.all else f"{len(args.ids)} parked job(s)"
    if not _confirmed(f"delete {what} for good?", yes=args.yes):
        print("nothing deleted")
        return EXIT_OK
    count = parked.purge(settings, ids)
    print(f"deleted {count} parked job{'' if count == 1 else 's'}")
    return EXIT_OK


def cmd_topology(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    settings = Settings.from_env(with_file_secrets(environ))
    topo = topology.build(settings.broker.prefix)
    if args.print_only:
        sys.stdout.buffer.write(
            orjson.dumps(topo.definitions(), option=orjson.OPT_INDENT_2) + b"\n"
        )
        return EXIT_OK
    from worker import service

    logs.configure(settings.log_level, json=settings.log_format == "json")
    service.declare_topology(settings, topo)
    for queue in topo.queues:
        print(f"queue    {queue.name}  {orjson.dumps(queue.x_arguments).decode()}")
    for exchange in topo.exchanges:
        print(f"exchange {exchange.name}  ({exchange.type})")
    for binding in topo.bindings:
        print(f"binding  {binding.exchange} --{binding.routing_key or '(any)'}--> {binding.queue}")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="dtrack-worker",
        description="Dependency-Track findings as versioned CloudEvents on RabbitMQ.",
        formatter_class=formatter,
        epilog=textwrap.dedent(
            """\
            examples:
              dtrack-worker validate findings-*.fpf
              dtrack-worker normalize findings.fpf --source https://dtrack.example.org

            Settings come from DTRACK_WORKER_* environment variables; see README.md.
            """
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    validate = commands.add_parser(
        "validate",
        help="check FPF exports against the bundled FPF schema",
        description=(
            "Check each FPF export (a Dependency-Track findings export, .fpf or .json) against "
            "the bundled FPF 1.0-1.5 schema. Exit 0 when every file is valid, 1 otherwise, "
            "with one line per problem: the file, a JSON Pointer, what is wrong, the value."
        ),
        formatter_class=formatter,
        epilog=textwrap.dedent(
            """\
            examples:
              dtrack-worker validate findings-1.fpf findings-2.fpf
              dtrack-worker validate --json exports/*.json | jq '.files[] | select(.valid|not)'
              curl -s -H "X-Api-Key: $KEY" $DT/api/v1/finding/project/$UUID/export \\
                | dtrack-worker validate -
            """
        ),
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="an FPF file, or - for stdin")
    validate.add_argument("--json", action="store_true", help="print one JSON report on stdout")
    validate.set_defaults(run=cmd_validate)

    normalize = commands.add_parser(
        "normalize",
        help="turn an FPF export into finding events (JSON lines)",
        description=(
            "Validate an FPF export and print one finding event per finding, as CloudEvents "
            "JSON, one per line: exactly what the workers publish (docs/events.md). Exit 1 "
            "with the problems on stderr when the export is invalid; nothing is printed then."
        ),
        formatter_class=formatter,
        epilog=textwrap.dedent(
            """\
            examples:
              dtrack-worker normalize findings.fpf > events.jsonl
              dtrack-worker normalize - --source https://dtrack.example.org < findings.fpf
              dtrack-worker normalize findings.fpf --dt-timezone Europe/Berlin | jq .subject
            """
        ),
    )
    normalize.add_argument("file", metavar="FILE", help="an FPF file, or - for stdin")
    normalize.add_argument(
        "--source",
        help="the DT instance named in each event's source "
        "(default: $DTRACK_WORKER_SOURCE, else the export's meta.baseUrl, else dependency-track)",
    )
    normalize.add_argument(
        "--dt-timezone",
        metavar="ZONE",
        help="the DT server's time zone, for the zone-less dates DT 4.x writes "
        "(default: $DTRACK_WORKER_DT_TIMEZONE, else UTC)",
    )
    normalize.set_defaults(run=cmd_normalize)

    receiver = commands.add_parser(
        "receiver",
        help="accept DT webhooks and queue one job per project on RabbitMQ",
        description=(
            "Serve POST /webhook for Dependency-Track's Outbound Webhook notifications (v4 and "
            "v5), and queue one durable job per project they concern. Also serves /healthz, "
            "/readyz and /metrics. Settings come from DTRACK_WORKER_* variables "
            "(docs/configuration.md); the webhook token is required unless --insecure-no-auth."
        ),
        formatter_class=formatter,
        epilog=textwrap.dedent(
            """\
            examples:
              DTRACK_WORKER_WEBHOOK_TOKEN=s3cret dtrack-worker receiver
              DTRACK_WORKER_WEBHOOK_TOKEN_FILE=/run/secrets/token \\
                DTRACK_WORKER_LISTEN=0.0.0.0:9000 dtrack-worker receiver
              dtrack-worker receiver --insecure-no-auth      # a laptop, never a network
            """
        ),
    )
    receiver.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="accept webhooks without a token (logged as a warning at start)",
    )
    receiver.set_defaults(run=cmd_receiver)

    worker = commands.add_parser(
        "worker",
        help="consume jobs: fetch each project's FPF export, publish its finding events",
        description=(
            "Consume the jobs queue: fetch each project's FPF export from Dependency-Track "
            "(DTRACK_WORKER_DT_URL, DTRACK_WORKER_DT_API_KEY), validate it, and publish one "
            "finding event per finding plus an export summary to the events exchange, acking "
            "each job only once RabbitMQ confirmed its events. Failed jobs are retried with "
            "growing delays, then parked with the reason. Serves /healthz, /readyz, /metrics. "
            "Run as many as you like against one broker."
        ),
        formatter_class=formatter,
        epilog=textwrap.dedent(
            """\
            examples:
              DTRACK_WORKER_DT_URL=https://dtrack.example.org \\
                DTRACK_WORKER_DT_API_KEY_FILE=/run/secrets/dt-api-key dtrack-worker worker
            """
        ),
    )
    worker.set_defaults(run=cmd_worker)

    serve = commands.add_parser(
        "serve",
        help="receiver and worker in one process",
        description=(
            "The receiver and a worker in one process, on one port: the simplest way to run "
            "dtrack-worker next to a Dependency-Track instance. Needs what both need."
        ),
        formatter_class=formatter,
        epilog=textwrap.dedent(
            """\
            examples:
              DTRACK_WORKER_WEBHOOK_TOKEN=s3cret DTRACK_WORKER_DT_URL=http://dtrack:8080 \\
                DTRACK_WORKER_DT_API_KEY=odt_... dtrack-worker serve
            """
        ),
    )
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="accept webhooks without a token (logged as a warning at start)",
    )
    serve.set_defaults(run=cmd_serve)

    tail = commands.add_parser(
        "tail",
        help="print the events downstream receives, as JSON lines",
        description=(
            "Bind a temporary exclusive queue to the events exchange and print each event "
            "(the CloudEvent JSON) on its own line: to check what consumers receive."
        ),
        formatter_class=formatter,
        epilog=textwrap.dedent(
            """\
            examples:
              dtrack-worker tail
              dtrack-worker tail --routing-key 'finding.critical' --count 10
              dtrack-worker tail --routing-key 'export.*' --timeout 60 | jq .data.finding_count
            """
        ),
    )
    tail.add_argument(
        "--routing-key",
        default="#",
        metavar="PATTERN",
        help="topic pattern to bind: finding.*, finding.critical, export.summary, error.*, "
        "# for everything (default)",
    )
    tail.add_argument("--count", type=int, metavar="N", help="stop after N events")
    tail.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")
    tail.set_defaults(run=cmd_tail)

    backfill = commands.add_parser(
        "backfill",
        help="queue a job for every DT project (catch up, or reconcile)",
        description=(
            "Page through DT's projects (GET /api/v1/project; needs VIEW_PORTFOLIO) and queue "
            "one job per project, trigger BACKFILL, for the workers. Run it when dtrack-worker "
            "starts next to an existing DT, or after an outage. Safe to run twice, and while "
            "projects come and go. Progress goes to stderr, the summary to stdout."
        ),
        formatter_class=formatter,
        epilog=textwrap.dedent(
            """\
            examples:
              dtrack-worker backfill
              dtrack-worker backfill --active-only --rate 5
              dtrack-worker backfill --tag production
            """
        ),
    )
    backfill.add_argument("--active-only", action="store_true", help="skip inactive projects")
    backfill.add_argument("--tag", help="only projects with this tag")
    backfill.add_argument(
        "--rate", type=float, metavar="N", help="at most N jobs per second (default: no limit)"
    )
    backfill.set_defaults(run=cmd_backfill)

    parked_cmd = commands.add_parser(
        "parked",
        help="list, show, replay or purge parked jobs",
        description=(
            "The jobs the workers could not process, with the reason: list them, show one in "
            "full, replay them (back to the jobs queue, attempt 1), or purge them. Replay and "
            "purge take job ids or --all; purge asks first unless --yes. Nothing is lost if "
            "a command is interrupted: a job is acked only after it is safely elsewhere."
        ),
        formatter_class=formatter,
        epilog=textwrap.dedent(
            """\
            examples:
              dtrack-worker parked list
              dtrack-worker parked show 3f6c...e1
              dtrack-worker parked replay --all          # after fixing the DT API key
              dtrack-worker parked purge 3f6c...e1 --yes
            """
        ),
    )
    parked_cmd.add_argument("action", choices=["list", "show", "replay", "purge"])
    parked_cmd.add_argument("ids", nargs="*", metavar="ID", help="job ids (message ids)")
    parked_cmd.add_argument("--all", action="store_true", help="every parked job")
    parked_cmd.add_argument("--yes", action="store_true", help="purge without asking")
    parked_cmd.set_defaults(run=cmd_parked)

    topo = commands.add_parser(
        "topology",
        help="declare the RabbitMQ exchanges, queues and bindings, and list them",
        description=(
            "Declare every exchange, queue and binding dtrack-worker uses (idempotent), then list "
            "them. The receiver and workers declare them at start too. docs/topology.md draws it."
        ),
        formatter_class=formatter,
        epilog=textwrap.dedent(
            """\
            examples:
              dtrack-worker topology
              DTRACK_WORKER_PREFIX=staging dtrack-worker topology
              dtrack-worker topology --print-only > definitions.json    # no broker needed
            """
        ),
    )
    topo.add_argument(
        "--print-only",
        action="store_true",
        help="print the topology in RabbitMQ's definitions format instead of declaring it",
    )
    topo.set_defaults(run=cmd_topology)
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run: Command = args.run
    try:
        return run(args, os.environ if environ is None else environ)
    except ConfigError as exc:
        print(f"dtrack-worker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TransientError as exc:  # e.g. RabbitMQ unreachable for `topology`
        print(f"dtrack-worker: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:  # `dtrack-worker normalize big.fpf | head`: stop quietly, like cat
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
