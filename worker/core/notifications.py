"""Which projects a Dependency-Track webhook notification concerns. Pure: no I/O.

The table below is the one of ``dtrack-reference.md`` §1.2: where each group carries its project
UUID, in the v4 spelling (``NEW_VULNERABILITY``) and the v5 one (``GROUP_NEW_VULNERABILITY``).
A path is relative to ``notification.subject``: ``a.b`` walks objects, ``a[]`` every item of a
list, ``a[0]`` its first item; it ends at a UUID string.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

from worker.core.errors import InvalidNotification, Problem
from worker.core.validation import Contract, excerpt

Dialect = Literal["v4", "v5"]

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """Where a group names its projects; ``required``: DT always sends one, so none is an error."""

    paths: tuple[str, ...]
    required: bool


_PROJECT = Rule(("project.uuid",), required=True)
_SYSTEM = Rule((), required=False)
_SYSTEM_GROUPS = (
    "ANALYZER",
    "DATASOURCE_MIRRORING",
    "REPOSITORY",
    "INTEGRATION",
    "FILE_SYSTEM",
    "CONFIGURATION",
    "USER_CREATED",
    "USER_DELETED",
)

RULES: dict[Dialect, dict[str, Rule]] = {
    "v4": {
        "BOM_CONSUMED": _PROJECT,
        "BOM_PROCESSED": _PROJECT,
        "BOM_PROCESSING_FAILED": _PROJECT,
        "BOM_VALIDATION_FAILED": _PROJECT,
        "VEX_CONSUMED": _PROJECT,
        "VEX_PROCESSED": _PROJECT,
        "NEW_VULNERABLE_DEPENDENCY": _PROJECT,
        "POLICY_VIOLATION": _PROJECT,
        # every project with a component of the same identity; the key is omitted when empty
        "NEW_VULNERABILITY": Rule(("affectedProjects[].uuid",), required=False),
        # vulnerability analysis: affectedProjects[0] (and analysis.project); policy-violation
        # analysis: only violationAnalysis.project, which may be absent
        "PROJECT_AUDIT_CHANGE": Rule(
            ("affectedProjects[0].uuid", "analysis.project", "violationAnalysis.project"),
            required=False,
        ),
        "PROJECT_CREATED": Rule((), required=False),  # DT 4.x renders its subject as null
        "NEW_VULNERABILITIES_SUMMARY": Rule(
            ("summary.projectSummaries[].project.uuid", "details.findingsByProject[].project.uuid"),
            required=False,
        ),
        "NEW_POLICY_VIOLATIONS_SUMMARY": Rule(
            (
                "summary.projectSummaries[].project.uuid",
                "details.violationsByProject[].project.uuid",
            ),
            required=False,
        ),
        **dict.fromkeys((*_SYSTEM_GROUPS, "INDEXING_SERVICE"), _SYSTEM),
    },
    "v5": {
        "BOM_CONSUMED": _PROJECT,
        "BOM_PROCESSED": _PROJECT,
        "BOM_PROCESSING_FAILED": _PROJECT,
        "BOM_VALIDATION_FAILED": _PROJECT,
        "VEX_CONSUMED": _PROJECT,
        "VEX_PROCESSED": _PROJECT,
        "NEW_VULNERABLE_DEPENDENCY": _PROJECT,
        "POLICY_VIOLATION": _PROJECT,
        "VULNERABILITY_RETRACTED": _PROJECT,
        "PROJECT_VULN_ANALYSIS_COMPLETE": _PROJECT,  # Hyades pre-GA only
        # one notification per project; affectedProjects[] is a deprecated one-element copy
        "NEW_VULNERABILITY": Rule(("project.uuid", "affectedProjects[].uuid"), required=True),
        "PROJECT_AUDIT_CHANGE": Rule(("project.uuid", "analysis.project.uuid"), required=True),
        "PROJECT_CREATED": Rule(("uuid",), required=True),  # the subject is the Project
        "NEW_VULNERABILITIES_SUMMARY": Rule(
            ("projectSummaries[].project.uuid", "findingsByProject[].project.uuid"),
            required=False,
        ),
        "NEW_POLICY_VIOLATIONS_SUMMARY": Rule(
            ("projectSummaries[].project.uuid", "violationsByProject[].project.uuid"),
            required=False,
        ),
        **dict.fromkeys(_SYSTEM_GROUPS, _SYSTEM),
    },
}

# Paths read besides the projects: the finding a retraction names (Routing.retracted)
_RETRACTED = "VULNERABILITY_RETRACTED"
FINDING_PATHS = ("component.uuid", "vulnerability.uuid")
# Groups whose subject carries the BOM upload's token (DT 5: BomConsumedOrProcessedSubject)
TOKEN_GROUPS = frozenset({"BOM_CONSUMED", "BOM_PROCESSED"})
# DT 5's template renderer (PebbleNotificationTemplateRenderer.extractSubject, main 2026-08)
# knows neither subject type: its JSON carries "subject": null for these groups
_UNRENDERED = frozenset({"PROJECT_CREATED", _RETRACTED})


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectRef:
    uuid: str  # lower-case canonical form
    name: str | None
    version: str | None = None
    tags: tuple[str, ...] | None = None  # None: the notification does not say (DT 4 without)
    active: bool | None = None  # DT 5's isActive


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Routing:
    """What a notification is and which projects it concerns; ``reason`` says why there are none."""

    group: str  # without the v5 GROUP_ prefix
    dialect: Dialect
    scope: str  # PORTFOLIO or SYSTEM
    level: str  # INFORMATIONAL, WARNING or ERROR
    notification_id: str | None  # v5 only
    projects: tuple[ProjectRef, ...]
    reason: str | None = None
    # VULNERABILITY_RETRACTED: the finding key (project:component:vulnerability) it names
    retracted: str | None = None
    # BOM_CONSUMED / BOM_PROCESSED: the BOM upload's token, for the analysis gate
    token: str | None = None


def route(document: object, contract: Contract) -> Routing:
    """Check the envelope against ``contract`` and find the notification's projects."""
    contract.check(document, InvalidNotification, "webhook body")
    assert isinstance(document, dict)  # the contract requires an object
    notification: Mapping[str, Any] = document["notification"]
    dialect, group, scope, level = _spelling(notification)
    subject = notification.get("subject")
    return decide(
        dialect=dialect,
        group=group,
        scope=scope,
        level=level,
        notification_id=notification.get("id"),
        subject_missing=subject is None,
        projects_at=lambda paths: _projects(subject, paths),
        finding_of=lambda projects: _finding(subject, projects),
        token=upload_token(subject.get("token") if isinstance(subject, dict) else None),
    )


def upload_token(value: object) -> str | None:
    """A BOM upload's token as the analysis gate asks DT about it: a UUID (lower case), or
    None (none given, or not a UUID: never put in a URL)."""
    if isinstance(value, str) and _UUID.match(value):
        return value.lower()
    return None


def decide(
    *,
    dialect: Dialect,
    group: str,
    scope: str,
    level: str,
    notification_id: str | None,
    subject_missing: bool,
    projects_at: Callable[[tuple[str, ...]], tuple[ProjectRef, ...]],
    finding_of: Callable[[tuple[ProjectRef, ...]], str | None],
    token: str | None = None,
) -> Routing:
    """The routing of a notification, whichever form it came in: ``projects_at(paths)`` finds
    the projects at the rule's paths, ``finding_of(projects)`` a retraction's finding key."""
    projects: tuple[ProjectRef, ...] = ()
    reason: str | None = None
    rule = RULES[dialect].get(group)
    if rule is None:
        reason = f"unknown {dialect} notification group {group}"
    elif not rule.paths:
        why = "a system notification" if scope == "SYSTEM" else f"DT {dialect} names no project"
        reason = f"{group}: {why}"
    else:
        projects = projects_at(rule.paths)
        if not projects:
            places = ", ".join(f"subject.{path}" for path in rule.paths)
            if rule.required:
                hint = ""
                if subject_missing and dialect == "v5" and group in _UNRENDERED:
                    hint = (
                        "; DT 5's JSON template sends this group without its subject: "
                        "choose Protobuf in the alert (DT 5.1+)"
                    )
                raise InvalidNotification(
                    f"{group} notification names no project",
                    problems=(
                        Problem(
                            "/notification/subject", f"expected a project UUID at {places}{hint}"
                        ),
                    ),
                )
            reason = f"{group}: no project at {places}"
    # built once: a frozen dataclass costs a call per field, and this runs for every request
    return Routing(
        group=group,
        dialect=dialect,
        scope=scope,
        level=level,
        notification_id=notification_id,
        projects=projects,
        reason=reason,
        retracted=finding_of(projects) if group == _RETRACTED and projects else None,
        token=token if group in TOKEN_GROUPS and projects else None,
    )


def checked_uuid(value: object, pointer: str) -> str:
    """A project UUID as routing keeps it (lower case); InvalidNotification if it is none."""
    if not isinstance(value, str) or not _UUID.match(value):
        raise InvalidNotification(
            "notification names a project that is not a UUID",
            problems=(Problem(pointer, "expected a project UUID", excerpt(value)),),
        )
    return value.lower()


def finding_key(project: str, component: object, vulnerability: object) -> str | None:
    """FPF's matrix of a retracted finding; None when a part is not a UUID."""
    parts = [project]
    for value in (component, vulnerability):
        if not isinstance(value, str) or not _UUID.match(value):
            return None
        parts.append(value.lower())
    return ":".join(parts)


def _finding(subject: object, projects: tuple[ProjectRef, ...]) -> str | None:
    """The finding key of a retraction; None when the subject lacks a part."""
    if len(projects) != 1 or not isinstance(subject, dict):
        return None
    found = [
        [value for _, value, _ in _walk(subject, path.split("."), "")] for path in FINDING_PATHS
    ]
    if any(len(values) != 1 for values in found):
        return None
    return finding_key(projects[0].uuid, found[0][0], found[1][0])


def _spelling(notification: Mapping[str, Any]) -> tuple[Dialect, str, str, str]:
    """v4 or v5, and group, scope and level without their v5 prefixes."""
    raw_group: str = notification["group"]
    scope: str = notification["scope"]
    level: str = notification["level"]
    v5 = raw_group.startswith("GROUP_")
    if scope.startswith("SCOPE_") != v5 or level.startswith("LEVEL_") != v5:
        mixed = [
            key
            for key, prefix in (("scope", "SCOPE_"), ("level", "LEVEL_"))
            if notification[key].startswith(prefix) != v5
        ]
        raise InvalidNotification(
            "notification mixes DT 4.x and 5.x spellings",
            problems=tuple(
                Problem(
                    f"/notification/{key}",
                    f"spelled unlike group {raw_group}",
                    excerpt(notification[key]),
                )
                for key in mixed
            ),
        )
    if v5:
        return "v5", raw_group[6:], scope.removeprefix("SCOPE_"), level.removeprefix("LEVEL_")
    return "v4", raw_group, scope, level


def _projects(subject: object, paths: tuple[str, ...]) -> tuple[ProjectRef, ...]:
    found: dict[str, ProjectRef] = {}
    for path in paths:
        for pointer, value, holder in _walk(subject, path.split("."), "/notification/subject"):
            uuid = checked_uuid(value, pointer)
            if uuid not in found or found[uuid].name is None:
                found[uuid] = _project_ref(uuid, holder)
    return tuple(found.values())


def _project_ref(uuid: str, node: dict[str, Any] | None) -> ProjectRef:
    """The project object around a uuid: name, version and tags when it has them (DT 4 joins
    tags with commas in one string, DT 5 sends a list)."""
    if node is None:
        return ProjectRef(uuid, None)
    name, version, raw = node.get("name"), node.get("version"), node.get("tags")
    active = node.get("isActive", node.get("active"))
    tags: tuple[str, ...] | None = None
    if isinstance(raw, str):
        tags = tuple(sorted({tag.strip() for tag in raw.split(",") if tag.strip()}))
    elif isinstance(raw, list):
        tags = tuple(sorted({tag for tag in raw if isinstance(tag, str) and tag}))
    return ProjectRef(
        uuid,
        name if isinstance(name, str) else None,
        version if isinstance(version, str) else None,
        tags,
        active if isinstance(active, bool) else None,
    )


def _walk(
    node: object, steps: list[str], pointer: str
) -> Iterator[tuple[str, object, dict[str, Any] | None]]:
    """Values at the path, with their JSON Pointer and, for ``….uuid``, the object holding it."""
    if not steps:
        return
    step, rest = steps[0], steps[1:]
    if not isinstance(node, dict):
        return
    key, _, index = step.partition("[")
    if key not in node:
        return
    child = node[key]
    here = f"{pointer}/{key}"
    if not index:
        if rest:
            yield from _walk(child, rest, here)
        else:
            yield here, child, node if key == "uuid" else None
        return
    if not isinstance(child, list):
        return
    items = enumerate(child) if index == "]" else enumerate(child[:1])
    for position, item in items:
        yield from _walk(item, rest, f"{here}/{position}")
