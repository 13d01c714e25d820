"""``dtrack-worker tail`` and the default stream (issue 25, section 5): change events are routed
``delta.<kind>.<severity>``, so the patterns tail's help gives find them; a pattern that matches
no key of the stream the workers publish says so at once, instead of showing nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest

from tests.fake_dt import FakeDt
from tests.harness import REAL, post
from tests.test_operations import SCRIPT, _env, cli
from worker.core import routing

pytestmark = pytest.mark.rabbitmq


class Tail:
    """A running ``dtrack-worker tail``; stderr read as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.err = bytearray()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(65536):
            self.err += chunk

    async def listening(self) -> None:
        """Until tail says its queue is bound (or it ended: the assertion says why)."""
        async with asyncio.timeout(30):
            while b"tail.listening" not in self.err:
                assert self.process.returncode is None, self.err.decode()
                await asyncio.sleep(0.02)

    async def finish(self) -> tuple[int, list[dict[str, object]], str]:
        assert self.process.stdout is not None
        out = await asyncio.wait_for(self.process.stdout.read(), 30)
        code = await asyncio.wait_for(self.process.wait(), 30)
        await self._reader
        return code, [orjson.loads(line) for line in out.splitlines()], self.err.decode()


@contextlib.asynccontextmanager
async def tail(*args: str, env: dict[str, str]) -> AsyncIterator[Tail]:
    assert SCRIPT
    process = await asyncio.create_subprocess_exec(
        SCRIPT,
        "tail",
        *args,
        env={"PATH": os.environ.get("PATH", ""), "DTRACK_WORKER_LOG_LEVEL": "INFO"} | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield Tail(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_tail_shows_change_events_with_the_pattern_its_help_gives(
    serve, dt: FakeDt, tmp_path
):
    client, _, _, settings = await serve(emit="delta", state_url=f"sqlite:///{tmp_path}/s.db")
    code, help_text, _ = await cli("tail", "--help", env={})
    assert code == 0
    assert "delta.opened.*" in help_text  # the help names the default stream's keys
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    env = _env(settings.broker.prefix, dt) | {"DTRACK_WORKER_EMIT": "delta"}
    async with tail("--routing-key", "delta.opened.*", "--count", "2", env=env) as running:
        await running.listening()
        await post(client, project)
        code, shown, err = await running.finish()
    assert code == 0, err
    assert [event["type"] for event in shown] == ["dtrack-worker.finding.opened.v1"] * 2
    assert "matches none" not in err


async def test_tail_says_at_once_when_its_pattern_matches_nothing_the_workers_publish(dt: FakeDt):
    """``finding.*`` is the snapshot stream's: under DTRACK_WORKER_EMIT=delta (the default) no
    event has a key it matches. Said before tail even connects (here to a prefix never
    declared, which then ends it)."""
    code, out, err = await cli(
        "tail", "--routing-key", "finding.*", env=_env(f"never-{uuid.uuid4().hex[:8]}", dt)
    )
    assert code == 1, out + err
    assert "the events exchange" in err
    assert (
        "dtrack-worker tail: --routing-key finding.* matches none of the keys events have with "
        "DTRACK_WORKER_EMIT=delta (delta.<kind>.<severity>, export.summary, project.gone, "
        "error.invalid_export): try delta.#, delta.opened.*, #.critical"
    ) in err, err
    code, _, err = await cli(
        "tail",
        "--routing-key",
        "finding.*",
        env=_env(f"never-{uuid.uuid4().hex[:8]}", dt) | {"DTRACK_WORKER_EMIT": "both"},
    )
    assert code == 1
    assert "matches none" not in err


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("finding.*", "finding.high", True),
        ("finding.*", "delta.opened.high", False),
        ("delta.#", "delta.opened.high", True),
        ("delta.#", "delta", True),
        ("#.critical", "delta.resolved.critical", True),
        ("#.critical", "finding.critical", True),
        ("#", "export.summary", True),
        ("*.summary", "export.summary", True),
        ("delta.*", "delta.opened.high", False),
        ("delta.*.*", "delta.opened.high", True),
        ("#.#", "project.gone", True),
        ("export", "export.summary", False),
    ],
)
def test_topic_patterns_match_as_rabbitmq_matches_them(pattern, key, expected):
    assert routing.matches(pattern, key) is expected
