"""The dashboard and the alert rules against the real thing: promtool checks the rules and runs
their unit tests; a real Prometheus scrapes a running ``dtrack-worker serve`` through traffic
(until it has data for them, at most a minute) and answers every expression of the dashboard
and the rules; every metric they name is one the service exports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml

from tests.conftest import REPO
from tests.fake_dt import API_KEY, FakeDt
from tests.harness import REAL, SCRIPT, TOKEN, _free_port, _project, notification, samples
from tests.rabbit import AMQP_URL, temporary_topology, unique_prefix
from tests.waiting import until

RULES = REPO / "deploy" / "prometheus" / "dtrack-worker.rules.yaml"
RULE_TESTS = REPO / "tests" / "prometheus" / "rules_test.yaml"
DASHBOARD = REPO / "deploy" / "grafana" / "dtrack-worker.json"
PROMETHEUS_RULE = REPO / "deploy" / "kubernetes" / "base" / "prometheusrule.yaml"
TRAFFIC_SECONDS = 60  # at most: the traffic stops once Prometheus has what the test asks
SCRAPE_SECONDS = 2
# Grafana's variables, as Prometheus sees them once Grafana has filled them in
GRAFANA_VARIABLES = {"$__rate_interval": "1m"}
# alerts this traffic sets off (it parks a job, gets a 403 from DT, sends wrong tokens) and
# alerts a healthy service never has data for; the SLA depends on the findings' dates
FIRING = {"DtrackWorkerJobsParked", "DtrackWorkerDtAuthFailing", "DtrackWorkerWebhookUnauthorized"}
QUIET = {"DtrackWorkerBrokerDown", "DtrackWorkerJobsBacklogGrowing", "DtrackWorkerOutboxLagging"}
METRIC = re.compile(r"\bdtrack_worker_[a-z0-9_]+")


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: scripts/ensure-prometheus installs Debian's prometheus"
    return path


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _dashboard_expressions() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of the dashboard, Grafana's variables filled in."""
    found = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expression = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expression = expression.replace(variable, value)
            found.append((panel["title"], expression))
    assert len(found) >= 20
    return found


def test_promtool_checks_the_rules_and_passes_their_unit_tests(tmp_path: Path):
    promtool = _tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    tests = tmp_path / "rules_test.yaml"
    tests.write_text(RULE_TESTS.read_text().replace("  - RULES", f"  - {RULES}"))
    tested = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    tested_alerts = {
        check["alertname"]
        for case in yaml.safe_load(tests.read_text())["tests"]
        for check in case["alert_rule_test"]
    }
    assert len(tested_alerts) >= 3


def test_the_prometheusrule_carries_the_same_groups_as_the_rules_file():
    custom = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert custom["kind"] == "PrometheusRule"
    assert custom["spec"] == yaml.safe_load(RULES.read_text())


def test_the_unauthorized_alert_names_both_credentials():
    """Review 2 L8: a wrong signature counts as unauthorized too; the alert must say so."""
    rules = [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]
    (alert,) = [rule for rule in rules if rule.get("alert") == "DtrackWorkerWebhookUnauthorized"]
    text = alert["annotations"]["summary"] + alert["annotations"]["description"]
    for credential in ("DTRACK_WORKER_WEBHOOK_TOKEN", "DTRACK_WORKER_WEBHOOK_SIGNING_SECRET"):
        assert credential in text, text
    assert "signature" in alert["annotations"]["summary"]


def test_a_broken_rule_fails_promtool(tmp_path: Path):
    """promtool is a real check here, not a formality."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(RULES.read_text().replace("max(dtrack_worker_outbox_oldest_seconds)", "max("))
    checked = subprocess.run(
        [_tool("promtool"), "check", "rules", str(broken)], capture_output=True, text=True
    )
    assert checked.returncode != 0


# -- a real Prometheus, scraping a running serve -----------------------------------------------


@contextlib.contextmanager
def _process(
    arguments: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running server, its output in ``log`` (a file never fills up and blocks it, as
    an unread pipe would)."""
    with log.open("wb") as output:
        process = subprocess.Popen(arguments, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _exited(process: subprocess.Popen[bytes], log: Path) -> str:
    return f"exited {process.returncode}: {log.read_text()}"


async def _until_ok(
    session: aiohttp.ClientSession, url: str, process: subprocess.Popen[bytes], log: Path
) -> None:
    async def answer() -> tuple[int, str]:
        assert process.poll() is None, _exited(process, log)
        async with session.get(url) as response:
            return response.status, (await response.text())[:300]

    await until(
        answer,
        lambda seen: seen[0] == 200,
        what=f"{url} answering 200 (status, body)",
        within=30,
        errors=(aiohttp.ClientError, OSError),
    )


@contextlib.asynccontextmanager
async def _running(tmp_path: Path, dt: FakeDt) -> AsyncIterator[tuple[int, int]]:
    """``dtrack-worker serve`` (both streams, SQLite state) and a Prometheus scraping it and
    evaluating the rules; yields their ports."""
    assert SCRIPT
    prefix = unique_prefix()
    service_port, prometheus_port = _free_port(), _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DTRACK_WORKER_PREFIX": prefix,
        "DTRACK_WORKER_AMQP_URL": AMQP_URL,
        "DTRACK_WORKER_DT_URL": dt.url,
        "DTRACK_WORKER_DT_API_KEY": API_KEY,
        "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
        "DTRACK_WORKER_LISTEN": f"127.0.0.1:{service_port}",
        "DTRACK_WORKER_EMIT": "both",
        "DTRACK_WORKER_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "DTRACK_WORKER_COALESCE_SECONDS": "0",
        "DTRACK_WORKER_LOG_LEVEL": "WARNING",
    }
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {
                    "scrape_interval": f"{SCRAPE_SECONDS}s",
                    "evaluation_interval": f"{SCRAPE_SECONDS}s",
                },
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": "dtrack-worker",
                        "static_configs": [{"targets": [f"127.0.0.1:{service_port}"]}],
                    }
                ],
            }
        )
    )
    prometheus = [
        _tool("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    ]
    async with temporary_topology(prefix), aiohttp.ClientSession() as session:
        service_log, server_log = tmp_path / "serve.log", tmp_path / "prometheus.log"
        with (
            _process([SCRIPT, "serve"], service_log, env) as service,
            _process(prometheus, server_log) as server,
        ):
            await _until_ok(
                session, f"http://127.0.0.1:{service_port}/readyz", service, service_log
            )
            await _until_ok(
                session, f"http://127.0.0.1:{prometheus_port}/-/ready", server, server_log
            )
            yield service_port, prometheus_port
            assert service.poll() is None


async def _unanswered(session: aiohttp.ClientSession, prometheus: int) -> list[str]:
    """The dashboard's expressions and the alerts of FIRING that Prometheus has no data for."""
    alerts = {rule["alert"]: rule["expr"] for rule in _rules() if rule.get("alert") in FIRING}
    wanted = [*_dashboard_expressions(), *alerts.items()]
    return [f"{name}: {e}" for name, e in wanted if not await _query(session, prometheus, e)]


async def _traffic(port: int, dt: FakeDt, prometheus: int) -> None:
    """Webhooks: exports that change (opened, resolved, reopened), an invalid export (parked),
    a project DT forbids (403), and ten requests with a wrong token; then on until Prometheus
    has data for every expression the test queries, for at most TRAFFIC_SECONDS (the test
    then fails on what still has none). It took a fixed minute; that data is there in ~20 s."""
    url = f"http://127.0.0.1:{port}/webhook"
    projects = [_project() for _ in range(4)]
    document = orjson.loads(REAL)
    invalid, forbidden = _project(), _project()
    dt.exports.as_is(invalid, orjson.dumps({"version": "1.2", "findings": "none"}))
    dt.exports[forbidden] = REAL
    dt.forbidden.add(forbidden)
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:

        async def post(project: str, n: int, token: str = TOKEN) -> int:
            async with session.post(
                url, data=notification(project, n), headers={"X-Api-Key": token}
            ) as response:
                return response.status

        n = 0
        while time.monotonic() - started < TRAFFIC_SECONDS:
            if n >= 10 and not await _unanswered(session, prometheus):
                break
            for index, project in enumerate(projects):
                edited = dict(document, findings=document["findings"][: 13 - (n + index) % 3])
                edited["meta"] = dict(document["meta"], timestamp=f"2026-12-01T00:{n % 60:02d}:00Z")
                dt.exports[project] = orjson.dumps(edited)
                assert await post(project, n) == 202
            if n % 5 == 0:
                assert await post(invalid, n) == 202
                assert await post(forbidden, n) == 202
            if n < 10:
                assert await post(projects[0], n, token="wrong") == 401
            n += 1
            await asyncio.sleep(SCRAPE_SECONDS)


def _instant(rfc3339: str) -> float:
    """Prometheus's RFC 3339 times (nanoseconds, ``Z``) as Unix seconds."""
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", rfc3339).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed).timestamp()


async def _settled_scraped_and_evaluated(service: int, prometheus: int) -> None:
    """The signal the queries wait for: every job the traffic enqueued settled, then a scrape of
    the service begun after that, then every rule group evaluated after that scrape."""
    async with aiohttp.ClientSession() as session:

        async def jobs() -> tuple[int, int]:
            async with session.get(f"http://127.0.0.1:{service}/metrics") as response:
                exposition = await response.text()
            enqueued = samples(exposition, "dtrack_worker_jobs_enqueued_total")
            outcomes = {
                s.labels["outcome"]: int(s.value)
                for s in samples(exposition, "dtrack_worker_jobs_total")
            }
            settled = sum(outcomes.values()) - outcomes.get("retried", 0)
            return sum(int(s.value) for s in enqueued), settled

        await until(
            jobs,
            lambda seen: seen[1] >= seen[0],
            what="every job enqueued settled (enqueued, settled)",
            within=60,
        )
        settled_at = time.time()

        async def scraped() -> float:
            async with session.get(f"{base}/targets") as response:
                targets = (await response.json())["data"]["activeTargets"]
            # no target yet: Prometheus has not read its scrape config yet
            return max((_instant(target["lastScrape"]) for target in targets), default=0.0)

        async def evaluated() -> dict[str, float]:
            async with session.get(f"{base}/rules") as response:
                groups = (await response.json())["data"]["groups"]
            return {group["name"]: _instant(group["lastEvaluation"]) for group in groups}

        base = f"http://127.0.0.1:{prometheus}/api/v1"
        scrape = await until(
            scraped,
            lambda at: at >= settled_at,
            what=f"a scrape of the service after {settled_at:.3f} (Unix time of the last one)",
            within=5 * SCRAPE_SECONDS,
        )
        await until(
            evaluated,
            lambda groups: bool(groups) and all(at > scrape for at in groups.values()),
            what=f"every rule group evaluated after the scrape at {scrape:.3f} (Unix times)",
            within=5 * SCRAPE_SECONDS,
        )


async def _query(session: aiohttp.ClientSession, port: int, expression: str) -> list[Any]:
    async with session.get(
        f"http://127.0.0.1:{port}/api/v1/query", params={"query": expression}
    ) as response:
        answer = await response.json()
    assert response.status == 200, (expression, answer)
    assert answer["status"] == "success", (expression, answer)
    result: list[Any] = answer["data"]["result"]
    return result


def _exported_names(exposition: str) -> set[str]:
    """Every sample name the service's /metrics can carry, from its TYPE lines."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gauge": ("",),
        "summary": ("_sum", "_count", "_created"),
    }
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.MULTILINE):
        family = name.removesuffix("_total") if kind == "counter" else name
        names.add(family)
        names.update(family + suffix for suffix in suffixes.get(kind, ("",)))
    assert "dtrack_worker_jobs_total" in names, exposition[:2000]
    return names


@pytest.mark.rabbitmq
@pytest.mark.timeout(180)  # up to a minute of traffic, and the start of two servers
async def test_a_real_prometheus_answers_every_dashboard_and_rule_expression(tmp_path: Path):
    async with FakeDt() as dt, _running(tmp_path, dt) as (service, prometheus):
        await _traffic(service, dt, prometheus)
        await _settled_scraped_and_evaluated(service, prometheus)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{service}/metrics") as response:
                exposition = await response.text()
            empty = []
            for title, expression in _dashboard_expressions():
                if not await _query(session, prometheus, expression):
                    empty.append(f"{title}: {expression}")
            assert empty == [], "dashboard expressions without data:\n" + "\n".join(empty)

            alerts = {rule["alert"]: rule["expr"] for rule in _rules() if "alert" in rule}
            answered = {name: await _query(session, prometheus, e) for name, e in alerts.items()}
            assert {name for name in FIRING if not answered[name]} == set()
            assert {name for name in QUIET if answered[name]} == set()
            (threshold,) = await _query(
                session, prometheus, "dtrack_worker:critical_finding_sla_seconds"
            )
            assert threshold["value"][1] == "2592000"
            async with session.get(f"http://127.0.0.1:{prometheus}/api/v1/rules") as response:
                groups = (await response.json())["data"]["groups"]
            health = {rule["name"]: rule["health"] for g in groups for rule in g["rules"]}
            assert len(health) == len(_rules())
            assert set(health.values()) == {"ok"}, health

    used = set(METRIC.findall(DASHBOARD.read_text())) | set(METRIC.findall(RULES.read_text()))
    missing = used - _exported_names(exposition)
    assert missing == set(), f"named by the dashboard or the rules, not exported: {missing}"
