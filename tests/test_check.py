"""`dtrack-worker check` (alias `doctor`): every check passing against the fake DT and the real
RabbitMQ, then each kind of check failing on its own, with its fix."""

from __future__ import annotations

import re
import socket

import aio_pika
import pytest

from tests.fake_dt import API_KEY, FakeDt
from tests.rabbit import AMQP_URL, temporary_topology, unique_prefix
from tests.test_operations import cli
from worker.service import checks

pytestmark = pytest.mark.rabbitmq


def _env(prefix: str, dt: FakeDt, state: str, **overrides: str) -> dict[str, str]:
    return {
        "DTRACK_WORKER_PREFIX": prefix,
        "DTRACK_WORKER_STATE_URL": state,
        "DTRACK_WORKER_AMQP_URL": AMQP_URL,
        "DTRACK_WORKER_DT_URL": dt.url,
        "DTRACK_WORKER_DT_API_KEY": API_KEY,
        "DTRACK_WORKER_LOG_LEVEL": "WARNING",
    } | {f"DTRACK_WORKER_{key.upper()}": value for key, value in overrides.items()}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_check_passes_when_everything_is_there_and_prints_one_line_each(
    dt: FakeDt, figures, tmp_path
):
    prefix = unique_prefix()
    async with temporary_topology(prefix):
        env = _env(prefix, dt, f"sqlite:///{tmp_path}/state.sqlite3")
        assert (await cli("topology", env=env))[0] == 0
        assert (await cli("state", "migrate", env=env))[0] == 0
        code, out, err = await cli("check", env=env)
        alias = await cli("doctor", env=env)
    assert code == 0, out + err
    assert alias[0] == 0
    # the consumer timeout's line (a warning and its fix on a broker before 3.11.15): its own test
    lines = [line for line in out.splitlines() if "consumer timeout" not in line.replace("_", " ")]
    free = re.fullmatch(r"ok    spool: exports spooled in /tmp \(([\d.]+) GiB free; .*", lines[3])
    assert free is not None, out
    assert lines == [
        "ok    rabbitmq: amqp://guest:***@127.0.0.1:5672/ answers",
        f"ok    topology: 13 exchanges and queues under prefix {prefix}",
        f"ok    state: sqlite:///{tmp_path}/state.sqlite3 writable, migrations current",
        f"ok    spool: exports spooled in /tmp ({free.group(1)} GiB free; at most 2.0 GiB at "
        "once: DTRACK_WORKER_DT_CONCURRENCY x DTRACK_WORKER_MAX_EXPORT)",
        f"ok    dt: Dependency-Track 4.14.3 at {dt.url}",
        "ok    api key: team 'dtrack-worker' has VIEW_PORTFOLIO, VIEW_VULNERABILITY",
        "7 passed, 0 failed",
    ]
    figures("check (all pass):\n    " + "\n    ".join(lines))


async def _broker_version() -> str:
    async with await aio_pika.connect(AMQP_URL) as connection:
        assert connection.transport is not None
        version = connection.transport.connection.server_properties["version"]
    return version.decode() if isinstance(version, bytes) else str(version)


async def test_check_says_whether_the_broker_takes_the_workers_consumer_timeout(dt, tmp_path):
    # the default job budget (about 104 min, the analysis gate's wait included) is over
    # RabbitMQ's default consumer timeout (30 min); a broker before 3.11.15 ignores the
    # worker's own x-consumer-timeout
    prefix = unique_prefix()
    async with temporary_topology(prefix):
        env = _env(prefix, dt, f"sqlite:///{tmp_path}/state.sqlite3")
        assert (await cli("topology", env=env))[0] == 0
        code, out, err = await cli("check", "--receiver-only", env=env)
    assert code == 0, out + err
    version = await _broker_version()
    (line,) = [line for line in out.splitlines() if "consumer timeout:" in line]
    if checks.takes_consumer_timeout(version):
        assert line.startswith(f"ok    consumer timeout: RabbitMQ {version} takes"), out
    else:
        assert line.startswith(f"warn  consumer timeout: RabbitMQ {version} ignores"), out
        fix = out.splitlines()[out.splitlines().index(line) + 1]
        assert "consumer_timeout = 6255000" in fix, out


@pytest.mark.parametrize(
    ("version", "takes"),
    [("3.10.8", False), ("3.11.14", False), ("3.11.15", True), ("3.12.0", True),
     ("4.3.7", True), ("4.0.0-beta.1", True), ("", False), ("weird", False)],
)  # fmt: skip
def test_the_versions_that_take_a_consumers_own_timeout(version, takes):
    assert checks.takes_consumer_timeout(version) is takes


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("rabbitmq", "FAIL  rabbitmq: cannot reach amqp://guest:***@127.0.0.1:"),
        ("topology", "FAIL  topology: 13 missing under prefix"),
        ("dt", "FAIL  dt: "),
        ("key", "FAIL  api key: DT answered 401"),
        ("permission", "FAIL  api key: team 'dtrack-worker' lacks VIEW_VULNERABILITY"),
        ("state", "FAIL  state: no state store at /"),
        ("spool", "FAIL  spool: TMPDIR /"),
    ],
)
async def test_each_failing_check_says_what_and_how_to_fix_it(
    dt: FakeDt, kind, expected, figures, tmp_path
):
    prefix = unique_prefix()
    state = f"sqlite:///{tmp_path}/state.sqlite3"
    overrides: dict[str, str] = {}
    if kind == "rabbitmq":
        overrides["amqp_url"] = f"amqp://guest:guest@127.0.0.1:{_closed_port()}/"
    if kind == "dt":
        overrides["dt_url"] = dt.url + "/frontend"
    if kind == "key":
        overrides["dt_api_key"] = "wrong-key"
    if kind == "permission":
        dt.permissions = ["VIEW_PORTFOLIO"]
    async with temporary_topology(prefix):
        env = _env(prefix, dt, state, **overrides)
        if kind == "spool":  # a directory that is not there: tempfile falls back to /tmp
            env["TMPDIR"] = str(tmp_path / "missing")
        if kind != "topology":
            await cli("topology", env=env)
        if kind != "state":  # not there: the check says so, and creates nothing
            await cli("state", "migrate", env=env)
        code, out, err = await cli("check", env=env)
    assert code == 1, out + err
    failing = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failing) == 1, out
    assert failing[0].startswith(expected), out
    fix = out.splitlines()[out.splitlines().index(failing[0]) + 1]
    assert fix.startswith("      fix: ")
    assert "wrong-key" not in out + err
    figures(f"check ({kind} failing): {failing[0]} / {fix.strip()}")


async def test_check_of_a_receiver_needs_no_dt(dt: FakeDt):
    prefix = unique_prefix()
    async with temporary_topology(prefix):
        env = {
            "DTRACK_WORKER_PREFIX": prefix,
            "DTRACK_WORKER_AMQP_URL": AMQP_URL,
            "DTRACK_WORKER_EMIT": "snapshot",
        }
        await cli("topology", env=env)
        code, out, _ = await cli("check", "--receiver-only", env=env)
        assert code == 0, out
        code, out, _ = await cli("check", env=env)
    assert code == 1
    assert "DTRACK_WORKER_DT_URL or DTRACK_WORKER_DT_API_KEY is not set" in out
