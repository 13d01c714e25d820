"""The change stream's commands as a user runs them: `diff` offline on real exports, `status`,
`state migrate`, `state baseline` and `state resync` against a real store, the fake DT and the
real RabbitMQ."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest

from tests.conftest import FPF
from tests.fake_dt import FakeDt
from tests.harness import REAL, listen
from tests.rabbit import eventually, temporary_topology, unique_prefix
from tests.test_cli import run
from tests.test_operations import _env, cli
from worker.adapters.state import schema

ALIAS = FPF / "real" / "defectdojo__many_findings_with_alias.json"
SCORED = FPF / "real" / "defectdojo__many_findings_with_cvssV3_score.json"
EMPTIED = FPF / "real" / "defectdojo__many_findings_with_empty_alias.json"


def test_diff_of_two_real_exports_shows_each_change_with_old_and_new(contracts):
    result = run(
        "diff", str(ALIAS), str(SCORED), "--by", "project", "--source", "https://dt.example"
    )
    assert result.returncode == 0, result.stderr
    events = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == 12
    for event in events:
        assert contracts.finding_change.problems(event) == ()
        assert event["type"] == "dtrack-worker.finding.changed.v1"
        (change,) = event["data"]["change"]["changes"]
        assert change["field"] == "cvss_v3_score"
        assert change["old"] is None
        assert isinstance(change["new"], float)
    assert [int(e["sequence"]) for e in events] == list(range(1, 13))


def test_diff_ignores_aliases_that_went_away_and_names_what_left(tmp_path: Path):
    assert (
        run("diff", str(ALIAS), str(EMPTIED), "--by", "project").stdout == b""
    )  # only additions count
    document = orjson.loads(ALIAS.read_bytes())
    left = document["findings"].pop(0)["matrix"]
    shrunk = tmp_path / "shrunk.json"
    shrunk.write_bytes(orjson.dumps(document))
    result = run("diff", str(ALIAS), str(shrunk), "--by", "project")
    (event,) = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert (event["subject"], event["data"]["change"]["reason"]) == (left, "not_in_export")
    back = run("diff", str(shrunk), str(ALIAS), "--by", "project")
    (event,) = [orjson.loads(line) for line in back.stdout.splitlines()]
    assert event["data"]["change"]["kind"] == "opened"


def test_diff_refuses_exports_of_two_projects_and_invalid_files(tmp_path: Path):
    result = run(
        "diff",
        str(ALIAS),
        str(FPF / "real" / "defectdojo__deptrack_php_4.14.1.json"),
        "--by",
        "project",
    )
    assert result.returncode == 1
    assert b"the two exports are of different projects" in result.stderr
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"{")
    result = run("diff", str(ALIAS), str(broken))
    assert result.returncode == 1
    assert b"export is not valid JSON" in result.stderr


@pytest.mark.rabbitmq
async def test_baseline_then_status_then_resync(dt: FakeDt, tmp_path: Path, contracts, figures):
    prefix = unique_prefix()
    env = _env(prefix, dt) | {
        "DTRACK_WORKER_STATE_URL": f"sqlite:///{tmp_path}/state.sqlite3",
        "DTRACK_WORKER_TRACK": "project",  # the per-project view (by line: test_line_commands)
    }
    code, out, err = await cli("state", "migrate", env=env)
    assert code == 0, err
    assert f"applied {[m.number for m in schema.migrations()]}" in out  # every one shipped
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    dt.projects = [{"uuid": project, "name": "acme-app", "version": "develop"}]
    code, out, err = await cli("state", "baseline", "--all", env=env)
    assert code == 0, err
    assert "recorded the findings of 1 projects" in out

    code, out, _ = await cli("status", env=env)
    assert code == 0
    assert f"acme/acme-app (php) develop  {project}" in out
    assert "last outcome baseline" in out
    figures("status:\n    " + "\n    ".join(out.splitlines()))
    code, out, _ = await cli("status", project, "--json", env=env)
    (report,) = orjson.loads(out)
    assert report["open"]["low"] + report["open"]["medium"] + report["open"]["high"] > 0
    assert sum(report["open"].values()) == 13
    code, _, err = await cli("status", str(uuid.uuid4()), env=env)
    assert code == 1
    assert "not found" in err

    async with temporary_topology(prefix) as topo:
        assert (await cli("topology", env=env))[0] == 0
        async with listen(topo.events_exchange.name) as events:
            code, out, err = await cli("state", "resync", project, env=env)
            assert code == 0, err
            assert "published 13 opened events for 1 projects" in out
            # the baseline's summary waited in the outbox too: the resync's relay sent it first
            await eventually(lambda: len(events.messages) == 14)
    published = [orjson.loads(message.body) for message in events.messages]
    assert [e["type"] for e in published].count("dtrack-worker.export.summary.v1") == 1
    resynced = [e for e in published if e["type"].startswith("dtrack-worker.finding.")]
    assert len(resynced) == 13
    for event in resynced:
        assert event["data"]["change"]["resync"] is True
        assert contracts.finding_change.problems(event) == ()
