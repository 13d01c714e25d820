"""The OCSF output profile: a finding CloudEvent (snapshot or change) as an OCSF 1.8.0
**Vulnerability Finding** (class_uid 2002).

OCSF rejects keys it does not know, so only keys of the class and its objects are written (the
test suite validates every event it makes against the class schema); what DT says and OCSF has no
place for goes in ``unmapped``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

OCSF_VERSION = "1.8.0"
CLASS_UID = 2002
CLASS_NAME = "Vulnerability Finding"
CATEGORY_UID = 2
CATEGORY_NAME = "Findings"
CONTENT_TYPE = "application/json"  # of a message, one finding or a JSON array of them
MESSAGE_TYPE = "ocsf.vulnerability_finding"  # the AMQP type of an OCSF message

SEVERITY_IDS = {"critical": 5, "high": 4, "medium": 3, "low": 2, "info": 1, "unassigned": 0}
_SEVERITY_NAMES = {
    5: "Critical",
    4: "High",
    3: "Medium",
    2: "Low",
    1: "Informational",
    0: "Unknown",
}

# activity and status of each event kind: the snapshot of a finding is its creation
_ACTIVITIES = {1: "Create", 2: "Update", 3: "Close"}
_STATUSES = {1: "New", 3: "Suppressed", 4: "Resolved"}
KINDS: dict[str, tuple[int, int]] = {  # kind -> (activity_id, status_id)
    "snapshot": (1, 1),
    "opened": (1, 1),
    "changed": (2, 1),
    "reopened": (2, 1),
    "resolved": (3, 4),
    "suppressed": (3, 3),
}

_URL = re.compile(r"https?://[^\s)\]>]+")
_CVSS_VERSION = re.compile(r"^CVSS:(\d+\.\d+)/")


def finding(event: dict[str, Any], *, product_version: str) -> dict[str, Any]:
    """The OCSF Vulnerability Finding of a finding event; ``product_version``: dtrack-worker's."""
    data = event["data"]
    change = data.get("change")
    kind = change["kind"] if change else "snapshot"
    activity_id, status_id = KINDS[kind]
    vulnerability, component, project = data["vulnerability"], data["component"], data["project"]
    severity_id = SEVERITY_IDS.get(vulnerability["severity"], 0)
    at = _millis(event["time"])
    subject = f"{vulnerability['id']} in {_package(component)}"
    result: dict[str, Any] = {
        "activity_id": activity_id,
        "activity_name": _ACTIVITIES[activity_id],
        "category_uid": CATEGORY_UID,
        "category_name": CATEGORY_NAME,
        "class_uid": CLASS_UID,
        "class_name": CLASS_NAME,
        "type_uid": CLASS_UID * 100 + activity_id,
        "type_name": f"{CLASS_NAME}: {_ACTIVITIES[activity_id]}",
        "severity_id": severity_id,
        "severity": _SEVERITY_NAMES[severity_id],
        "status_id": status_id,
        "status": _STATUSES[status_id],
        "time": at,
        "message": f"{subject}: {'found' if kind == 'snapshot' else kind} in project "
        f"{_project_name(project)}",
        "metadata": _metadata(event, data, product_version),
        "finding_info": _finding_info(data, change, subject, at),
        "vulnerabilities": [_vulnerability(vulnerability, component, data, change, at)],
        "resources": [_resource(project)],
        "unmapped": _unmapped(event, data),
    }
    return result


def _metadata(event: dict[str, Any], data: dict[str, Any], version: str) -> dict[str, Any]:
    product: dict[str, Any] = {
        "name": "Dependency-Track",
        "vendor_name": "OWASP",
        "feature": {"name": "dtrack-worker", "version": version},
    }
    dt_version = (data.get("fpf") or {}).get("dt_version")
    if dt_version:
        product["version"] = dt_version
    metadata: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": product,
        "uid": event["id"],
        "original_time": event["time"],
        "log_provider": event["source"],
    }
    if "sequence" in event:
        metadata["sequence"] = int(event["sequence"])
    return metadata


def _finding_info(
    data: dict[str, Any], change: dict[str, Any] | None, subject: str, at: int
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "uid": data["finding_id"] if "finding_id" in data else data["finding_key"],  # v2, v1
        "title": subject,
        "types": ["Vulnerability"],
        "data_sources": ["Dependency-Track"],
        "last_seen_time": at,
    }
    description = data["vulnerability"]["description"]
    if description:
        info["desc"] = description
    first_seen = change["first_seen"] if change else data["attribution"]["attributed_on"]
    if first_seen:
        info["first_seen_time"] = _millis(first_seen)
        info["created_time"] = _millis(first_seen)
    if change:
        info["modified_time"] = at
    return info


def _vulnerability(
    vulnerability: dict[str, Any],
    component: dict[str, Any],
    data: dict[str, Any],
    change: dict[str, Any] | None,
    at: int,
) -> dict[str, Any]:
    title = vulnerability["title"] or vulnerability["subtitle"]
    result: dict[str, Any] = {
        "cve": _cve(vulnerability, title),
        "title": title or vulnerability["id"],
        "severity": _SEVERITY_NAMES[SEVERITY_IDS.get(vulnerability["severity"], 0)],
        "vendor_name": vulnerability["source"],
        "affected_packages": [_affected_package(component)],
        "last_seen_time": at,
    }
    if vulnerability["description"]:
        result["desc"] = vulnerability["description"]
    if vulnerability["aliases"]:
        result["related_vulnerabilities"] = list(vulnerability["aliases"])
    if vulnerability["kev"]:  # in CISA's catalogue: exploited in the wild
        result["is_exploit_available"] = True
    references = _references(vulnerability["references"], data["attribution"]["reference_url"])
    if references:
        result["references"] = references
    if vulnerability["recommendation"]:
        result["remediation"] = {"desc": vulnerability["recommendation"]}
    first_seen = change["first_seen"] if change else data["attribution"]["attributed_on"]
    if first_seen:
        result["first_seen_time"] = _millis(first_seen)
    return result


def _cve(vulnerability: dict[str, Any], title: str | None) -> dict[str, Any]:
    """DT's vulnerability as OCSF's ``cve`` (uid: DT's id, a CVE or GHSA, OSV... id)."""
    cve: dict[str, Any] = {"uid": vulnerability["id"]}
    scores = _cvss(vulnerability["cvss"])
    if scores:
        cve["cvss"] = scores
    epss = vulnerability["epss"]
    if epss["score"] is not None:
        cve["epss"] = {"score": str(epss["score"])}
        if epss["percentile"] is not None:
            cve["epss"]["percentile"] = epss["percentile"]
    cwes = vulnerability["cwes"]
    if cwes:  # OCSF has one CWE per CVE, the rest are related
        cve["cwe"] = {"uid": f"CWE-{cwes[0]}"}
        if len(cwes) > 1:
            cve["related_cwes"] = [{"uid": f"CWE-{cwe}"} for cwe in cwes[1:]]
    if vulnerability["published"]:
        cve["created_time"] = _millis(vulnerability["published"])
    if title:
        cve["title"] = title
    return cve  # the description is the vulnerability's (and the finding's), not repeated


def _affected_package(component: dict[str, Any]) -> dict[str, Any]:
    package: dict[str, Any] = {
        "name": _package_name(component),
        "version": component["version"] or "",
        "uid": component["uuid"],
    }
    if component["purl"]:
        package["purl"] = component["purl"]
    if component["cpe"]:
        package["cpe_name"] = component["cpe"]
    return package


def _cvss(cvss: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for key, default in (("v4", "4.0"), ("v3", "3.0"), ("v2", "2.0")):
        entry = cvss[key]
        if entry["score"] is None:
            continue
        vector = entry["vector"]
        match = _CVSS_VERSION.match(vector or "")
        score: dict[str, Any] = {
            "version": match.group(1) if match else default,
            "base_score": float(entry["score"]),
            "overall_score": float(entry["score"]),  # DT keeps base scores only
        }
        if vector:
            score["vector_string"] = vector
        found.append(score)
    return found


def _references(markdown: str | None, reference_url: str | None) -> list[str]:
    """The URLs of DT's Markdown reference list, and the analyzer's reference, once each."""
    urls = _URL.findall(markdown or "")
    if reference_url:
        urls.append(reference_url)
    return list(dict.fromkeys(urls))


def _resource(project: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = {"uid": project["uuid"], "type": "Project"}
    if project.get("name"):
        resource["name"] = project["name"]
    if project.get("version"):
        resource["version"] = project["version"]
    tags = project.get("tags")
    if tags:
        resource["labels"] = list(tags)
    return resource


def _unmapped(event: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """DT's fields with no place in OCSF, under the names of the CloudEvent's ``data``."""
    vulnerability, component = data["vulnerability"], data["component"]
    unmapped: dict[str, Any] = {
        "cloudevent_type": event["type"],
        "analysis": data["analysis"],
        "attribution": data["attribution"],
        "component": {
            "group": component["group"],
            "latest_version": component["latest_version"],
            "scope": component["scope"],
        },
        "vulnerability": {
            "uuid": vulnerability["uuid"],
            "subtitle": vulnerability["subtitle"],
            "severity_rank": vulnerability["severity_rank"],
            "owasp_rr": vulnerability["owasp_rr"],
            "kev": vulnerability["kev"],
        },
        "fpf": data["fpf"],
    }
    if "active" in data["project"]:
        unmapped["project"] = {"active": data["project"]["active"]}
    if data.get("change"):
        unmapped["change"] = data["change"]
    return unmapped


def _package(component: dict[str, Any]) -> str:
    name = _package_name(component)
    return f"{name}@{component['version']}" if component["version"] else name


def _package_name(component: dict[str, Any]) -> str:
    group = component["group"]
    return f"{group}/{component['name']}" if group else str(component["name"])


def _project_name(project: dict[str, Any]) -> str:
    name = project.get("name") or project["uuid"]
    return f"{name} {project['version']}" if project.get("version") else str(name)


def _millis(instant: str) -> int:
    """Epoch milliseconds of one of our UTC instants (``...T...Z``)."""
    return int(datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp() * 1000)
