"""Start-up: each command imports only what it uses (issue 28, section 3).

``--help`` and every parser need the standard library, our own package and orjson (the core's
serializer, a few milliseconds); the offline ``validate`` and ``normalize`` add only the
compiled validator. The service's packages (aiohttp, aio-pika, psycopg, OpenTelemetry, ...)
load when a command that talks to the outside runs. Checked in fresh processes, since this
test's own process has imported everything.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import FPF
from worker.commands import catalog

SCRIPT = shutil.which("dtrack-worker", path=str(Path(sys.executable).parent))
REAL = FPF / "real" / "defectdojo__deptrack_npm_4.14.1.json"

# what the parsers may import besides the standard library: our package, and orjson, which
# worker.core serializes with (core.batches, core.events) and costs about 2 ms
PARSERS_MAY_IMPORT = {"worker", "orjson"}
# nor these of the standard library's: asyncio brings ssl, sockets and logging (some 25 ms)
PARSERS_SKIP = {"asyncio", "ssl"}
# validate and normalize add the compiled validator (and jsonschema only for an invalid export)
OFFLINE_MAY_IMPORT = PARSERS_MAY_IMPORT | {"jsonschema_rs"}

# what `dtrack-worker --help` imports of ours: the entry point, the catalog of commands, and
# what main() reports errors with
LISTING = {
    "worker.commands", "worker.commands.main", "worker.commands.catalog", "worker.core",
    "worker.core.urls", "worker.core.errors",
}  # fmt: skip

# Runs main() for --help and for every command's --help, in this one process, then prints
# what it printed and which top-level packages that imported (beyond what Python's start did).
_EVERY_HELP = """
import argparse, contextlib, io, sys
before = set(sys.modules)
from worker.commands.main import main, parser
commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
helps = {}
for name in ["", *commands.choices]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([name, "--help"] if name else ["--help"])
        except SystemExit as exit:
            helps[name] = [exit.code, out.getvalue().splitlines()[0]]
loaded = sorted({module.split(".")[0] for module in set(sys.modules) - before})
import json
sys.stderr.write(json.dumps({"helps": helps, "loaded": loaded}))
"""

# Runs main() on argv (stdout is the command's own), then prints the packages it imported.
_ONE_COMMAND = """
import sys
before = set(sys.modules)
from worker.commands.main import main
code = main(sys.argv[1:])
loaded = sorted({module.split(".")[0] for module in set(sys.modules) - before})
import json
sys.stderr.write(json.dumps([code, loaded]))
"""


def third_party(loaded: list[str], allowed: set[str]) -> list[str]:
    return [
        name
        for name in loaded
        # sysconfig's data module is the standard library's, named for the platform
        if name not in sys.stdlib_module_names | allowed and not name.startswith("_sysconfigdata_")
    ]


def _child(code: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return result


def test_help_imports_nothing_beyond_the_standard_library_and_core():
    """`dtrack-worker --help` itself, the console script, with Python's own import log."""
    assert SCRIPT, "the dtrack-worker console script is not installed next to this Python"
    result = subprocess.run(
        [SCRIPT, "--help"],
        capture_output=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.startswith(b"usage: dtrack-worker")
    imported = [  # "import time: <self us> | <cumulative us> | <indented module>"
        columns[2].strip()
        for line in result.stderr.decode().splitlines()
        if len(columns := line.split("|")) == 3 and columns[1].strip().isdigit()
    ]
    assert "worker.commands.main" in imported  # the log is the one looked for
    # the log also names what was only tried (`copy` tries Jython's org.python.core): the
    # packages that are not installed were not imported
    tried = {name.split(".")[0] for name in imported} - {"_distutils_hack"}
    loaded = sorted(name for name in tried if importlib.util.find_spec(name) is not None)
    assert not third_party(loaded, PARSERS_MAY_IMPORT), (
        f"dtrack-worker --help imports {third_party(loaded, PARSERS_MAY_IMPORT)}"
    )
    # nor any command's module nor the core's settings and output (tens of ms: --help was
    # 10.4x a bare interpreter with them, over issue 28's 10x): the catalog lists the commands
    ours = {name for name in imported if name.startswith("worker.")}
    assert ours <= LISTING, f"dtrack-worker --help imports {sorted(ours - LISTING)}"


def test_every_commands_parser_and_help_imports_nothing_beyond_core():
    report = orjson.loads(_child(_EVERY_HELP).stderr)
    helps = report["helps"]
    listed = {name for entry in catalog.CATALOG for name in (entry.name, *entry.aliases)}
    assert set(helps) == {"", *listed}  # every command the catalog lists has its parser
    for name, (code, first_line) in helps.items():
        assert code == 0, name
        shown = {"doctor": "check"}.get(name, name)  # an alias's help is its command's
        assert first_line.startswith(f"usage: dtrack-worker {shown}".rstrip()), (name, first_line)
    extra = third_party(report["loaded"], PARSERS_MAY_IMPORT) + sorted(
        PARSERS_SKIP.intersection(report["loaded"])
    )
    assert not extra, f"building every parser and printing its help imports {extra}"


@pytest.mark.parametrize("command", ["validate", "normalize"])
def test_the_offline_commands_import_only_the_compiled_validator(command):
    result = _child(_ONE_COMMAND, command, str(REAL))
    assert result.stdout  # the report, or the events: the command ran
    code, loaded = orjson.loads(result.stderr)
    assert code == 0
    extra = third_party(loaded, OFFLINE_MAY_IMPORT)
    assert not extra, f"dtrack-worker {command} imports {extra}"
