"""The analysis gate: has DT finished analysing what a job's export would show? Pure.

DT 4.x sends BOM_PROCESSED right after ingesting a BOM, before its vulnerability analysis,
and DT 5 does the same by default: an export taken then is incomplete (for a new version,
empty), and applied it would resolve findings that reopen minutes later. So before a fetch a
worker asks DT, by the best signal there is:

* ``token``: the notification carried the BOM upload's token (DT 5's BOM_CONSUMED and
  BOM_PROCESSED, ``subject.token``): ``GET /api/v1/event/token/{token}`` answers
  ``processing`` until the analysis of that upload has ended;
* ``facts``: no token, but DT 4.13+ records ``lastVulnerabilityAnalysis`` beside
  ``lastBomImport`` on the project: an analysis that ended before the last import is pending,
  and so is a project with a BOM and no analysis recorded yet (a new version before its first
  analysis), for STALE_AFTER_SECONDS at most;
* ``none``: DT gives no signal (4.12 and older record no analysis; a key that may not read the
  project): the export is applied as today, with the mass-resolve guard and the receiver's
  coalescing delay as the only protection (docs/state.md).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from worker.core.env import PREFIX, Env
from worker.core.errors import AnalysisPending, ConfigError
from worker.core.mass_resolve import STALE_AFTER_SECONDS, BomFacts, iso

Basis = Literal["token", "facts", "none"]

__all__ = ["STALE_AFTER_SECONDS"]  # mass_resolve's: the guard bounds a never-analysed BOM too
DEFAULT_WAIT_SECONDS = 15.0  # then a retry tier: a waiting job holds a delivery
DEFAULT_POLL_SECONDS = 5.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class GateSettings:
    """DTRACK_WORKER_ANALYSIS_WAIT and _POLL."""

    wait: float = DEFAULT_WAIT_SECONDS  # per attempt; 0: the gate is off
    poll: float = DEFAULT_POLL_SECONDS  # between two questions to DT while it waits

    @property
    def enabled(self) -> bool:
        return self.wait > 0


DEFAULT = GateSettings()
OFF = GateSettings(wait=0.0)


def gate_settings(env: Env) -> GateSettings:
    wait = env.number("ANALYSIS_WAIT", DEFAULT_WAIT_SECONDS, minimum=0, maximum=3600)
    poll = env.number("ANALYSIS_POLL", DEFAULT_POLL_SECONDS, minimum=0.01, maximum=600)
    if wait and poll > wait:
        raise ConfigError(
            f"{PREFIX}ANALYSIS_POLL={poll:g} is longer than {PREFIX}ANALYSIS_WAIT={wait:g}: a "
            "job would never ask DT again while it waits"
        )
    return GateSettings(wait=wait, poll=poll)


@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    """What DT said, once: analysis ``pending`` or not, on which ``basis``, and in words."""

    basis: Basis
    pending: bool
    detail: str


def by_token(token: str, processing: bool) -> Reading:
    if processing:
        return Reading("token", True, f"DT is still processing the BOM upload {token}")
    # DT answers false for a token it does not know, too: nothing better can be learnt
    return Reading("token", False, f"DT has finished processing the BOM upload {token}")


def by_facts(facts: BomFacts, now: float) -> Reading:
    """From DT's project facts, at ``now`` (epoch seconds)."""
    if not facts.listed:  # the fetch confirms it gone, or fails on its own
        return Reading("none", False, "DT does not list the project")
    if facts.last_bom_import is None:
        return Reading("none", False, "DT records no BOM import for the project")
    if facts.last_analysis is None and not facts.never_analysed:
        return Reading(
            "none", False, "DT records no vulnerability analysis (DT 4.12 or older, or unknown)"
        )
    if facts.analysing and now - facts.last_bom_import > STALE_AFTER_SECONDS:
        return Reading(
            "none",
            False,
            f"DT has recorded no analysis since the BOM imported at "
            f"{iso(facts.last_bom_import)}, over {STALE_AFTER_SECONDS / 3600:g} h ago "
            f"({facts.analysis_said()}): no longer waited for",
        )
    if facts.analysing:
        return Reading(
            "facts",
            True,
            f"DT is analysing the BOM imported at {iso(facts.last_bom_import)} "
            f"({facts.analysis_said()})",
        )
    return Reading(
        "facts",
        False,
        f"DT's last analysis ended {iso(facts.last_analysis or 0)}, after its last BOM import "
        f"({iso(facts.last_bom_import)})",
    )


def unreadable(why: str) -> Reading:
    """The project's facts could not be read (the key lacks VIEW_PORTFOLIO): no signal."""
    return Reading("none", False, f"DT's project facts could not be read ({why})")


def refusal(reading: Reading, project: str, waited: float) -> AnalysisPending:
    return AnalysisPending(
        f"DT's analysis is still pending after {waited:.1f} s: {reading.detail} (project "
        f"{project}); the export is not applied before it ends"
    )
