"""DT 5 notifications in both forms a webhook can carry: the JSON of DT's default template and
the protobuf ``Notification`` (``publishProtobuf``), the latter built with DT's own schema from
the former, as DT builds both from one message.

``documents()`` has a v5 JSON document for every group the receiver routes: DT's own v5 examples
from the fixtures where there are some, and for the other groups the subject DT's
``NotificationFactory`` packs, in the JSON form ``JsonFormat`` gives it.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

from tests.conftest import NOTIFICATIONS
from worker.core.dtproto import notification_pb2 as pb

TIMESTAMP = "2026-11-22T07:00:00.000Z"
_ANY_STRING = "${json-unit.any-string}"
_ANY_TIME = re.compile(r'"\$\{json-unit\.regex\}\([^"]*\)"')

# the subject type DT packs for each group (notification/api NotificationFactory)
SUBJECTS: dict[str, type[Message]] = {
    "BOM_CONSUMED": pb.BomConsumedOrProcessedSubject,
    "BOM_PROCESSED": pb.BomConsumedOrProcessedSubject,
    "BOM_PROCESSING_FAILED": pb.BomProcessingFailedSubject,
    "BOM_VALIDATION_FAILED": pb.BomValidationFailedSubject,
    "VEX_CONSUMED": pb.VexConsumedOrProcessedSubject,
    "VEX_PROCESSED": pb.VexConsumedOrProcessedSubject,
    "NEW_VULNERABILITY": pb.NewVulnerabilitySubject,
    "NEW_VULNERABLE_DEPENDENCY": pb.NewVulnerableDependencySubject,
    "POLICY_VIOLATION": pb.PolicyViolationSubject,
    "PROJECT_CREATED": pb.Project,
    "VULNERABILITY_RETRACTED": pb.VulnerabilityRetractedSubject,
    "NEW_VULNERABILITIES_SUMMARY": pb.NewVulnerabilitiesSummarySubject,
    "NEW_POLICY_VIOLATIONS_SUMMARY": pb.NewPolicyViolationsSummarySubject,
    "USER_CREATED": pb.UserSubject,
    "USER_DELETED": pb.UserSubject,
}

P1 = "7d1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
P2 = "8e2a3b4c-5d6e-4f70-9a1b-2c3d4e5f6a7b"
COMPONENT = "94f87321-a5d1-4c2f-b2fe-95165debebc6"
VULNERABILITY = "bccec5d5-ec21-4958-b3e8-22a7a866a05a"


def project(uuid_: str, name: str, *, tags: bool = True, **more: Any) -> dict[str, Any]:
    """A v5 project; ``tags=False``: one without tags (JsonFormat leaves the empty list out)."""
    found = {"uuid": uuid_, "name": name, "version": "1.0"} | more
    return found | {"tags": ["team-a", "prod"]} if tags else found


_COMPONENT = {"uuid": COMPONENT, "name": "jackson-databind", "version": "2.13.2.2"}
_VULNERABILITY = {
    "uuid": VULNERABILITY,
    "vulnId": "CVE-2022-42003",
    "source": "NVD",
    "severity": "HIGH",
    "cvssv3": 7.5,
    "isKev": False,
}
_VIOLATION = {
    "uuid": "5f7e8d9c-0b1a-4c2d-8e3f-4a5b6c7d8e9f",
    "type": "SECURITY",
    "timestamp": TIMESTAMP,
    "condition": {
        "uuid": "6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d",
        "subject": "SEVERITY",
        "operator": "IS",
        "value": "HIGH",
        "policy": {
            "uuid": "7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e",
            "name": "No high",
            "violationState": "FAIL",
        },
    },
}


def _summaries(kind: str) -> dict[str, Any]:
    """A scheduled summary naming two projects (v5 flattens v4's summary/details)."""
    counts = {"HIGH": 1} if kind == "vulnerabilities" else {"SECURITY": 1}
    count_key = (
        "newVulnerabilitiesCountBySeverity"
        if kind == "vulnerabilities"
        else "newViolationsCountByType"
    )
    entries = [project(P1, "one"), project(P2, "two", tags=False, isActive=True)]
    if kind == "vulnerabilities":
        by_project = {
            "findingsByProject": [
                {
                    "project": entry,
                    "findings": [
                        {
                            "component": _COMPONENT,
                            "vulnerability": _VULNERABILITY,
                            "analyzerIdentity": "internal",
                            "attributedOn": TIMESTAMP,
                            "suppressed": False,
                        }
                    ],
                }
                for entry in entries
            ]
        }
    else:
        by_project = {
            "violationsByProject": [
                {
                    "project": entry,
                    "violations": [
                        {
                            "uuid": _VIOLATION["uuid"],
                            "component": _COMPONENT,
                            "policyCondition": _VIOLATION["condition"],
                            "type": "SECURITY",
                            "timestamp": TIMESTAMP,
                            "suppressed": False,
                        }
                    ],
                }
                for entry in entries
            ]
        }
    return {
        "overview": {"affectedProjectsCount": 2, "affectedComponentsCount": 1},
        "projectSummaries": [{"project": entry, count_key: counts} for entry in entries],
        **by_project,
        "since": "2026-11-21T07:00:00.000Z",
    }


def _built() -> dict[str, tuple[str, Any]]:
    """Groups without a v5 example among the fixtures: their subjects as DT packs them."""
    vex = {"project": project(P1, "one"), "vex": "eyJib21Gb3JtYXQiOiJDeWNsb25lRFgifQ==",
           "format": "CycloneDX", "specVersion": "1.5"}  # fmt: skip
    violation = {
        "component": _COMPONENT,
        "project": project(P1, "one"),
        "policyViolation": _VIOLATION,
    }
    retracted = {
        "component": _COMPONENT,
        "project": project(P1, "one"),
        "vulnerability": _VULNERABILITY,
    }
    summary, violations = _summaries("vulnerabilities"), _summaries("violations")
    user = {"username": "admin", "email": "admin@example.org"}
    return {
        "built__VEX_CONSUMED": ("VEX_CONSUMED", vex),
        "built__VEX_PROCESSED": ("VEX_PROCESSED", vex),
        "built__POLICY_VIOLATION": ("POLICY_VIOLATION", violation),
        "built__PROJECT_AUDIT_CHANGE__policy-violation": (
            "PROJECT_AUDIT_CHANGE",
            violation | {"analysis": violation | {"state": "APPROVED", "suppressed": False}},
        ),
        "built__PROJECT_CREATED": ("PROJECT_CREATED", project(P1, "one", isActive=True)),
        "built__VULNERABILITY_RETRACTED": ("VULNERABILITY_RETRACTED", retracted),
        "built__NEW_VULNERABILITIES_SUMMARY": ("NEW_VULNERABILITIES_SUMMARY", summary),
        "built__NEW_POLICY_VIOLATIONS_SUMMARY": ("NEW_POLICY_VIOLATIONS_SUMMARY", violations),
        "built__USER_CREATED": ("USER_CREATED", user),
        "built__USER_DELETED": ("USER_DELETED", user),
    } | {  # the system groups DT sends without a subject, as DATASOURCE_MIRRORING (review 2 L6)
        f"built__{group}": (group, None) for group in SYSTEM_GROUPS
    }


SYSTEM_GROUPS = ("ANALYZER", "CONFIGURATION", "FILE_SYSTEM", "INTEGRATION", "REPOSITORY")


_FROM_FIXTURES = (
    "templated/v5__dt-5.0.4-e2e__GROUP_BOM_PROCESSED.json",
    "templated/v5__dt-5.0.4-e2e__GROUP_NEW_VULNERABILITY.json",
    "templated/v5__dt-5.0.4-e2e-vulnpolicy__GROUP_NEW_VULNERABLE_DEPENDENCY.json",
    "v5pre__hyades-v0.6.0-test__GROUP_BOM_CONSUMED.json",
    "v5pre__hyades-v0.6.0-test__GROUP_BOM_PROCESSING_FAILED.json",
    "v5pre__hyades-v0.6.0-test__GROUP_BOM_VALIDATION_FAILED.json",
    "v5pre__hyades-v0.6.0-test__GROUP_NEW_VULNERABLE_DEPENDENCY.json",
    "v5pre__hyades-v0.6.0-test__GROUP_PROJECT_AUDIT_CHANGE.json",
    "v5pre__hyades-v0.6.0-test__GROUP_DATASOURCE_MIRRORING.json",
)


def _filled(raw: bytes) -> bytes:
    """json-unit placeholders of DT's e2e expectations as real values."""
    text = _ANY_TIME.sub(f'"{TIMESTAMP}"', raw.decode())
    text = text.replace('"${json-unit.any-number}"', "9.8")
    return text.replace(_ANY_STRING, P1).encode()


def documents() -> dict[str, dict[str, Any]]:
    """Name -> a v5 JSON document, each with an id of its own."""
    found: dict[str, dict[str, Any]] = {}
    for name in _FROM_FIXTURES:
        document = orjson.loads(_filled((NOTIFICATIONS / name).read_bytes()))
        found[name.rpartition("/")[2].removesuffix(".json")] = document
    for name, (group, subject) in _built().items():
        found[name] = {
            "notification": {
                "level": "LEVEL_INFORMATIONAL",
                "scope": "SCOPE_SYSTEM"
                if group.startswith("USER_") or group in SYSTEM_GROUPS
                else "SCOPE_PORTFOLIO",
                "group": f"GROUP_{group}",
                "timestamp": TIMESTAMP,
                "title": group.replace("_", " ").title(),
                "content": "",
                "subject": subject,
            }
        }
    for name, document in found.items():  # DT 5 gives every notification a UUIDv7 id
        document["notification"]["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    return found


def protobuf_of(document: dict[str, Any]) -> bytes:
    """The notification as DT's webhook sends it with ``publishProtobuf``."""
    notification = document["notification"]
    group = notification["group"].removeprefix("GROUP_")
    message = pb.Notification(
        id=notification.get("id", ""),
        level=notification["level"],  # enum names, as JsonFormat writes them
        scope=notification["scope"],
        group=notification["group"],
        title=notification.get("title", ""),
        content=notification.get("content", ""),
    )
    message.timestamp.FromJsonString(notification["timestamp"])
    subject = notification.get("subject")
    if subject is not None:
        kind = SUBJECTS.get(group)
        if group == "PROJECT_AUDIT_CHANGE":
            kind = (
                pb.PolicyViolationAnalysisDecisionChangeSubject
                if "policyViolation" in subject
                else pb.VulnerabilityAnalysisDecisionChangeSubject
            )
        assert kind is not None, f"no subject type known for {group}"
        message.subject.Pack(json_format.ParseDict(subject, kind(), ignore_unknown_fields=True))
    return message.SerializeToString()
