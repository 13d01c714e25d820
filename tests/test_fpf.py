"""FPF exports -> validated -> normalized finding events, on every real and documented export."""

from __future__ import annotations

from collections import Counter
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.conftest import FPF, fixture_files
from worker.adapters.schemas import Contracts
from worker.core import dates, fpf
from worker.core.errors import InvalidExport

GOOD = fixture_files(FPF / "real") + fixture_files(FPF / "docs")


def _events(path: Path, contracts: Contracts, **options: Any) -> list[dict[str, Any]]:
    export = fpf.process(path.read_bytes(), contracts.fpf, **options)
    return [event.cloudevent() for event in export.events()]


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_every_real_and_documented_export_gives_one_valid_event_per_finding(path, contracts):
    document = orjson.loads(path.read_bytes())
    events = _events(path, contracts)

    firsts: dict[str, Any] = {}
    for finding in document["findings"]:
        firsts.setdefault(finding["matrix"], finding)
    assert len(events) == len(firsts)  # one event per finding key
    for finding, event in zip(firsts.values(), events, strict=True):
        assert contracts.finding_event.problems(event) == ()
        data, vulnerability = event["data"], finding["vulnerability"]
        assert event["subject"] == data["finding_key"] == finding["matrix"]
        assert data["vulnerability"]["id"] == vulnerability["vulnId"]
        assert data["vulnerability"]["source"] == vulnerability["source"]
        assert (
            data["vulnerability"]["severity"] == vulnerability.get("severity", "UNASSIGNED").lower()
        )
        assert data["vulnerability"]["cvss"]["v3"]["score"] == vulnerability.get("cvssV3BaseScore")
        assert data["vulnerability"]["cvss"]["v4"]["vector"] == vulnerability.get("cvssV4Vector")
        assert data["vulnerability"]["epss"]["score"] == vulnerability.get("epssScore")
        assert data["component"]["uuid"] == finding["component"]["uuid"]
        assert data["project"]["uuid"] == document["project"]["uuid"]
        state = finding.get("analysis", {}).get("state")
        assert data["analysis"]["state"] == (state.lower() if state else None)
        assert data["fpf"] == {
            "version": document["version"],
            "dt_version": document["meta"]["version"],
            "exported_at": event["time"],
        }
    assert len({event["id"] for event in events}) == len(events)


def test_a_finding_listed_once_per_attribution_gives_one_event_with_the_first(contracts):
    path = FPF / "real" / "defectdojo__deptrack_npm_4.14.1.json"
    export = fpf.process(path.read_bytes(), contracts.fpf)
    assert (export.finding_count, export.repeated_rows) == (21, 1)  # 22 rows, axios twice
    assert len(list(export.events())) == 21
    axios = [e.cloudevent() for e in export.events() if b'"id":"CVE-2025-62718"' in e.body]
    assert len(axios) == 1
    assert axios[0]["data"]["attribution"]["attributed_on"] == "2026-04-10T12:06:59.235Z"


def test_modern_export_values_match_the_file(contracts):
    events = _events(FPF / "real" / "defectdojo__deptrack_npm_4.14.1.json", contracts)
    first = events[0]["data"]
    assert first["component"] == {
        "uuid": "15771e87-9e7f-4931-a704-315662572101",
        "name": "brace-expansion",
        "group": None,
        "version": "2.0.3",
        "purl": "pkg:npm/brace-expansion@2.0.3",
        "cpe": None,
        "latest_version": "5.0.5",
        "scope": None,
    }
    vulnerability = first["vulnerability"]
    assert vulnerability["id"] == "CVE-2026-25547"
    assert vulnerability["aliases"] == ["GHSA-7h2j-956f-4vf2"]  # the CVE itself is the id
    assert vulnerability["severity"] == "critical"
    assert vulnerability["severity_rank"] == 0
    assert vulnerability["cwes"] == [1333]
    assert vulnerability["cvss"]["v4"] == {
        "score": 9.2,
        "vector": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:H",
    }
    assert vulnerability["epss"] == {"score": 0.0002, "percentile": 0.05566}
    assert vulnerability["published"] == "2026-02-04T22:16:00.813Z"
    assert first["attribution"]["attributed_on"] == "2026-04-07T23:55:09.748Z"
    assert first["analysis"] == {"state": None, "suppressed": False, "detail": None}
    assert events[0]["time"] == "2026-04-24T19:39:49.000Z"
    assert events[0]["source"] == "http://dtrack.example.org"  # meta.baseUrl
    assert sum(1 for event in events if event["data"]["vulnerability"]["aliases"] == []) == 7


def test_leaky_fpf_1_1_aliases_are_flattened_without_database_ids(contracts):
    events = _events(FPF / "real" / "defectdojo__many_findings_with_alias.json", contracts)
    vulnerability = events[0]["data"]["vulnerability"]
    assert vulnerability["id"] == "GHSA-rgv9-q543-rqg4"
    # cveId, osvId and allBySource values; the bean's "id": 8089 is not an identifier
    assert vulnerability["aliases"] == ["CVE-2022-42004", "DSA-5283-1"]
    assert vulnerability["cwes"] == [400, 502]  # from cwes[], whose items carry "id": 0


def test_fpf_1_0_takes_its_cwe_from_cwe_id(contracts):
    events = _events(FPF / "real" / "defectdojo__dependency_track_3.8.0_2021-01-18.json", contracts)
    vulnerability = events[0]["data"]["vulnerability"]
    assert vulnerability["cwes"] == [79]
    assert vulnerability["aliases"] == []
    assert events[0]["data"]["attribution"]["analyzer"] is None  # pre-4.0: no attribution
    assert events[0]["source"] == "dependency-track"  # no meta.baseUrl


def test_analysis_states_are_carried_over(contracts):
    events = _events(FPF / "real" / "defectdojo__with_state_fp_na_resolved.json", contracts)
    states = Counter(event["data"]["analysis"]["state"] for event in events)
    assert states == {None: 55, "false_positive": 3, "resolved": 3, "not_affected": 3}
    unassigned = [e for e in events if e["data"]["vulnerability"]["severity"] == "unassigned"]
    assert len(unassigned) == 1
    assert unassigned[0]["data"]["vulnerability"]["severity_rank"] == 5


def test_integer_scores_stay_numbers(contracts):
    events = _events(FPF / "real" / "defectdojo__dependency_track_4.10_2024_02_11.json", contracts)
    vulnerability = events[0]["data"]["vulnerability"]
    assert isinstance(vulnerability["cvss"]["v3"]["score"], int | float)
    assert events[0]["data"]["project"]["uuid"].startswith("1g2345tc")  # hand-mangled, kept


# Edge files: the outcome chosen for each, as docs/events.md writes it down.
EDGE_OUTCOMES = {
    # A missing or null list would read as "this project has no findings" and close every open
    # finding downstream, so it is rejected: DT never sends either.
    "defectdojo__no_findings_because_findings_key_is_missing.json": (
        '/: missing required key "findings"'
    ),
    "defectdojo__no_findings_because_findings_key_is_null.json": (
        "/findings: expected array, not null"
    ),
    # Accepted: no vulnerability uuid or severityRank (the rank follows from the severity), a
    # GHSA id as the matrix's last part (the key is opaque), cweId without cwes.
    "defectdojo__one_finding_ghsa_empty_aliases.json": 1,
    # Accepted: analysis.detail under 1.3 (fields arrive before their version bump).
    "defectdojo__one_finding_with_analysis_detail.json": 1,
    # Accepted: "1.6" (an unmerged proposal) is read with the 1.5 rules; affectedVersions is
    # an unknown key and ignored; a finding with no analysis object is unanalysed.
    "defectdojo__one_finding_with_affected_versions.json": 1,
    "defectdojo__finding_with_affected_range_end_including.json": 1,
    "defectdojo__finding_with_multiple_affected_ranges.json": 1,
    "defectdojo__finding_with_exact_and_range_versions.json": 1,
    "defectdojo__finding_with_unparseable_component_version.json": 1,
}


@pytest.mark.parametrize("path", fixture_files(FPF / "edge"), ids=lambda p: p.name)
def test_every_edge_file_gets_its_documented_outcome(path, contracts):
    outcome = EDGE_OUTCOMES[path.name]
    if isinstance(outcome, str):
        with pytest.raises(InvalidExport) as caught:
            fpf.process(path.read_bytes(), contracts.fpf)
        assert any(str(problem).startswith(outcome) for problem in caught.value.problems)
        return
    events = _events(path, contracts)
    assert len(events) == outcome
    assert all(contracts.finding_event.is_valid(event) for event in events)


def test_edge_values_are_derived_where_the_file_leaves_them_out(contracts):
    (event,) = _events(FPF / "edge" / "defectdojo__one_finding_ghsa_empty_aliases.json", contracts)
    vulnerability = event["data"]["vulnerability"]
    assert vulnerability["uuid"] is None
    assert vulnerability["severity_rank"] == 2  # MEDIUM
    assert vulnerability["cwes"] == [787]
    assert event["data"]["component"]["scope"] == "required"
    (event,) = _events(
        FPF / "edge" / "defectdojo__one_finding_with_analysis_detail.json", contracts
    )
    assert event["data"]["analysis"]["state"] == "in_triage"
    assert event["data"]["analysis"]["detail"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "export is not valid JSON"),
        (b'{"version": "1.3"', "export is not valid JSON"),
        (b"[]", "export is not a JSON object"),
        (b'"text"', "export is not a JSON object"),
        (b"{}", "FPF export does not match schema"),
    ],
)
def test_bytes_that_are_no_export_get_a_clear_error(raw, message, contracts):
    with pytest.raises(InvalidExport, match=message) as caught:
        fpf.process(raw, contracts.fpf)
    assert caught.value.problems


def test_schema_problems_name_the_place_the_rule_and_the_value(contracts):
    document = orjson.loads((FPF / "real" / "defectdojo__deptrack_npm_4.14.1.json").read_bytes())
    document["findings"][3]["vulnerability"]["severity"] = "SEVERE"
    document["findings"][5]["vulnerability"]["cvssV3BaseScore"] = "7.5"
    with pytest.raises(InvalidExport) as caught:
        fpf.process(orjson.dumps(document), contracts.fpf)
    assert [str(problem) for problem in caught.value.problems] == [
        '/findings/3/vulnerability/severity: expected one of "CRITICAL", "HIGH", "MEDIUM", '
        '"LOW", "INFO", "UNASSIGNED", null (value: "SEVERE")',
        "/findings/5/vulnerability/cvssV3BaseScore: "
        'expected number or null, not string (value: "7.5")',
    ]


def test_fpf_1_2_aliases_must_be_identifier_strings_but_1_1_may_leak_the_bean(contracts):
    document = orjson.loads(
        (FPF / "real" / "defectdojo__many_findings_with_alias.json").read_bytes()
    )
    assert contracts.fpf.is_valid(document)  # 1.1 with {id, allBySource}
    document["version"] = "1.2"
    problems = [str(p) for p in contracts.fpf.problems(document)]
    assert any(
        p.startswith("/findings/0/vulnerability/aliases/0/allBySource: expected string")
        for p in problems
    )
    assert any(
        p.startswith("/findings/0/vulnerability/aliases/0/id: expected string") for p in problems
    )


def test_major_version_2_is_refused(contracts):
    document = orjson.loads((FPF / "docs" / "defectdojo__one_finding.json").read_bytes())
    document["version"] = "2.0"
    assert [p.pointer for p in contracts.fpf.problems(document)] == ["/version"]


@pytest.mark.parametrize(
    ("value", "zone", "expected"),
    [
        ("2026-02-04 22:16:00.813", UTC, "2026-02-04T22:16:00.813Z"),  # DT 4.x: space, no zone
        ("2026-01-30 21:28:44.0", UTC, "2026-01-30T21:28:44.000Z"),
        ("1970-01-01T18:31:06.000000666", UTC, "1970-01-01T18:31:06.000Z"),  # nanoseconds cut
        ("2022-05-12T23:07:59.611303", UTC, "2022-05-12T23:07:59.611303Z"),
        ("2022-05-12T23:07", UTC, "2022-05-12T23:07:00.000Z"),  # seconds dropped by Java
        ("2006-06-06T06:06:06.666Z", UTC, "2006-06-06T06:06:06.666Z"),  # DT 5.x
        ("2024-01-01T00:30:00+01:00", UTC, "2023-12-31T23:30:00.000Z"),
        ("2026-02-04 22:16:00.813", ZoneInfo("Europe/Berlin"), "2026-02-04T21:16:00.813Z"),
        ("2026-07-04 22:16:00", ZoneInfo("America/New_York"), "2026-07-05T02:16:00.000Z"),
        ("2024-02-29 10:00:00", UTC, "2024-02-29T10:00:00.000Z"),
        ("2023-02-30 10:00:00", UTC, None),  # no such day
        (1700000000123, UTC, "2023-11-14T22:13:20.123Z"),  # epoch milliseconds
        (None, UTC, None),
    ],
)
def test_dates_become_utc_iso_8601(value, zone, expected):
    assert dates.instant(value, zone) == expected


def test_the_dt_time_zone_moves_zone_less_dates_only(contracts):
    path = FPF / "real" / "defectdojo__deptrack_npm_4.14.1.json"
    (utc, berlin) = (
        _events(path, contracts)[0],
        _events(path, contracts, zone=ZoneInfo("Europe/Berlin"))[0],
    )
    assert utc["data"]["vulnerability"]["published"] == "2026-02-04T22:16:00.813Z"
    assert berlin["data"]["vulnerability"]["published"] == "2026-02-04T21:16:00.813Z"
    assert utc["time"] == berlin["time"]  # meta.timestamp carries its Z


def test_event_ids_are_deterministic_and_depend_on_source_and_export(contracts):
    path = FPF / "real" / "defectdojo__deptrack_php_4.14.1.json"
    first = [event["id"] for event in _events(path, contracts)]
    assert first == [event["id"] for event in _events(path, contracts)]
    renamed = [event["id"] for event in _events(path, contracts, source="https://dt.example")]
    assert set(first).isdisjoint(renamed)
    document = orjson.loads(path.read_bytes())
    document["meta"]["timestamp"] = "2026-04-25T00:00:00Z"
    later = fpf.process(orjson.dumps(document), contracts.fpf)
    assert set(first).isdisjoint(event.id for event in later.events())


def test_routing_keys_follow_severity(contracts):
    export = fpf.process(
        (FPF / "real" / "defectdojo__deptrack_php_4.14.1.json").read_bytes(), contracts.fpf
    )
    for event in export.events():
        severity = event.cloudevent()["data"]["vulnerability"]["severity"]
        assert event.routing_key == f"finding.{severity}"
