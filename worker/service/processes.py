"""``receiver --processes N``: N receiver processes sharing one port (SO_REUSEPORT).

For hosts with more cores than one receiver process can use: the kernel spreads connections
over the processes. This process only supervises: it starts the N, passes SIGTERM and SIGINT
on, and when one of them exits on its own it stops the others and exits with that code, so
the container's restart policy restarts the whole.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from types import FrameType

import structlog

log = structlog.get_logger(__name__)

STOP_SECONDS = 60.0  # after SIGTERM, the processes drain; then they are killed


def supervise(arguments: Sequence[str], environ: Mapping[str, str], count: int) -> int:
    """Run ``dtrack-worker receiver ARGUMENTS --reuse-port`` ``count`` times; its exit code."""
    command = [sys.executable, "-m", "worker", "receiver", *arguments, "--reuse-port"]
    children = [subprocess.Popen(command, env=dict(environ)) for _ in range(count)]
    log.info("receiver.processes", processes=count, pids=[child.pid for child in children])
    stopping = False

    def forward(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        pid, status = os.wait()  # the first to exit, whoever it is
    except ChildProcessError:  # pragma: no cover - every child gone already
        return 1
    code = _shell_code(os.waitstatus_to_exitcode(status))
    if not stopping:
        log.error("receiver.process_exited", pid=pid, exit_code=code, stopping_the_others=True)
        forward(signal.SIGTERM, None)
    deadline = time.monotonic() + STOP_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if not stopping:
        return code or 1  # an exit nobody asked for is a failure, whatever its code
    return max(code, *(_shell_code(c.returncode) for c in children if c.pid != pid))


def _shell_code(code: int) -> int:
    """Popen's -N for a process killed by signal N, as a shell reports it: 128 + N."""
    return code if code >= 0 else 128 - code
