"""The pure core does no I/O: its modules import no network, OS or logging library."""

from __future__ import annotations

import ast
from pathlib import Path

import worker

PACKAGE = Path(worker.__file__).parent

# Every module picks a layer; a new module fails this test until it does.
PURE = {
    "errors",
    "validation",
    "events",
    "fpf",
    "split",
    "notifications",
    "jobs",
    "config",
    "topology",
    "ids",
}
EDGE = {
    "schemas",
    "cli",
    "__init__",
    "__main__",
    "broker",
    "receiver",
    "service",
    "consumer",
    "dtrack",
    "logs",
    "metrics",
    "tail",
    "backfill",
    "parked",
    "reconcile",
    "timezones",
}
FORBIDDEN_IN_PURE = {
    "aiohttp",
    "aio_pika",
    "aiormq",
    "structlog",
    "os",
    "socket",
    "logging",
    "pathlib",
    "io",
    "subprocess",
    "asyncio",
    "importlib",
    "zoneinfo",
    "time",
    "random",
    "prometheus_client",
    "uvloop",
} | {f"worker.{module}" for module in EDGE}  # nor the adapters


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_every_module_is_assigned_a_layer():
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert modules == PURE | EDGE


def test_pure_modules_import_nothing_that_does_io():
    for name in sorted(PURE):
        imported = _imports(PACKAGE / f"{name}.py")
        bad = {
            module
            for module in imported
            if any(module == f or module.startswith(f + ".") for f in FORBIDDEN_IN_PURE)
        }
        assert not bad, f"worker/{name}.py imports {sorted(bad)}"
