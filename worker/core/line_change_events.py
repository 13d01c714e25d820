"""Line transitions as CloudEvents: ``dtrack-worker.finding.<kind>.v2``. Pure.

v2 is v1 (``worker.core.change_events``) with ``subject`` the line finding's stable id
(``line_findings.finding_id``) instead of DT's ``matrix``, and ``data`` adding the identity:
the line, the package, the vulnerability id and its aliases, the DT findings behind it
(``instances``) and the one described (``matrix``). See docs/events.md, "Change events v2".
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from worker.core.change_events import CHANGE_ID_NAMESPACE, SEQUENCE_DIGITS, iso, routing_key
from worker.core.events import DATA_CONTENT_TYPE, SPEC_VERSION, Event
from worker.core.ids import Uuid5Prefix
from worker.core.line_compare import LineTransition
from worker.core.line_diff import LineDiff
from worker.core.lines import Line

LINE_CHANGE_EVENT_SCHEMA = "urn:dtrack-worker:schema:finding-change:2.0.0"


def line_change_type(kind: str) -> str:
    return f"dtrack-worker.finding.{kind}.v2"


class LineChangeEvents:
    """Events for the transitions of one line, from one export (or one other occasion)."""

    def __init__(
        self,
        *,
        source: str,
        line: Line,
        project: dict[str, Any],
        basis: str,
        fpf: dict[str, Any] | None,
        time: str,
        resync: bool = False,
    ) -> None:
        """``project``: the version whose export made the transitions; ``basis`` names the
        occasion in the ids (the export's timestamp); ``time`` is the events' time;
        ``resync``: `state resync`'s ``opened`` again (``change.resync``)."""
        self._resync = resync
        self._source = source
        self._line = {
            "id": line.id,
            "key": line.key,
            "group": line.group,
            "name": line.name,
            "track": line.track,
        }
        self._project = project | {"tags": project.get("tags"), "active": project.get("active")}
        self._fpf = fpf
        self._time = time
        # "line:" keeps these ids apart from v1's, whose prefix names a project uuid there
        self._ids = Uuid5Prefix(CHANGE_ID_NAMESPACE, f"{source}\nline:{line.id}\n{basis}\n")

    def event(self, transition: LineTransition, sequence: int) -> Event:
        line_finding = transition.finding
        identifier = self._ids(f"{line_finding.id}\n{transition.kind}")
        parts = transition.parts
        resolved = transition.resolved_at
        package = line_finding.package
        data = {
            "finding_id": line_finding.id,
            "line": self._line,
            "package": {"key": package.key, "kind": package.kind, "problem": package.problem},
            "vulnerability_id": line_finding.vulnerability,
            "aliases": list(line_finding.aliases),
            "matrix": transition.matrix,
            "instances": [dataclasses.asdict(i) for i in line_finding.instances],
            "project": self._project,
            "component": parts["component"],
            "vulnerability": parts["vulnerability"],
            "analysis": parts["analysis"],
            "attribution": parts["attribution"],
            "fpf": self._fpf,
            "change": {
                "kind": transition.kind,
                "previous_status": transition.previous_status,
                "changes": [
                    {"field": field, "old": old, "new": new}
                    for field, old, new in transition.changes
                ],
                "reason": transition.reason,
                "merged_into": transition.merged_into,
                "analysis_lost_in_dt": transition.analysis_lost_in_dt,
                "resync": self._resync,
                "first_seen": iso(transition.first_seen),
                "opened_at": iso(transition.opened_at),
                "resolved_at": iso(resolved),
                "time_open_seconds": (
                    None if resolved is None else round(resolved - transition.opened_at, 3)
                ),
            },
        }
        kind_type = line_change_type(transition.kind)
        cloudevent = {
            "specversion": SPEC_VERSION,
            "id": identifier,
            "source": self._source,
            "type": kind_type,
            "subject": line_finding.id,
            "time": self._time,
            "datacontenttype": DATA_CONTENT_TYPE,
            "dataschema": LINE_CHANGE_EVENT_SCHEMA,
            "sequence": f"{sequence:0{SEQUENCE_DIGITS}d}",
            "data": data,
        }
        return Event(
            identifier,
            routing_key(transition.kind, transition.severity),
            orjson.dumps(cloudevent),
            kind_type,
        )


def of_diff(found: LineDiff) -> list[Event]:
    """The events of an offline line diff (``line_diff.diff``), numbered from 1."""
    after = found.after
    events = LineChangeEvents(
        source=after.source,
        line=found.line,
        project=after.project(),
        basis=f"export {after.exported_at}",
        fpf={
            "version": after.fpf_version,
            "dt_version": after.dt_version,
            "exported_at": after.exported_at,
        },
        time=after.exported_at,
    )
    return [events.event(t, n) for n, t in enumerate(found.transitions, 1)]
