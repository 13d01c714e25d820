"""Settings from the environment: defaults, parsing, errors that name the variable, secrets."""

from __future__ import annotations

import pytest

from worker.commands.common import with_file_secrets
from worker.core.config import DEFAULT_TRIGGER_GROUPS, Secret, Settings, redact_url
from worker.core.errors import ConfigError


def test_defaults_are_the_documented_ones():
    settings = Settings.from_env({})
    assert settings.broker.url.reveal() == "amqp://guest:guest@127.0.0.1:5672/"
    assert settings.broker.prefix == "dtrack"
    assert (settings.receiver.host, settings.receiver.port) == ("0.0.0.0", 8080)
    assert settings.receiver.webhook_token is None
    assert settings.receiver.token_header == "X-Api-Key"
    assert settings.receiver.max_body == 64 * 2**20
    assert settings.receiver.trigger_groups == DEFAULT_TRIGGER_GROUPS
    assert settings.receiver.coalesce_seconds == 10


def test_values_are_parsed():
    settings = Settings.from_env(
        {
            "DTRACK_WORKER_LISTEN": "[::1]:9000",
            "DTRACK_WORKER_MAX_BODY": "512KiB",
            "DTRACK_WORKER_TRIGGER_GROUPS": "GROUP_BOM_PROCESSED, new_vulnerability",
            "DTRACK_WORKER_WEBHOOK_TOKEN": "tok",
            "DTRACK_WORKER_PREFIX": "staging",
        }
    )
    assert (settings.receiver.host, settings.receiver.port) == ("::1", 9000)
    assert settings.receiver.max_body == 512 * 1024
    assert settings.receiver.trigger_groups == {"BOM_PROCESSED", "NEW_VULNERABILITY"}
    assert settings.receiver.webhook_token == Secret("tok")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LISTEN", "8080", "DTRACK_WORKER_LISTEN='8080' must be HOST:PORT"),
        ("LISTEN", "host:99999", "must be HOST:PORT"),
        ("MAX_BODY", "lots", "DTRACK_WORKER_MAX_BODY='lots' is not a size"),
        (
            "COALESCE_SECONDS",
            "-1",
            "DTRACK_WORKER_COALESCE_SECONDS='-1' must be between 0 and 3600",
        ),
        ("PUBLISH_TIMEOUT", "soon", "DTRACK_WORKER_PUBLISH_TIMEOUT='soon' is not a number"),
        ("TRIGGER_GROUPS", " , ", "DTRACK_WORKER_TRIGGER_GROUPS is empty"),
        ("TRIGGER_GROUPS", "BOM PROCESSED", "malformed group names: BOM PROCESSED"),
        ("PREFIX", "a b", "DTRACK_WORKER_PREFIX='a b'"),
        ("LOG_FORMAT", "xml", "must be json or console"),
        ("LOG_LEVEL", "loud", "must be DEBUG, INFO, WARNING or ERROR"),
    ],
)
def test_bad_values_name_the_variable(variable, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Settings.from_env({f"DTRACK_WORKER_{variable}": value})


def test_a_postgresql_url_names_its_database_in_the_path_or_as_dbname():
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"DTRACK_WORKER_STATE_URL": "postgresql://dtw:hunter2-db@db:5432/"})
    assert str(refused.value).startswith(
        "DTRACK_WORKER_STATE_URL='postgresql://dtw:***@db:5432/' names no database: add it"
    )
    assert "hunter2" not in str(refused.value)
    for url in ("postgresql://dtw@db:5432/state", "postgresql://dtw@db?dbname=state"):
        assert Settings.from_env({"DTRACK_WORKER_STATE_URL": url}).state.url.reveal() == url


def test_secrets_never_show_in_reprs():
    settings = Settings.from_env(
        {
            "DTRACK_WORKER_WEBHOOK_TOKEN": "hunter2-token",
            "DTRACK_WORKER_AMQP_URL": "amqp://user:hunter2-pass@mq:5672/",
        }
    )
    text = repr(settings) + str(settings)
    assert "hunter2" not in text
    assert settings.broker.display_url == "amqp://user:***@mq:5672/"
    assert redact_url("amqp://mq/") == "amqp://mq/"


def test_file_secrets_are_read_and_stripped(tmp_path):
    token = tmp_path / "token"
    token.write_text("from-a-file\n")
    environ = with_file_secrets({"DTRACK_WORKER_WEBHOOK_TOKEN_FILE": str(token)})
    assert Settings.from_env(environ).receiver.webhook_token == Secret("from-a-file")


def test_a_secret_given_twice_or_unreadable_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"set DTRACK_WORKER_WEBHOOK_TOKEN or .*_FILE, not both"):
        with_file_secrets(
            {"DTRACK_WORKER_WEBHOOK_TOKEN": "a", "DTRACK_WORKER_WEBHOOK_TOKEN_FILE": "/x"}
        )
    with pytest.raises(ConfigError, match="DTRACK_WORKER_DT_API_KEY_FILE: cannot read") as caught:
        with_file_secrets({"DTRACK_WORKER_DT_API_KEY_FILE": str(tmp_path / "missing")})
    assert "No such file" in str(caught.value)
