"""The offline commands, run as a user runs them: the installed console script."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import FPF, fixture_files
from worker.core import fpf

SCRIPT = shutil.which("dtrack-worker", path=str(Path(sys.executable).parent))
REAL = FPF / "real" / "defectdojo__deptrack_npm_4.14.1.json"
NULL_FINDINGS = FPF / "edge" / "defectdojo__no_findings_because_findings_key_is_null.json"


def run(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None):
    assert SCRIPT, "the dtrack-worker console script is not installed next to this Python"
    return subprocess.run(
        [SCRIPT, *args], input=stdin, capture_output=True, timeout=60, check=False, env=env
    )


def test_validate_passes_every_real_export():
    files = [str(path) for path in fixture_files(FPF / "real")]
    result = run("validate", *files)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == len(files)
    assert f"{REAL}: valid FPF 1.3, 22 findings" in lines


def test_validate_reports_each_bad_file_and_exits_1():
    result = run("validate", str(REAL), str(NULL_FINDINGS), "no-such-file.json")
    assert result.returncode == 1
    out = result.stdout.decode()
    assert f"{NULL_FINDINGS}: /findings: expected array, not null (value: null)" in out
    assert "no-such-file.json: cannot read the file" in out
    assert "no-such-file.json: /: No such file or directory" in out


def test_validate_json_is_machine_readable():
    result = run("validate", "--json", str(REAL), str(NULL_FINDINGS))
    assert result.returncode == 1
    report = orjson.loads(result.stdout)
    assert report["valid"] is False
    good, bad = report["files"]
    assert good == {
        "path": str(REAL),
        "valid": True,
        "problems": [],
        "fpf_version": "1.3",
        "findings": 22,
    }
    assert bad["valid"] is False
    assert bad["problems"] == [
        {"pointer": "/findings", "message": "expected array, not null", "excerpt": "null"}
    ]


def test_validate_reads_stdin():
    assert run("validate", "-", stdin=REAL.read_bytes()).returncode == 0
    result = run("validate", "-", stdin=b"{not json")
    assert result.returncode == 1
    assert b"-: export is not valid JSON" in result.stdout


def test_normalize_prints_the_events_the_core_makes(contracts):
    result = run("normalize", str(REAL))
    assert result.returncode == 0, result.stderr
    expected = fpf.process(REAL.read_bytes(), contracts.fpf).events()
    assert result.stdout.splitlines() == [event.body for event in expected]


def test_normalize_names_the_source_and_reads_stdin():
    result = run("normalize", "-", "--source", "https://dt.example", stdin=REAL.read_bytes())
    assert result.returncode == 0, result.stderr
    events = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert {event["source"] for event in events} == {"https://dt.example"}


def test_normalize_takes_the_dt_time_zone_from_the_environment():
    env = {"DTRACK_WORKER_DT_TIMEZONE": "Europe/Berlin", "PATH": "/usr/bin:/bin"}
    result = run("normalize", str(REAL), env=env)
    first = orjson.loads(result.stdout.splitlines()[0])
    assert first["data"]["vulnerability"]["published"] == "2026-02-04T21:16:00.813Z"


def test_normalize_refuses_an_invalid_export_and_prints_nothing():
    result = run("normalize", str(NULL_FINDINGS))
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"/findings: expected array, not null" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["normalize", "missing.fpf"], b"missing.fpf: No such file or directory"),
        (["normalize", str(REAL), "--dt-timezone", "Mars/Olympus"], b"unknown time zone"),
    ],
)
def test_normalize_errors_are_one_clear_line(args, message):
    result = run(*args)
    assert result.returncode in (1, 2)
    assert message in result.stderr
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("command", [[], ["validate"], ["normalize"]])
def test_help_says_what_each_command_does_with_an_example(command):
    result = run(*command, "--help")
    assert result.returncode == 0
    assert b"examples:" in result.stdout
    assert b"dtrack-worker " in result.stdout


def test_python_dash_m_runs_the_same_command():
    result = subprocess.run(
        [sys.executable, "-m", "worker", "validate", str(REAL)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0


BIG = FPF / "real" / "defectdojo__with_state_fp_na_resolved.json"


def test_a_closed_pipe_ends_normalize_quietly():
    pipeline = subprocess.run(
        f"'{SCRIPT}' normalize '{BIG}' | head -c 10",
        shell=True,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert pipeline.stdout == b'{"specvers'
    assert b"Traceback" not in pipeline.stderr


def test_severity_counts_come_with_the_events(contracts):
    export = fpf.process(REAL.read_bytes(), contracts.fpf)
    severities: dict[str, int] = {}
    events = list(export.events(severities))
    assert sum(severities.values()) == len(events) == export.finding_count
    assert severities["critical"] == sum(1 for e in events if e.routing_key == "finding.critical")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_receiver_refuses_to_start_without_a_token():
    result = run("receiver", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert b"no webhook token: set DTRACK_WORKER_WEBHOOK_TOKEN" in result.stderr
    assert b"--insecure-no-auth" in result.stderr


@pytest.mark.rabbitmq
def test_the_receiver_runs_insecure_only_when_told_and_stops_cleanly_on_sigterm():
    import signal

    from tests.rabbit import unique_prefix

    port = _free_port()
    prefix = unique_prefix()
    env = {
        "PATH": "/usr/bin:/bin",
        "DTRACK_WORKER_LISTEN": f"127.0.0.1:{port}",
        "DTRACK_WORKER_PREFIX": prefix,
    }
    assert SCRIPT
    with subprocess.Popen(
        [SCRIPT, "receiver", "--insecure-no-auth"], env=env, stdout=subprocess.PIPE
    ) as process:
        try:
            _wait_ready(port)
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=20)
        finally:
            process.kill()
            _delete_topology(prefix)
    assert process.returncode == 0
    lines = [orjson.loads(line) for line in out.splitlines()]
    events = [line["event"] for line in lines]
    assert events[0] == "receiver.insecure_no_auth"
    assert lines[0]["level"] == "warning"
    assert "receiver.starting" in events
    assert "receiver.stopped" in events


def _wait_ready(port: int, within: float = 20.0) -> None:
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + within
    last = "no answer yet"
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}: {response.read()[:500]!r}"
        except urllib.error.HTTPError as exc:  # a 503 with its JSON body says why
            last = f"HTTP {exc.code}: {exc.read()[:500]!r}"
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        assert time.monotonic() < deadline, f"the receiver did not become ready; last: {last}"
        time.sleep(0.2)


def _delete_topology(prefix: str) -> None:
    import asyncio

    from tests.rabbit import temporary_topology

    async def delete() -> None:
        async with temporary_topology(prefix):
            pass

    asyncio.run(delete())


@pytest.mark.rabbitmq
def test_topology_declares_and_lists_every_name():
    from tests.rabbit import unique_prefix

    prefix = unique_prefix()
    try:
        result = run("topology", env={"PATH": "/usr/bin:/bin", "DTRACK_WORKER_PREFIX": prefix})
        assert result.returncode == 0, result.stderr
        out = result.stdout.decode()
        assert f"queue    {prefix}.jobs  " in out
        assert f"binding  {prefix}.jobs --delay.10000ms--> {prefix}.jobs.delay.10000ms" in out
    finally:
        _delete_topology(prefix)


def test_topology_print_only_needs_no_broker():
    result = run("topology", "--print-only", env={"PATH": "/usr/bin:/bin"})
    definitions = orjson.loads(result.stdout)
    assert {queue["name"] for queue in definitions["queues"]} >= {
        "dtrack.jobs",
        "dtrack.jobs.parked",
    }


def test_topology_says_plainly_when_rabbitmq_is_unreachable():
    env = {
        "PATH": "/usr/bin:/bin",
        "DTRACK_WORKER_AMQP_URL": f"amqp://u:pw-secret@127.0.0.1:{_free_port()}/",
    }
    result = run("topology", env=env)
    assert result.returncode == 1
    assert b"cannot reach RabbitMQ at amqp://u:***@127.0.0.1:" in result.stderr
    assert b"pw-secret" not in result.stderr + result.stdout


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_worker_and_serve_stop_at_once_without_a_dt_url(command):
    env = {"PATH": "/usr/bin:/bin", "DTRACK_WORKER_WEBHOOK_TOKEN": "t"}
    result = run(command, env=env)
    assert result.returncode == 2
    assert b"DTRACK_WORKER_DT_URL is not set" in result.stderr
    assert b"DTRACK_WORKER_DT_API_KEY" in result.stderr


def test_a_dt_url_without_an_api_key_is_refused_too():
    env = {"PATH": "/usr/bin:/bin", "DTRACK_WORKER_DT_URL": "http://dt.example"}
    result = run("worker", env=env)
    assert result.returncode == 2
    assert b"DTRACK_WORKER_DT_API_KEY is not set" in result.stderr


@pytest.mark.rabbitmq
def test_tail_prints_the_events_bound_by_its_pattern():
    import asyncio

    import aio_pika

    from tests.rabbit import AMQP_URL, unique_prefix

    prefix = unique_prefix()
    env = {"PATH": "/usr/bin:/bin", "DTRACK_WORKER_PREFIX": prefix}
    assert run("topology", env=env).returncode == 0
    try:
        assert SCRIPT
        with subprocess.Popen(
            [
                SCRIPT,
                "tail",
                "--routing-key",
                "finding.critical",
                "--count",
                "2",
                "--timeout",
                "30",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as process:

            async def publish() -> None:
                connection = await aio_pika.connect(AMQP_URL)
                async with connection:
                    channel = await connection.channel()
                    exchange = await channel.get_exchange(f"{prefix}.events")
                    # until tail exits: its queue bound, it takes its two (or its --timeout
                    # ends it), however long it takes to start on a busy machine
                    while process.poll() is None:
                        for key, n in (("finding.low", 0), ("finding.critical", 1)):
                            await exchange.publish(aio_pika.Message(b'{"n": %d}' % n), key)
                        await asyncio.sleep(0.1)

            asyncio.run(publish())
            out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert out.splitlines() == [b'{"n": 1}', b'{"n": 1}']
    finally:
        _delete_topology(prefix)


def test_the_readiness_wait_says_the_last_answer_it_got():
    """A receiver that never becomes ready: the failure says what /readyz answered last."""
    import http.server
    import threading

    class NotReady(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"ready": false, "broker": "connecting"}'
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotReady)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(AssertionError) as failed:
            _wait_ready(server.server_address[1], within=0.3)
    finally:
        server.shutdown()
        server.server_close()
    assert 'HTTP 503: b\'{"ready": false, "broker": "connecting"}\'' in str(failed.value)
    with pytest.raises(AssertionError) as failed:
        _wait_ready(server.server_address[1], within=0.3)  # nobody listens now
    assert "ConnectionRefusedError" in str(failed.value) or "URLError" in str(failed.value)
