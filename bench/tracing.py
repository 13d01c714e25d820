"""What tracing costs a request and a job when it is off (no exporter), and when it is on.

Times the tracing calls a webhook request and a job make (their spans, the trace headers, the
log processor), in a loop, with tracing off and then on with the SDK's in-memory exporter.
The end-to-end benchmarks (bench.receiver, bench.worker) show the rest: off, these calls are
far below their run-to-run noise.

    .venv/bin/python -m bench.tracing
"""

from __future__ import annotations

import argparse
import timeit

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from worker.adapters import tracing

EXCHANGE = "bench.jobs"
LINE = {"event": "http.request", "status": 202}


def request() -> None:
    """The receiver's calls per webhook (the server span is only made when on)."""
    with tracing.span(
        f"send {EXCHANGE}",
        kind=SpanKind.PRODUCER,
        attributes=tracing.publish_attributes(EXCHANGE, 1),
    ):
        tracing.inject()
        tracing.add_trace_ids(None, "info", dict(LINE))
    tracing.add_trace_ids(None, "info", dict(LINE))


def job() -> None:
    """A job's calls: its span, validation, two publish rounds, two log lines."""
    headers = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    with tracing.span("process", kind=SpanKind.CONSUMER, context=tracing.extract(headers)):
        tracing.annotate({"dtrack_worker.project.uuid": "p"})
        with tracing.span("validate and normalize"):
            pass
        for _ in range(2):
            with tracing.span(
                "publish", kind=SpanKind.PRODUCER, attributes=tracing.publish_attributes("e", 500)
            ):
                pass
        tracing.add_trace_ids(None, "info", dict(LINE))
        tracing.annotate({"dtrack_worker.job.outcome": "done"})
        tracing.add_trace_ids(None, "info", dict(LINE))


def per_call(function: object, number: int) -> float:
    return timeit.timeit(function, number=number) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=100_000)
    args = parser.parse_args()
    off = per_call(request, args.number), per_call(job, args.number)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        on = per_call(request, args.number // 10), per_call(job, args.number // 10)
    finally:
        tracing.shutdown()
    print("tracing calls      off µs   on µs (in-memory exporter)")
    print(f"per request      {off[0]:8.2f} {on[0]:7.1f}")
    print(f"per job          {off[1]:8.2f} {on[1]:7.1f}")


if __name__ == "__main__":
    main()
