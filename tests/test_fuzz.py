"""R4: fuzz. Generated webhook bodies against a running receiver (a real `dtrack-worker receiver`
process), and generated or mutated FPF documents against the core: no crash, no HTTP 500,
every bad input a 4xx with a reason, and nothing logged at error level while it lasts.

Each test stands alone: it counts its own outcomes, checks the receiver's log for the lines its own
requests produced, and prints its own figures."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rabbit import temporary_topology, unique_prefix
from tests.test_validation import NOTIFICATION_DOCS, SMALL_FPF, json_values, mutated
from tests.waiting import until_sync
from worker.adapters import schemas
from worker.core import fpf
from worker.core.errors import InvalidExport

SCALE = float(os.environ.get("DTRACK_WORKER_SOAK_SCALE", "1"))
TOKEN = "fuzz-token"
CONTRACT = schemas.load().fpf


class FuzzedReceiver:
    """A `dtrack-worker receiver` process on loopback, its log (JSON lines) in a file."""

    def __init__(self, port: int, log: Path) -> None:
        self.port, self.log = port, log

    def position(self) -> int:
        """Where the log ends now: what a test logs comes after it."""
        return self.log.stat().st_size

    def logged_since(self, position: int) -> str:
        """The lines the receiver logged from ``position`` until now, every request answered
        before this call included: a request of our own, with a correlation id of our own, is
        answered and its line waited for (the receiver writes lines in order)."""
        marker = f"fuzz-end-{uuid.uuid4().hex}"
        status, _ = _request(self.port, "POST", "/webhook", b"{}", correlation_id=marker)
        assert status == 400, status

        def logged() -> str:
            with self.log.open("rb") as log:
                log.seek(position)
                return log.read().decode("utf-8", "replace")

        return until_sync(
            logged,
            lambda text: marker in text,
            what=f"the receiver's log line of request {marker}",
            within=15,
        )

    def assert_logged_no_error(self, position: int, *, requests: int) -> None:
        """No error since ``position``, in a log that shows at least ``requests`` requests (an
        empty log proves nothing)."""
        logged = self.logged_since(position)
        assert "Traceback" not in logged, logged[-3000:]
        assert '"level":"error"' not in logged.replace(" ", ""), logged[-3000:]
        assert "never retrieved" not in logged, logged[-3000:]
        lines = logged.count('"event":"http.request"')
        assert lines > requests, f"{lines} request lines logged for {requests} requests and ours"


@pytest.fixture(scope="module")
def receiver(rabbitmq: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzedReceiver]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    prefix = unique_prefix()
    script = shutil.which("dtrack-worker", path=str(Path(sys.executable).parent))
    assert script
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DTRACK_WORKER_PREFIX": prefix,
        "DTRACK_WORKER_AMQP_URL": rabbitmq,
        "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
        "DTRACK_WORKER_LISTEN": f"127.0.0.1:{port}",
        "DTRACK_WORKER_MAX_BODY": "64KiB",
        "DTRACK_WORKER_BODY_TIMEOUT": "1",
        # a line per request: the tests find the end of their own requests' lines by one
        "DTRACK_WORKER_LOG_LEVEL": "INFO",
    }
    log = tmp_path_factory.mktemp("fuzzed-receiver") / "receiver.log"
    with log.open("wb") as out:
        process = subprocess.Popen([script, "receiver"], env=env, stdout=out, stderr=out)
    try:

        def ready() -> int:
            if process.poll() is not None:
                raise AssertionError(f"the receiver exited: {log.read_text()[-3000:]}")
            return _request(port, "GET", "/readyz")[0]

        until_sync(
            ready,
            lambda status: status == 200,
            what=f"the fuzzed receiver answering /readyz on port {port}",
            within=30,
            errors=(OSError, http.client.HTTPException),
        )
        yield FuzzedReceiver(port, log)
    finally:
        process.terminate()
        process.wait(timeout=20)

        async def clean() -> None:
            async with temporary_topology(prefix):
                pass

        asyncio.run(clean())


def _request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    correlation_id: str | None = None,
) -> tuple[int, bytes]:
    headers = {"X-Api-Key": TOKEN}
    if correlation_id is not None:
        headers["X-Correlation-Id"] = correlation_id
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


groups = st.sampled_from(
    [
        "BOM_PROCESSED",
        "GROUP_BOM_PROCESSED",
        "NEW_VULNERABILITY",
        "GROUP_NEW_VULNERABILITY",
        "PROJECT_AUDIT_CHANGE",
        "NEW_VULNERABILITIES_SUMMARY",
        "DATASOURCE_MIRRORING",
        "X_UNKNOWN",
        "bom_processed",
        "",
    ]
)
envelopes = st.fixed_dictionaries(
    {
        "notification": st.fixed_dictionaries(
            {
                "group": groups,
                "scope": st.sampled_from(["PORTFOLIO", "SCOPE_PORTFOLIO", "SYSTEM", "nope"]),
                "level": st.sampled_from(["INFORMATIONAL", "LEVEL_ERROR", "x"]),
            },
            optional={"subject": json_values, "id": st.text(max_size=40), "timestamp": st.text()},
        )
    }
)
bodies = st.one_of(
    json_values.map(orjson.dumps),
    mutated(NOTIFICATION_DOCS).map(orjson.dumps),
    envelopes.map(orjson.dumps),
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda text: text.encode("latin-1", "replace")),
    st.integers(65 * 1024, 70 * 1024).map(lambda size: b" " * size),  # over the limit
)


def test_r4_generated_webhook_bodies_never_crash_the_receiver(receiver, figures):
    statuses: Counter[int] = Counter()
    since = receiver.position()

    @settings(
        max_examples=int(1500 * SCALE),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=bodies)
    def post(body: bytes) -> None:
        status, raw = _request(receiver.port, "POST", "/webhook", body)
        answer = orjson.loads(raw)
        statuses[status] += 1
        assert status in (200, 202, 400, 413), (status, answer)
        assert answer["status"] in ("enqueued", "ignored", "invalid", "error", "too_large")
        if status >= 400:
            assert answer.get("message"), answer  # a reason, always
        if status == 200:
            assert answer["reason"]

    post()
    receiver.assert_logged_no_error(since, requests=statuses.total())
    figures(
        f"R4 webhook bodies={statuses.total()} "
        + " ".join(f"http{status}={n}" for status, n in sorted(statuses.items()))
        + " http500=0 crashes=0, no error logged"
    )


def test_r4_generated_exports_never_crash_the_core(figures):
    outcomes: Counter[str] = Counter()

    @settings(
        max_examples=int(1000 * SCALE),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(document=st.one_of(mutated(SMALL_FPF), json_values))
    def process(document: object) -> None:
        raw = orjson.dumps(document)
        problems: tuple[object, ...] | None = None
        try:
            export = fpf.process(raw, CONTRACT)
            outcomes["events"] += sum(1 for _ in export.events())
        except InvalidExport as exc:
            problems = exc.problems
        if problems is None:
            outcomes["normalized"] += 1
        else:
            assert problems, "every refusal names its problems"
            outcomes["refused with a report"] += 1

    process()
    normalized, refused = outcomes["normalized"], outcomes["refused with a report"]
    assert normalized + refused >= 1
    figures(
        f"R4 exports={normalized + refused} normalized={normalized} refused={refused} crashes=0"
    )


# -- headers, encodings and slow clients, as raw bytes on a socket ------------------------------

ANY_STATUS = (200, 202, 400, 401, 408, 413, 415)
token_values = st.one_of(
    st.just(TOKEN.encode()),
    st.binary(max_size=40).filter(lambda raw: b"\r" not in raw and b"\n" not in raw),
    st.text(max_size=20).map(lambda text: text.encode("latin-1", "replace")),
)
encodings = st.sampled_from(
    [None, b"gzip", b"deflate", b"identity", b"br", b"zstd", b"gzip, gzip", b"GZIP", b"x-\xff"]
)
raw_bodies = st.one_of(
    st.binary(max_size=200),
    bodies.filter(lambda body: len(body) < 4096).map(gzip.compress),
    st.binary(max_size=100).map(lambda junk: b"\x1f\x8b\x08\x00" + junk),  # gzip's magic, then junk
)


def _raw_request(
    port: int, headers: list[bytes], body: bytes, *, length: int | None = None
) -> bytes:
    head = [b"POST /webhook HTTP/1.1", b"Host: fuzz", b"Connection: close", *headers]
    head.append(b"Content-Length: " + str(len(body) if length is None else length).encode())
    with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
        connection.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_r4_generated_headers_and_encodings_get_json_4xx_never_500(receiver, figures):
    statuses: Counter[int] = Counter()
    since = receiver.position()

    @settings(
        max_examples=int(400 * SCALE),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(token=token_values, encoding=encodings, body=raw_bodies)
    def send(token: bytes, encoding: bytes | None, body: bytes) -> None:
        headers = [b"X-Api-Key: " + token]
        if encoding is not None:
            headers.append(b"Content-Encoding: " + encoding)
        answer = _raw_request(receiver.port, headers, body)
        head, _, payload = answer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        statuses[status] += 1
        assert status in ANY_STATUS, answer[:300]
        document = orjson.loads(payload)
        assert document["status"], document
        if status >= 400:
            assert document.get("message"), document

    send()
    # requests with bytes HTTP forbids in a header are refused by aiohttp's parser before the
    # application, without a line: only the webhook's own answers are counted
    receiver.assert_logged_no_error(since, requests=statuses.total() - statuses[400])
    figures(
        f"R4 raw requests={statuses.total()} "
        + " ".join(f"http{status}={n}" for status, n in sorted(statuses.items()))
        + ", no error logged"
    )


def test_r4_slow_and_vanishing_clients_leave_the_receiver_well(receiver, figures):
    """Clients that send half a body and stall, or hang up, get 408 or nothing, never harm."""
    since = receiver.position()
    head = [b"X-Api-Key: " + TOKEN.encode()]
    stalled: list[bytes] = []
    count = int(40 * SCALE)

    def stall() -> None:
        stalled.append(_raw_request(receiver.port, head, b'{"noti', length=500))

    def vanish() -> None:
        with socket.create_connection(("127.0.0.1", receiver.port)) as connection:
            connection.sendall(
                b"POST /webhook HTTP/1.1\r\nHost: fuzz\r\nX-Api-Key: "
                + TOKEN.encode()
                + b"\r\nContent-Length: 500\r\n\r\n{"
            )

    threads = [threading.Thread(target=stall) for _ in range(count)]
    threads += [threading.Thread(target=vanish) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(stalled) == count
    assert {answer.split(b" ", 2)[1] for answer in stalled} == {b"408"}
    assert _request(receiver.port, "GET", "/readyz")[0] == 200
    receiver.assert_logged_no_error(since, requests=2 * count)
    figures(
        f"R4 slow clients: stalled={len(stalled)} (all 408) vanished={count}, "
        "receiver ready after, no error logged"
    )
