"""DT 5.2's signed webhooks: HMAC-SHA256 over the exact bytes sent, checked before anything is
parsed or decompressed (receiver on loopback, real RabbitMQ; settings; the header's forms)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import hashlib
import hmac
import subprocess
from typing import Any

import orjson
import pytest
import structlog

from tests import test_receiver
from tests.dt5_notifications import documents, protobuf_of
from tests.harness import SCRIPT, _free_port
from tests.rabbit import drain
from tests.test_receiver import BOM_PROCESSED, TOKEN, bom_processed
from worker.commands import run as run_command
from worker.commands.common import with_file_secrets
from worker.core import signatures
from worker.core.config import SECRET_VARIABLES, Settings
from worker.core.errors import ConfigError

pytestmark = pytest.mark.rabbitmq
receiver = test_receiver.receiver  # the fixture: receivers on loopback, each its own topology

SECRET = "s1gning-secret-never-logged"
OLD_SECRET = "the-previous-signing-secret"
HEADER = "X-Webhook-Signature"  # DT's (docs reference/notifications/publishers.md, 5.2.0)


def sign(body: bytes, secret: str = SECRET) -> str:
    """What DT 5.2 sends: sha256= and the lower-case hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(client: Any, body: bytes, signature: str | None, *, token: str | None = None, **more):
    headers = dict(more)
    if signature is not None:
        headers.setdefault(HEADER, signature)
    if token is not None:
        headers["X-Api-Key"] = token
    return client.post("/webhook", data=body, headers=headers)


async def _signing_only(receiver, **env: str):
    """A receiver that authenticates by signature alone (no token)."""
    return await receiver(webhook_token="", webhook_signing_secret=SECRET, **env)


async def test_a_body_signed_as_dt_signs_it_is_accepted(receiver):
    client, _, topo = await _signing_only(receiver)
    response = await _post(client, BOM_PROCESSED, sign(BOM_PROCESSED))
    assert response.status == 202, await response.text()
    assert len(await drain(topo.jobs_queue.name)) == 1


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (None, "no X-Webhook-Signature header"),
        (sign(BOM_PROCESSED, "another-secret"), "does not match the body"),
        (sign(BOM_PROCESSED + b" "), "does not match the body"),
        ("sha256=", "not an HMAC-SHA256"),
        ("sha256=zz" + "0" * 62, "not an HMAC-SHA256"),
        ("md5=" + hashlib.md5(BOM_PROCESSED).hexdigest(), "not an HMAC-SHA256"),
    ],
    ids=["missing", "wrong-secret", "other-body", "empty", "not-hex", "other-algorithm"],
)
async def test_a_missing_wrong_or_malformed_signature_is_401(receiver, signature, message):
    client, _, topo = await _signing_only(receiver)
    response = await _post(client, BOM_PROCESSED, signature)
    answer = await response.json()
    assert response.status == 401, answer
    assert answer["status"] == "unauthorized"
    assert message in answer["message"]
    assert await drain(topo.jobs_queue.name) == []


async def test_one_byte_changed_after_signing_is_401(receiver):
    client, _, topo = await _signing_only(receiver)
    signature = sign(BOM_PROCESSED)
    for position in (0, len(BOM_PROCESSED) // 2, len(BOM_PROCESSED) - 1):
        changed = bytearray(BOM_PROCESSED)
        changed[position] ^= 0x01
        assert (await _post(client, bytes(changed), signature)).status == 401, position
    assert (await _post(client, BOM_PROCESSED, signature)).status == 202
    assert len(await drain(topo.jobs_queue.name)) == 1


async def test_a_body_announced_over_the_limit_is_refused_before_it_is_read(receiver):
    """Review 2 L2: signature alone, a forged but well-formed signature and a Content-Length
    over MAX_BODY: 413 from the headers, nothing read or hashed (the body is never sent)."""
    client, _, topo = await _signing_only(receiver, max_body="1KiB")
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    try:
        writer.write(
            b"POST /webhook HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"%s: %s\r\nContent-Length: 1025\r\n\r\n" % (HEADER.encode(), b"sha256=" + b"0" * 64)
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert await drain(topo.jobs_queue.name) == []


async def test_a_compressed_body_is_checked_over_the_bytes_sent(receiver):
    client, _, topo = await _signing_only(receiver)
    compressed = gzip.compress(BOM_PROCESSED)
    gzipped = {"Content-Encoding": "gzip"}
    assert (await _post(client, compressed, sign(BOM_PROCESSED), **gzipped)).status == 401
    response = await _post(client, compressed, sign(compressed), **gzipped)
    assert response.status == 202, await response.text()
    assert len(await drain(topo.jobs_queue.name)) == 1


async def test_hex_in_either_case_and_base64_are_read_with_or_without_the_prefix(receiver):
    client, _, topo = await _signing_only(receiver)
    forms = []
    for n in range(6):
        body = bom_processed(n)
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
        forms.append(
            (
                body,
                [
                    "sha256=" + digest.hex(),
                    digest.hex(),
                    "SHA256=" + digest.hex().upper(),
                    base64.b64encode(digest).decode(),
                    "sha256=" + base64.b64encode(digest).decode(),
                    base64.urlsafe_b64encode(digest).decode().rstrip("="),
                ][n],
            )
        )
    for body, signature in forms:
        response = await _post(client, body, signature)
        assert response.status == 202, (signature, await response.text())
    assert len(await drain(topo.jobs_queue.name)) == 6


async def test_two_secrets_during_a_rotation(receiver):
    client, _, topo = await _signing_only(receiver, webhook_signing_secret_previous=OLD_SECRET)
    assert (await _post(client, bom_processed(1), sign(bom_processed(1)))).status == 202
    old = await _post(client, bom_processed(2), sign(bom_processed(2), OLD_SECRET))
    assert old.status == 202
    neither = await _post(client, bom_processed(3), sign(bom_processed(3), "a-third-secret"))
    assert neither.status == 401
    assert len(await drain(topo.jobs_queue.name)) == 2


async def test_the_token_and_the_signature_can_both_be_required(receiver):
    client, _, topo = await receiver(webhook_signing_secret=SECRET)  # and the fixture's token
    body = BOM_PROCESSED
    assert (await _post(client, body, sign(body))).status == 401  # no token
    assert (await _post(client, body, None, token=TOKEN)).status == 401  # no signature
    assert (await _post(client, body, sign(body), token="wrong")).status == 401
    assert (await _post(client, body, sign(body), token=TOKEN)).status == 202
    assert len(await drain(topo.jobs_queue.name)) == 1


async def test_the_header_is_a_setting_and_protobuf_is_signed_the_same(receiver):
    client, _, topo = await _signing_only(receiver, webhook_signature_header="X-Signature-256")
    body = protobuf_of(documents()["v5__dt-5.0.4-e2e__GROUP_BOM_PROCESSED"])
    protobuf = {"Content-Type": "application/protobuf"}
    assert (await _post(client, body, sign(body), **protobuf)).status == 401  # DT's header
    response = await _post(client, body, None, **{"X-Signature-256": sign(body)}, **protobuf)
    assert response.status == 202, await response.text()
    assert len(await drain(topo.jobs_queue.name)) == 1


async def test_neither_the_secrets_nor_the_signatures_reach_logs_or_answers(receiver):
    client, _, _ = await _signing_only(receiver, webhook_signing_secret_previous=OLD_SECRET)
    answers = []
    with structlog.testing.capture_logs() as lines:
        for signature in (sign(BOM_PROCESSED), sign(BOM_PROCESSED, "x"), "sha256=abc"):
            answers.append(await (await _post(client, BOM_PROCESSED, signature)).text())
    everything = repr(lines) + "".join(answers)
    for secret in (SECRET, OLD_SECRET, sign(BOM_PROCESSED)[7:], sign(BOM_PROCESSED, "x")[7:]):
        assert secret not in everything
    assert [line["outcome"] for line in lines if line["event"] == "http.request"] == [
        "enqueued",
        "unauthorized",
        "unauthorized",
    ]


# -- settings ---------------------------------------------------------------------------------


def test_the_signing_settings_and_their_defaults():
    receiver_settings = Settings.from_env({}).receiver
    assert receiver_settings.signing_secrets == ()
    assert receiver_settings.signature_header == "X-Webhook-Signature"
    configured = Settings.from_env(
        {
            "DTRACK_WORKER_WEBHOOK_SIGNING_SECRET": SECRET,
            "DTRACK_WORKER_WEBHOOK_SIGNING_SECRET_PREVIOUS": OLD_SECRET,
            "DTRACK_WORKER_WEBHOOK_SIGNATURE_HEADER": "X-Hub-Signature-256",
        }
    ).receiver
    assert [secret.reveal() for secret in configured.signing_secrets] == [SECRET, OLD_SECRET]
    assert configured.signature_header == "X-Hub-Signature-256"
    assert SECRET not in repr(configured)


def test_the_signing_secrets_can_come_from_files(tmp_path):
    (tmp_path / "new").write_text(SECRET + "\n")
    (tmp_path / "old").write_text(OLD_SECRET + "\n")
    environ = with_file_secrets(
        {
            "DTRACK_WORKER_WEBHOOK_SIGNING_SECRET_FILE": str(tmp_path / "new"),
            "DTRACK_WORKER_WEBHOOK_SIGNING_SECRET_PREVIOUS_FILE": str(tmp_path / "old"),
        }
    )
    secrets = Settings.from_env(environ).receiver.signing_secrets
    assert [secret.reveal() for secret in secrets] == [SECRET, OLD_SECRET]


@pytest.mark.parametrize("name", SECRET_VARIABLES)
def test_an_empty_secret_file_is_refused_naming_its_variable(tmp_path, name):
    """Review 2 M3: an unpopulated secret mount must not read as "not set" (for the signing
    secret, that turned signature checking off without a word)."""
    (tmp_path / "empty").write_text(" \n")
    variable = f"DTRACK_WORKER_{name}_FILE"
    with pytest.raises(ConfigError, match=f"^{variable}: {tmp_path}/empty is empty") as caught:
        with_file_secrets({variable: str(tmp_path / "empty")})
    assert "set the secret in it" in str(caught.value)


def test_the_receiver_refuses_to_start_with_an_empty_signing_secret_file(tmp_path):
    (tmp_path / "empty").write_text("")
    assert SCRIPT
    done = subprocess.run(
        [SCRIPT, "receiver"],
        env={"PATH": "/usr/bin:/bin", "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
             "DTRACK_WORKER_WEBHOOK_SIGNING_SECRET_FILE": str(tmp_path / "empty"),
             "DTRACK_WORKER_LISTEN": f"127.0.0.1:{_free_port()}"},
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"DTRACK_WORKER_WEBHOOK_SIGNING_SECRET_FILE: {tmp_path}/empty is empty" in done.stderr


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"DTRACK_WORKER_WEBHOOK_SIGNING_SECRET_PREVIOUS": OLD_SECRET},
            "WEBHOOK_SIGNING_SECRET_PREVIOUS is set without DTRACK_WORKER_WEBHOOK_SIGNING_SECRET",
        ),
        (
            {"DTRACK_WORKER_WEBHOOK_SIGNATURE_HEADER": "X Signature"},
            "DTRACK_WORKER_WEBHOOK_SIGNATURE_HEADER='X Signature' is not an HTTP header name",
        ),
    ],
)
def test_bad_signing_settings_name_the_variable_and_never_the_secret(environ, message):
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env(environ)
    assert OLD_SECRET not in str(caught.value)


# -- the header's forms -----------------------------------------------------------------------


def test_the_header_forms_read_to_the_same_digest():
    digest = hmac.new(b"k", b"body", hashlib.sha256).digest()
    forms = [
        "sha256=" + digest.hex(),
        " " + digest.hex().upper() + " ",
        base64.b64encode(digest).decode(),
        "sha256=" + base64.urlsafe_b64encode(digest).decode().rstrip("="),
    ]
    assert {signatures.digest_of(form) for form in forms} == {digest}
    for bad in ("", "sha256=", "sha1=" + digest.hex(), digest.hex()[:-2], "not a signature"):
        assert signatures.digest_of(bad) is None, bad


def test_verification_tries_every_secret_and_needs_one_to_match():
    keys = (b"new", b"old")
    body = orjson.dumps({"n": 1})
    for key in keys:
        assert signatures.verify(body, hmac.new(key, body, hashlib.sha256).digest(), keys)
    assert not signatures.verify(body, hmac.new(b"x", body, hashlib.sha256).digest(), keys)


def test_a_signing_secret_alone_is_enough_to_start_a_receiver():
    args = argparse.Namespace(insecure_no_auth=False)
    signed = {"DTRACK_WORKER_WEBHOOK_SIGNING_SECRET": SECRET}
    settings = run_command._settings(args, signed, receive=True, work=False)
    assert settings.receiver.webhook_token is None
    with pytest.raises(ConfigError, match="WEBHOOK_SIGNING_SECRET") as caught:
        run_command._settings(args, {}, receive=True, work=False)
    assert "--insecure-no-auth" in str(caught.value)
