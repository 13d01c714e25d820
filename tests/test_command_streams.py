"""What the commands write where (issue 25, section 5): a command's own output (its result, as
lines for people or as data) on stdout, never a log line; logs, progress and errors on stderr;
logs for people on a terminal. And numbers of seconds that are numbers of seconds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
from typing import Any

import orjson
import pytest

from tests.fake_dt import FakeDt
from tests.rabbit import depth, temporary_topology, unique_prefix
from tests.test_operations import SCRIPT, _env, cli
from tests.test_sync import _project
from worker.adapters.state import schema

pytestmark = pytest.mark.rabbitmq


def _log_line(line: str) -> dict[str, Any] | None:
    """``line`` as a JSON log line (an object with an event and a level), else None."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) and {"event", "level"} <= value.keys() else None


async def test_sync_wait_prints_its_story_and_result_on_stdout_and_logs_on_stderr(
    serve, dt: FakeDt
):
    _, _, _, settings = await serve()
    project = _project(dt, "acme-api")
    env = _env(settings.broker.prefix, dt) | {"DTRACK_WORKER_LOG_LEVEL": "INFO"}
    code, out, err = await cli("sync", project, "--wait", "--timeout", "30", env=env)
    assert code == 0, out + err
    assert [line for line in out.splitlines() if _log_line(line)] == []
    assert out.splitlines()[-1] == "sync: 1 of 1 projects synced"  # the result: on stdout
    logged = [_log_line(line) for line in err.splitlines()]
    assert None not in logged, err  # stderr: log lines only, here
    assert "broker.connected" in [line["event"] for line in logged if line]


async def test_state_migrate_prints_its_result_on_stdout(tmp_path):
    env = {"DTRACK_WORKER_STATE_URL": f"sqlite:///{tmp_path}/state.sqlite3"}
    code, out, err = await cli("state", "migrate", env=env)
    assert code == 0, err
    lines = out.splitlines()
    shipped = [migration.number for migration in schema.migrations()]
    assert lines[0].endswith(f"applied {shipped}"), out
    assert lines[1].startswith("took "), out
    assert [line for line in err.splitlines() if not _log_line(line)] == [], err


async def test_a_command_logs_for_people_when_its_stderr_is_a_terminal(tmp_path):
    """JSON lines are for log collectors; on a terminal they would be mixed into what a person
    reads. DTRACK_WORKER_LOG_FORMAT, when set, still decides."""
    assert SCRIPT

    store = f"sqlite:///{tmp_path}/state.sqlite3"
    made = await asyncio.create_subprocess_exec(  # status reads only: the store is made first
        SCRIPT,
        "state",
        "migrate",
        env={"PATH": os.environ.get("PATH", ""), "DTRACK_WORKER_STATE_URL": store},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, problem = await asyncio.wait_for(made.communicate(), timeout=60)
    assert made.returncode == 0, problem

    async def status(**env: str) -> tuple[str, str]:
        leader, follower = pty.openpty()
        process = await asyncio.create_subprocess_exec(
            SCRIPT,
            "status",
            # DEBUG: a read of a current store logs nothing at INFO; asyncio's debug line will do
            env={"PATH": os.environ.get("PATH", ""), "DTRACK_WORKER_STATE_URL": store,
                 "DTRACK_WORKER_LOG_LEVEL": "DEBUG"} | env,
            stdout=asyncio.subprocess.PIPE,
            stderr=follower,
        )  # fmt: skip
        os.close(follower)
        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        terminal = b""
        with contextlib.suppress(OSError):  # EIO: the terminal's other end is closed, all read
            while chunk := os.read(leader, 65536):
                terminal += chunk
        os.close(leader)
        assert process.returncode == 0, terminal
        return out.decode(), terminal.decode(errors="replace")

    out, terminal = await status()
    assert out == "0 projects\n"
    lines = [line for line in terminal.splitlines() if line.strip()]
    assert lines, "status logged nothing at DEBUG"
    assert not any(line.lstrip().startswith("{") for line in lines), terminal
    _, terminal = await status(DTRACK_WORKER_LOG_FORMAT="json")
    logged = [_log_line(line.strip()) for line in terminal.splitlines() if line.strip()]
    assert logged, "status logged nothing at DEBUG"
    assert all(line is not None for line in logged), terminal


# -- --timeout: a positive, finite number of seconds -------------------------------------------

# 1e-300 and 0.05: positive, but a timeout that fails at once (review 2 L1)
BAD_SECONDS = ["-5", "0", "nan", "inf", "1e400", "soon", "1e-300", "0.05"]
SECONDS_RANGE = "is not a number of seconds from 0.1 to 1e+09"


@pytest.mark.parametrize("value", BAD_SECONDS)
async def test_sync_refuses_a_timeout_that_is_no_positive_number_of_seconds(dt: FakeDt, value):
    project = _project(dt, "acme-api")
    prefix = unique_prefix()
    async with temporary_topology(prefix) as topo:  # gone afterwards, had sync run
        code, out, err = await cli(
            "sync", project, "--wait", "--timeout", value, env=_env(prefix, dt)
        )
        assert code == 2, out + err
        assert f"argument --timeout: {value!r} {SECONDS_RANGE}" in err, err
        assert "Traceback" not in err
        assert await depth(topo.jobs_queue.name) == 0  # nothing queued


@pytest.mark.parametrize("value", BAD_SECONDS)
async def test_tail_refuses_a_timeout_that_is_no_positive_number_of_seconds(dt: FakeDt, value):
    prefix = unique_prefix()
    async with temporary_topology(prefix):  # gone afterwards, had tail run
        code, out, err = await cli("tail", "--timeout", value, env=_env(prefix, dt))
    assert code == 2, out + err
    assert f"argument --timeout: {value!r} {SECONDS_RANGE}" in err, err


# 1e-320 and 0.0001: positive, but 1/rate is infinite or hours (review 2 L1)
@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf", "1e-320", "0.0001"])
async def test_backfill_refuses_a_rate_out_of_its_range(dt: FakeDt, value):
    prefix = unique_prefix()
    async with temporary_topology(prefix):  # gone afterwards, had backfill run
        code, out, err = await cli("backfill", "--rate", value, env=_env(prefix, dt))
    assert code == 2, out + err
    assert f"argument --rate: {value!r} is not a number of jobs per second from 0.001" in err, err
