"""The exception tree: every error kind dtrack-worker raises lives here.

* WorkerError
  x ConfigError              bad or missing settings: fail at start-up, never at run time
  x PermanentError           retrying cannot help: answer 4xx, park the message
    + InvalidNotification    a webhook body that is not a usable DT notification
      + InvalidProtobuf      ... because its bytes are not DT's protobuf Notification
    + InvalidExport          an FPF export that is not JSON or breaks the schema
    + InvalidJob             a queued job message that breaks the job contract
    + DtRejected             DT refused us (401/403/other 4xx): a configuration problem
    + DtMisconfigured        the address is not DT's API, or redirects away: configuration
    + ExportTooLarge         the export is over DTRACK_WORKER_MAX_EXPORT
    + ProjectGone            DT has no such project (404): not retried, announced instead
    + SuspiciousExport       would resolve most of a project's findings, unexplained by DT
  x TransientError           may succeed later: answer 503, retry with a delay
    + DtUnavailable          DT timed out, was unreachable, or answered 429/5xx
    + GuardPending           the mass-resolve guard waits for DT's facts to catch up
    + AnalysisPending        DT has not finished analysing what the export would show

Details travel as attributes (``problems``), never encoded in the message text.
"""

from __future__ import annotations

import dataclasses


class WorkerError(Exception):
    """Base of every error dtrack-worker raises on purpose."""


class ConfigError(WorkerError):
    """A setting is missing or malformed."""


class PermanentError(WorkerError):
    """Retrying the same input cannot succeed."""


class TransientError(WorkerError):
    """The same input may succeed later."""


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """One reason a document was rejected: where (JSON Pointer), what, and the offending value."""

    pointer: str
    message: str
    excerpt: str = ""

    def __str__(self) -> str:
        where = self.pointer or "/"
        return f"{where}: {self.message}" + (f" (value: {self.excerpt})" if self.excerpt else "")


class InvalidDocument(PermanentError):
    """A JSON document that could not be used; ``problems`` says exactly why."""

    def __init__(self, message: str, *, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems

    def report(self) -> list[dict[str, str]]:
        return [dataclasses.asdict(problem) for problem in self.problems]

    def __str__(self) -> str:
        head = super().__str__()
        if not self.problems:
            return head
        return head + ": " + "; ".join(str(problem) for problem in self.problems)


class InvalidNotification(InvalidDocument):
    """A webhook body that is not a usable Dependency-Track notification."""


class InvalidProtobuf(InvalidNotification):
    """An ``application/protobuf`` body that is not DT's ``Notification`` message."""


class InvalidExport(InvalidDocument):
    """An FPF export that is not JSON, or breaks the bundled FPF schema."""


class InvalidJob(InvalidDocument):
    """A job message that breaks the job v1 contract."""


class DtRejected(PermanentError):
    """DT answered 401, 403 or another 4xx: retrying the same request cannot help."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class DtMisconfigured(PermanentError):
    """DTRACK_WORKER_DT_URL does not answer as Dependency-Track's API (a frontend, a proxy
    path, a redirect to another host): never taken for data, such as a deleted project."""


class ExportTooLarge(PermanentError):
    """The export is larger than DTRACK_WORKER_MAX_EXPORT."""


class ProjectGone(PermanentError):
    """DT answered 404 for the project: it was deleted (or never existed)."""


class SuspiciousExport(PermanentError):
    """An export that would resolve more of a project's open findings than the mass-resolve
    guard allows, while DT's facts do not explain it: parked, applied only when forced."""


class GuardPending(TransientError):
    """An export the mass-resolve guard holds back only until DT's facts catch up (its BOM's
    analysis still running, or a BOM imported after the export was taken): retried through
    the retry tiers, parked ``attempts_exhausted`` if it persists."""


class AnalysisPending(TransientError):
    """DT is still analysing the project's BOM (the analysis gate): the export is not fetched;
    retried through the retry tiers, parked ``analysis_pending`` on the last attempt."""


class DtUnavailable(TransientError):
    """DT timed out, could not be reached, or answered 429/5xx, after every in-job retry."""
