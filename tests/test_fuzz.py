"""R4: fuzz. Generated webhook bodies against a running receiver (a real `dtrack-worker receiver`
process), and generated or mutated FPF documents against the core: no crash, no HTTP 500,
every bad input a 4xx with a reason."""

from __future__ import annotations

import gzip
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rabbit import AMQP_URL, unique_prefix
from tests.test_validation import NOTIFICATION_DOCS, SMALL_FPF, json_values, mutated
from worker.adapters import schemas
from worker.core import fpf
from worker.core.errors import InvalidExport

SCALE = float(os.environ.get("DTRACK_WORKER_SOAK_SCALE", "1"))
# the fuzzed receiver's log lines, read by the last test of the module
OUTPUT = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the module's receiver
TOKEN = "fuzz-token"
WEBHOOK_STATUSES: Counter[int] = Counter()
FPF_OUTCOMES: Counter[str] = Counter()
HEADER_STATUSES: Counter[int] = Counter()
SLOW_CLIENTS: Counter[str] = Counter()
CONTRACT = schemas.load().fpf


@pytest.fixture(scope="module")
def receiver_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    prefix = unique_prefix()
    script = shutil.which("dtrack-worker", path=str(Path(sys.executable).parent))
    assert script
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DTRACK_WORKER_PREFIX": prefix,
        "DTRACK_WORKER_AMQP_URL": AMQP_URL,
        "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
        "DTRACK_WORKER_LISTEN": f"127.0.0.1:{port}",
        "DTRACK_WORKER_MAX_BODY": "64KiB",
        "DTRACK_WORKER_BODY_TIMEOUT": "1",
        "DTRACK_WORKER_LOG_LEVEL": "WARNING",
    }
    with subprocess.Popen([script, "receiver"], env=env, stdout=OUTPUT) as process:
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if _request(port, "GET", "/readyz")[0] == 200:
                        break
                except OSError:
                    time.sleep(0.2)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=20)
            import asyncio

            from tests.rabbit import temporary_topology

            async def clean() -> None:
                async with temporary_topology(prefix):
                    pass

            asyncio.run(clean())


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers={"X-Api-Key": TOKEN})
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


@settings(
    max_examples=int(1500 * SCALE),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=bodies)
def test_r4_generated_webhook_bodies_never_crash_the_receiver(receiver_port, body):
    status, raw = _request(receiver_port, "POST", "/webhook", body)
    answer = orjson.loads(raw)
    WEBHOOK_STATUSES[status] += 1
    assert status in (200, 202, 400, 413), (status, answer)
    assert answer["status"] in ("enqueued", "ignored", "invalid", "error", "too_large")
    if status >= 400:
        assert answer.get("message"), answer  # a reason, always
    if status == 200:
        assert answer["reason"]


@settings(
    max_examples=int(1000 * SCALE),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(document=st.one_of(mutated(SMALL_FPF), json_values))
def test_r4_generated_exports_never_crash_the_core(document):
    raw = orjson.dumps(document)
    problems: tuple[object, ...] | None = None
    try:
        export = fpf.process(raw, CONTRACT)
        FPF_OUTCOMES["events"] += sum(1 for _ in export.events())
    except InvalidExport as exc:
        problems = exc.problems
    if problems is None:
        FPF_OUTCOMES["normalized"] += 1
    else:
        assert problems, "every refusal names its problems"
        FPF_OUTCOMES["refused with a report"] += 1


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


@settings(
    max_examples=int(400 * SCALE),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(token=token_values, encoding=encodings, body=raw_bodies)
def test_r4_generated_headers_and_encodings_get_json_4xx_never_500(
    receiver_port, token, encoding, body
):
    headers = [b"X-Api-Key: " + token]
    if encoding is not None:
        headers.append(b"Content-Encoding: " + encoding)
    answer = _raw_request(receiver_port, headers, body)
    head, _, payload = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    HEADER_STATUSES[status] += 1
    assert status in ANY_STATUS, answer[:300]
    document = orjson.loads(payload)
    assert document["status"], document
    if status >= 400:
        assert document.get("message"), document


def test_r4_slow_and_vanishing_clients_leave_the_receiver_well(receiver_port):
    """Clients that send half a body and stall, or hang up, get 408 or nothing, never harm."""
    head = [b"X-Api-Key: " + TOKEN.encode()]
    stalled: list[bytes] = []

    def stall() -> None:
        stalled.append(_raw_request(receiver_port, head, b'{"noti', length=500))

    def vanish() -> None:
        with socket.create_connection(("127.0.0.1", receiver_port)) as connection:
            connection.sendall(
                b"POST /webhook HTTP/1.1\r\nHost: fuzz\r\nX-Api-Key: "
                + TOKEN.encode()
                + b"\r\nContent-Length: 500\r\n\r\n{"
            )

    threads = [threading.Thread(target=stall) for _ in range(int(40 * SCALE))]
    threads += [threading.Thread(target=vanish) for _ in range(int(40 * SCALE))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(stalled) == int(40 * SCALE)
    assert {answer.split(b" ", 2)[1] for answer in stalled} == {b"408"}
    SLOW_CLIENTS.update(stalled=len(stalled), vanished=int(40 * SCALE))
    assert _request(receiver_port, "GET", "/readyz")[0] == 200


def test_r4_the_receiver_logged_no_error_and_no_traceback():
    OUTPUT.seek(0)
    logged = OUTPUT.read().decode("utf-8", "replace")
    assert "Traceback" not in logged
    assert '"level":"error"' not in logged.replace(" ", "")
    assert "never retrieved" not in logged


def test_r4_figures(figures):
    assert sum(WEBHOOK_STATUSES.values()) > 0
    assert sum(FPF_OUTCOMES.values()) > 0
    figures(
        "R4 webhook bodies="
        + str(sum(WEBHOOK_STATUSES.values()))
        + " "
        + " ".join(f"http{status}={n}" for status, n in sorted(WEBHOOK_STATUSES.items()))
        + " http500=0 crashes=0; exports="
        + str(FPF_OUTCOMES["normalized"] + FPF_OUTCOMES["refused with a report"])
        + f" normalized={FPF_OUTCOMES['normalized']}"
        + f" refused={FPF_OUTCOMES['refused with a report']} crashes=0"
        + "; raw requests="
        + str(sum(HEADER_STATUSES.values()))
        + " "
        + " ".join(f"http{status}={n}" for status, n in sorted(HEADER_STATUSES.items()))
        + f"; slow clients: stalled={SLOW_CLIENTS['stalled']} (all 408)"
        + f" vanished={SLOW_CLIENTS['vanished']}, no error logged"
    )
