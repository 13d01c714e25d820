"""DT 5's protobuf webhook body (``publishProtobuf``, DT 5.1+) routed as its JSON form. Pure.

DT renders its JSON from the same ``Notification`` message: the envelope with enum names
(``GROUP_BOM_PROCESSED``), and the subject through protobuf's ``JsonFormat`` (fields by their
JSON names, empty and unset fields left out). Here the routing rules of ``notifications`` are
walked on the message itself, their JSON paths resolved to fields by JSON name once per group
and subject type, and the same ``notifications.decide`` makes the routing: same groups, same
projects with the same facts (a project's name, version, tags and activity as JsonFormat would
have written them), same reasons and errors. Only the fields on those paths are read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from worker.core.dtproto import notification_pb2 as pb
from worker.core.errors import InvalidProtobuf, Problem
from worker.core.notifications import (
    FINDING_PATHS,
    ProjectRef,
    Routing,
    checked_uuid,
    decide,
    finding_key,
    upload_token,
)

# DT's label (protobuf.dev/reference/protobuf/mime-types); the other is an older spelling
MEDIA_TYPES = frozenset({"application/protobuf", "application/x-protobuf"})
NOTIFICATION = pb.Notification.DESCRIPTOR.full_name
# every message DT packs as a subject, by the name its type URL ends with
_SUBJECTS: dict[str, type[Message]] = {
    kind.DESCRIPTOR.full_name: kind
    for kind in (
        pb.BomConsumedOrProcessedSubject,
        pb.BomProcessingFailedSubject,
        pb.BomValidationFailedSubject,
        pb.VexConsumedOrProcessedSubject,
        pb.NewVulnerabilitySubject,
        pb.NewVulnerableDependencySubject,
        pb.PolicyViolationSubject,
        pb.VulnerabilityAnalysisDecisionChangeSubject,
        pb.PolicyViolationAnalysisDecisionChangeSubject,
        pb.VulnerabilityRetractedSubject,
        pb.NewVulnerabilitiesSummarySubject,
        pb.NewPolicyViolationsSummarySubject,
        pb.UserSubject,
        pb.Project,  # PROJECT_CREATED
    )
}
_MAX_ID = 200  # the JSON contract's limit, so an id is never the reason the forms differ
_NAMES = {
    field: {value.number: value.name for value in enum.DESCRIPTOR.values}
    for field, enum in (("level", pb.Level), ("scope", pb.Scope), ("group", pb.Group))
}
_SUBJECT = "/notification/subject"

# a subject (or a part of it) -> the messages holding the uuid a routing path ends at
Walk = Callable[[Any], list[Any]]
Subject = tuple[str, Message]  # its type's full name, and the message


def route(raw: bytes) -> Routing:
    """The routing of a protobuf ``Notification``; InvalidProtobuf when the bytes are none,
    InvalidNotification when it names no project where DT always names one."""
    try:
        message = pb.Notification.FromString(raw)
    except DecodeError as exc:
        raise _invalid("", f"protobuf could not decode it: {exc}") from None
    group = _name("group", message.group)[6:]  # without GROUP_
    subject = _subject(message.subject) if message.HasField("subject") else None
    return decide(
        dialect="v5",
        group=group,
        scope=_name("scope", message.scope)[6:],  # without SCOPE_
        level=_name("level", message.level)[6:],  # without LEVEL_
        notification_id=_id(message.id),
        subject_missing=subject is None,
        projects_at=lambda paths: _projects(subject, paths),
        finding_of=lambda projects: _finding(subject, projects),
        token=_token(subject),
    )


def _token(subject: Subject | None) -> str | None:
    if subject is None or not isinstance(subject[1], pb.BomConsumedOrProcessedSubject):
        return None
    return upload_token(subject[1].token)


def _invalid(pointer: str, problem: str) -> InvalidProtobuf:
    return InvalidProtobuf(
        f"the body is not a Dependency-Track protobuf notification ({NOTIFICATION})",
        problems=(Problem(pointer, problem),),
    )


def _id(value: str) -> str:
    # DT sets a UUIDv7 on every notification; bytes that parse by chance seldom carry one
    if not value:
        raise _invalid("/notification/id", "no id: DT gives every notification one")
    if len(value) > _MAX_ID:
        raise _invalid("/notification/id", f"an id of {len(value)} characters")
    return value


def _name(field: str, number: int) -> str:
    name = _NAMES[field].get(number)
    if name is not None and number != 0:
        return name
    if number == 0:  # *_UNSPECIFIED: DT refuses to build such a notification
        raise _invalid(f"/notification/{field}", f"no {field}: DT sets one on every notification")
    if field != "group":
        raise _invalid(f"/notification/{field}", f"unknown {field} {number}")
    return f"GROUP_UNKNOWN_{number}"  # a newer DT's group: ignored, as in JSON


def _subject(packed: Any) -> Subject | None:
    name = packed.type_url.rpartition("/")[2]
    kind = _SUBJECTS.get(name)
    if kind is None:  # a subject type this schema does not know: as DT's template, none
        return None
    try:
        return name, kind.FromString(packed.value)
    except DecodeError as exc:
        raise _invalid(_SUBJECT, f"the {kind.__name__} does not decode: {exc}") from None


def _projects(subject: Subject | None, paths: tuple[str, ...]) -> tuple[ProjectRef, ...]:
    """notifications._projects on the message: the same order, the same de-duplication."""
    if subject is None:
        return ()
    kind, message = subject
    found: dict[str, ProjectRef] = {}
    for path in paths:
        for holder in _walk(kind, path)(message):
            if not holder.uuid:  # JsonFormat leaves an empty string out: no uuid there
                continue
            uuid = checked_uuid(holder.uuid, f"{_SUBJECT}/{path.replace('.', '/')}")
            if uuid not in found or found[uuid].name is None:
                found[uuid] = _project_ref(uuid, holder)
    return tuple(found.values())


def _project_ref(uuid: str, project: Any) -> ProjectRef:
    """What notifications._project_ref reads of the JSON form of a ``Project``."""
    tags = project.tags
    return ProjectRef(
        uuid,
        project.name or None,
        project.version if project.HasField("version") else None,
        tuple(sorted({tag for tag in tags if tag})) if tags else None,
        project.is_active if project.HasField("is_active") else None,
    )


def _finding(subject: Subject | None, projects: tuple[ProjectRef, ...]) -> str | None:
    if subject is None or len(projects) != 1:
        return None
    kind, message = subject
    parts = []
    for path in FINDING_PATHS:
        holders = _walk(kind, path)(message)
        if len(holders) != 1:
            return None
        parts.append(holders[0].uuid)
    return finding_key(projects[0].uuid, *parts)


@functools.cache
def _walk(subject: str, path: str) -> Walk:
    """One routing path (``a.b``, ``a[]``, ``a[0]``, ending at ``uuid``) as a function, made
    once per subject type and path."""
    return _compiled(_SUBJECTS[subject].DESCRIPTOR, tuple(path.split(".")))


def _compiled(descriptor: Any, steps: tuple[str, ...]) -> Walk:
    if len(steps) == 1:  # the uuid: yield the message holding it
        return _itself if steps[0] in _fields(descriptor) else _nothing
    key, _, index = steps[0].partition("[")
    field = _fields(descriptor).get(key)
    if field is None or field.message_type is None:
        return _nothing
    inner, attribute = _compiled(field.message_type, steps[1:]), field.name
    if field.is_repeated:
        every = index == "]"

        def items(message: Any) -> list[Any]:
            found = getattr(message, attribute)
            return [holder for item in (found if every else found[:1]) for holder in inner(item)]

        return items

    def child(message: Any) -> list[Any]:
        if not message.HasField(attribute):  # unset: JsonFormat leaves it out
            return []
        return inner(getattr(message, attribute))

    return child


def _itself(message: Any) -> list[Any]:
    return [message]


def _nothing(message: Any) -> list[Any]:
    return []


@functools.cache
def _fields(descriptor: Any) -> dict[str, FieldDescriptor]:
    return {field.json_name: field for field in descriptor.fields}
