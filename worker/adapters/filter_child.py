"""The filter's evaluator process: ``python -m worker.adapters.filter_child``, run by
``filter_process``. CEL holds the GIL while it evaluates, so an expensive expression run by the
worker itself, even in a thread, would stop its event loop; here it stops only this process,
which the worker kills when an event is over its budget.

On stdin, frames (a 4-byte big-endian length, then that many bytes): first the expression,
then requests, each a 4-byte count of events and their bodies. On stdout, READY once the
expression is compiled, then one byte per event as soon as it is judged (its index in
``selection.VERDICTS``): the worker sees how far the evaluation got.
"""

from __future__ import annotations

import os
import resource
import struct
import sys
import types
from typing import BinaryIO

import orjson

from worker.core import selection
from worker.core.errors import ConfigError

READY = b"\xff"
CODES = {verdict: bytes([code]) for code, verdict in enumerate(selection.VERDICTS)}
_SIZE = struct.Struct("!I")


def frame(payload: bytes) -> bytes:
    return _SIZE.pack(len(payload)) + payload


def count(number: int) -> bytes:
    return _SIZE.pack(number)


def _read(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    if len(data) < size:  # the worker closed the pipe: it stops, or restarts us
        return None
    return data


def _frame(stream: BinaryIO) -> bytes | None:
    header = _read(stream, _SIZE.size)
    if header is None:
        return None
    return _read(stream, _SIZE.unpack(header)[0])


def main() -> int:
    if len(sys.argv) > 1:  # the address space it may use: a MemoryError past it, not the OOM
        limit = int(sys.argv[1])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # cel's package imports its command-line tool (prompt_toolkit: 160 ms, 20 MB); never used
    # here, and each restart after an event over budget would pay for it
    sys.modules.setdefault("cel.cli", types.ModuleType("cel.cli"))
    stdin, out = sys.stdin.buffer, sys.stdout.fileno()
    expression = _frame(stdin)
    if expression is None:
        return 0
    try:
        judge = selection.Filter(expression.decode()).judge
    except ConfigError as exc:  # the worker compiled it first: only if the two differ
        sys.stderr.write(f"{exc}\n")
        return 2
    failed = CODES[selection.FAILURES["evaluation_error"]]
    os.write(out, READY)
    while (header := _read(stdin, _SIZE.size)) is not None:
        for _ in range(_SIZE.unpack(header)[0]):
            body = _frame(stdin)
            if body is None:
                return 0
            try:
                event = orjson.loads(body)
            except orjson.JSONDecodeError:  # never from the worker; still, an answer
                os.write(out, failed)
                continue
            os.write(out, CODES[judge(event)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
