"""Finding state, and what changed between two exports of a project. Pure.

A finding is tracked by its key (the FPF ``matrix``). What counts as a change is a fixed set of
fields (``TRACKED``) plus, when configured, EPSS beyond a threshold; a fingerprint of the tracked
fields lets an unchanged finding be recognised without reading its stored copy
(``worker.core.transitions`` then says what changed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import operator
from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any, Literal

import orjson

from worker.core import finding

Status = Literal["open", "resolved", "suppressed"]

# The fields whose change is a `changed` transition (aliases: only additions count).
TRACKED = (
    "severity",
    "cvss_v2_score",
    "cvss_v2_vector",
    "cvss_v3_score",
    "cvss_v3_vector",
    "cvss_v4_score",
    "cvss_v4_vector",
    "kev",
    "analysis_state",
    "aliases",
)
_EMPTY: Mapping[str, Any] = {}
_tracked_values = operator.itemgetter(*TRACKED)  # every export's every finding: in C


def _score(value: Any) -> float | None:
    """DT 4.x writes 5 where DT 5 writes 5.0: one number, one fingerprint."""
    return None if value is None else float(value)


def tracked(row: Mapping[str, Any]) -> dict[str, Any]:
    """The tracked fields of one FPF finding row, normalized as events show them."""
    vulnerability = row["vulnerability"]
    get = vulnerability.get
    state = (row.get("analysis") or _EMPTY).get("state")
    return {
        "severity": (get("severity") or "UNASSIGNED").lower(),
        "cvss_v2_score": _score(get("cvssV2BaseScore")),
        "cvss_v2_vector": get("cvssV2Vector"),
        "cvss_v3_score": _score(get("cvssV3BaseScore")),
        "cvss_v3_vector": get("cvssV3Vector"),
        "cvss_v4_score": _score(get("cvssV4Score")),
        "cvss_v4_vector": get("cvssV4Vector"),
        "kev": get("isKev"),
        "analysis_state": state.lower() if state else None,
        "aliases": finding.aliases(get("aliases"), vulnerability["vulnId"]),
    }


def tracked_from(parts: Mapping[str, Any]) -> dict[str, Any]:
    """The tracked fields of a finding already normalized (``finding.parts``): ``tracked``'s
    values, without reading the row again."""
    vulnerability = parts["vulnerability"]
    cvss = vulnerability["cvss"]
    return {
        "severity": vulnerability["severity"],
        "cvss_v2_score": _score(cvss["v2"]["score"]),
        "cvss_v2_vector": cvss["v2"]["vector"],
        "cvss_v3_score": _score(cvss["v3"]["score"]),
        "cvss_v3_vector": cvss["v3"]["vector"],
        "cvss_v4_score": _score(cvss["v4"]["score"]),
        "cvss_v4_vector": cvss["v4"]["vector"],
        "kev": vulnerability["kev"],
        "analysis_state": parts["analysis"]["state"],
        "aliases": vulnerability["aliases"],
    }


def fingerprint(fields: Mapping[str, Any]) -> str:
    """A short stable digest of the tracked fields (the same in every process and release)."""
    text = orjson.dumps(_tracked_values(fields))  # a tuple: the JSON array a list gives
    return hashlib.blake2b(text, digest_size=8).hexdigest()


def epss(row: Mapping[str, Any]) -> float | None:
    return _score(row["vulnerability"].get("epssScore"))


@dataclasses.dataclass(frozen=True, slots=True)
class Prior:
    """What the store knows of a finding, in brief: enough to tell an unchanged one."""

    status: Status
    fingerprint: str
    epss: float | None


# Current and Seen, like transitions.Write and Transition, are made once per finding of an
# export and never changed after, but not frozen: a frozen dataclass sets each field through
# object.__setattr__, and the four took 31 ms more of a 10k first sync's CPU (of about 0.75 s).
@dataclasses.dataclass(slots=True)
class Current:
    """A finding of the export that is new, changed or back (unchanged ones are not kept)."""

    key: str
    tracked: dict[str, Any]
    fingerprint: str
    epss: float | None
    parts: dict[str, Any]

    @property
    def severity(self) -> str:
        return str(self.tracked["severity"])


@dataclasses.dataclass(slots=True)
class Seen:
    key: str
    severity: str
    current: Current | None  # None: present and unchanged


def epss_moved(old: float | None, new: float | None, delta: float | None) -> bool:
    if delta is None or old == new:
        return False
    if old is None or new is None:
        return True
    return abs(new - old) >= delta


class Comparison:
    """The ``make`` of ``fpf.read``: each first row against the store's ``priors``."""

    def __init__(self, priors: Mapping[str, Prior], zone: tzinfo, epss_delta: float | None):
        self._priors = priors
        self._zone = zone
        self._epss_delta = epss_delta

    def __call__(self, _: object, rows: Sequence[Mapping[str, Any]]) -> list[Seen]:
        seen = []
        priors, zone, delta = self._priors, self._zone, self._epss_delta
        for row in rows:
            key: str = row["matrix"]
            prior = priors.get(key)
            if prior is None:  # new: its event needs the whole finding anyway
                parts = finding.parts(row, zone)
                fields = tracked_from(parts)
                current = Current(key, fields, fingerprint(fields), epss(row), parts)
                seen.append(Seen(key, fields["severity"], current))
                continue
            fields = tracked(row)
            digest = fingerprint(fields)
            score = epss(row)
            if (
                prior.status == "open"
                and prior.fingerprint == digest
                and not epss_moved(prior.epss, score, delta)
            ):
                seen.append(Seen(key, fields["severity"], None))
                continue
            current = Current(key, fields, digest, score, finding.parts(row, zone))
            seen.append(Seen(key, fields["severity"], current))
        return seen


LONG_TEXTS = ("subtitle", "description", "recommendation", "references")


def snapshot(parts: Mapping[str, Any]) -> dict[str, Any]:
    """The last known finding as stored: enough for a full event once it is gone (the long
    texts are left out: a project's state stays small)."""
    vulnerability = dict(parts["vulnerability"])  # a copy, its keys in their order
    for key in LONG_TEXTS:
        vulnerability.pop(key, None)
    return {
        "component": parts["component"],
        "vulnerability": vulnerability,
        "analysis": parts["analysis"],
        "attribution": parts["attribution"],
    }


def with_long_texts_absent(stored_parts: Mapping[str, Any]) -> dict[str, Any]:
    """A snapshot as event parts: the texts it does not keep are null."""
    vulnerability = dict(stored_parts["vulnerability"])
    for key in ("description", "recommendation", "references", "subtitle"):
        vulnerability.setdefault(key, None)
    return {**stored_parts, "vulnerability": vulnerability}
