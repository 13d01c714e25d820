"""``dtrack-worker console``: the operators' web console on its own listener (docs/console.md)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from worker.commands.common import EXIT_OK, add_command, settings_from


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_command(
        commands,
        "console",
        run,
        description=(
            "Serve the web console on DTRACK_WORKER_CONSOLE_LISTEN (default 127.0.0.1:8090): "
            "health, queue depths, projects and their findings, syncs followed live, parked "
            "jobs with replay and purge. Log in with DTRACK_WORKER_CONSOLE_TOKEN, or with the "
            "login URL printed on stderr when it is not set. `serve` starts it too."
        ),
        examples="""
            dtrack-worker console
            DTRACK_WORKER_CONSOLE_READONLY=true dtrack-worker console
        """,
    )


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    # the web stack (templates, the console's pages) loads only for this command
    from worker.service.console import serving

    serving.run(settings_from(environ, log=True))
    return EXIT_OK
