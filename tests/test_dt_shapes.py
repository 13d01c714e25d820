"""Real DT data beyond the fixtures (issue 16 part 4): enumerations copied from database columns,
and the explicit nulls and epoch dates of DT's Jackson endpoints."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tests.conftest import FPF
from worker.adapters.schemas import Contracts
from worker.core import fpf
from worker.core.errors import InvalidExport

PROJECT = "c0ffee00-1111-4222-8333-444455556666"

# DT 5.0.4's own expectation of an export (apiserver/src/test/java/org/dependencytrack/
# integrations/FindingPackagingFormatTest.java, Apache-2.0), its placeholders filled in.
DT5_EXPORT: dict[str, Any] = {
    "version": "1.3",
    "meta": {"application": "Dependency-Track", "version": "5.0.4",
             "timestamp": "2026-06-01T10:00:00Z"},
    "project": {"uuid": PROJECT, "name": "Test", "version": "1.0",
                "description": "Sample project"},
    "findings": [
        {
            "component": {"uuid": "a1a1a1a1-0000-4000-8000-000000000001",
                          "name": "component-name-1", "version": "component-version",
                          "project": PROJECT, "hasOccurrences": True, "projectName": "Test",
                          "projectVersion": "1.0", "scope": "Optional"},
            "vulnerability": {"uuid": "b2b2b2b2-0000-4000-8000-000000000001",
                              "source": "GITHUB", "vulnId": "vuln-vulnId-1",
                              "severity": "CRITICAL", "severityRank": 0,
                              "cvssV3BaseScore": 8.4, "aliases": [],
                              "published": "2026-05-01T08:00:00Z"},
            "analysis": {"state": "NOT_AFFECTED", "isSuppressed": True},
            "attribution": {"analyzerIdentity": "oss-index",
                            "attributedOn": "2026-05-02T08:00:00Z"},
            "matrix": f"{PROJECT}:a1a1a1a1-0000-4000-8000-000000000001:"
                      "b2b2b2b2-0000-4000-8000-000000000001",
        },
        {
            "component": {"uuid": "a1a1a1a1-0000-4000-8000-000000000002",
                          "name": "component-name-2", "version": "component-version",
                          "project": PROJECT, "hasOccurrences": True, "scope": "Required"},
            "vulnerability": {"uuid": "b2b2b2b2-0000-4000-8000-000000000002", "source": "NVD",
                              "vulnId": "vuln-vulnId-2", "severity": "HIGH",
                              "severityRank": 1, "aliases": [{"cveId": "someCveId"}]},
            "analysis": {"state": "NOT_AFFECTED", "isSuppressed": True},
            "attribution": {"analyzerIdentity": "internal",
                            "attributedOn": "2026-05-02T08:00:00Z"},
            "matrix": f"{PROJECT}:a1a1a1a1-0000-4000-8000-000000000002:"
                      "b2b2b2b2-0000-4000-8000-000000000002",
        },
    ],
}  # fmt: skip


def _events(document: dict[str, Any], contracts: Contracts) -> list[dict[str, Any]]:
    export = fpf.process(orjson.dumps(document), contracts.fpf)
    return [orjson.loads(event.body) for event in export.events()]


def test_dt5_scopes_from_the_database_are_read_and_published_lower_case(contracts):
    events = _events(DT5_EXPORT, contracts)
    assert [e["data"]["component"]["scope"] for e in events] == ["optional", "required"]
    for event in events:
        assert contracts.finding_event.problems(event) == ()


@pytest.mark.parametrize(
    ("where", "value", "published"),
    [
        (("component", "scope"), "eXcLuDeD", "excluded"),
        (("analysis", "state"), "in_triage", "in_triage"),
        (("analysis", "state"), "Not_Set", "not_set"),
        (("vulnerability", "source"), "github", "GITHUB"),
        (("vulnerability", "source"), "TRIVY", "TRIVY"),  # gone from DT 5's enum, not its rows
        (("vulnerability", "source"), "CSAF", "CSAF"),  # a source DT may add
    ],
)
def test_database_enumerations_are_read_in_any_case(contracts, where, value, published):
    document = copy.deepcopy(DT5_EXPORT)
    part, key = where
    document["findings"][0][part][key] = value
    (first, _) = _events(document, contracts)
    assert first["data"][part][key] == published


@pytest.mark.parametrize("severity", ["critical", "Critical", "URGENT", ""])
def test_severity_stays_strict_with_the_pointer(contracts, severity):
    document = copy.deepcopy(DT5_EXPORT)
    document["findings"][1]["vulnerability"]["severity"] = severity
    with pytest.raises(InvalidExport) as refused:
        fpf.process(orjson.dumps(document), contracts.fpf)
    assert refused.value.problems[0].pointer == "/findings/1/vulnerability/severity"


# -- explicit nulls: DT's findings API (Jackson) against its export (org.json) -----------------


def _epoch_ms(text: str) -> int:
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


OPTIONAL = {
    "component": ("group", "version", "purl", "cpe", "latestVersion", "scope"),
    "vulnerability": (
        "title", "subtitle", "description", "recommendation", "references", "cvssV2BaseScore",
        "cvssV3BaseScore", "cvssV4Score", "cvssV2Vector", "cvssV3Vector", "cvssV4Vector",
        "owaspRRVector", "owaspLikelihoodScore", "owaspTechnicalImpactScore",
        "owaspBusinessImpactScore", "epssScore", "epssPercentile", "published", "cwes", "cweId",
        "cweName", "isKev",
    ),
    "analysis": ("state", "detail"),
    "attribution": ("alternateIdentifier", "referenceUrl"),
}  # fmt: skip


def as_jackson(finding: dict[str, Any]) -> dict[str, Any]:
    """A finding as ``GET /api/v1/finding/project/{uuid}`` writes it: every absent optional key
    an explicit null, ``attributedOn`` in epoch milliseconds (seen in real DT 4.10 answers)."""
    out = copy.deepcopy(finding)
    for part, keys in OPTIONAL.items():
        section = out.setdefault(part, {})
        for key in keys:
            section.setdefault(key, None)
    attribution = out["attribution"]
    if isinstance(attribution.get("attributedOn"), str):
        attribution["attributedOn"] = _epoch_ms(attribution["attributedOn"])
    return out


def test_a_finding_from_the_findings_api_normalizes_to_the_export_s_event(contracts):
    export = orjson.loads((FPF / "real" / "defectdojo__deptrack_php_4.14.1.json").read_bytes())
    jackson = copy.deepcopy(export) | {
        "findings": [as_jackson(finding) for finding in export["findings"]]
    }
    assert b"null" in orjson.dumps(jackson["findings"][0])
    from_export = [e.body for e in fpf.process(orjson.dumps(export), contracts.fpf).events()]
    from_api = [e.body for e in fpf.process(orjson.dumps(jackson), contracts.fpf).events()]
    assert from_api == from_export


def test_null_analysis_attribution_and_alias_values_mean_absent(contracts):
    document = copy.deepcopy(DT5_EXPORT)
    bare = copy.deepcopy(DT5_EXPORT)
    document["findings"][0]["analysis"] = None
    document["findings"][0]["attribution"] = None
    document["findings"][1]["vulnerability"]["aliases"] = [{"cveId": "someCveId", "ghsaId": None}]
    del bare["findings"][0]["analysis"]
    del bare["findings"][0]["attribution"]
    assert _events(document, contracts) == _events(bare, contracts)


def test_an_epoch_date_written_with_a_fraction_is_still_a_date(contracts):
    """JSON Schema's integer admits 1712793633307.0; hypothesis found it crashing the reader."""
    document = copy.deepcopy(DT5_EXPORT)
    document["findings"][0]["attribution"]["attributedOn"] = 1712793633307.0
    (first, _) = _events(document, contracts)
    assert first["data"]["attribution"]["attributed_on"] == "2024-04-11T00:00:33.307Z"
