"""``dtrack-worker parked``: list, show, replay or purge the jobs that could not be processed."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from worker.commands.common import EXIT_INVALID, EXIT_OK, add_command, settings_from
from worker.core.errors import ConfigError

if TYPE_CHECKING:
    from worker.adapters import parked


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "parked",
        run,
        description=(
            "The jobs the workers could not process, with the reason: list them, show one in "
            "full, replay them (back to the jobs queue, attempt 1), or purge them. Replay and "
            "purge take job ids or --all; purge asks first unless --yes. replay --force applies "
            "an export the mass-resolve guard held back (suspicious_export) once you have "
            "checked that its findings really were fixed; an analysis_pending job, replayed "
            "once DT has finished analysing the project's BOM, applies (never before, forced "
            "or not). Nothing is lost if a command is "
            "interrupted: a job is acked only after it is safely elsewhere."
        ),
        examples="""
            dtrack-worker parked list
            dtrack-worker parked show 3f6c...e1
            dtrack-worker parked replay --all          # after fixing the DT API key
            dtrack-worker parked replay 3f6c...e1 --force  # suspicious_export: a real mass fix
            dtrack-worker parked purge 3f6c...e1 --yes
        """,
    )
    parser.add_argument("action", choices=["list", "show", "replay", "purge"])
    parser.add_argument("ids", nargs="*", metavar="ID", help="job ids (message ids)")
    parser.add_argument("--all", action="store_true", help="every parked job")
    parser.add_argument("--yes", action="store_true", help="purge without asking")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replay: apply the jobs' exports even past the mass-resolve guard",
    )


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from worker.adapters import parked  # aio-pika: only when the command runs (see common.py)

    settings = settings_from(environ, log=True)
    if args.action == "list":
        _print_parked(parked.collect(settings))
        return EXIT_OK
    if args.action == "show":
        return _show_parked(parked.collect(settings), args.ids)
    if not args.all and not args.ids:
        raise ConfigError(f"parked {args.action}: name job ids, or --all")
    ids = None if args.all else args.ids
    if args.force and args.action != "replay":
        raise ConfigError(f"parked {args.action}: --force is for replay only")
    if args.action == "replay":
        done = parked.replay(settings, ids, force=args.force)
        print(f"replayed {_jobs(len(done))} to the jobs queue{' (forced)' if args.force else ''}")
        return _missing(args, ids, done)
    what = "every parked job" if args.all else f"{len(args.ids)} parked job(s)"
    if not _confirmed(f"delete {what} for good?", yes=args.yes):
        print("nothing deleted")
        return EXIT_OK
    done = parked.purge(settings, ids)
    print(f"deleted {_jobs(len(done), parked=True)}")
    return _missing(args, ids, done)


def _jobs(count: int, *, parked: bool = False) -> str:
    return f"{count}{' parked' if parked else ''} job{'' if count == 1 else 's'}"


def _missing(args: argparse.Namespace, asked: Sequence[str] | None, done: Sequence[str]) -> int:
    """Exit 1 naming the ids asked for that were not parked (as ``show`` does)."""
    missing = sorted(set(asked or ()) - set(done))
    if not missing:
        return EXIT_OK
    print(f"dtrack-worker parked {args.action}: not parked: {', '.join(missing)}", file=sys.stderr)
    return EXIT_INVALID


def _print_parked(jobs: Sequence[parked.Parked]) -> None:
    now = datetime.now(UTC)
    print(f"{len(jobs)} parked job{'' if len(jobs) == 1 else 's'}")
    for job in jobs:
        print(
            f"{job.id}  {job.reason:<18} attempts={job.attempts}  age={job.age(now):>4}  "
            f"{job.error[:100]}"
        )


def _show_parked(jobs: Sequence[parked.Parked], ids: Sequence[str]) -> int:
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
            "problems": _problems(job.problems),
            "job": body,
        }
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    missing = sorted(set(ids) - {job.id for job in matches})
    if missing:
        print(f"dtrack-worker parked show: not parked: {', '.join(missing)}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _problems(header: str | None) -> Any:
    """The problems header as JSON, or as the text it is when something else wrote it."""
    if not header:
        return None
    try:
        return orjson.loads(header)
    except orjson.JSONDecodeError:
        return header


def _confirmed(question: str, *, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigError("parked purge deletes jobs for good: confirm with --yes")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
