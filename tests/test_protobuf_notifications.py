"""DT's protobuf Notification -> the JSON document routing reads. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dt5_notifications import documents, protobuf_of
from worker.core import notifications, protobuf_notifications
from worker.core.dtproto import notification_pb2 as pb
from worker.core.errors import InvalidProtobuf


def _route(raw: bytes, contracts) -> notifications.Routing:
    return notifications.route(protobuf_notifications.document(raw), contracts.notification)


def test_only_what_routing_reads_is_converted():
    raw = protobuf_of(documents()["v5__dt-5.0.4-e2e__GROUP_NEW_VULNERABILITY"])
    notification = protobuf_notifications.document(raw)["notification"]
    assert notification["group"] == "GROUP_NEW_VULNERABILITY"
    project = {
        "uuid": "7d1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
        "name": "foo",
        "version": "bar",
        "isActive": True,
    }  # no component, vulnerability, purl, ...
    assert notification["subject"] == {"project": project, "affectedProjects": [project]}


def test_a_retraction_in_protobuf_names_its_finding(contracts):
    raw = protobuf_of(documents()["built__VULNERABILITY_RETRACTED"])
    routing = _route(raw, contracts)
    assert routing.retracted == (
        "7d1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b:94f87321-a5d1-4c2f-b2fe-95165debebc6:"
        "bccec5d5-ec21-4958-b3e8-22a7a866a05a"
    )


def test_a_group_this_schema_does_not_know_is_ignored_as_in_json(contracts):
    fields: dict[str, Any] = {"id": "0190e0a4-0000-7000-8000-000000000001", "group": 99}
    raw = pb.Notification(
        level="LEVEL_WARNING", scope="SCOPE_PORTFOLIO", **fields
    ).SerializeToString()
    routing = _route(raw, contracts)
    assert routing.group == "UNKNOWN_99"
    assert routing.projects == ()
    assert routing.reason == "unknown v5 notification group UNKNOWN_99"


_WHOLE: dict[str, Any] = {"id": "x", "level": 1, "scope": 1, "group": 12}


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        (_WHOLE | {"id": ""}, "/notification/id"),
        (_WHOLE | {"group": 0}, "/notification/group"),
        (_WHOLE | {"level": 0}, "/notification/level"),
        (_WHOLE | {"scope": 7}, "/notification/scope"),
        (_WHOLE | {"id": "x" * 201}, "/notification/id"),
    ],
)
def test_what_dt_always_sets_must_be_there(fields, pointer):
    with pytest.raises(InvalidProtobuf) as caught:
        protobuf_notifications.document(pb.Notification(**fields).SerializeToString())
    assert caught.value.problems[0].pointer == pointer


def test_a_subject_whose_bytes_do_not_decode_is_refused():
    message = pb.Notification(**_WHOLE)
    message.subject.type_url = "type.googleapis.com/org.dependencytrack.notification.v1.Project"
    message.subject.value = b"\x0a\xff"  # a string field longer than what follows
    with pytest.raises(InvalidProtobuf, match="protobuf notification") as caught:
        protobuf_notifications.document(message.SerializeToString())
    assert caught.value.problems[0].pointer == "/notification/subject"
