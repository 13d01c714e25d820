"""DT 5's protobuf webhook body (``publishProtobuf``, DT 5.1+) as the JSON document DT's default
template would have rendered from the same message, as far as routing reads it. Pure.

DT's JSON form is the ``Notification`` envelope with the subject through protobuf's
``JsonFormat``: enum names (``GROUP_BOM_PROCESSED``), fields by their JSON names, empty and unset
fields left out. So the same ``notifications.route`` reads both forms, and a notification routes
the same whichever form it came in. Only what the routing rules read is converted: the envelope
and, along each rule's paths, the objects holding a ``uuid`` (a project's name, version, tags
and ``isActive`` come along); a large subject costs no more than its projects.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from worker.core.dtproto import notification_pb2 as pb
from worker.core.errors import InvalidProtobuf, Problem
from worker.core.notifications import RULES, paths_of

# DT's label (protobuf.dev/reference/protobuf/mime-types); the others are older spellings
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
# what routing reads of the object holding a uuid (notifications._project_ref)
_HOLDER_KEYS = ("uuid", "name", "version", "tags", "isActive")
_MAX_ID = 200  # the JSON contract's limit, so an id is never the reason the forms differ


def document(raw: bytes) -> dict[str, Any]:
    """The v5 JSON document of a protobuf ``Notification``; InvalidProtobuf when it is none."""
    try:
        message = pb.Notification.FromString(raw)
    except DecodeError as exc:
        raise _invalid("", f"protobuf could not decode it: {exc}") from None
    group = _enum_name(pb.Group, message.group, "group")
    notification: dict[str, Any] = {
        "id": _id(message.id),
        "level": _enum_name(pb.Level, message.level, "level"),
        "scope": _enum_name(pb.Scope, message.scope, "scope"),
        "group": group,
        "subject": None,
    }
    if message.HasField("subject"):
        notification["subject"] = _subject(message.subject, group.removeprefix("GROUP_"))
    return {"notification": notification}


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


def _enum_name(enum: Any, number: int, field: str) -> str:
    if number == 0:  # *_UNSPECIFIED: DT refuses to build such a notification
        raise _invalid(f"/notification/{field}", f"no {field}: DT sets one on every notification")
    try:
        return str(enum.Name(number))
    except ValueError:
        if field != "group":
            raise _invalid(f"/notification/{field}", f"unknown {field} {number}") from None
        return f"GROUP_UNKNOWN_{number}"  # a newer DT's group: ignored, as in JSON


def _subject(packed: Any, group: str) -> dict[str, Any] | None:
    kind = _SUBJECTS.get(packed.type_url.rpartition("/")[2])
    if kind is None:  # a subject type this schema does not know: as DT's template, none
        return None
    try:
        subject = kind.FromString(packed.value)
    except DecodeError as exc:
        problem = f"the {kind.__name__} does not decode: {exc}"
        raise _invalid("/notification/subject", problem) from None
    rule = RULES["v5"].get(group)
    if rule is None:
        return {}
    projected: dict[str, Any] = {}
    for path in paths_of(group, rule):
        _merge(projected, _along(subject, path.split(".")))
    return projected


def _along(message: Message, steps: list[str]) -> dict[str, Any]:
    """The part of ``message`` a routing path walks, in its JSON form."""
    if len(steps) == 1:  # the uuid: the object holding it
        return _holder(message)
    key, _, index = steps[0].partition("[")
    field = _fields(message.DESCRIPTOR).get(key)
    if field is None or field.message_type is None:
        return {}
    if field.is_repeated:
        items = getattr(message, field.name)
        chosen: Iterable[Message] = items if index == "]" else items[:1]
        walked = [_along(item, steps[1:]) for item in chosen]
        return {key: walked} if walked else {}
    if not message.HasField(field.name):
        return {}
    return {key: _along(getattr(message, field.name), steps[1:])}


def _holder(message: Message) -> dict[str, Any]:
    """uuid, name, version, tags and isActive as JsonFormat writes them: a field with presence
    when set, another when not its default, a list when not empty."""
    fields = _fields(message.DESCRIPTOR)
    found: dict[str, Any] = {}
    for key in _HOLDER_KEYS:
        field = fields.get(key)
        if field is None or field.message_type is not None:
            continue
        value = getattr(message, field.name)
        if field.is_repeated:
            if value:
                found[key] = list(value)
        elif message.HasField(field.name) if field.has_presence else value != field.default_value:
            found[key] = value
    return found


@functools.cache
def _fields(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    return {field.json_name: field for field in descriptor.fields}


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into.setdefault(key, value)
