"""``dtrack-worker receiver``, ``worker`` and ``serve``: the long-running service, in its modes."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from worker.commands.common import EXIT_OK, add_command, with_file_secrets
from worker.core.config import PREFIX, Settings
from worker.core.errors import ConfigError

_NO_AUTH_HELP = "accept webhooks without a token (logged as a warning at start)"
MAX_PROCESSES = 64


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    receiver = add_command(
        commands,
        "receiver",
        run_receiver,
        description=(
            "Serve POST /webhook for Dependency-Track's Outbound Webhook notifications (v4 and "
            "v5, JSON or DT 5's protobuf), and queue one durable job per project they concern. "
            "Also serves /healthz, /readyz and /metrics. Settings come from DTRACK_WORKER_* "
            "variables (docs/configuration.md); a webhook token or signing secret (DT 5.2+) is "
            "required unless --insecure-no-auth."
        ),
        examples="""
            DTRACK_WORKER_WEBHOOK_TOKEN=s3cret dtrack-worker receiver
            DTRACK_WORKER_WEBHOOK_TOKEN_FILE=/run/secrets/token \\
              DTRACK_WORKER_LISTEN=0.0.0.0:9000 dtrack-worker receiver
            DTRACK_WORKER_WEBHOOK_SIGNING_SECRET_FILE=/run/secrets/dt-signing dtrack-worker receiver
            dtrack-worker receiver --insecure-no-auth      # a laptop, never a network
            dtrack-worker receiver --processes 4           # 4 processes on one port
        """,
    )
    receiver.add_argument("--insecure-no-auth", action="store_true", help=_NO_AUTH_HELP)
    receiver.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="N receiver processes sharing the port (SO_REUSEPORT), for hosts with more cores "
        "than one process uses (1-64; default 1). Each serves its own /metrics: see "
        "docs/deploy.md",
    )
    receiver.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    add_command(
        commands,
        "worker",
        run_worker,
        description=(
            "Consume the jobs queue: fetch each project's FPF export from Dependency-Track "
            "(DTRACK_WORKER_DT_URL, DTRACK_WORKER_DT_API_KEY), validate it, and publish one "
            "finding event per finding plus an export summary to the events exchange, acking "
            "each job only once RabbitMQ confirmed its events. Failed jobs are retried with "
            "growing delays, then parked with the reason. Serves /healthz, /readyz, /metrics. "
            "Run as many as you like against one broker."
        ),
        examples="""
            DTRACK_WORKER_DT_URL=https://dtrack.example.org \\
              DTRACK_WORKER_DT_API_KEY_FILE=/run/secrets/dt-api-key dtrack-worker worker
        """,
    )
    serve = add_command(
        commands,
        "serve",
        run_serve,
        description=(
            "The receiver and a worker in one process, on one port: the simplest way to run "
            "dtrack-worker next to a Dependency-Track instance. Needs what both need."
        ),
        examples="""
            DTRACK_WORKER_WEBHOOK_TOKEN=s3cret DTRACK_WORKER_DT_URL=http://dtrack:8080 \\
              DTRACK_WORKER_DT_API_KEY=odt_... dtrack-worker serve
        """,
    )
    serve.add_argument("--insecure-no-auth", action="store_true", help=_NO_AUTH_HELP)


def run_receiver(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    if not 1 <= args.processes <= MAX_PROCESSES:
        raise ConfigError(f"--processes must be 1 to {MAX_PROCESSES}, not {args.processes}")
    if args.processes > 1:
        from worker.service import processes

        _settings(args, environ, receive=True, work=False)  # a bad setting stops here, once
        arguments = ["--insecure-no-auth"] if args.insecure_no_auth else []
        return processes.supervise(arguments, environ, args.processes)
    return _run_service(args, environ, receive=True, work=False)


def run_worker(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    return _run_service(args, environ, receive=False, work=True)


def run_serve(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    return _run_service(args, environ, receive=True, work=True)


def _run_service(
    args: argparse.Namespace, environ: Mapping[str, str], *, receive: bool, work: bool
) -> int:
    import structlog  # the service's packages only for the servers (see common.py)

    from worker.adapters import tracing
    from worker.core import validation
    from worker.service import checks, serve

    log = structlog.get_logger(__name__)
    settings = _settings(args, environ, receive=receive, work=work)
    validation.prepare_reports()  # as before: the first invalid webhook or export waits for none
    tracing.configure(environ)
    if work:  # where exports will be spooled, said once at start (never fatal)
        spool = checks.spool(environ.get("TMPDIR"), settings.dt)
        if spool.ok:
            log.info("spool.checked", detail=spool.detail)
        else:
            log.warning("spool.check_failed", detail=spool.detail, fix=spool.fix)
    try:
        serve.run(
            settings, receive=receive, work=work, reuse_port=getattr(args, "reuse_port", False)
        )
    finally:
        tracing.shutdown()  # exports the spans still buffered
    return EXIT_OK


def _settings(
    args: argparse.Namespace, environ: Mapping[str, str], *, receive: bool, work: bool
) -> Settings:
    """The settings, checked for the mode; logging configured."""
    from worker.adapters import logs, timezones, tracing

    settings = Settings.from_env(with_file_secrets(environ))
    config = settings.receiver
    unauthenticated = config.webhook_token is None and not config.signing_secrets
    if receive and unauthenticated and not args.insecure_no_auth:
        raise ConfigError(
            f"no webhook token: set {PREFIX}WEBHOOK_TOKEN (or {PREFIX}WEBHOOK_TOKEN_FILE) to the "
            f"token configured in Dependency-Track, and/or {PREFIX}WEBHOOK_SIGNING_SECRET (or "
            f"{PREFIX}WEBHOOK_SIGNING_SECRET_FILE) to its signing secret (DT 5.2+), or start "
            "with --insecure-no-auth"
        )
    if work:
        settings.dt.require()
        timezones.zone(settings.dt.timezone)
    tracing.exporters_named(environ)  # a bad OTEL_* setting stops here, once
    logs.configure(
        settings.log_level,
        json=settings.log_format == "json",
        secrets=settings.secret_values(),
    )
    return settings
