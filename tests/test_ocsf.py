"""The OCSF output profile: every real export's findings, and every kind of transition, as OCSF
1.8.0 Vulnerability Findings valid against the class schema that ocsf-json-schema generates; the
mapping of activities, statuses and severities; the offline commands."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import orjson
import pytest
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from tests import ocsf_contract
from tests.conftest import FPF, REPO, fixture_files
from tests.test_operations import SCRIPT
from worker.adapters import schemas
from worker.core import diff, fpf, ocsf, selection
from worker.core.errors import InvalidExport

VERSION = "0.1.0"


def test_the_committed_schema_is_what_ocsf_json_schema_generates():
    generated = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=ocsf.OCSF_VERSION))
    schema = generated.get_class_schema("vulnerability_finding", profiles=[])
    assert orjson.loads(ocsf_contract.SCHEMA.read_bytes()) == json.loads(json.dumps(schema))
    assert schema["properties"]["class_uid"]["const"] == ocsf.CLASS_UID


def test_the_schema_refuses_what_ocsf_does_not_know():
    (event,) = [e for e in selection.examples() if "change" not in e["data"]]
    valid = ocsf.finding(event, product_version=VERSION)
    assert ocsf_contract.problems(valid) == []
    assert ocsf_contract.problems(valid | {"dtrack": 1}) != []
    broken = orjson.loads(orjson.dumps(valid))
    broken["vulnerabilities"][0]["cve"]["cvss"][0]["score"] = 1.0
    assert ocsf_contract.problems(broken) != []


def _exports() -> list[tuple[str, bytes]]:
    found = []
    for folder in ("real", "edge", "docs"):
        for path in fixture_files(FPF / folder):
            found.append((path.name, path.read_bytes()))
    return found


def test_every_finding_of_every_real_export_is_a_valid_ocsf_finding(contracts):
    converted = 0
    for name, raw in _exports():
        try:
            export = fpf.process(raw, contracts.fpf, source="https://dtrack.example.org")
        except InvalidExport:
            continue  # the invalid fixtures: nothing is published for them
        for event in export.events():
            cloudevent = event.cloudevent()
            finding = ocsf.finding(cloudevent, product_version=VERSION)
            assert ocsf_contract.problems(finding) == [], (name, finding)
            assert finding["finding_info"]["uid"] == cloudevent["subject"]
            assert finding["metadata"]["uid"] == cloudevent["id"]
            assert finding["activity_id"] == 1
            assert finding["type_uid"] == 200201
            converted += 1
    assert converted >= 150


@pytest.mark.parametrize(
    ("kind", "activity", "status"),
    [
        ("opened", (1, "Create"), (1, "New")),
        ("changed", (2, "Update"), (1, "New")),
        ("reopened", (2, "Update"), (1, "New")),
        ("resolved", (3, "Close"), (4, "Resolved")),
        ("suppressed", (3, "Close"), (3, "Suppressed")),
    ],
)
def test_each_transition_maps_to_its_activity_and_status(kind, activity, status):
    (event,) = [e for e in selection.examples() if "change" in e["data"]]
    event["data"]["change"]["kind"] = kind
    finding = ocsf.finding(event, product_version=VERSION)
    assert ocsf_contract.problems(finding) == []
    assert (finding["activity_id"], finding["activity_name"]) == activity
    assert (finding["status_id"], finding["status"]) == status
    assert finding["type_uid"] == 200200 + activity[0]
    assert finding["metadata"]["sequence"] == 7
    assert finding["unmapped"]["change"]["kind"] == kind


@pytest.mark.parametrize(
    ("severity", "severity_id"),
    [("critical", 5), ("high", 4), ("medium", 3), ("low", 2), ("info", 1), ("unassigned", 0)],
)
def test_severities_map_to_severity_ids(severity, severity_id):
    (event,) = [e for e in selection.examples() if "change" not in e["data"]]
    event["data"]["vulnerability"]["severity"] = severity
    finding = ocsf.finding(event, product_version=VERSION)
    assert finding["severity_id"] == severity_id
    assert ocsf_contract.problems(finding) == []


def test_what_a_siem_reads_is_filled_in():
    (event,) = [e for e in selection.examples() if "change" not in e["data"]]
    event["data"]["vulnerability"]["kev"] = True
    finding = ocsf.finding(event, product_version=VERSION)
    vulnerability = finding["vulnerabilities"][0]
    assert vulnerability["cve"]["uid"] == "CVE-2021-23337"
    assert [c["version"] for c in vulnerability["cve"]["cvss"]] == ["3.1", "2.0"]
    assert vulnerability["cve"]["cvss"][0] == {
        "version": "3.1",
        "base_score": 7.2,
        "overall_score": 7.2,
        "vector_string": "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H",
    }
    assert vulnerability["cve"]["epss"] == {"score": "0.0123", "percentile": 0.85}
    assert vulnerability["cve"]["cwe"] == {"uid": "CWE-94"}
    assert vulnerability["affected_packages"] == [
        {
            "name": "lodash",
            "version": "4.17.20",
            "uid": "1f0e7a2e-6d8b-4c1e-8a8f-2f7e4d3c2b10",
            "purl": "pkg:npm/lodash@4.17.20",
        }
    ]
    assert vulnerability["is_exploit_available"] is True
    assert vulnerability["related_vulnerabilities"] == ["GHSA-35jh-r3h4-6jhm"]
    assert finding["resources"] == [
        {
            "uid": "8c2c7ad0-3b9e-4a52-9b0f-5f3c0e2a1d11",
            "type": "Project",
            "name": "example",
            "version": "1.0",
            "labels": ["team-a"],
        }
    ]
    assert finding["metadata"]["version"] == "1.8.0"
    assert finding["metadata"]["product"] == {
        "name": "Dependency-Track",
        "vendor_name": "OWASP",
        "version": "4.14.1",
        "feature": {"name": "dtrack-worker", "version": VERSION},
    }
    assert finding["time"] == 1796083200000  # 2026-12-01T00:00:00Z in epoch milliseconds
    assert finding["finding_info"]["first_seen_time"] == 1795168800000


def test_diff_transitions_between_real_exports_are_valid_ocsf(contracts: schemas.Contracts):
    raw = (FPF / "real" / "defectdojo__deptrack_php_4.14.1.json").read_bytes()
    document = orjson.loads(raw)
    later: dict[str, Any] = dict(document, findings=document["findings"][:-2])
    later["meta"] = dict(document["meta"], timestamp="2030-01-01T00:00:00Z")
    later["findings"][0] = orjson.loads(orjson.dumps(later["findings"][0]))
    later["findings"][0]["vulnerability"]["severity"] = "LOW"
    events = diff.diff(raw, orjson.dumps(later), contracts.fpf, source=None, zone=_utc())
    kinds = set()
    for event in events:
        cloudevent = event.cloudevent()
        if not cloudevent["type"].startswith("dtrack-worker.finding."):
            continue
        finding = ocsf.finding(cloudevent, product_version=VERSION)
        assert ocsf_contract.problems(finding) == [], finding
        kinds.add(cloudevent["data"]["change"]["kind"])
    assert kinds == {"changed", "resolved"}


def _utc() -> Any:
    from datetime import UTC

    return UTC


@pytest.mark.parametrize("command", ["normalize", "diff"])
def test_the_offline_commands_print_ocsf_with_format_ocsf(command, tmp_path):
    assert SCRIPT
    path = FPF / "real" / "defectdojo__deptrack_php_4.14.1.json"
    document = orjson.loads(path.read_bytes())
    later = tmp_path / "later.json"
    later.write_bytes(
        orjson.dumps(
            dict(
                document,
                findings=document["findings"][:-1],
                meta=dict(document["meta"], timestamp="2030-01-01T00:00:00Z"),
            )
        )
    )
    files = [str(path)] if command == "normalize" else [str(path), str(later)]
    done = subprocess.run(
        [SCRIPT, command, *files, "--format", "ocsf"],
        capture_output=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert lines
    findings = [line for line in lines if line.get("class_uid") == ocsf.CLASS_UID]
    assert len(findings) == (13 if command == "normalize" else 1)
    for finding in findings:
        assert ocsf_contract.problems(finding) == []
    if command == "diff":
        assert findings[0]["activity_id"] == 3  # the finding left: closed, resolved
        assert findings[0]["status_id"] == 4
