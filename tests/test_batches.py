"""CloudEvents batches (DTRACK_WORKER_BATCH): packing is pure and keeps order; the worker and the
relay publish them on the real RabbitMQ, each event byte for byte what a single message holds."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aio_pika
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FPF, fixture_files
from tests.fake_dt import FakeDt
from tests.harness import REAL, post
from tests.rabbit import AMQP_URL, eventually, temporary_topology, unique_prefix
from worker.adapters import feed
from worker.adapters.amqp import declare_once
from worker.adapters.schemas import Contracts
from worker.core import batches, fpf, ocsf
from worker.core.config import Settings
from worker.core.events import CLOUDEVENTS_CONTENT_TYPE

KEYS = ["finding.high", "finding.low", "delta.opened.high", "delta.resolved.low", "export.summary"]


def _event(n: int, key: str, type_: str = "t.v1") -> batches.Serialized:
    body = orjson.dumps({"id": f"e{n}", "n": n, "text": "é\u2028"})
    return key, body, f"e{n}", type_


def test_one_per_message_is_todays_structured_events() -> None:
    events = [_event(n, "finding.high") for n in range(3)]
    assert batches.pack(events, 1) == [
        batches.Message(key, body, event_id, type_, CLOUDEVENTS_CONTENT_TYPE)
        for key, body, event_id, type_ in events
    ]


def test_batches_cut_at_the_size_and_at_a_new_family() -> None:
    keys = ["finding.high"] * 5 + ["finding.low", "export.summary", "finding.high"]
    messages = batches.pack([_event(n, key) for n, key in enumerate(keys)], 3)
    assert [len(orjson.loads(m.body)) for m in messages] == [3, 3, 1, 1]
    assert [m.routing_key for m in messages] == [
        "finding.high",
        "finding",  # finding.high, finding.high, finding.low
        "export.summary",
        "finding.high",
    ]
    assert {m.content_type for m in messages} == {batches.BATCH_CONTENT_TYPE}


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["delta.opened.high"], "delta.opened.high"),
        (["delta.opened.high", "delta.opened.low"], "delta.opened"),
        (["delta.opened.high", "delta.resolved.high"], "delta"),
        (["finding.high", "finding.high.x"], "finding.high"),
    ],
)
def test_the_routing_key_is_the_words_every_event_shares(keys: list[str], expected: str) -> None:
    assert batches.routing_key(keys) == expected


def test_a_batch_id_depends_on_its_events_only_and_its_type_on_theirs() -> None:
    events = [_event(n, "finding.high") for n in range(4)]
    (first,) = batches.pack(events, 10)
    (again,) = batches.pack(list(events), 10)
    (fewer,) = batches.pack(events[:3], 10)
    assert first.message_id == again.message_id != fewer.message_id
    assert str(uuid.UUID(first.message_id)) == first.message_id
    assert first.type == "t.v1"
    (mixed,) = batches.pack([*events, _event(9, "finding.low", "other.v1")], 10)
    assert mixed.type == batches.MIXED_TYPE


@given(
    st.lists(st.sampled_from(KEYS), max_size=60),
    st.integers(min_value=2, max_value=7),
)
def test_unpacking_every_batch_gives_back_every_event_in_order(keys: list[str], size: int) -> None:
    events = [_event(n, key) for n, key in enumerate(keys)]
    messages = batches.pack(events, size)
    unpacked = [body for message in messages for body in batches.unpack(message.body)]
    assert unpacked == [body for _, body, _, _ in events]
    key_of = {body: key for key, body, _, _ in events}  # every body differs (its n)
    for message in messages:
        member_keys = [key_of[body] for body in batches.unpack(message.body)]
        assert 1 <= len(member_keys) <= size
        assert len({key.split(".")[0] for key in member_keys}) == 1
        assert message.routing_key == batches.routing_key(member_keys)
        assert all(key.startswith(message.routing_key) for key in member_keys)


def test_unpack_refuses_what_is_not_an_array() -> None:
    with pytest.raises(ValueError, match="JSON array"):
        batches.unpack(b'{"id": "x"}')


def _unpacked(events: Any) -> list[tuple[str, bytes]]:
    """(the message's routing key, each event's bytes), batches opened."""
    found = []
    for message in events.messages:
        assert message.content_type == batches.BATCH_CONTENT_TYPE
        assert message.delivery_mode == 2
        found += [(message.routing_key, body) for body in batches.unpack(message.body)]
    return found


@pytest.mark.rabbitmq
async def test_the_worker_publishes_batches_of_the_very_same_events(
    serve, dt: FakeDt, contracts: Contracts
) -> None:
    client, _, events, _ = await serve(batch="7")
    expected: dict[str, bytes] = {}
    jobs = []
    for path in fixture_files(FPF / "real"):
        project = str(uuid.uuid4())
        dt.exports[project] = path.read_bytes()
        (job,) = (await post(client, project))["jobs"]
        jobs.append(job["job_id"])
        # the project as the fake DT describes it: no tags, active
        facts = fpf.ProjectFacts(tags=[], active=True)
        made = fpf.process(dt.exports[project], contracts.fpf, source=dt.url, facts=facts)
        expected |= {event.id: event.body for event in made.events()}

    def summaries() -> int:
        return sum(1 for key, _ in _unpacked(events) if key == "export.summary")

    await eventually(lambda: summaries() == len(jobs), within=30)
    published = _unpacked(events)
    findings = {orjson.loads(body)["id"]: (key, body) for key, body in published
                if key.startswith("finding")}  # fmt: skip
    assert {event_id: body for event_id, (_, body) in findings.items()} == expected
    for key, body in findings.values():
        event = orjson.loads(body)
        assert f"finding.{event['data']['vulnerability']['severity']}".startswith(key)
        assert contracts.finding_event.problems(event) == ()
    sizes = [len(orjson.loads(m.body)) for m in events.messages]
    assert max(sizes) == 7
    assert len(events.messages) < len(published)


@pytest.mark.rabbitmq
async def test_the_relay_publishes_the_change_stream_in_batches_in_sequence(
    serve, dt: FakeDt, state_url: str
) -> None:
    client, _, events, _ = await serve(emit="delta", state_url=state_url, batch="4")
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    (job,) = (await post(client, project))["jobs"]

    def summary() -> bool:
        return any(key == "export.summary" for key, _ in _unpacked(events))

    await eventually(summary, within=20)
    changes = [orjson.loads(body) for key, body in _unpacked(events) if key.startswith("delta")]
    assert [int(event["sequence"]) for event in changes] == list(range(1, 14))
    assert {event["data"]["change"]["kind"] for event in changes} == {"opened"}
    assert [len(orjson.loads(m.body)) for m in events.messages] == [4, 4, 4, 1, 1]
    assert (
        orjson.loads(batches.unpack(events.messages[-1].body)[0])["data"]["job"]["job_id"]
        == (job["job_id"])
    )


@pytest.mark.rabbitmq
@pytest.mark.parametrize("ocsf_batch", [False, True])
async def test_tail_prints_the_single_events_of_a_batch(ocsf_batch: bool) -> None:
    prefix = unique_prefix()
    async with temporary_topology(prefix) as topo:
        settings = Settings.from_env({"DTRACK_WORKER_PREFIX": prefix})
        await declare_once(settings.broker, topo)
        written: list[bytes] = []
        events = [_event(n, "finding.high") for n in range(5)]
        (batch,) = batches.pack(events[:3], 3)
        if ocsf_batch:  # DTRACK_WORKER_FORMAT=ocsf: a JSON array of OCSF findings
            events = [(key, body, event_id, ocsf.MESSAGE_TYPE) for key, body, event_id, _ in events]
            (batch,) = batches.pack(events[:3], 3)
            assert batch.content_type == ocsf.CONTENT_TYPE

        async def publish(until: asyncio.Task[int]) -> None:
            connection = await aio_pika.connect(AMQP_URL)
            async with connection:
                channel = await connection.channel()
                exchange = await channel.get_exchange(topo.events_exchange.name)
                while not until.done():  # until tail's queue is bound, and after
                    await exchange.publish(
                        aio_pika.Message(batch.body, content_type=batch.content_type),
                        batch.routing_key,
                    )
                    await asyncio.sleep(0.1)

        following = asyncio.create_task(
            feed.follow(settings, written.append, pattern="finding.#", count=4, seconds=20)
        )
        await publish(following)
        seen = await following
        assert seen == 4
        assert written == [body for _, body, _, _ in events[:3]] + [events[0][1]]  # count: 4
