"""DT's protobuf Notification routed as its JSON form. Pure."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from tests.dt5_notifications import documents, protobuf_of
from worker.core import notifications, protobuf_notifications
from worker.core.dtproto import notification_pb2 as pb
from worker.core.errors import InvalidNotification, InvalidProtobuf


def _route(raw: bytes, contracts=None) -> notifications.Routing:
    return protobuf_notifications.route(raw)


@pytest.mark.parametrize("name", sorted(documents()))
def test_each_form_of_a_notification_routes_the_same(name, contracts):
    document = documents()[name]
    from_json = notifications.route(orjson.loads(orjson.dumps(document)), contracts.notification)
    assert protobuf_notifications.route(protobuf_of(document)) == from_json


def _broken(name: str, change) -> dict[str, Any]:
    document = copy.deepcopy(documents()[name])
    change(document["notification"]["subject"])
    return document


@pytest.mark.parametrize(
    "document",
    [
        _broken("v5__dt-5.0.4-e2e__GROUP_BOM_PROCESSED", lambda s: s["project"].pop("uuid")),
        _broken("v5__dt-5.0.4-e2e__GROUP_BOM_PROCESSED", lambda s: s.pop("project")),
        _broken(
            "v5__dt-5.0.4-e2e__GROUP_BOM_PROCESSED",
            lambda s: s["project"].update(uuid="not-a-uuid"),
        ),
        _broken("built__PROJECT_CREATED", lambda s: s.update(uuid="1234")),
    ],
    ids=["no-uuid", "no-project", "not-a-uuid", "created-not-a-uuid"],
)
def test_each_form_of_a_broken_notification_is_refused_the_same(document, contracts):
    with pytest.raises(InvalidNotification) as as_json:
        notifications.route(orjson.loads(orjson.dumps(document)), contracts.notification)
    with pytest.raises(InvalidNotification) as as_protobuf:
        protobuf_notifications.route(protobuf_of(document))
    assert not isinstance(as_protobuf.value, InvalidProtobuf)
    assert as_protobuf.value.args == as_json.value.args
    assert [p.message for p in as_protobuf.value.problems] == [
        p.message for p in as_json.value.problems
    ]


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
    routing = protobuf_notifications.route(raw)
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
        protobuf_notifications.route(pb.Notification(**fields).SerializeToString())
    assert caught.value.problems[0].pointer == pointer


def test_a_subject_whose_bytes_do_not_decode_is_refused():
    message = pb.Notification(**_WHOLE)
    message.subject.type_url = "type.googleapis.com/org.dependencytrack.notification.v1.Project"
    message.subject.value = b"\x0a\xff"  # a string field longer than what follows
    with pytest.raises(InvalidProtobuf, match="protobuf notification") as caught:
        protobuf_notifications.route(message.SerializeToString())
    assert caught.value.problems[0].pointer == "/notification/subject"
