"""Passwords never shown, not even in part (issue 25, section 4): one redaction for every form a
password takes (URL user information, a query's ``password``/``sslpassword``, libpq keyword
strings) and for every text that quotes one (driver errors included), then the commands and
the logs as an operator sees them, against the real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import logging
import signal
from collections.abc import Callable, Iterable, Iterator

import aio_pika
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tests.harness import TOKEN
from tests.rabbit import AMQP_URL, temporary_topology, unique_prefix
from tests.test_hardening_cli import running
from tests.test_operations import _env, cli
from worker.adapters import logs, tracing
from worker.core import urls
from worker.core.config import Settings
from worker.core.errors import ConfigError

# Passwords are drawn from letters no surrounding text uses, plus every character that has a
# meaning in a URL or a connection string: what is left of a password after redaction is then
# found by those letters, wherever it went.
DISTINCT = "αβγδεζηθικλμνξοπρστυφχψω"
SPECIAL = ",@:/?#%&=;' \"\\!$+[]*"
# The one exception, on purpose: a password that begins with the mask itself, ``***``, then
# ``@``, ``&``, a space or a quote, is taken for one redacted already (our own messages are
# redacted again as they are logged, and must keep what follows them).
passwords = st.text(alphabet=DISTINCT + SPECIAL, min_size=1, max_size=40).filter(
    lambda p: any(c in DISTINCT for c in p) and not p.startswith("***")
)


def leaked(password: str, text: str) -> list[str]:
    """Every piece of ``password`` (3 characters or more, with one of its own letters) that
    ``text`` shows."""
    return sorted(
        {
            password[i : i + 3]
            for i in range(len(password) - 2)
            if any(c in DISTINCT for c in password[i : i + 3]) and password[i : i + 3] in text
        }
    )


def assert_hidden(password: str, text: str) -> None:
    assert leaked(password, text) == [], text
    assert not any(c in DISTINCT for c in text), text  # not even one letter of it


def _quoted(password: str) -> str:
    """A libpq keyword value: in single quotes, with ``\\`` and ``'`` escaped."""
    return "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"


# -- the forms, each alone: redacted exactly ---------------------------------------------------


@given(password=passwords)
def test_a_password_in_the_user_information_is_masked_whole(password):
    for url, shown in [
        (f"amqp://guest:{password}@rabbit.example:5672/vhost",
         "amqp://guest:***@rabbit.example:5672/vhost"),
        (f"postgresql://worker:{password}@db.example:5432/state?sslmode=require",
         "postgresql://worker:***@db.example:5432/state?sslmode=require"),
        (f"https://user:{password}@dt.example/", "https://user:***@dt.example/"),
        (f"amqp:/guest:{password}@rabbit.example/", "amqp:/guest:***@rabbit.example/"),
    ]:  # fmt: skip
        assert urls.redact(url) == shown
        assert_hidden(password, urls.redact(url))


@given(first=passwords, second=passwords)
def test_each_node_of_a_cluster_is_masked(first, second):
    cluster = f"amqp://guest:{first}@node1:5672/,amqp://guest:{second}@node2:5672/"
    assert urls.redact(cluster) == "amqp://guest:***@node1:5672/,amqp://guest:***@node2:5672/"


@given(password=passwords.filter(lambda p: "&" not in p))
def test_a_password_in_the_query_is_masked(password):
    for url, shown in [
        (f"postgresql://worker@db.example:5432/state?password={password}&sslmode=require",
         "postgresql://worker@db.example:5432/state?password=***&sslmode=require"),
        (f"postgresql://db.example/state?sslmode=verify-full&sslpassword={password}",
         "postgresql://db.example/state?sslmode=verify-full&sslpassword=***"),
        (f"postgresql://db.example/state?PassWord={password}",
         "postgresql://db.example/state?PassWord=***"),
    ]:  # fmt: skip
        assert urls.redact(url) == shown
        assert_hidden(password, urls.redact(url))


@given(password=passwords)
def test_a_password_in_a_query_with_ampersands_shows_nothing_of_it(password):
    url = f"postgresql://worker@db.example/state?sslmode=require&password={password}"
    assert_hidden(password, urls.redact(url))


@given(password=passwords)
def test_a_password_in_a_libpq_keyword_string_is_masked(password):
    quoted = f"host=db.example port=5432 password={_quoted(password)} dbname=state"
    assert urls.redact(quoted) == "host=db.example port=5432 password=*** dbname=state"
    plain = password.translate({ord(c): None for c in " '\"\\"})
    if any(c in DISTINCT for c in plain):
        bare = f"host=db.example sslpassword = {plain} dbname=state"
        assert urls.redact(bare) == "host=db.example sslpassword = *** dbname=state"


# -- the forms inside texts: driver errors, our own messages -----------------------------------


def _texts(password: str) -> list[str]:
    amqp = f"amqp://guest:{password}@127.0.0.1:5672/"
    pg = f"postgresql://worker:{password}@127.0.0.1:5432/state"
    query = f"postgresql://worker@127.0.0.1/state?password={password}"
    return [
        f"{amqp!r} is not a valid URL",
        f"DTRACK_WORKER_AMQP_URL={amqp!r} contains white space",
        f"cannot reach RabbitMQ at {amqp}: AMQPConnectionError: [Errno 111] Connect call failed",
        f"cannot reach {amqp}, then {amqp}: ConnectionRefusedError",
        f'connection to "{pg}" failed: FATAL:  password authentication failed for user "worker"',
        f"the state store at {query} failed: OperationalError: connection failed",
        f"ValueError: invalid dsn: host=127.0.0.1 password={_quoted(password)} (near here)",
        f"aiormq: <Connection: {amqp!r}> closed",
    ]


@given(password=passwords)
def test_no_part_of_a_password_shows_in_a_text_that_quotes_it(password):
    for text in _texts(password):
        assert_hidden(password, urls.redact(text))


@given(password=passwords)
def test_redaction_is_idempotent(password):
    for text in _texts(password):
        once = urls.redact(text)
        assert urls.redact(once) == once


def test_a_message_redacted_already_keeps_what_follows_its_urls():
    """Our own messages are redacted again as they are logged: what follows stays readable."""
    for text in [
        'the state store at postgresql://u@db/s?password=*** failed: FATAL: role "u" is unknown',
        "cannot reach amqp://guest:***@mq:5672/: ProbableAuthenticationError, as for a@b",
    ]:
        assert urls.redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "amqp://rabbit.example:5672/",
        "http://[::1]:8080/webhook",
        "postgresql://db1:5432,db2:5432/state?sslmode=require",
        "sqlite:///var/lib/dtrack-worker/state.sqlite3",
        "acme-shop@2.1.0: synced: 13 findings published",
        "pkg:npm/%40angular/core@16.2.0 and pkg:maven/org.apache/log4j@2.14.1",
        "GET /api/v1/project: DT answered 503",
        "job 5c0e: not synced: parked (invalid_export): InvalidExport",
    ],
)
def test_text_without_a_password_is_left_as_it_is(text):
    assert urls.redact(text) == text


def test_a_lone_user_is_a_user_for_amqp_and_postgresql_but_maybe_a_token_for_https():
    assert urls.redact("postgresql://worker@db/state") == "postgresql://worker@db/state"
    assert urls.redact("amqp://guest@mq/") == "amqp://guest@mq/"
    assert urls.redact("https://ghp_t0ken@github.com/x") == "https://***@github.com/x"


def test_a_url_cut_before_its_host_shows_no_password():
    """What splitting ``amqp://guest:gu,est@mq/`` at its comma used to leave."""
    assert urls.redact("'amqp://guest:gu' is not a valid URL") == (
        "'amqp://guest:***' is not a valid URL"
    )
    assert urls.redact("http://dt.example:8080/api") == "http://dt.example:8080/api"


# -- the settings: a comma or an @ in a password is a password's -------------------------------


def test_a_broker_password_with_a_comma_is_one_url_not_two():
    settings = Settings.from_env({"DTRACK_WORKER_AMQP_URL": "amqp://guest:gu,e@st@mq:5672/"})
    assert [url.reveal() for url in settings.broker.urls] == ["amqp://guest:gu,e@st@mq:5672/"]
    assert settings.broker.display_url == "amqp://guest:***@mq:5672/"
    cluster = Settings.from_env(
        {"DTRACK_WORKER_AMQP_URL": "amqp://u:a,b@mq1/, amqp://u:c,d@mq2/"}
    ).broker
    assert [url.reveal() for url in cluster.urls] == ["amqp://u:a,b@mq1/", "amqp://u:c,d@mq2/"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pa,ss@db/s", "postgresql://u:***@db/s"),
        ("postgresql://u:p@ss@db/s", "postgresql://u:***@db/s"),
        ("postgresql://u@db/s?password=sekr3t", "postgresql://u@db/s?password=***"),
    ],
)
def test_the_state_store_is_shown_without_its_password(url, shown):
    assert Settings.from_env({"DTRACK_WORKER_STATE_URL": url}).state.display_url == shown


def test_a_refused_state_url_is_shown_as_given_without_its_password():
    with pytest.raises(
        ConfigError, match="'postgresql://u:\\*\\*\\*@db:x/s' is not a valid"
    ) as caught:
        Settings.from_env({"DTRACK_WORKER_STATE_URL": "postgresql://u:pa ss@db:x/s"})
    assert "pa ss" not in str(caught.value)
    # the driver gets the password apart: a space in it is no reason to refuse the URL
    settings = Settings.from_env({"DTRACK_WORKER_STATE_URL": "postgresql://u:pa ss@db/s"})
    assert settings.state.display_url == "postgresql://u:***@db/s"


@pytest.mark.parametrize(
    ("url", "target", "password", "sslpassword"),
    [
        ("postgresql://u:p%40ss@db:5432/s", "postgresql://u@db:5432/s", "p@ss", None),
        ("postgresql://u:p@s,s@db/s", "postgresql://u@db/s", "p@s,s", None),
        ("postgresql://u:p%zz@db/s", "postgresql://u@db/s", "p%zz", None),
        ("postgresql://:pw@db/s", "postgresql://db/s", "pw", None),
        ("postgresql://u@db/s?password=a%26b&sslmode=require", "postgresql://u@db/s?sslmode=require",
         "a&b", None),
        ("postgresql://u@db/s?sslmode=require&password=x", "postgresql://u@db/s?sslmode=require",
         "x", None),
        ("postgresql://u@db/s?sslpassword=k&password=x", "postgresql://u@db/s", "x", "k"),
        ("postgresql://u@db/s", "postgresql://u@db/s", None, None),
    ],
)  # fmt: skip
def test_the_passwords_of_a_postgresql_url_are_taken_out_for_the_driver(
    url, target, password, sslpassword
):
    found = urls.connection_secrets(url)
    assert (found.url, found.password, found.sslpassword) == (target, password, sslpassword)


# -- as an operator sees it: `check`, and a worker's log ---------------------------------------

PG_PASSWORDS = {
    "comma": "postgresql://nobody_pw:Trv8,Qs9w@127.0.0.1:5432/postgres",
    "at": "postgresql://nobody_pw:Mnb7@Bvc7@127.0.0.1:5432/postgres",
    "query": "postgresql://nobody_pw@127.0.0.1:5432/postgres?password=Hjk6Kl9m",
    "sslpassword": "postgresql://nobody_pw@127.0.0.1:5432/postgres?sslpassword=Ghj5Jk8n",
    "percent": "postgresql://nobody_pw:Pcx%zzDf4@127.0.0.1:5432/postgres",
    "space": "postgresql://nobody_pw:Wxy Yz5r@127.0.0.1:5432/postgres",
}
AMQP_PASSWORDS = {
    "comma": "amqp://guest:Zqv8,Xw9k@127.0.0.1:5672/",
    "at": "amqp://guest:Kpq@Rm7:Lq/@127.0.0.1:5672/",
    "space": "amqp://guest:Wxy Yz5r@127.0.0.1:5672/",
    "cluster": "amqp://guest:Abc1,De2f@127.0.0.1:5672/,amqp://guest:Ghi3@Jk4l@127.0.0.1:5672/",
}


def _password_parts(url: str) -> list[str]:
    """The password of ``url`` in pieces of 3: none may show."""
    secret = {
        "Trv8,Qs9w", "Mnb7@Bvc7", "Hjk6Kl9m", "Ghj5Jk8n", "Pcx%zzDf4", "Wxy Yz5r", "Zqv8,Xw9k",
        "Kpq@Rm7:Lq/", "Abc1,De2f", "Ghi3@Jk4l",
    }  # fmt: skip
    return [p[i : i + 3] for p in secret if p in url for i in range(len(p) - 2)]


@pytest.mark.rabbitmq
@pytest.mark.parametrize("url", PG_PASSWORDS.values(), ids=PG_PASSWORDS.keys())
async def test_check_shows_no_part_of_a_postgresql_password(url):
    code, out, err = await cli(
        "check", env={"DTRACK_WORKER_STATE_URL": url, "DTRACK_WORKER_PREFIX": unique_prefix()}
    )
    assert code in (1, 2), out + err
    assert "Traceback" not in out + err
    shown = [part for part in _password_parts(url) if part in out + err]
    assert shown == [], out + err


@pytest.mark.rabbitmq
@pytest.mark.parametrize("url", AMQP_PASSWORDS.values(), ids=AMQP_PASSWORDS.keys())
async def test_check_shows_no_part_of_a_broker_password(url):
    code, out, err = await cli(
        "check",
        "--receiver-only",
        env={"DTRACK_WORKER_AMQP_URL": url, "DTRACK_WORKER_PREFIX": unique_prefix()},
    )
    assert code in (1, 2), out + err
    assert "Traceback" not in out + err
    shown = [part for part in _password_parts(url) if part in out + err]
    assert shown == [], out + err
    if code == 1:  # accepted as one URL per node, each refused by RabbitMQ for its password
        assert "FAIL  rabbitmq: cannot reach amqp://guest:***@127.0.0.1:5672/" in out


@pytest.mark.rabbitmq
@pytest.mark.parametrize(
    "url", [PG_PASSWORDS["at"], PG_PASSWORDS["percent"], PG_PASSWORDS["query"]],
    ids=["at", "percent", "query"],
)  # fmt: skip
async def test_a_failed_postgresql_connection_is_logged_without_its_password(url):
    prefix = unique_prefix()
    async with (
        temporary_topology(prefix),
        running(
            "worker",
            {
                "DTRACK_WORKER_STATE_URL": url,
                "DTRACK_WORKER_AMQP_URL": AMQP_URL,
                "DTRACK_WORKER_PREFIX": prefix,
                "DTRACK_WORKER_DT_URL": "http://127.0.0.1:9",
                "DTRACK_WORKER_DT_API_KEY": "k",
                "DTRACK_WORKER_WEBHOOK_TOKEN": TOKEN,
                # the store never answers: the drain would retry it for the whole grace
                "DTRACK_WORKER_SHUTDOWN_GRACE": "1",
            },
        ) as service,
    ):
        async with asyncio.timeout(30):
            while "state.unavailable" not in service.text:
                assert service.process.returncode is None, service.text
                await asyncio.sleep(0.05)
        service.process.send_signal(signal.SIGTERM)
        await service.wait()
    (line,) = [line for line in service.lines() if line["event"] == "state.unavailable"]
    # the driver's own words (role "nobody_pw" does not exist, or a busy server's) follow
    assert "failed: OperationalError: connection failed: " in line["error"], line
    shown = [part for part in _password_parts(url) if part in service.text]
    assert shown == [], service.text


# -- the last line of defence: log lines and spans, tracebacks included -----------------------

DRIVER_ERROR = "connection to postgresql://u:Sεcr@t,pw@db/s?sslpassword=κλμν failed"


@pytest.fixture
def log_stream() -> Iterator[Callable[..., io.BytesIO]]:
    """Production's log configuration, JSON or console, into memory; ``secrets``: the
    configured secrets' values, masked (test_log_secrets uses it too)."""
    saved = structlog.get_config()
    handlers = logging.getLogger().handlers[:]
    level = logging.getLogger().level
    streams: list[io.TextIOWrapper] = []

    def configure(json: bool, secrets: Iterable[str] = ()) -> io.BytesIO:
        raw = io.BytesIO()
        stream = io.TextIOWrapper(raw, write_through=True)
        streams.append(stream)
        logs.configure("INFO", json=json, stream=stream, secrets=secrets)
        return raw

    try:
        yield configure
    finally:
        for stream in streams:
            stream.detach()
        structlog.configure(**saved)
        logging.getLogger().handlers[:] = handlers
        logging.getLogger().setLevel(level)
        logs.configure_secrets(())


@pytest.mark.parametrize("json", [True, False], ids=["json", "console"])
def test_no_log_line_shows_a_password_not_even_in_a_traceback(log_stream, json):
    raw = log_stream(json)
    try:
        raise ValueError(DRIVER_ERROR)
    except ValueError as exc:
        structlog.get_logger("t").exception(
            "state.failed", error=str(exc), nested={"e": [str(exc)]}
        )
        logging.getLogger("psycopg").exception("driver said %s", exc)
    text = raw.getvalue().decode()
    for expected in ("state.failed", "driver said", "ValueError"):
        assert expected in text
    assert "postgresql://u:***@db/s?sslpassword=***" in text
    for piece in ("Sεc", "cr@", "t,pw", "κλμ"):
        assert piece not in text, text


def test_no_span_shows_a_password_not_even_an_exception_recorded_in_it():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        with pytest.raises(ValueError, match="connection to"), tracing.span("work"):
            raise ValueError(DRIVER_ERROR)
    finally:
        tracing.shutdown()
    (span,) = exporter.get_finished_spans()
    (event,) = span.events
    assert event.name == "exception"
    text = repr(dict(event.attributes or {})) + str(span.status.description)
    assert "postgresql://u:***@db/s?sslpassword=***" in text
    assert span.status.status_code == StatusCode.ERROR
    for piece in ("Sεc", "cr@", "t,pw", "κλμ"):
        assert piece not in text, text


@pytest.mark.rabbitmq
async def test_parked_jobs_are_listed_and_shown_without_a_password_whoever_parked_them(serve, dt):
    """A job parked by an earlier release, its error quoting a URL with its password."""
    _, topo, _, settings = await serve(work=False)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(
                b"{}",
                message_id="parked-by-an-older-release",
                headers={
                    "x-park-reason": "unexpected",
                    "x-park-error": "OperationalError: postgresql://u:Prk9,Zx7@db/s?password=Qw8Rt5",
                    "x-attempt": 1,
                },
            ),
            topo.parked_queue.name,
        )
    env = _env(settings.broker.prefix, dt)
    for command in (["parked", "list"], ["parked", "show", "parked-by-an-older-release"]):
        code, out, err = await cli(*command, env=env)
        assert code == 0, err
        assert "postgresql://u:***@db/s?password=***" in out
        for piece in ("Prk", "Zx7", "Qw8", "Rt5"):
            assert piece not in out + err, out
