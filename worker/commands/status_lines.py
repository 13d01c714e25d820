"""``dtrack-worker status`` by line (DTRACK_WORKER_TRACK=line): which lines a name means, and
the lines and one line's versions as people and tools read them."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from worker.core.events import SEVERITY_RANK

if TYPE_CHECKING:
    from worker.adapters.state.line_queries import LineReport


def label(line: LineReport) -> str:
    """How a line is named on the command line: ``NAME``, ``GROUP/NAME``, then ``#TRACK``."""
    name = f"{line.group}/{line.name}" if line.group else line.name
    return name if line.track is None else f"{name}#{line.track}"


def matching(lines: Sequence[LineReport], text: str) -> list[LineReport]:
    """The lines ``text`` names: a line id, a name (each of its groups and tracks),
    ``GROUP/NAME``, or either with ``#TRACK``. Names compare exactly."""
    try:
        as_id = str(uuid.UUID(text))
    except ValueError:
        as_id = ""
    if as_id == text.lower():
        return [line for line in lines if line.id == as_id]
    exact = [line for line in lines if text in (label(line), line.name)]
    if exact:
        return exact
    name, hash_, track = text.rpartition("#")
    if not hash_:
        return []
    return [
        line
        for line in lines
        if line.track == track and name in (line.name, label(line).rpartition("#")[0])
    ]


def ambiguous(text: str, lines: Sequence[LineReport]) -> str:
    listed = ", ".join(f"{label(line)} ({line.id})" for line in lines)
    return (
        f"{text} names {len(lines)} lines; say which (NAME#TRACK, GROUP/NAME or the id): {listed}"
    )


def when(moment: float | None) -> str:
    if moment is None:
        return "never"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _flag(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def _opens(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{counts[s]} {s}" for s in SEVERITY_RANK if counts.get(s)) or "none"


def _current(line: LineReport) -> str:
    if line.current_project is None:
        return "none yet (no export of its current version applied)"
    shown = f"{line.current_version or '?'} ({line.current_project})"
    return f"{shown}, deleted in DT" if line.current_deleted else shown


def print_lines(lines: Sequence[LineReport], projects: int) -> None:
    print(f"{len(lines)} line{'' if len(lines) == 1 else 's'}")
    for line in lines:
        print(f"{label(line)}  line {line.id}")
        print(
            f"  current {_current(line)}; {len(line.versions)} version"
            f"{'' if len(line.versions) == 1 else 's'} seen; last change "
            f"{when(line.last_change_at)}"
        )
        print(f"  open: {_opens(line.open_counts)}")
    print(
        f"{projects} project{'' if projects == 1 else 's'} in the store: "
        "`dtrack-worker status --projects` shows each one's own view"
    )


def print_line(line: LineReport, applied: Mapping[str, float | None]) -> None:
    """One line and its versions; ``applied``: each project's last applied export, for
    versions a job only listed (or a migration wrote)."""
    print(f"{label(line)}  line {line.id}")
    print(f"  group {line.group or '-'}, track {line.track or '-'}, source {line.source}")
    print(f"  current {_current(line)}; last change {when(line.last_change_at)}")
    print(f"  open: {_opens(line.open_counts)}")
    print(f"  {len(line.versions)} version{'' if len(line.versions) == 1 else 's'}:")
    for version in sorted(line.versions, key=lambda v: (v.last_bom_import or 0, v.project)):
        mark = "*" if version.project == line.current_project else " "
        bom = when(version.last_bom_import / 1000) if version.last_bom_import is not None else "?"
        last = version.last_applied_at or applied.get(version.project)
        print(
            f"  {mark} {version.version or '?'}  {version.project}  isLatest "
            f"{_flag(version.is_latest)}, active {_flag(version.active)}, lastBomImport {bom}, "
            f"last applied {when(last)}"
        )


def document(line: LineReport, applied: Mapping[str, float | None]) -> dict[str, Any]:
    found = dataclasses.asdict(line)
    found["label"] = label(line)
    for version in found["versions"]:
        version["last_applied_at"] = version["last_applied_at"] or applied.get(version["project"])
    return found
