"""Traces end to end, with the SDK's in-memory exporter: one webhook is one trace, from the
request span to the last publish, through the job queue and its retry tier; log lines inside a
span name it; with tracing off nothing is traced and no message carries a trace."""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.fake_dt import FakeDt, Fault
from tests.harness import REAL, TOKEN, _project, notification
from tests.rabbit import drain, eventually
from tests.test_operations import _env, _portfolio, cli
from worker.adapters import logs, tracing
from worker.core.errors import ConfigError

pytestmark = pytest.mark.rabbitmq

INCOMING_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_SPAN = "00f067aa0ba902b7"


class Open(SpanProcessor):
    """Spans started and not yet ended: a trace must leave none open."""

    def __init__(self) -> None:
        self.started: set[int] = set()
        self.ended: set[int] = set()
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        with self._lock:
            self.started.add(span.context.span_id)

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.ended.add(span.context.span_id)

    def still_open(self) -> set[int]:
        with self._lock:
            return self.started - self.ended


class Traces:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.open = Open()

    @property
    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [span for span in self.spans if span.name.startswith(prefix)]

    def one(self, prefix: str) -> ReadableSpan:
        (span,) = self.named(prefix)
        return span


@pytest.fixture
def traces() -> Iterator[Traces]:
    """Tracing on, into memory, for the services the test starts after it."""
    found = Traces()
    provider = TracerProvider()
    provider.add_span_processor(found.open)
    provider.add_span_processor(SimpleSpanProcessor(found.exporter))
    tracing.install(provider)
    try:
        yield found
    finally:
        tracing.shutdown()


def _parent(span: ReadableSpan) -> int | None:
    return None if span.parent is None else int(span.parent.span_id)


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def _trace(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def _url(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    return str(attributes.get("url.full") or attributes.get("http.url") or "")


@pytest.fixture
def log_lines() -> Iterator[io.BytesIO]:
    """The service's JSON log lines, as production writes them (the processors included)."""
    saved = structlog.get_config()
    handlers = logging.getLogger().handlers[:]
    level = logging.getLogger().level
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, write_through=True)
    logs.configure("INFO", json=True, stream=stream)
    structlog.configure(cache_logger_on_first_use=False)  # no logger keeps this stream
    try:
        yield raw
    finally:
        stream.detach()
        structlog.configure(**saved)
        logging.getLogger().handlers[:] = handlers
        logging.getLogger().setLevel(level)


async def test_one_webhook_is_one_trace_from_the_request_to_the_last_publish(
    serve, dt: FakeDt, traces: Traces, log_lines: io.BytesIO
):
    client, topo, events, _ = await serve()
    project = _project()
    dt.exports[project] = REAL
    response = await client.post(
        "/webhook",
        data=notification(project),
        headers={"X-Api-Key": TOKEN, "traceparent": f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-01"},
    )
    assert response.status == 202
    (job,) = (await response.json())["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    await eventually(lambda: not traces.open.still_open(), within=5)

    request = traces.one("POST")
    assert request.kind == SpanKind.SERVER
    assert _parent(request) == int(INCOMING_SPAN, 16)  # the caller's traceparent was honoured
    send = traces.one(f"send {topo.jobs_exchange.name}")
    assert send.kind == SpanKind.PRODUCER
    assert _parent(send) == _id(request)
    process = traces.one(f"process {topo.jobs_queue.name}")
    assert process.kind == SpanKind.CONSUMER
    assert _parent(process) == _id(send)
    assert process.attributes is not None
    assert process.attributes["dtrack_worker.project.uuid"] == project
    assert process.attributes["dtrack_worker.job.outcome"] == "done"
    (fetch,) = [s for s in traces.spans if s.kind == SpanKind.CLIENT and "/export" in _url(s)]
    assert _parent(fetch) == _id(process)
    assert traces.one("validate and normalize").parent.span_id == _id(process)  # type: ignore[union-attr]
    publishes = traces.named(f"publish {topo.events_exchange.name}")
    # one span per round of confirms: the 13 findings together, then the summary
    assert [p.attributes["dtrack_worker.events"] for p in publishes] == [13, 1]  # type: ignore[index]
    assert all(_parent(p) == _id(process) for p in publishes)
    # every span in the trace, but the start-up checks' requests to DT (traces of their own)
    elsewhere = [span for span in traces.spans if _trace(span) != INCOMING_TRACE]
    assert {_url(span).split("/api/")[-1] for span in elsewhere} == {"version", "v1/team/self"}
    # DT was asked within the trace: the client span's context went along
    assert any(p and INCOMING_TRACE in p for p in dt.traceparents)

    lines = [orjson.loads(line) for line in log_lines.getvalue().splitlines()]
    (settled,) = [line for line in lines if line["event"] == "job.settled"]
    assert settled["trace_id"] == INCOMING_TRACE
    assert settled["span_id"] == format(_id(process), "016x")
    (received,) = [line for line in lines if line["event"] == "http.request"]
    assert received["trace_id"] == INCOMING_TRACE
    assert received["span_id"] == format(_id(request), "016x")
    assert await drain(topo.parked_queue.name) == []


async def test_a_retried_job_stays_in_the_trace_of_its_notification(
    serve, dt: FakeDt, traces: Traces
):
    client, topo, events, _ = await serve(dt_http_attempts="1", max_attempts="2")
    project = _project()
    dt.exports[project] = REAL
    dt.faults[project] = [Fault(503)]  # the first attempt fails, the retry tier sends it back
    response = await client.post(
        "/webhook", data=notification(project), headers={"X-Api-Key": TOKEN}
    )
    (job,) = (await response.json())["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    await eventually(lambda: not traces.open.still_open(), within=5)

    request = traces.one("POST")
    attempts = traces.named(f"process {topo.jobs_queue.name}")
    assert [a.attributes["dtrack_worker.job.attempt"] for a in attempts] == [1, 2]  # type: ignore[index]
    assert [a.attributes["dtrack_worker.job.outcome"] for a in attempts] == ["retried", "done"]  # type: ignore[index]
    send = traces.one(f"send {topo.jobs_exchange.name}")
    assert all(_parent(a) == _id(send) for a in attempts)
    assert _trace(send) == _trace(request)
    assert {_trace(a) for a in attempts} == {_trace(request)}


async def test_the_relay_publish_links_to_the_job_that_wrote_the_rows(
    serve, dt: FakeDt, traces: Traces, tmp_path: Path
):
    client, topo, events, _ = await serve(
        emit="delta", state_url=f"sqlite:///{tmp_path / 'state.db'}"
    )
    project = _project()
    dt.exports[project] = REAL
    response = await client.post(
        "/webhook", data=notification(project), headers={"X-Api-Key": TOKEN}
    )
    (job,) = (await response.json())["jobs"]
    await eventually(lambda: job["job_id"] in events.summaries(), within=20)
    await eventually(lambda: bool(traces.named("relay outbox")), within=5)
    await eventually(lambda: not traces.open.still_open(), within=5)

    transaction = traces.one("state transaction")
    assert _parent(transaction) == _id(traces.one(f"process {topo.jobs_queue.name}"))
    relays = traces.named("relay outbox")
    linked = {link.context.span_id for relay in relays for link in relay.links}
    assert linked == {_id(transaction)}
    for relay in relays:  # a trace of its own, which the publish continues
        assert relay.parent is None
        assert _trace(relay) != _trace(transaction)
        (publish,) = [p for p in traces.named("publish ") if _parent(p) == _id(relay)]
        assert _trace(publish) == _trace(relay)


async def test_with_tracing_off_no_span_is_made_and_no_job_carries_a_trace(serve, dt: FakeDt):
    assert not tracing.enabled()
    assert tracing.span("anything").__enter__() is None
    client, topo, _events, _ = await serve(work=False)
    project = _project()
    response = await client.post(
        "/webhook",
        data=notification(project),
        headers={"X-Api-Key": TOKEN, "traceparent": f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-01"},
    )
    assert response.status == 202
    (message,) = await drain(topo.jobs_queue.name)
    assert "traceparent" not in (message.headers or {})


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ["otlp", "console"]),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, []),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            ["otlp"],
        ),
    ],
)
def test_the_standard_variables_choose_the_exporters(environ, exporters):
    assert tracing.exporters_named(environ) == exporters


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "zipkin is not an exporter of dtrack-worker"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: dtrack-worker exports OTLP over http/protobuf",
        ),
    ],
)
def test_an_exporter_we_do_not_ship_is_a_clear_error(environ, message):
    with pytest.raises(ConfigError, match=message):
        tracing.exporters_named(environ)


def test_console_tracing_configures_and_shuts_down():
    assert tracing.configure({"OTEL_TRACES_EXPORTER": "none"}) is False
    assert tracing.configure({"OTEL_TRACES_EXPORTER": "console"}) is True
    try:
        assert tracing.enabled()
        with tracing.span("x") as span:
            assert span is not None
            assert tracing.traceparent() is not None
            assert tracing.inject()["traceparent"].startswith("00-")
    finally:
        tracing.shutdown()
    assert not tracing.enabled()
    assert tracing.inject() == {}


def test_trace_headers_of_a_message_carry_over_and_nothing_else():
    headers = {"traceparent": "00-x-y-01", "tracestate": "a=b", "x-attempt": 2}
    assert tracing.trace_headers(headers) == {"traceparent": "00-x-y-01", "tracestate": "a=b"}
    assert tracing.trace_headers(None) == {}


async def test_backfill_starts_a_trace_that_every_job_it_enqueues_carries(serve, dt: FakeDt):
    _, topo, _, settings = await serve(work=False)
    dt.projects = _portfolio(3)
    env = _env(settings.broker.prefix, dt) | {"OTEL_TRACES_EXPORTER": "console"}
    code, out, err = await cli("backfill", env=env)
    assert code == 0, err
    assert "backfill done: 3 jobs enqueued" in out  # the spans went to stderr, not here
    (root,) = re.findall(
        r'"name": "backfill",\s*"context": \{\s*"trace_id": "0x([0-9a-f]{32})"', err
    )
    queued = await drain(topo.jobs_queue.name)
    assert len(queued) == 3
    for message in queued:
        assert str((message.headers or {})["traceparent"]).split("-")[1] == root
