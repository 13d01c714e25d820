"""OpenTelemetry traces, set up by the standard OTEL_* variables, and free when off.

Tracing is on when OTEL_TRACES_EXPORTER names an exporter (``otlp``: OTLP over HTTP/protobuf;
``console``: spans as JSON on stderr), or when it is unset and an OTLP endpoint is set
(OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). The SDK reads the rest
itself: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG),
OTEL_EXPORTER_OTLP_*, OTEL_BSP_*.

Off, ``span()`` hands back one shared null context and ``inject()`` an empty carrier: a job or a
request pays a global lookup, not a span (not even a no-op one).
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, StatusCode
from structlog.typing import EventDict

from worker.core import urls
from worker.core.errors import ConfigError

if TYPE_CHECKING:  # the SDK and aiohttp load when tracing is on, not for every command
    from aiohttp import TraceConfig
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

SERVICE_NAME = "dtrack-worker"
TRACE_HEADERS = ("traceparent", "tracestate")  # W3C trace context, in AMQP headers too
EXPORTERS = ("otlp", "console", "none")
_OTLP_PROTOCOLS = ("http/protobuf", "")

_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None
_OFF: AbstractContextManager[None] = contextlib.nullcontext()


def exporters_named(environ: Mapping[str, str]) -> list[str]:
    """The exporters the environment asks for; [] means tracing off. ConfigError for a name
    or protocol this service does not ship."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    raw = environ.get("OTEL_TRACES_EXPORTER")
    if raw is None or not raw.strip():
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        return ["otlp"] if any(environ.get(name, "").strip() for name in endpoints) else []
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(names) - set(EXPORTERS))
    if unknown:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} is not an exporter of dtrack-worker; "
            "use otlp, console or none"
        )
    if "none" in names:
        return []
    if "otlp" in names:
        for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            protocol = environ.get(variable, "").strip().lower()
            if protocol not in _OTLP_PROTOCOLS:
                raise ConfigError(
                    f"{variable}: dtrack-worker exports OTLP over http/protobuf, not {protocol} "
                    "(point it at the collector's HTTP port, 4318)"
                )
            if protocol:
                break
    return list(dict.fromkeys(names))


def configure(environ: Mapping[str, str]) -> bool:
    """Tracing as the environment says, for this process; True when it is on."""
    names = exporters_named(environ)
    if not names:
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    install(provider)
    return True


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stderr)  # stdout is the logs' or a command's output
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def install(provider: TracerProvider) -> None:
    """Trace into ``provider`` (tests give one with an in-memory exporter)."""
    global _provider, _tracer
    _provider = provider
    _tracer = provider.get_tracer("dtrack_worker")


def shutdown() -> None:
    """Export what is buffered and turn tracing off."""
    global _provider, _tracer
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    return _tracer is not None


def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    context: Context | None = None,
    links: Sequence[Link] = (),
    attributes: Mapping[str, Any] | None = None,
) -> AbstractContextManager[Span | None]:
    """A span, current within the ``with``; nothing when tracing is off."""
    tracer = _tracer
    if tracer is None:
        return _OFF
    return _span(tracer, name, context=context, kind=kind, links=links, attributes=attributes)


@contextlib.contextmanager
def _span(tracer: trace.Tracer, name: str, **options: Any) -> Iterator[Span]:
    """A current span; an exception that leaves it is recorded as the SDK records one, its
    text without passwords (a driver's error may quote a URL)."""
    with tracer.start_as_current_span(
        name, record_exception=False, set_status_on_exception=False, **options
    ) as current:
        try:
            yield current
        except BaseException as exc:
            if current.is_recording():
                message = urls.redact(str(exc))
                current.record_exception(
                    exc,
                    attributes={
                        "exception.message": message,
                        "exception.stacktrace": urls.redact(
                            "".join(traceback.format_exception(exc))
                        ),
                    },
                )
                current.set_status(StatusCode.ERROR, f"{type(exc).__name__}: {message}")
            raise


def annotate(attributes: Mapping[str, Any]) -> None:
    """Attributes for the current span, when tracing is on."""
    if _tracer is not None:
        trace.get_current_span().set_attributes(attributes)


def publish_attributes(exchange: str, messages: int, **counts: int) -> dict[str, str | int]:
    """OpenTelemetry's messaging attributes of a publish to RabbitMQ ({} when off)."""
    if _tracer is None:
        return {}
    attributes: dict[str, str | int] = {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "send",
        "messaging.destination.name": exchange,
        "messaging.batch.message_count": messages,
    }
    attributes.update({f"dtrack_worker.{name}": count for name, count in counts.items()})
    return attributes


def inject() -> dict[str, str]:
    """The current trace context as message headers; {} when off or outside a span."""
    if _tracer is None:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract(headers: Mapping[str, Any] | None) -> Context | None:
    """The trace context a message carries (None when off or when it carries none)."""
    if _tracer is None or not headers or "traceparent" not in headers:
        return None
    carrier = {
        key: value.decode() if isinstance(value, bytes) else str(value)
        for key in TRACE_HEADERS
        if (value := headers.get(key)) is not None
    }
    return propagate.extract(carrier)


def trace_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """The trace headers of ``headers``, to carry over to a copy of the message."""
    if not headers:
        return {}
    return {key: headers[key] for key in TRACE_HEADERS if key in headers}


def traceparent() -> str | None:
    """The current span as a W3C traceparent (stored with outbox rows); None when off."""
    return inject().get("traceparent")


def links_to(traceparents: Iterable[str | None]) -> list[Link]:
    """Links to the spans named by ``traceparents`` (once each)."""
    if _tracer is None:
        return []
    links = []
    for value in dict.fromkeys(p for p in traceparents if p):
        context = trace.get_current_span(propagate.extract({"traceparent": value}))
        span_context = context.get_span_context()
        if span_context.is_valid:
            links.append(Link(span_context))
    return links


def add_trace_ids(_: object, __: str, event: EventDict) -> EventDict:
    """structlog: ``trace_id`` and ``span_id`` on every line written inside a span."""
    if _tracer is None:
        return event
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event


def server_middleware(path: str) -> Any:
    """A server span for each request to ``path`` (health checks and scrapes make no traces),
    continuing the caller's W3C ``traceparent``; None when tracing is off.

    Our own, not opentelemetry-instrumentation-aiohttp-server: its middleware works only after
    its instrumentor has replaced ``aiohttp.web.Application`` process-wide, which would trace
    every application of the process (every path of ours, any test server) and read its
    settings at that moment.
    """
    tracer = _tracer
    if tracer is None:
        return None
    from aiohttp import web

    @web.middleware
    async def middleware(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if request.path != path:
            return await handler(request)
        with _span(
            tracer,
            f"{request.method} {path}",
            context=propagate.extract(request.headers),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": request.method,
                "http.route": path,
                "url.path": request.path,
                "url.scheme": request.scheme,
                "network.peer.address": request.remote or "",
                "user_agent.original": request.headers.get("User-Agent", ""),
            },
        ) as current:
            response = await handler(request)
            current.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                current.set_status(StatusCode.ERROR)
            return response

    return middleware


def client_trace_configs() -> list[TraceConfig]:
    """The aiohttp client instrumentation (a client span per request to DT, traceparent sent
    along); [] when tracing is off."""
    if _provider is None:
        return []
    from opentelemetry.instrumentation.aiohttp_client import create_trace_config

    return [create_trace_config(tracer_provider=_provider)]
