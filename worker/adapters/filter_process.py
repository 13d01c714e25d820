"""The finding filter, evaluated in a process of its own (``filter_child``), within a time
budget per event.

CEL holds the GIL while it evaluates (measured: a thread evaluating six nested ``.all()``
let the event loop run once in 0.7 s), so neither the loop nor a thread of this process can
run an expensive expression without stopping /healthz, the webhooks and the publishing. The
child judges the events one by one and answers each at once; when no answer comes within the
budget, the child is killed, that event is judged ``over_budget`` (published) and a new child
takes the rest. A child that dies judges the event it was on ``evaluator_failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
from collections.abc import Sequence

from worker.adapters import filter_child
from worker.core.errors import PermanentError
from worker.core.selection import FAILURES, VERDICTS, Verdict

BOOT_SECONDS = 30.0  # to start Python, import cel and compile: 0.1 s, far more on a busy host
STOP_SECONDS = 2.0  # for a child to exit once its input is closed, before it is killed
RETRY_SECONDS = 5.0  # after a child failed to start, events are judged evaluator_failed meanwhile
# The child's address space (RLIMIT_AS; it starts at about 25 MB): an expression that builds
# lists or strings of gigabytes fails (evaluation_error, or the child aborts: evaluator_failed)
# instead of the pod's OOM killer picking the worker.
MEMORY_BYTES = 512 * 2**20
# No cap on a request as a whole: only an event over its own budget is judged over_budget (a
# cap published the rest of a long batch unfiltered). The relay keeps its lease on a project
# renewed while a batch is judged.


@dataclasses.dataclass(slots=True)
class _Child:
    process: asyncio.subprocess.Process
    stdin: asyncio.StreamWriter
    stdout: asyncio.StreamReader
    answered: bool = False  # judged an event: its death before the next one is not the next's


class FilterProcess:
    """One evaluator process for one expression; ``verdicts`` serves one request at a time."""

    def __init__(self, expression: str, budget: float, memory_bytes: int = MEMORY_BYTES) -> None:
        self._expression = expression
        self._budget = budget  # seconds an event may take
        self._memory = memory_bytes  # the child's address space
        self._child: _Child | None = None
        self._lock = asyncio.Lock()  # one request on the pipes at a time, first come first served
        self._retry_at = 0.0
        self.pending = 0  # events of the current request not yet judged (a gauge reads it)
        self.started = 0  # processes started (the first, and one after each kill or death)

    @property
    def pid(self) -> int | None:
        """The evaluator process's id, while there is one."""
        return self._child.process.pid if self._child is not None else None

    async def start(self) -> None:
        """A child, once it compiled the expression; PermanentError when it cannot start."""
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                filter_child.__name__,
                str(self._memory),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,  # read once it ended: it writes nothing else
                env=_environment(),
            )
        except OSError as exc:
            raise PermanentError(f"the filter's evaluator process did not start: {exc}") from None
        assert process.stdin is not None
        assert process.stdout is not None
        self._child = _Child(process, process.stdin, process.stdout)
        self.started += 1
        ready = b""
        try:
            process.stdin.write(filter_child.frame(self._expression.encode()))
            async with asyncio.timeout(BOOT_SECONDS):
                ready = await process.stdout.read(1)
        except TimeoutError:
            pass
        except BaseException:  # cancelled while it started
            await self._stop(kill=True)
            raise
        if ready != filter_child.READY:
            _, errors = await self._stop(kill=True)
            raise PermanentError(
                f"the filter's evaluator process did not start: {_last_words(errors)}"
            )

    async def close(self) -> None:
        async with self._lock:
            await self._stop(kill=False)

    async def verdicts(self, events: Sequence[bytes]) -> list[Verdict]:
        """One verdict per event, in order; never raises for what an event or the child does."""
        async with self._lock:  # taken even for no events: requests keep their order
            verdicts: list[Verdict] = []
            try:
                while (left := len(events) - len(verdicts)) > 0:
                    if self._child is None and not await self._restart():
                        verdicts += [FAILURES["evaluator_failed"]] * left
                    else:
                        verdicts += await self._request(events[len(verdicts) :])
            finally:
                self.pending = 0
            return verdicts

    async def _restart(self) -> bool:
        loop = asyncio.get_running_loop()
        if loop.time() < self._retry_at:
            return False
        try:
            await self.start()
        except PermanentError:
            self._retry_at = loop.time() + RETRY_SECONDS
            return False
        return True

    async def _request(self, events: Sequence[bytes]) -> list[Verdict]:
        """Verdicts for a prefix of ``events``: all of them, or up to the one the child was
        on when it went over budget or died (judged so; the child is gone then). None when
        a child that had judged events before died before this request: the caller starts
        another (a fresh child that dies on the first event judges it evaluator_failed)."""
        child = self._child
        assert child is not None
        wanted = len(events)
        answers = bytearray()
        try:
            if child.process.returncode is not None:
                raise ConnectionResetError
            child.stdin.write(
                filter_child.count(wanted) + b"".join(map(filter_child.frame, events))
            )
        except (ConnectionError, RuntimeError):  # its pipe is closed: it died
            failure = "evaluator_failed"
        else:
            failure = await self._answers(child, wanted, answers)
        if failure:
            written, _ = await self._stop(kill=True)
            answers += written  # judged before it was killed, or died
            if not answers and child.answered and failure == "evaluator_failed":
                return []  # it died while idle: the event was never tried
        verdicts = [VERDICTS[code] for code in answers[:wanted]]
        if len(verdicts) < wanted and failure:
            verdicts.append(FAILURES[failure])
        return verdicts

    async def _answers(self, child: _Child, wanted: int, answers: bytearray) -> str:
        """The child's answers into ``answers`` as they come; what stopped them short
        (over_budget, evaluator_failed), else ""."""
        loop = asyncio.get_running_loop()
        self.pending = wanted
        try:
            async with asyncio.timeout_at(loop.time() + self._budget) as budget:
                while len(answers) < wanted:
                    chunk = await child.stdout.read(wanted - len(answers))
                    if not chunk:
                        return "evaluator_failed"
                    answers += chunk
                    child.answered = True
                    self.pending = wanted - len(answers)
                    budget.reschedule(loop.time() + self._budget)
        except TimeoutError:
            return "over_budget"
        except BaseException:  # cancelled mid-request: the pipes are out of step
            await self._stop(kill=True)
            raise
        return ""

    async def _stop(self, *, kill: bool) -> tuple[bytes, bytes]:
        """End the child (killed, or asked by closing its input); what it wrote until then,
        on stdout and stderr."""
        child, self._child = self._child, None
        if child is None:
            return b"", b""
        if kill:
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
        child.stdin.close()  # the child's EOF: it exits
        try:
            async with asyncio.timeout(STOP_SECONDS):
                return await child.process.communicate()
        except TimeoutError:  # evaluating still: killed
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            await child.process.wait()
            return b"", b""


def _last_words(errors: bytes) -> str:
    """What a child that did not start wrote: its message, or a traceback's last line."""
    text = errors.decode(errors="replace").strip()
    if not text:
        return "no answer"
    if text.startswith("Traceback"):
        return text.splitlines()[-1]
    return text[:2000]


def _environment() -> dict[str, str]:
    """Where this process finds its modules, and nothing else: no secret of the worker's
    environment (the DT API key, the broker's URL) reaches the child."""
    return {"PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
