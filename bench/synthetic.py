"""Realistic synthetic FPF exports (DT 4.14 shape) for benchmarks and load tests.

Shapes and value distributions follow the real exports in tests/fixtures/fpf/real: long
descriptions, most findings with aliases, CVSS v3/v4, EPSS, CWEs, v4 zone-less dates, a few
analysed findings. Deterministic for a given seed.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import orjson

_SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO", "UNASSIGNED")
_RANK = {severity: rank for rank, severity in enumerate(_SEVERITIES)}
_SOURCES = ("NVD", "GITHUB", "OSV", "OSSINDEX")
_STATES = ("EXPLOITABLE", "IN_TRIAGE", "FALSE_POSITIVE", "NOT_AFFECTED", "RESOLVED", "NOT_SET")
_WORDS = [
    "attacker",
    "remote",
    "denial",
    "service",
    "crafted",
    "request",
    "allows",
    "vulnerability",
    "version",
    "before",
    "prototype",
    "pollution",
    "regular",
    "expression",
    "memory",
    "buffer",
    "overflow",
    "input",
    "validation",
    "deserialization",
    "untrusted",
    "data",
    "injection",
    "path",
    "traversal",
    "improper",
    "neutralization",
]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def _date(rng: random.Random) -> str:
    day = f"20{rng.randint(10, 26)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    return f"{day} {clock}.{rng.randint(0, 999)}"


def finding(rng: random.Random, project_uuid: str) -> dict[str, Any]:
    component_uuid, vuln_uuid = _uuid(rng), _uuid(rng)
    severity = rng.choices(_SEVERITIES, weights=(10, 30, 35, 15, 5, 5))[0]
    cve = f"CVE-20{rng.randint(10, 26)}-{rng.randint(1000, 99999)}"
    name = f"package-{rng.randint(1, 5000)}"
    version = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
    vulnerability: dict[str, Any] = {
        "uuid": vuln_uuid,
        "source": rng.choice(_SOURCES),
        "vulnId": cve,
        "severity": severity,
        "severityRank": _RANK[severity],
        "description": _text(rng, rng.randint(30, 220)),
        "aliases": [{"cveId": cve, "ghsaId": f"GHSA-{rng.getrandbits(40):010x}"}]
        if rng.random() < 0.7
        else [],
        "published": _date(rng),
    }
    if rng.random() < 0.5:
        vulnerability["title"] = _text(rng, 8)
    if rng.random() < 0.8:
        cwe = rng.randint(20, 1400)
        vulnerability |= {
            "cweId": cwe,
            "cweName": _text(rng, 5),
            "cwes": [{"cweId": cwe, "name": _text(rng, 5)}],
        }
    if rng.random() < 0.6:
        vulnerability |= {
            "cvssV3BaseScore": round(rng.uniform(0, 10), 1),
            "cvssV3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        }
    if rng.random() < 0.4:
        vulnerability |= {
            "cvssV4Score": round(rng.uniform(0, 10), 1),
            "cvssV4Vector": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:H",
        }
    if rng.random() < 0.5:
        vulnerability |= {
            "epssScore": round(rng.random() / 10, 5),
            "epssPercentile": round(rng.random(), 5),
        }
    if rng.random() < 0.3:
        vulnerability["references"] = f"* [https://example.org/{cve}](https://example.org/{cve})"
    analysis: dict[str, Any] = {"isSuppressed": False}
    if rng.random() < 0.1:
        analysis["state"] = rng.choice(_STATES)
    return {
        "component": {
            "uuid": component_uuid,
            "name": name,
            "version": version,
            "purl": f"pkg:npm/{name}@{version}",
            "project": project_uuid,
            "latestVersion": f"{rng.randint(1, 12)}.0.0",
        },
        "attribution": {"analyzerIdentity": "INTERNAL_ANALYZER", "attributedOn": _date(rng)},
        "vulnerability": vulnerability,
        "analysis": analysis,
        "matrix": f"{project_uuid}:{component_uuid}:{vuln_uuid}",
    }


def export(findings: int, *, seed: int = 7, project: str | None = None) -> dict[str, Any]:
    """A DT 4.14-shaped export; ``project``: whose (else a uuid drawn from the seed)."""
    rng = random.Random(seed)
    drawn = _uuid(rng)  # drawn either way: the same seed gives the same findings
    project_uuid = project or drawn
    return {
        "version": "1.3",
        "meta": {
            "application": "Dependency-Track",
            "version": "4.14.1",
            "timestamp": "2026-04-24T19:39:49Z",
            "baseUrl": "http://dtrack.example.org",
        },
        "project": {"uuid": project_uuid, "name": "synthetic", "version": "1.0.0"},
        "findings": [finding(rng, project_uuid) for _ in range(findings)],
    }


def export_bytes(findings: int, *, seed: int = 7, project: str | None = None) -> bytes:
    return orjson.dumps(export(findings, seed=seed, project=project))


def rescored_bytes(
    findings: int, *, project: str, seconds: int, rescore: float = 0.0, seed: int = 7
) -> bytes:
    """The export of ``project`` at 10:00 plus ``seconds`` on 2026-11-30, with ``rescore`` of
    its findings re-scored (CRITICAL <-> LOW): a later re-export with changes."""
    document = export(findings, seed=seed, project=project)
    document["meta"]["timestamp"] = f"2026-11-30T10:{seconds // 60:02d}:{seconds % 60:02d}Z"
    step = int(1 / rescore) if rescore else 0
    for index, finding in enumerate(document["findings"]):
        if step and index % step == 0:
            vulnerability = finding["vulnerability"]
            vulnerability["severity"] = (
                "LOW" if vulnerability["severity"] == "CRITICAL" else ("CRITICAL")
            )
    return orjson.dumps(document)
