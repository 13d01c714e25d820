"""The larger variants of the resilience tests (not part of the default run).

    .venv/bin/python -m bench.soak [--scale 5]
    .venv/bin/python -m bench.soak --portfolio 1000

Runs tests/test_resilience.py, tests/test_fuzz.py and tests/test_cluster.py with
DTRACK_WORKER_SOAK_SCALE: at the default scale 5, R1 sends 10,000 notifications over 1,000
projects with a broker outage in the middle, R4 posts 7,500 generated webhook bodies and checks
5,000 generated exports, and R6 sends 10,000 notifications over 1,000 projects to a three-node
cluster of its own that loses the service's node mid-run. Their figures are printed at the end,
as in the test run.

With ``--portfolio N`` it runs the capacity simulation instead (bench/portfolio.py): N projects
through a burst and a re-analysis wave, the measured figures beside docs/capacity.md's model.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=5.0)
    parser.add_argument("--portfolio", type=int, metavar="N", help="the capacity simulation")
    args = parser.parse_args()
    if args.portfolio is not None:
        command = [sys.executable, "-m", "bench.portfolio", str(args.portfolio)]
        return subprocess.run(command, check=False).returncode
    env = dict(os.environ) | {"DTRACK_WORKER_SOAK_SCALE": str(args.scale)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/test_resilience.py",
        "tests/test_fuzz.py",
        "tests/test_cluster.py",
        "-o",
        "timeout=1800",
    ]
    return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
