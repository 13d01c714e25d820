"""The package's layers, as ``ls worker/`` shows them, and the rules between them.

core (pure) < adapters (the outside world) < service (long-running) < commands (the CLI).
A module imports only from its own layer or a lower one; ``core`` also imports nothing that
does I/O, reads the clock or the environment, or logs.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import worker

PACKAGE = Path(worker.__file__).parent
LAYERS = ("core", "adapters", "service", "commands")  # lowest first
MAX_MODULE_LINES = 400

FORBIDDEN_IN_CORE = {
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
    "sqlite3",
    "psycopg",
}

# Every command's module is imported to build the parser (--help): at its top it imports only
# these and the standard library; the service's packages are imported in its run function
# (tests/test_startup.py checks what a process really loads)
COMMANDS_IMPORT_AT_TOP = ("worker.core", "worker.commands", "orjson")


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _layer(module: str) -> int | None:
    """The layer of ``worker.<layer>...``; None for the package root and non-worker modules."""
    parts = module.split(".")
    if parts[0] != "worker" or len(parts) < 2:
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, wherever the import statement is (functions included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; write it absolute"
            assert node.module
            names.add(node.module)
            if node.module == "worker":  # `from worker import core`: a subpackage by name
                names.update(f"worker.{alias.name}" for alias in node.names)
    return names


def top_level_imports(path: Path) -> set[str]:
    """The imports at the module's top: not in functions, nor under ``if TYPE_CHECKING``."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            subpackages = [a.name for a in node.names if a.name in LAYERS]
            if node.module == "worker" and subpackages:
                names.update(f"worker.{name}" for name in subpackages)
            else:
                names.add(node.module)
    return names


def heavy_top_level_imports(path: Path) -> list[str]:
    """What a command module imports at its top beyond the standard library, the package
    root and COMMANDS_IMPORT_AT_TOP."""
    return sorted(
        name
        for name in top_level_imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and name != "worker"
        and not any(name == ok or name.startswith(ok + ".") for ok in COMMANDS_IMPORT_AT_TOP)
    )


def upward_imports(path: Path, root: Path = PACKAGE) -> list[str]:
    """The imports of ``path`` that point to a higher layer than its own."""
    own = LAYERS.index(path.relative_to(root).parts[0])
    return sorted(
        name for name in _imports(path) if (layer := _layer(name)) is not None and layer > own
    )


def test_the_package_shows_its_layers():
    entries = {path.name for path in PACKAGE.iterdir() if path.name != "__pycache__"}
    assert entries == {*LAYERS, "__init__.py", "__main__.py", "py.typed"}


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_says_what_it_holds_in_one_line(layer):
    docstring = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text()))
    assert docstring
    assert "\n" not in docstring.strip()


def test_the_package_root_stays_tiny():
    assert len((PACKAGE / "__init__.py").read_text().splitlines()) <= 5
    assert _imports(PACKAGE / "__init__.py") == set()


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_only_point_down(layer):
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        upward = upward_imports(path)
        assert not upward, f"{path.relative_to(PACKAGE)} imports upward: {upward}"


def test_the_rule_catches_an_upward_import(tmp_path):
    (tmp_path / "adapters").mkdir()
    module = tmp_path / "adapters" / "sneaky.py"
    module.write_text("def f():\n    from worker.service import serve\n")
    assert upward_imports(module, tmp_path) == ["worker.service"]
    module.write_text("from worker import commands\n")
    assert upward_imports(module, tmp_path) == ["worker.commands"]
    module.write_text("from worker.core import fpf\nimport worker.adapters.broker\n")
    assert upward_imports(module, tmp_path) == []


def test_commands_import_the_service_only_when_they_run():
    for path in sorted((PACKAGE / "commands").rglob("*.py")):
        heavy = heavy_top_level_imports(path)
        assert not heavy, f"{path.relative_to(PACKAGE)} imports at its top: {heavy}"


def test_the_commands_rule_sees_through_functions_and_type_checking(tmp_path):
    module = tmp_path / "command.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "import orjson\n"
        "from worker import __version__\n"
        "from worker.core import fpf\n"
        "if TYPE_CHECKING:\n"
        "    from worker.adapters.broker import Broker\n"
        "def run():\n"
        "    import aio_pika\n"
    )
    assert heavy_top_level_imports(module) == []
    module.write_text(
        "import structlog\nfrom worker import adapters\nfrom worker.service import x\n"
    )
    assert heavy_top_level_imports(module) == ["structlog", "worker.adapters", "worker.service"]


def test_core_imports_nothing_that_does_io():
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        bad = {
            name
            for name in _imports(path)
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_CORE)
        }
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_modules_stay_small():
    for path in _modules():
        lines = len(path.read_text().splitlines())
        assert lines <= MAX_MODULE_LINES, f"{path.relative_to(PACKAGE)}: {lines} lines"
