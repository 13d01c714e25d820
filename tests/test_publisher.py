"""The lean publisher against the real RabbitMQ: hand-made frames equal pamqp's, batches are
confirmed in order, and a return, a nack or a closing channel fails the wait instead of
hanging it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import aiormq
import pytest
from pamqp import body as pamqp_body
from pamqp import commands, frame, header

from tests.harness import REAL, post
from tests.rabbit import AMQP_URL, eventually
from worker.adapters import frames, publisher

PROPERTY_SETS = [
    frames.Properties("application/cloudevents+json", "id-1", "dtrack-worker.finding.v1"),
    frames.Properties("application/json", "j" * 200, "t", correlation_id="corr-ü"),
    frames.Properties("a", "b", "c", correlation_id="d", headers={"traceparent": "00-ab-cd-01"}),
    frames.Properties("a", "b", "c", headers={"traceparent": "00-ab-cd-01"}),  # not the template
]


def _reference(channel: int, body: bytes, properties: frames.Properties, frame_max: int) -> bytes:
    pamqp_properties = commands.Basic.Properties(
        content_type=properties.content_type,
        headers=dict(properties.headers) if properties.headers else None,
        delivery_mode=2,
        correlation_id=properties.correlation_id,
        message_id=properties.message_id,
        message_type=properties.type,
    )
    room = frame_max - 8
    chunks = [body[i : i + room] for i in range(0, len(body), room)]
    return b"".join(
        [
            frame.marshal(commands.Basic.Publish(exchange="x", routing_key="k", mandatory=True), 7),
            frame.marshal(header.ContentHeader(0, len(body), pamqp_properties), channel),
            *(frame.marshal(pamqp_body.ContentBody(chunk), channel) for chunk in chunks),
        ]
    )


@pytest.mark.parametrize("properties", PROPERTY_SETS)
@pytest.mark.parametrize("size", [0, 1, 4088, 4089, 10_000])
def test_frames_are_pamqps_bytes(properties: frames.Properties, size: int) -> None:
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    encoded = b"".join(frames.message_parts(7, "x", "k", body, properties, frame_max=4096))
    assert encoded == _reference(7, body, properties, 4096)


def test_a_short_string_over_255_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="over 255 bytes"):
        frames.message_parts(1, "x", "k" * 256, b"", PROPERTY_SETS[0], frame_max=4096)


@pytest.fixture
async def amqp(rabbitmq: str) -> AsyncIterator[tuple[aiormq.Channel, str, str]]:
    """A confirming aiormq channel, a direct exchange and a queue bound with key ``k``."""
    name = f"test-publisher-{uuid.uuid4().hex[:10]}"
    connection = await aio_pika.connect(rabbitmq)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.DIRECT)
        queue = await channel.declare_queue(
            name, arguments={"x-max-length": 5000, "x-overflow": "reject-publish"}
        )
        await queue.bind(exchange, "k")
        raw = await channel.get_underlay_channel()
        assert isinstance(raw, aiormq.Channel)
        yield raw, name, name
        cleanup = await connection.channel()
        await cleanup.queue_delete(name)
        await cleanup.exchange_delete(name)
    finally:
        await connection.close()


def _messages(exchange: str, count: int, key: str = "k") -> list[publisher.Outgoing]:
    return [
        (exchange, key, b'{"n": %d}' % n, frames.Properties("application/json", f"m-{n}", "t"))
        for n in range(count)
    ]


async def _taken(queue_name: str, count: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=False)
        taken = []
        for _ in range(count):
            message = await queue.get(timeout=5)
            assert message is not None
            await message.ack()
            taken.append(message)
        assert await queue.get(fail=False) is None
        return taken


async def test_a_batch_is_confirmed_and_arrives_in_order(
    amqp: tuple[aiormq.Channel, str, str],
) -> None:
    channel, exchange, queue = amqp
    async with asyncio.timeout(20):
        await publisher.publish(channel, _messages(exchange, 3000))
    taken = await _taken(queue, 3000)
    assert [m.body for m in taken] == [b'{"n": %d}' % n for n in range(3000)]
    first = taken[0]
    assert (first.message_id, first.type, first.content_type) == ("m-0", "t", "application/json")
    assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert channel.confirmations == {}  # nothing left behind in aiormq's table
    assert channel.message_id_delivery_tag == {}


async def test_an_unroutable_message_fails_its_batch(amqp: tuple[aiormq.Channel, str, str]) -> None:
    channel, exchange, _ = amqp
    messages = [*_messages(exchange, 3), *_messages(exchange, 1, key="nowhere")]
    with pytest.raises(aiormq.exceptions.PublishError):
        async with asyncio.timeout(10):
            await publisher.publish(channel, messages)
    async with asyncio.timeout(10):  # the channel goes on
        await publisher.publish(channel, _messages(exchange, 2))


async def test_a_nack_fails_its_batch(amqp: tuple[aiormq.Channel, str, str]) -> None:
    channel, exchange, _ = amqp
    # the queue takes 5000 and rejects the rest (x-overflow reject-publish): RabbitMQ nacks
    with pytest.raises(aiormq.exceptions.DeliveryError):
        async with asyncio.timeout(20):
            await publisher.publish(channel, _messages(exchange, 5001))


async def test_a_channel_closed_by_the_broker_fails_the_wait(
    amqp: tuple[aiormq.Channel, str, str],
) -> None:
    channel, _, _ = amqp
    # a missing exchange: RabbitMQ closes the channel (404) and the confirms never come
    with pytest.raises(aiormq.exceptions.AMQPError):
        async with asyncio.timeout(10):
            await publisher.publish(channel, _messages("no-such-exchange-" + uuid.uuid4().hex, 10))
    assert channel.is_closed


async def test_group_commit_shares_writes_and_fails_only_the_request_at_fault(
    amqp: tuple[aiormq.Channel, str, str],
) -> None:
    channel, exchange, queue = amqp
    group = publisher.GroupCommit(10.0)
    requests = [
        group.publish(
            channel,
            [(exchange, "k", b"%d" % n, frames.Properties("application/json", f"r-{n}", "t"))],
        )
        for n in range(500)
    ]
    requests.append(group.publish(channel, _messages(exchange, 1, key="nowhere")))
    async with asyncio.timeout(20):
        outcomes = await asyncio.gather(*requests, return_exceptions=True)
    assert outcomes[:500] == [None] * 500
    assert isinstance(outcomes[500], aiormq.exceptions.PublishError)
    assert 1 <= group.writes < 50  # 501 requests went out in a few shared writes
    assert sorted(int(m.body) for m in await _taken(queue, 500)) == list(range(500))
    await group.close()


async def test_group_commit_fails_waiting_requests_when_the_channel_closes(
    amqp: tuple[aiormq.Channel, str, str],
) -> None:
    channel, exchange, _ = amqp
    group = publisher.GroupCommit(10.0)
    await channel.close()
    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        async with asyncio.timeout(5):
            await group.publish(channel, _messages(exchange, 1))
    await group.close()


async def test_a_message_that_cannot_be_encoded_leaves_nothing_behind(
    amqp: tuple[aiormq.Channel, str, str],
) -> None:
    channel, exchange, queue = amqp
    tag = channel.delivery_tag
    with pytest.raises(ValueError, match="over 255 bytes"):
        await publisher.publish(
            channel, [*_messages(exchange, 2), *_messages(exchange, 1, "k" * 300)]
        )
    assert (channel.delivery_tag, channel.confirmations, channel.message_id_delivery_tag) == (
        tag,
        {},
        {},
    )
    async with asyncio.timeout(10):  # the channel goes on, its tags in step with the broker's
        await publisher.publish(channel, _messages(exchange, 3))
    assert [m.body for m in await _taken(queue, 3)] == [b'{"n": %d}' % n for n in range(3)]


# -- the fence around aiormq's private state (issue 25 part 3) -------------------------------


async def test_aiormq_private_state_is_what_the_lean_publisher_writes_into(
    amqp: tuple[aiormq.Channel, str, str],
) -> None:
    channel, _, _ = amqp
    # an upgrade of aiormq that changes any of these fails here, naming it
    assert publisher.incompatibilities(channel) == []


async def test_the_fence_names_what_changed(amqp: tuple[aiormq.Channel, str, str]) -> None:
    channel, _, _ = amqp
    queue, table = channel.write_queue, channel.confirmations
    try:
        del channel.write_queue
        channel.confirmations = []  # type: ignore[assignment]
        assert publisher.incompatibilities(channel) == [
            "aiormq.Channel.confirmations is a list, not a dict",
            "aiormq.Channel.write_queue is missing",
        ]
    finally:
        channel.write_queue, channel.confirmations = queue, table


def test_a_frame_max_of_zero_means_no_limit() -> None:
    body = b"x" * 300_000
    parts = frames.message_parts(7, "x", "k", body, PROPERTY_SETS[0], frame_max=0)
    assert b"".join(parts) == _reference(7, body, PROPERTY_SETS[0], len(body) + 8)


def test_a_frame_max_below_amqps_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="frame_max 512 is below AMQP's minimum of 4096"):
        frames.message_parts(7, "x", "k", b"body", PROPERTY_SETS[0], frame_max=512)


def _lean_path_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refused(*_: object, **__: object) -> list[asyncio.Future[None]]:
        raise AssertionError("the lean publisher was used")

    monkeypatch.setattr(publisher, "write", refused)


@pytest.mark.parametrize("how", ["setting", "fence"])
async def test_the_aio_pika_fallback_publishes_jobs_and_events_end_to_end(
    serve, dt, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    _lean_path_broken(monkeypatch)  # whatever goes out, goes out through aio-pika
    if how == "fence":  # aiormq changed under us: the broker notices at connect
        monkeypatch.setattr(publisher, "incompatibilities", lambda _: ["aiormq changed"])
        client, _, events, _ = await serve()
    else:
        client, _, events, _ = await serve(publisher="aio-pika")
    project = str(uuid.uuid4())
    dt.exports[project] = REAL
    (job,) = (await post(client, project))["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries())
    findings = [m for m in events.messages if (m.routing_key or "").startswith("finding.")]
    assert len(findings) == 13  # each confirmed through aio-pika
    assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in findings)
    assert len(events.summaries()) == 1
