"""Every module of the package imports on its own, first: an import cycle shows only when a
module of the cycle is the first imported (`dtrack-worker console` imported the console's
queries first and failed on one, while every test that imported the store first passed)."""

from __future__ import annotations

import subprocess
import sys

_EACH_FIRST = """
import importlib, pkgutil, sys
import worker
names = sorted(m.name for m in pkgutil.walk_packages(worker.__path__, "worker.")
               if m.name != "worker.__main__")
for name in names:
    for loaded in [m for m in sys.modules if m == "worker" or m.startswith("worker.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as exc:
        print(f"{name}: {exc}")
print(len(names), "modules")
"""


def test_each_module_imports_first_without_a_cycle() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _EACH_FIRST], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    *failed, count = done.stdout.strip().splitlines()
    assert failed == [], failed
    assert int(count.split()[0]) > 100, count  # the walk found the package's modules
