"""Review 2 L4: the configured secrets' exact values are masked in every log line, whatever
the form that quotes them (YAML, a dict's repr, an environment line, bare user:password@host),
the URL-shaped redaction's blind spots. Production's log configuration, into memory."""

from __future__ import annotations

import logging

import pytest
import structlog

from tests.test_secrets import log_stream as log_stream  # the fixture
from worker.adapters import logs
from worker.commands.common import settings_from
from worker.core.config import Settings

ENVIRON = {
    "DTRACK_WORKER_DT_API_KEY": "odt_ApiKey0123456789",
    "DTRACK_WORKER_WEBHOOK_TOKEN": "webhook-token-0123",
    "DTRACK_WORKER_WEBHOOK_SIGNING_SECRET": "signing-secret-0123",
    "DTRACK_WORKER_WEBHOOK_SIGNING_SECRET_PREVIOUS": "signing-previous-0123",
    "DTRACK_WORKER_CONSOLE_TOKEN": "console-token-0123456789",
    "DTRACK_WORKER_AMQP_URL": "amqp://worker:rabbit%2Fpass@mq:5672/,amqp://worker:guest@mq2/",
    "DTRACK_WORKER_STATE_URL": "postgresql://u:pg-pass-0123@db/s?sslpassword=ssl-pass-0123",
    "DTRACK_WORKER_DT_URL": "https://dtuser:dt-url-pass@dt.example.org",
}
HIDDEN = [
    "odt_ApiKey0123456789",
    "webhook-token-0123",
    "signing-secret-0123",
    "signing-previous-0123",
    "console-token-0123456789",
    "rabbit/pass",  # decoded, as a driver's message would quote it
    "pg-pass-0123",
    "ssl-pass-0123",
    "dt-url-pass",
]


@pytest.mark.parametrize("json", [True, False], ids=["json", "console"])
def test_configured_secrets_are_masked_in_any_form(log_stream, json):
    raw = log_stream(json, Settings.from_env(ENVIRON).secret_values())
    for secret in HIDDEN:
        forms = [f"password: {secret}", repr({"password": secret}), f"PGPASSWORD={secret}",
                 f"u:{secret}@h:5432", f"token {secret} refused"]  # fmt: skip
        structlog.get_logger("t").warning("said", text=forms[0], nested={"e": forms[1:3]})
        logging.getLogger("lib").warning("library said %s", forms[3:])
        try:
            raise ValueError(forms[4])
        except ValueError:
            structlog.get_logger("t").exception("failed")
    text = raw.getvalue().decode()
    assert text.count("said") >= 2 * len(HIDDEN)
    assert "ValueError" in text
    shown = [secret for secret in HIDDEN if secret in text]
    assert shown == [], text
    assert "PGPASSWORD=***" in text


def test_short_values_are_not_masked(log_stream):
    """A value under 6 characters is left as it is: masking it would blank ordinary words (a
    broker password ``guest`` is also its user name), and the pattern of the masks would
    itself show the value. Such secrets are refused or warned about where they are set."""
    raw = log_stream(True, Settings.from_env(ENVIRON).secret_values())
    structlog.get_logger("t").info("connected", user="guest", host="mq2")
    assert '"user":"guest"' in raw.getvalue().decode()


def test_the_commands_register_the_secrets_when_they_configure_logging(capsys):
    saved = structlog.get_config()
    handlers = logging.getLogger().handlers[:]
    try:
        settings_from(ENVIRON | {"DTRACK_WORKER_LOG_FORMAT": "json"}, log=True)
        structlog.get_logger("t").warning("said", text="password: odt_ApiKey0123456789")
    finally:
        structlog.configure(**saved)
        logging.getLogger().handlers[:] = handlers
        logs.configure_secrets(())
    err = capsys.readouterr().err
    assert "password: ***" in err
    assert "odt_ApiKey0123456789" not in err
