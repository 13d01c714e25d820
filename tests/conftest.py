"""Shared test fixtures. The real DT data is in tests/fixtures (see its MANIFEST.md): the suite
needs nothing outside this repository but the servers scripts/test starts on loopback."""

from __future__ import annotations

import gc
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from tests.rabbit import AMQP_URL
from worker.adapters import logs, schemas

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
FPF = FIXTURES / "fpf"
NOTIFICATIONS = FIXTURES / "notifications"

# tests configure logging per test (into their own streams): a logger cached by an earlier
# test would keep writing where that test configured it, whatever the order
logs.CACHE_LOGGERS = False

# The commands the tests run (and their subprocesses) keep the per-project v1 stream the tests
# were written for; the line stream's tests (test_line_stream.py) say DTRACK_WORKER_TRACK=line.
os.environ.setdefault("DTRACK_WORKER_TRACK", "project")

if not (FIXTURES / "MANIFEST.md").is_file():  # a missing fixture tree must fail, never skip
    raise RuntimeError(f"the DT fixtures are missing: expected them at {FIXTURES}")


def _only_this_repository(event: str, args: tuple[object, ...]) -> None:
    """A test that opens a file beside the repository (a folder shared on the team's own
    machines, say) fails at once: a fresh clone has nothing there. Hidden folders beside it (a
    home's .cache), the temporary folder and Python's own files are no concern."""
    if event != "open" or not isinstance(args[0], str | bytes | os.PathLike):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    if not path.startswith(_BESIDE) or path.startswith(_ALLOWED):
        return
    if path[len(_BESIDE) :].startswith("."):
        return
    raise PermissionError(f"a test opened {path}, outside the repository {REPO}")


_BESIDE = os.path.join(REPO.parent, "")
# exempt, unless one holds the repository's parent (a clone in /tmp/x/: all of /tmp would pass)
_ALLOWED = tuple(
    folder
    for folder in (
        os.path.join(os.path.abspath(path), "")
        for path in (REPO, tempfile.gettempdir(), sys.prefix, sys.base_prefix, sys.exec_prefix)
    )
    if folder == os.path.join(REPO, "") or not _BESIDE.startswith(folder)
)
# a clone at / or right in the temporary folder has no "beside" to tell from everything else
GUARDED = REPO.parent not in (Path("/"), Path(tempfile.gettempdir()).resolve())
if GUARDED:
    sys.addaudithook(_only_this_repository)


def fixture_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.json"))
    assert files, f"no fixtures in {folder}"
    return files


@pytest.fixture(scope="session")
def contracts() -> schemas.Contracts:
    return schemas.load()


_FIGURES: list[str] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a test's closing figures; they are printed at the end of the run, for the CI log
    (they travel in the test's report, so they come back from pytest-xdist's workers too)."""

    def record(line: str) -> None:
        request.node.user_properties.append(("figure", line))

    return record


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _FIGURES.extend(str(value) for name, value in report.user_properties if name == "figure")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _clean_log_context() -> None:
    structlog.contextvars.clear_contextvars()


class _Unretrieved(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "never retrieved" in message:
            self.messages.append(message)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """What exists once the tests are collected (modules, schemas, fixture data, the items)
    stays for the whole run: moved out of the collector's sight, so that the full collection
    after every test (below) looks at what the tests made, not at all of that again. It took
    a quarter of a second a test, the larger part of the server-free run."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _no_unretrieved_task_exceptions() -> Iterator[None]:
    """A test fails when asyncio reports a task or future whose exception nobody retrieved."""
    handler = _Unretrieved()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
        gc.collect()  # the report comes when the task is collected
    finally:
        logger.removeHandler(handler)
    assert handler.messages == [], handler.messages


# -- markers by fixture: -m 'not rabbitmq and not postgres' runs with neither server ---------


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    """The live RabbitMQ's URL. A test that asks for it, or for a fixture that does (``serve``,
    ``processes``), is marked ``rabbitmq``; ``postgres`` (tests/state_db.py) likewise."""
    return AMQP_URL


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "rabbitmq" in names:
            item.add_marker(pytest.mark.rabbitmq)
        callspec = getattr(item, "callspec", None)
        on_postgresql = callspec is not None and callspec.params.get("state_url") == "postgresql"
        if "postgres" in names or on_postgresql:
            item.add_marker(pytest.mark.postgres)


# The service fixtures (fake DT, receiver and worker in-process) for every test module.
pytest_plugins = ["tests.harness", "tests.state_db"]
