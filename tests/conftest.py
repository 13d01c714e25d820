"""Shared test fixtures. The real DT data lives in ../shared/fixtures (see its MANIFEST.md)."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from worker.adapters import schemas

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures"
FPF = FIXTURES / "fpf"
NOTIFICATIONS = FIXTURES / "notifications"

if not (FIXTURES / "MANIFEST.md").is_file():  # a missing fixture tree must fail, never skip
    raise RuntimeError(f"the shared DT fixtures are missing: expected them at {FIXTURES}")


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


# The service fixtures (fake DT, receiver and worker in-process) for every test module.
pytest_plugins = ["tests.harness", "tests.state_db"]
