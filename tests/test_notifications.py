"""Webhook notification -> the projects it concerns, per dtrack-reference.md table 1.2."""

from __future__ import annotations

import copy
import re
from typing import Any

import orjson
import pytest

from tests.conftest import NOTIFICATIONS, fixture_files
from worker.adapters.schemas import Contracts
from worker.core import notifications
from worker.core.errors import InvalidNotification

TEST_PROJECT = "c9c9539a-e381-4b36-ac52-6a7ab83b2c95"  # DT's WebhookPublisherTest project
DOCS_PROJECT = "6fb1820f-5280-4577-ac51-40124aabe307"  # the notifications docs' "Acme Example"

# Every concrete fixture with the group it carries and the projects the reference table names.
EXPECTED: dict[str, tuple[str, list[str]]] = {
    "v4__dt-4.10.0-test__NEW_VULNERABILITY__empty-cwes.json": ("NEW_VULNERABILITY", [TEST_PROJECT]),
    "v4__dt-4.10.0-test__PROJECT_AUDIT_CHANGE__empty-cwes.json": (
        "PROJECT_AUDIT_CHANGE",
        [TEST_PROJECT],
    ),
    "v4__dt-4.14.3-test__BOM_CONSUMED.json": ("BOM_CONSUMED", [TEST_PROJECT]),
    "v4__dt-4.14.3-test__BOM_PROCESSING_FAILED.json": ("BOM_PROCESSING_FAILED", [TEST_PROJECT]),
    "v4__dt-4.14.3-test__BOM_PROCESSING_FAILED__no-spec-version.json": (
        "BOM_PROCESSING_FAILED",
        [TEST_PROJECT],
    ),
    "v4__dt-4.14.3-test__BOM_VALIDATION_FAILED.json": ("BOM_VALIDATION_FAILED", [TEST_PROJECT]),
    "v4__dt-4.14.3-test__DATASOURCE_MIRRORING.json": ("DATASOURCE_MIRRORING", []),
    "v4__dt-4.14.3-test__NEW_POLICY_VIOLATIONS_SUMMARY.json": (
        "NEW_POLICY_VIOLATIONS_SUMMARY",
        [TEST_PROJECT],
    ),
    "v4__dt-4.14.3-test__NEW_VULNERABILITIES_SUMMARY.json": (
        "NEW_VULNERABILITIES_SUMMARY",
        [TEST_PROJECT],
    ),
    "v4__dt-4.14.3-test__NEW_VULNERABILITY.json": ("NEW_VULNERABILITY", [TEST_PROJECT]),
    "v4__dt-4.14.3-test__NEW_VULNERABLE_DEPENDENCY.json": (
        "NEW_VULNERABLE_DEPENDENCY",
        [TEST_PROJECT],
    ),
    "v4__dt-4.14.3-test__PROJECT_AUDIT_CHANGE.json": ("PROJECT_AUDIT_CHANGE", [TEST_PROJECT]),
    "v4__dt-docs-4.14.3__BOM_CONSUMED.json": ("BOM_CONSUMED", [DOCS_PROJECT]),
    "v4__dt-docs-4.14.3__NEW_VULNERABILITIES_SUMMARY.json": (
        "NEW_VULNERABILITIES_SUMMARY",
        [TEST_PROJECT],
    ),
    "v4__dt-docs-4.14.3__NEW_VULNERABILITY.json": ("NEW_VULNERABILITY", [DOCS_PROJECT]),
    "v4__dt-docs-4.14.3__NEW_VULNERABLE_DEPENDENCY.json": (
        "NEW_VULNERABLE_DEPENDENCY",
        [DOCS_PROJECT],
    ),
    "v4__dt-docs-4.14.3__POLICY_VIOLATION.json": (
        "POLICY_VIOLATION",
        ["7a36e5c0-9f09-42dd-b401-360da56c2abe"],
    ),
    "v4__dt-docs-4.14.3__PROJECT_AUDIT_CHANGE.json": ("PROJECT_AUDIT_CHANGE", [DOCS_PROJECT]),
    "v5pre__hyades-v0.6.0-test__GROUP_BOM_CONSUMED.json": ("BOM_CONSUMED", [TEST_PROJECT]),
    "v5pre__hyades-v0.6.0-test__GROUP_BOM_PROCESSING_FAILED.json": (
        "BOM_PROCESSING_FAILED",
        [TEST_PROJECT],
    ),
    "v5pre__hyades-v0.6.0-test__GROUP_BOM_PROCESSING_FAILED__no-spec-version.json": (
        "BOM_PROCESSING_FAILED",
        [TEST_PROJECT],
    ),
    "v5pre__hyades-v0.6.0-test__GROUP_BOM_VALIDATION_FAILED.json": (
        "BOM_VALIDATION_FAILED",
        [TEST_PROJECT],
    ),
    "v5pre__hyades-v0.6.0-test__GROUP_DATASOURCE_MIRRORING.json": ("DATASOURCE_MIRRORING", []),
    "v5pre__hyades-v0.6.0-test__GROUP_NEW_VULNERABILITY.json": (
        "NEW_VULNERABILITY",
        [TEST_PROJECT],
    ),
    "v5pre__hyades-v0.6.0-test__GROUP_NEW_VULNERABLE_DEPENDENCY.json": (
        "NEW_VULNERABLE_DEPENDENCY",
        [TEST_PROJECT],
    ),
    "v5pre__hyades-v0.6.0-test__GROUP_PROJECT_AUDIT_CHANGE.json": (
        "PROJECT_AUDIT_CHANGE",
        [TEST_PROJECT],
    ),
}


def _route(document: object, contracts: Contracts) -> notifications.Routing:
    return notifications.route(document, contracts.notification)


@pytest.mark.parametrize("path", fixture_files(NOTIFICATIONS), ids=lambda p: p.name)
def test_every_notification_fixture_names_the_projects_of_the_reference_table(path, contracts):
    group, projects = EXPECTED[path.name]
    routing = _route(orjson.loads(path.read_bytes()), contracts)
    assert routing.group == group
    assert routing.dialect == ("v5" if path.name.startswith("v5") else "v4")
    assert [project.uuid for project in routing.projects] == projects
    if not projects:
        assert routing.reason == f"{group}: a system notification"
        assert routing.scope == "SYSTEM"
    else:
        assert routing.reason is None
        assert routing.scope == "PORTFOLIO"


def test_project_names_versions_and_tags_come_along(contracts):
    routing = _route(
        orjson.loads((NOTIFICATIONS / "v4__dt-docs-4.14.3__BOM_CONSUMED.json").read_bytes()),
        contracts,
    )
    assert routing.projects == (
        notifications.ProjectRef(DOCS_PROJECT, "Acme Example", "1.0.0", None),  # DT 4: no tags
    )
    routing = _route(
        orjson.loads(
            (NOTIFICATIONS / "v4__dt-docs-4.14.3__PROJECT_AUDIT_CHANGE.json").read_bytes()
        ),
        contracts,
    )
    assert routing.projects[0].name == "Acme Example"  # from affectedProjects[0]


_ANY_STRING = "${json-unit.any-string}"
_ANY_TIME = re.compile(r'"\$\{json-unit\.regex\}\([^"]*\)"')
_PLACEHOLDER_PROJECT = "0f5e8a8c-55a1-4c36-9b6e-7c3b0d3e9a11"


def _fill(raw: bytes) -> bytes:
    text = _ANY_TIME.sub('"2026-11-22T07:00:00.000Z"', raw.decode())
    return text.replace(_ANY_STRING, _PLACEHOLDER_PROJECT).encode()


@pytest.mark.parametrize("path", fixture_files(NOTIFICATIONS / "templated"), ids=lambda p: p.name)
def test_templated_payloads_have_the_shape_the_rules_expect(path, contracts):
    raw = path.read_bytes()
    with pytest.raises(InvalidNotification):  # json-unit placeholders are no real values
        _route(orjson.loads(raw), contracts)
    routing = _route(orjson.loads(_fill(raw)), contracts)
    assert routing.dialect == "v5"
    assert [project.uuid for project in routing.projects] == [_PLACEHOLDER_PROJECT]
    assert routing.group == path.stem.split("__")[2].removeprefix("GROUP_")
    assert routing.notification_id == (
        _PLACEHOLDER_PROJECT if path.name.startswith("v5__") else None
    )


@pytest.mark.parametrize("path", fixture_files(NOTIFICATIONS / "invalid"), ids=lambda p: p.name)
def test_invalid_documentation_examples_are_not_json(path):
    with pytest.raises(orjson.JSONDecodeError, match="trailing comma"):
        orjson.loads(path.read_bytes())


def _v4(group: str, subject: Any, scope: str = "PORTFOLIO") -> dict[str, Any]:
    return {
        "notification": {
            "level": "INFORMATIONAL",
            "scope": scope,
            "group": group,
            "timestamp": "2024-05-06T07:08:09.123",
            "title": "t",
            "content": "c",
            "subject": subject,
        }
    }


def _v5(group: str, subject: Any) -> dict[str, Any]:
    return {
        "notification": {
            "id": "01890a5d-ac96-774b-b9aa-9a1e3f6b0c52",
            "level": "LEVEL_INFORMATIONAL",
            "scope": "SCOPE_PORTFOLIO",
            "group": f"GROUP_{group}",
            "timestamp": "2024-05-06T07:08:09.123Z",
            "subject": subject,
        }
    }


P1, P2, P3 = (
    "11111111-2222-4333-8444-555555555555",
    "66666666-7777-4888-9999-aaaaaaaaaaaa",
    "ABCDEF01-2345-4678-9ABC-DEF012345678",
)


def test_v4_new_vulnerability_names_every_affected_project(contracts):
    subject = {
        "vulnerability": {"uuid": P3},
        "affectedProjects": [
            {"uuid": P1, "name": "one"},
            {"uuid": P2, "name": "two"},
            {"uuid": P1},
        ],
    }
    routing = _route(_v4("NEW_VULNERABILITY", subject), contracts)
    assert routing.projects == (
        notifications.ProjectRef(P1, "one"),
        notifications.ProjectRef(P2, "two"),
    )


def test_v4_new_vulnerability_without_projects_is_ignored_with_the_reason(contracts):
    routing = _route(_v4("NEW_VULNERABILITY", {"vulnerability": {"uuid": P3}}), contracts)
    assert routing.projects == ()
    assert routing.reason == "NEW_VULNERABILITY: no project at subject.affectedProjects[].uuid"


def test_v4_policy_violation_audit_change_names_the_violation_analysis_project(contracts):
    subject = {
        "violationAnalysis": {
            "suppressed": False,
            "state": "APPROVED",
            "project": P2,
            "component": P1,
        },
        "policyViolation": {"uuid": P3, "type": "LICENSE"},
    }
    routing = _route(_v4("PROJECT_AUDIT_CHANGE", subject), contracts)
    assert routing.projects == (notifications.ProjectRef(P2, None),)


def test_v4_policy_violation_audit_change_without_project_is_ignored(contracts):
    subject = {"violationAnalysis": {"suppressed": False, "component": P1}}
    routing = _route(_v4("PROJECT_AUDIT_CHANGE", subject), contracts)
    assert routing.projects == ()
    assert routing.reason is not None
    assert "violationAnalysis.project" in routing.reason


def test_uuids_are_lower_cased(contracts):
    routing = _route(_v4("BOM_PROCESSED", {"project": {"uuid": P3, "name": "x"}}), contracts)
    assert routing.projects[0].uuid == P3.lower()


def test_v4_project_created_names_no_project(contracts):
    routing = _route(_v4("PROJECT_CREATED", None), contracts)
    assert routing.projects == ()
    assert routing.reason == "PROJECT_CREATED: DT v4 names no project"


@pytest.mark.parametrize(
    ("group", "subject", "expected"),
    [
        ("PROJECT_CREATED", {"uuid": P1, "name": "new"}, [P1]),
        ("VULNERABILITY_RETRACTED", {"project": {"uuid": P2}}, [P2]),
        ("PROJECT_AUDIT_CHANGE", {"analysis": {"project": {"uuid": P1}}}, [P1]),
        (
            "NEW_VULNERABILITIES_SUMMARY",
            {
                "projectSummaries": [{"project": {"uuid": P1}}, {"project": {"uuid": P2}}],
                "findingsByProject": [{"project": {"uuid": P2}}],
            },
            [P1, P2],
        ),
        (
            "NEW_POLICY_VIOLATIONS_SUMMARY",
            {"projectSummaries": [], "violationsByProject": [{"project": {"uuid": P1}}]},
            [P1],
        ),
        ("NEW_VULNERABILITIES_SUMMARY", {"projectSummaries": []}, []),
    ],
)
def test_v5_groups_name_their_projects(group, subject, expected, contracts):
    routing = _route(_v5(group, subject), contracts)
    assert [project.uuid for project in routing.projects] == expected
    assert routing.notification_id == "01890a5d-ac96-774b-b9aa-9a1e3f6b0c52"


@pytest.mark.parametrize("group", ["USER_CREATED", "ANALYZER", "INDEXING_SERVICE", "REPOSITORY"])
def test_system_groups_name_no_project(group, contracts):
    routing = _route(_v4(group, {"username": "admin"}, scope="SYSTEM"), contracts)
    assert routing.projects == ()
    assert routing.reason == f"{group}: a system notification"


def test_unknown_groups_are_ignored_so_a_newer_dt_never_sees_an_error(contracts):
    routing = _route(_v5("SOMETHING_NEW", {"project": {"uuid": P1}}), contracts)
    assert routing.projects == ()
    assert routing.reason == "unknown v5 notification group SOMETHING_NEW"


@pytest.mark.parametrize(
    ("document", "message", "pointer"),
    [
        ({"notification": {"group": "BOM_PROCESSED"}}, "does not match schema", "/notification"),
        ({"note": {}}, "does not match schema", ""),
        ([], "does not match schema", ""),
        (_v4("bom_processed", None), "does not match schema", "/notification/group"),
        (_v4("BOM_PROCESSED", "project"), "does not match schema", "/notification/subject"),
        (_v4("BOM_PROCESSED", None), "names no project", "/notification/subject"),
        (
            _v4("BOM_PROCESSED", {"project": {"name": "x"}}),
            "names no project",
            "/notification/subject",
        ),
        (
            _v4("BOM_PROCESSED", {"project": {"uuid": "not-a-uuid"}}),
            "not a UUID",
            "/notification/subject/project/uuid",
        ),
        (
            _v4("NEW_VULNERABILITY", {"affectedProjects": [{"uuid": P1}, {"uuid": 7}]}),
            "not a UUID",
            "/notification/subject/affectedProjects/1/uuid",
        ),
        (_v5("BOM_PROCESSED", {"project": {}}), "names no project", "/notification/subject"),
    ],
)
def test_bodies_that_are_no_usable_notification_get_a_clear_error(
    document, message, pointer, contracts
):
    with pytest.raises(InvalidNotification, match=message) as caught:
        _route(document, contracts)
    assert caught.value.problems[0].pointer == pointer


def test_mixed_v4_and_v5_spellings_are_refused(contracts):
    document = _v4("BOM_PROCESSED", {"project": {"uuid": P1}})
    document["notification"]["scope"] = "SCOPE_PORTFOLIO"
    with pytest.raises(InvalidNotification, match="mixes") as caught:
        _route(document, contracts)
    assert [problem.pointer for problem in caught.value.problems] == ["/notification/scope"]


def test_routing_does_not_change_the_document(contracts):
    document = _v4("NEW_VULNERABILITY", {"affectedProjects": [{"uuid": P1}]})
    before = copy.deepcopy(document)
    _route(document, contracts)
    assert document == before


def test_project_tags_come_along_in_either_spelling(contracts):
    v5 = orjson.loads(
        (NOTIFICATIONS / "v5pre__hyades-v0.6.0-test__GROUP_NEW_VULNERABILITY.json").read_bytes()
    )
    assert _route(v5, contracts).projects[0].tags == ("tag1", "tag2")  # DT 5: a list
    v4 = orjson.loads((NOTIFICATIONS / "v4__dt-docs-4.14.3__BOM_CONSUMED.json").read_bytes())
    v4["notification"]["subject"]["project"]["tags"] = "team-b, team-a,"
    assert _route(v4, contracts).projects[0].tags == ("team-a", "team-b")  # DT 4: one string


def test_a_retraction_names_the_finding_it_retracts(contracts):
    subject = {
        "project": {"uuid": P3, "name": "p"},
        "component": {"uuid": P1.upper()},
        "vulnerability": {"uuid": P2},
    }
    routing = _route(_v5("VULNERABILITY_RETRACTED", subject), contracts)
    assert routing.retracted == f"{P3.lower()}:{P1}:{P2}"  # FPF's matrix, lower case
    del subject["vulnerability"]
    assert _route(_v5("VULNERABILITY_RETRACTED", subject), contracts).retracted is None
    assert _route(_v5("BOM_PROCESSED", subject), contracts).retracted is None


@pytest.mark.parametrize("group", ["VULNERABILITY_RETRACTED", "PROJECT_CREATED"])
def test_dt5_json_without_the_subject_its_template_cannot_render_says_to_use_protobuf(
    contracts, group
):
    with pytest.raises(InvalidNotification) as caught:
        _route(_v5(group, None), contracts)
    assert "choose Protobuf in the alert" in caught.value.problems[0].message
