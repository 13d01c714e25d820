"""The console's settings, its command, its place beside ``serve``, and the scrubber every page
value passes through."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from pathlib import Path

import pytest

from tests.harness import SCRIPT, _free_port
from tests.rabbit import AMQP_URL, temporary_topology, unique_prefix
from tests.test_hardening_cli import running
from tests.test_hardening_receiver import closed_when_idle, kept_alive
from worker.commands.common import with_file_secrets
from worker.core.config import Settings
from worker.core.errors import ConfigError
from worker.service.console.redaction import Scrubber


def _settings(**env: str) -> Settings:
    return Settings.from_env({f"DTRACK_WORKER_{key}": value for key, value in env.items()})


def test_the_console_defaults_to_loopback_with_a_generated_token():
    console = _settings().console
    assert (console.host, console.port) == ("127.0.0.1", 8090)
    assert console.enabled
    assert console.token is None
    assert not console.readonly
    assert not console.listen_set


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CONSOLE_LISTEN": "8090"}, "DTRACK_WORKER_CONSOLE_LISTEN='8090' must be HOST:PORT"),
        ({"CONSOLE_LISTEN": "h:70000"}, "DTRACK_WORKER_CONSOLE_LISTEN='h:70000' must be"),
        ({"CONSOLE_READONLY": "maybe"}, "DTRACK_WORKER_CONSOLE_READONLY='maybe' must be true"),
        ({"CONSOLE_TOKEN": "tiny-tok"}, "DTRACK_WORKER_CONSOLE_TOKEN is too short"),
        (
            {"CONSOLE_LISTEN": "0.0.0.0:8080", "LISTEN": "0.0.0.0:8080"},
            "DTRACK_WORKER_CONSOLE_LISTEN and DTRACK_WORKER_LISTEN are both 0.0.0.0:8080",
        ),
    ],
)
def test_bad_console_settings_are_named(env: dict[str, str], message: str):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(")) as caught:
        _settings(**env)
    assert "tiny-tok" not in str(caught.value)  # never the token


def test_console_settings_are_read(tmp_path: Path):
    secret = tmp_path / "token"
    secret.write_text("a-console-token-from-a-file\n")
    environ = with_file_secrets(
        {
            "DTRACK_WORKER_CONSOLE_TOKEN_FILE": str(secret),
            "DTRACK_WORKER_CONSOLE_LISTEN": "[::1]:9000",
            "DTRACK_WORKER_CONSOLE_READONLY": "true",
        }
    )
    console = Settings.from_env(environ).console
    assert console.token is not None
    assert console.token.reveal() == "a-console-token-from-a-file"
    assert "a-console" not in repr(console)
    assert (console.host, console.port, console.readonly) == ("::1", 9000, True)
    assert console.listen_set
    assert not _settings(CONSOLE_LISTEN="off").console.enabled


def test_the_scrubber_hides_configured_secrets_and_any_url_password():
    settings = _settings(
        AMQP_URL="amqp://worker:rabbit-pass-1@mq-1:5672/,amqp://worker:rabbit-pass-1@mq-2:5672/",
        STATE_URL="postgresql://dtw:pg%40pass@db:5432/dtw",
        DT_URL="https://dt.example.org",
        DT_API_KEY="odt_0123456789abcdef",
        WEBHOOK_TOKEN="hook-token-123",
        CONSOLE_TOKEN="console-token-0123456789",
    )
    scrub = Scrubber.of(settings, "generated-token-xyz")
    text = (
        "amqp://worker:rabbit-pass-1@mq-1:5672/ failed; key odt_0123456789abcdef refused; "
        "pg@pass; hook-token-123 console-token-0123456789 generated-token-xyz; "
        "see https://someone:else-pass@proxy.example.org/x and amqp:/u:p4ss@h/"
    )
    shown = scrub(text)
    for secret in (
        "rabbit-pass-1",
        "odt_0123456789abcdef",
        "pg@pass",
        "hook-token-123",
        "console-token-0123456789",
        "generated-token-xyz",
        "else-pass",
    ):
        assert secret not in shown, secret
    assert "https://someone:***@proxy.example.org/x" in shown
    assert scrub.finalize(42) == 42
    assert scrub("plain text, no secret") == "plain text, no secret"


async def _run(*args: str, env: dict[str, str], until: str) -> tuple[int | None, str]:
    """Run the command until ``until`` is in its output (stdout and stderr), or it exits;
    then stop it (SIGTERM)."""
    assert SCRIPT
    process = await asyncio.create_subprocess_exec(
        SCRIPT,
        *args,
        env={"PATH": os.environ.get("PATH", "")} | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    running = True
    try:
        async with asyncio.timeout(30):
            while line := (await process.stdout.readline()).decode():
                lines.append(line)
                if until in line:
                    break
            else:  # end of output: the command exited on its own; it is only waited for
                running = False
    finally:
        if running:
            # os.kill, not process.terminate(): Popen.send_signal polls first (bpo-38630), and
            # that waitpid reaps an exited child before asyncio's child watcher does, which then
            # reports returncode 255 instead of the command's own exit code
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
        await process.wait()
    return process.returncode, "".join(lines)


async def test_the_console_command_names_its_listen_setting_when_it_cannot_listen():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = await _run(
            "console", env={"DTRACK_WORKER_CONSOLE_LISTEN": f"127.0.0.1:{port}"}, until="\0"
        )
    assert code == 2
    assert f"DTRACK_WORKER_CONSOLE_LISTEN=127.0.0.1:{port}: cannot listen there" in err


@pytest.mark.rabbitmq
async def test_serve_runs_on_when_the_default_console_port_is_taken(tmp_path: Path):
    """Several services on one host (or tests in parallel): the webhook must not stop for the
    console's default port; a port set explicitly stops serve."""
    prefix = unique_prefix()
    env = {
        "DTRACK_WORKER_PREFIX": prefix,
        "DTRACK_WORKER_AMQP_URL": AMQP_URL,
        "DTRACK_WORKER_DT_URL": "http://127.0.0.1:9",
        "DTRACK_WORKER_DT_API_KEY": "key",
        "DTRACK_WORKER_WEBHOOK_TOKEN": "webhook-token-never-logged",
        "DTRACK_WORKER_LISTEN": f"127.0.0.1:{_free_port()}",
        "DTRACK_WORKER_STATE_URL": f"sqlite:///{tmp_path}/state.sqlite3",
        "DTRACK_WORKER_LOG_FORMAT": "console",
        "DTRACK_WORKER_SHUTDOWN_GRACE": "1",
    }
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with temporary_topology(prefix):
            code, err = await _run(
                "serve",
                env=env | {"DTRACK_WORKER_CONSOLE_LISTEN": f"127.0.0.1:{port}"},
                until="\0",
            )
            assert code == 2
            assert f"DTRACK_WORKER_CONSOLE_LISTEN=127.0.0.1:{port}: cannot listen" in err
    # the default port taken: a warning, and the service starts (and stops cleanly)
    with contextlib.ExitStack() as stack:
        default = stack.enter_context(socket.socket())
        with contextlib.suppress(OSError):  # else taken already by another: the same case
            default.bind(("127.0.0.1", 8090))
            default.listen()
        async with temporary_topology(prefix):
            code, out = await _run("serve", env=env, until="worker.consuming")
    assert "console.not_started" in out
    assert "DTRACK_WORKER_CONSOLE_LISTEN=127.0.0.1:8090: cannot listen there" in out
    assert "serve.starting" in out
    assert code == 0, out


async def test_the_console_listener_times_out_silent_and_idle_connections():
    """Review 2 H1: the console is a listener too. A connection that sends nothing gets 408
    after DTRACK_WORKER_HEADER_TIMEOUT; one idle after a complete request is closed after
    DTRACK_WORKER_KEEPALIVE_TIMEOUT; both before any login."""
    port = _free_port()
    env = {
        "DTRACK_WORKER_CONSOLE_LISTEN": f"127.0.0.1:{port}",
        "DTRACK_WORKER_CONSOLE_TOKEN": "console-token-0123456789",
        "DTRACK_WORKER_HEADER_TIMEOUT": "0.5",
        "DTRACK_WORKER_KEEPALIVE_TIMEOUT": "1",
    }
    async with running("console", env) as console:
        async with asyncio.timeout(30):
            while "console.starting" not in console.text:
                assert console.process.returncode is None, console.text
                await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            answer = await asyncio.wait_for(reader.read(), 10)
        except TimeoutError:
            pytest.fail("a silent connection to the console was still open after 10 s")
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        reader, writer = await kept_alive(port, "/static/console.css")
        try:
            await closed_when_idle(reader, within=10, setting="KEEPALIVE_TIMEOUT=1")
        finally:
            writer.close()
