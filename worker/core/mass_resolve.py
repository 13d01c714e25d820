"""The mass-resolve guard: an export that would resolve most of a project's open findings
while DT's own facts about the project do not explain it is held back. Pure.

A DT that answers an empty export and an empty findings list for a moment (a restart, a
database failover) would otherwise resolve every finding of the project, and reopen them all
with the next good export. A real mass fix comes with a new BOM that DT imported after the last
export applied, and analysed, in an active project: DT's project API says so
(``lastBomImport``, ``lastVulnerabilityAnalysis`` from DT 4.13 on, ``active``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from worker.core.dates import epoch, instant
from worker.core.errors import GuardPending, SuspiciousExport
from worker.core.tracking import Prior
from worker.core.transitions import Transition


@dataclasses.dataclass(frozen=True, slots=True)
class Tally:
    """A project's open findings before an export, and how many of them it would resolve."""

    opened: int
    resolving: int
    # the export and DT's findings list both empty: DT's hiccup signature, which a restart
    # gives every project at once, small ones included (the minimum does not apply)
    emptied: bool = False

    @classmethod
    def of(
        cls, priors: Mapping[str, Prior], transitions: Iterable[Transition], *, emptied: bool
    ) -> Tally:
        return cls(
            opened=sum(prior.status == "open" for prior in priors.values()),
            resolving=sum(transition.kind == "resolved" for transition in transitions),
            emptied=emptied,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Guard:
    share: float | None  # more than this share of the open findings resolving trips it; None: off
    minimum: int  # fewer resolving never trip it (a small project's fix), but for an emptied

    def trips(self, tally: Tally) -> bool:
        return (
            self.share is not None
            and (tally.emptied or tally.resolving >= self.minimum)
            and tally.resolving > self.share * tally.opened
        )

    def refusal(
        self, tally: Tally, reason: Unexplained, project: str, exported_at: str
    ) -> SuspiciousExport | GuardPending:
        # the counts first: `parked list` shows the first 100 characters
        said = (
            f"{tally.resolving} of {tally.opened} open findings would resolve (over the "
            f"{(self.share or 0) * 100:g}% guard) and DT does not explain it"
        )
        where = f"(project {project}, export taken at {exported_at})"
        if reason.pending:
            return GuardPending(f"{said} yet: {reason.text} {where}; tried again later")
        return SuspiciousExport(
            f"{said}: {reason.text} {where}. Once checked, apply it anyway with "
            "`dtrack-worker parked replay --force JOB` (or `state baseline --force`)"
        )


OFF = Guard(None, 1)
DEFAULT = Guard(0.9, 5)  # the settings' defaults: more than 90 %, and at least 5 findings


# DT's facts hold an export back for so long after the BOM import at most: a BOM whose analysis
# DT never records (one without components, an analysis that failed) must not stop the project
# for good; past it DT's facts no longer say "pending" (the analysis gate's window too)
STALE_AFTER_SECONDS = 6 * 3600.0

_RELEASE = re.compile(r"(\d+)\.(\d+)")


def records_analyses(dt_version: str | None) -> bool:
    """DT ``dt_version`` (``GET /api/version``'s ``version``) records a project's
    ``lastVulnerabilityAnalysis`` (4.13 and later): there, a project with a BOM and no analysis
    recorded has not been analysed yet. Unknown or older: no signal."""
    found = _RELEASE.match(dt_version or "")
    return found is not None and (int(found[1]), int(found[2])) >= (4, 13)


@dataclasses.dataclass(frozen=True, slots=True)
class BomFacts:
    """What DT's ``GET /api/v1/project/{uuid}`` says of the project's BOM and analysis."""

    listed: bool  # DT answered with the project
    active: bool | None = None
    last_bom_import: float | None = None  # epoch seconds
    last_analysis: float | None = None  # DT 4.13+: lastVulnerabilityAnalysis
    records: bool = False  # this DT records analyses (4.13+): ``records_analyses``

    @property
    def never_analysed(self) -> bool:
        """A BOM imported and no analysis recorded, on a DT that records them: a new project
        (a line's new version) before its first analysis (its export is empty)."""
        return self.records and self.last_bom_import is not None and self.last_analysis is None

    @property
    def analysing(self) -> bool:
        """DT's last vulnerability analysis ended before its last BOM import, or none is
        recorded yet on a DT that records them: the analysis of that BOM has not finished
        (DT 4.12 and older record no analysis: never)."""
        bom, analysis = self.last_bom_import, self.last_analysis
        return self.never_analysed or (bom is not None and analysis is not None and analysis < bom)

    def analysis_said(self) -> str:
        """The last analysis, in words, for messages."""
        if self.last_analysis is None:
            return "the project was never analysed"
        return f"the last analysis ended {iso(self.last_analysis)}"

    @classmethod
    def of(cls, project: Mapping[str, Any] | None, *, records_analyses: bool = False) -> BomFacts:
        """From DT's project object (dates in epoch milliseconds, as Jackson writes them);
        None: DT has no such project. ``records_analyses``: DT's version is 4.13 or later."""
        if project is None:
            return cls(listed=False)
        active = project.get("active")
        return cls(
            listed=True,
            active=active if isinstance(active, bool) else None,
            last_bom_import=_moment(project.get("lastBomImport")),
            last_analysis=_moment(project.get("lastVulnerabilityAnalysis")),
            records=records_analyses,
        )


def _moment(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    text = instant(value)
    return None if text is None else epoch(text)


@dataclasses.dataclass(frozen=True, slots=True)
class Unexplained:
    """Why DT's facts do not explain an export's resolutions; ``pending``: only not yet (DT
    is still analysing, or took a BOM after the export), which passes by itself in minutes."""

    text: str
    pending: bool = False


def unexplained(facts: BomFacts, *, since: float | None, exported: float) -> Unexplained | None:
    """Why DT's facts do not explain findings resolving between the export applied at
    ``since`` and the one taken at ``exported``; None when they do."""
    if not facts.listed:
        return Unexplained("DT does not list the project")
    if facts.active is False:
        return Unexplained("the project is inactive in DT")
    bom = facts.last_bom_import
    if bom is None:
        return Unexplained("DT records no BOM import for the project")
    if since is not None and bom <= since:
        return Unexplained(
            f"no BOM was imported since the last export applied ({iso(since)}): the last "
            f"at {iso(bom)}"
        )
    if bom > exported:
        return Unexplained(
            f"the last BOM ({iso(bom)}) was imported after this export was taken ({iso(exported)})",
            pending=True,
        )
    if facts.never_analysed and exported - bom > STALE_AFTER_SECONDS:
        return None  # a BOM DT never analyses (no components): its empty export is the truth
    if facts.analysing:
        return Unexplained(
            f"the analysis of the BOM imported at {iso(bom)} has not finished "
            f"({facts.analysis_said()})",
            pending=True,
        )
    return None


def iso(moment: float) -> str:
    """Epoch seconds as DT's facts are shown in messages (UTC, milliseconds)."""
    return instant(round(moment * 1000)) or "?"
