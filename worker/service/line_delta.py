"""The line part of a delta job (DTRACK_WORKER_TRACK=line; docs/lines.md): which line the
export's project belongs to, whether it is the line's current version, and if so the line's
transitions against its stored state, their finding-change.v2 events and the new state, for
``delta`` to commit with the project's own view in one transaction.

1. list every version of the project's name from DT (all pages): a failure is a retry, never
   data;
2. the project's line (``lines.line_of`` with DTRACK_WORKER_LINE_BY), and the line's current
   version (``lines.current``). Another version: its view and the line's versions only. When
   this version would move the line (the stored state is another version's), DT is listed
   again after the line's row is read, so the commit's revision check covers that listing;
3. the fast path: the line's state was taken from this project's view as it stands and the
   view did not change: nothing to group, the line stands;
4. else the export's rows grouped into line findings (with the line's alias map), DT's
   suppressed rows added when stored findings left; compared with the stored state
   (``line_compare``); the mass-resolve guard on the line's open findings.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import tzinfo
from typing import Any, Protocol

from worker.adapters.state.line_queries import LineMove, LinePart, StoredLine, VersionFacts
from worker.adapters.state.store import ProjectState, Store
from worker.core import fpf, line_increment, line_settled, line_state, outbox_rounds
from worker.core.dates import epoch
from worker.core.errors import DtUnavailable
from worker.core.line_change_events import LineChangeEvents
from worker.core.line_compare import NOTHING_MADE, LineTransition, Made, compare
from worker.core.line_findings import Grouped, group
from worker.core.lines import Line, LineBy, ProjectVersion, current, line_of
from worker.core.mass_resolve import Tally

PAGE = 100
UNCOUNTED_PAGES = 10_000  # without X-Total-Count: a listing this long never ends


class VersionsSource(Protocol):
    async def list_projects(
        self,
        page: int,
        size: int,
        *,
        active_only: bool = False,
        name: str | None = None,
        search: str | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]: ...

    async def findings(self, project_uuid: str) -> list[dict[str, Any]]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class LineOptions:
    source: str
    zone: tzinfo
    line_by: LineBy
    carry: bool  # DTRACK_WORKER_CARRY_TRIAGE
    epss_delta: float | None = None  # DTRACK_WORKER_TRACK_EPSS, as in the per-project stream


@dataclasses.dataclass(frozen=True, slots=True)
class LineWork:
    """What the job commits for the line, and the transitions it publishes."""

    part: LinePart
    transitions: list[LineTransition]
    tally: Tally | None = None  # for the guard: the line's open findings, and those resolving
    quiet: bool | None = None  # published nothing by baseline; None: the line not compared


def project_version(project: Mapping[str, Any]) -> ProjectVersion:
    """DT's project object (``GET /api/v1/project``) as a line needs it."""
    tags = project.get("tags") or []
    bom = project.get("lastBomImport")
    latest, active = project.get("isLatest"), project.get("active")
    return ProjectVersion(
        uuid=str(project["uuid"]).lower(),
        name=str(project.get("name") or ""),
        version=project.get("version") if isinstance(project.get("version"), str) else None,
        group=project.get("group") if isinstance(project.get("group"), str) else None,
        tags=tuple(
            t["name"] for t in tags if isinstance(t, dict) and isinstance(t.get("name"), str)
        ),
        active=active if isinstance(active, bool) else None,
        is_latest=latest if isinstance(latest, bool) else None,
        last_bom_import=bom if isinstance(bom, int) and not isinstance(bom, bool) else None,
    )


async def versions_of(dt: VersionsSource, name: str) -> list[ProjectVersion]:
    """Every version DT lists under ``name``: every page up to DT's ``X-Total-Count`` (bounded by
    DT's count, however long a CI line's history); without a count, until a short page. A
    listing short of its count, repeating itself, or without end is DtUnavailable (a retry):
    never a partial list a line decides on (REVIEW-1 M9)."""
    found: dict[str, ProjectVersion] = {}
    listed_ids: set[str] = set()
    read = 0
    for page in itertools.count(1):
        listed, total = await dt.list_projects(page, PAGE, name=name)
        fresh = {str(p.get("uuid")) for p in listed} - listed_ids
        listed_ids |= fresh
        read += len(listed)
        for project in listed:
            if project.get("name") == name and "uuid" in project:
                version = project_version(project)
                found.setdefault(version.uuid, version)
        if total is None:  # no count: until a short page, or a page with nothing new
            if len(listed) < PAGE:
                break
            if not fresh or page >= UNCOUNTED_PAGES:
                raise DtUnavailable(
                    f"DT's listing of the versions of {name!r} does not end: {read} rows in "
                    f"{page} pages without X-Total-Count"
                )
            continue
        if read >= total:
            if len(listed_ids) < total:  # the list changed while it was paged
                raise DtUnavailable(
                    f"DT's listing of the versions of {name!r} repeated versions while paged: "
                    f"{len(listed_ids)} distinct of the {total} DT counted; tried again later"
                )
            break
        if len(listed) < PAGE:  # short of DT's count: cut, or shrinking while paged
            raise DtUnavailable(
                f"DT's listing of the versions of {name!r}: read {read} of the {total} versions "
                f"DT counted (page {page} had {len(listed)} rows); tried again later"
            )
    return list(found.values())


class Lines:
    def __init__(self, store: Store, dt: VersionsSource, options: LineOptions) -> None:
        self._store = store
        self._dt = dt
        self._options = options

    async def work(
        self,
        export: fpf.Export,
        rows: Mapping[str, Mapping[str, Any]],
        state: ProjectState,
        *,
        unchanged: bool,
        changed: Collection[str] | None = None,
        stamp: str,
        listed: Callable[[], Awaitable[list[dict[str, Any]]]],
        facts: fpf.ProjectFacts,
        silent: bool,
        baseline: bool = False,
        run: Callable[[Callable[[], Any]], Awaitable[Any]],
        shared: Made = NOTHING_MADE,
        retracted: Collection[str] = (),
    ) -> LineWork:
        """``unchanged``: the project's own comparison found nothing new, changed or gone;
        ``changed``: else the matrices it found new, changed, back or gone (None: unknown);
        ``silent``: no events (``state baseline``); ``baseline``: none for the line's first;
        ``listed``: DT's findings list of the project (suppressed included), asked once;
        ``run``: runs CPU work off the event loop; ``shared``: what the project's comparison made
        of the rows, for the line's comparison to use rather than make again; ``retracted``:
        the DT rows DT 5 said it retracted (``retracted_by_dt``)."""
        project = export.project_uuid
        line, versions, stored = await self._placed(export)
        if stored is None:  # not the line's current version: its view and the versions only
            return LineWork(LinePart(line, versions), [])
        if (
            unchanged
            and stored.current_project == project
            and stored.project_revision == state.revision
        ):  # the line's state is this view's, which did not move: nothing to group
            return LineWork(LinePart(line, versions, self._keep(stored, export)), [])
        data = await self._store.line_state(line.id, stored.revision)
        version = export.project_version
        all_rows: dict[str, Mapping[str, Any]] = dict(rows)
        if (
            changed is not None
            and stored.current_project == project
            and stored.project_revision == state.revision
        ):  # this view's state, and the view moved: only the packages that moved are compared
            part = await self._increment(line, data, rows, changed, version, stamp, listed, run,
                                         shared, retracted)  # fmt: skip
            if part is not None:
                return self._moved(line, versions, stored, export, stamp, facts, part,
                                   quiet=silent or (baseline and stored.revision == 0))  # fmt: skip
        decoded: line_state.Decoded = await run(lambda: line_state.decode(data))
        purls = line_state.purl_packages(decoded)

        def grouped() -> Grouped:
            return group(line, all_rows.values(), decoded.known, project_version=version,
                         purls=purls)  # fmt: skip

        later: Grouped = await run(grouped)
        if line_settled.left(decoded, later):
            # findings left: those DT lists suppressed are suppressed, not resolved (and a
            # carried triage that DT took up again is DT's own)
            hidden = await _hidden(listed, rows)
            if hidden:
                all_rows.update((r["matrix"], r) for r in hidden)
                later = await run(grouped)
        options = self._options
        now = epoch(stamp)

        def compared() -> _Outcome:
            whole = line_settled.compared(
                line, decoded, later, all_rows, options.zone, now=now, carry=options.carry,
                epss_delta=options.epss_delta, made=shared, retracted=retracted,
            )  # fmt: skip
            return _Outcome(whole.transitions, whole.packed, whole.open_counts,
                            whole.opened_before, whole.oldest_open_at)  # fmt: skip

        outcome: _Outcome = await run(compared)
        # DTRACK_WORKER_BASELINE: the line's first export is recorded silently (not each new
        # version's: a version switch is the news the line exists for)
        quiet = silent or (baseline and stored.revision == 0)
        return self._moved(line, versions, stored, export, stamp, facts, outcome, quiet=quiet)

    async def _increment(
        self,
        line: Line,
        data: bytes | None,
        rows: Mapping[str, Mapping[str, Any]],
        changed: Collection[str],
        version: str | None,
        stamp: str,
        listed: Callable[[], Awaitable[list[dict[str, Any]]]],
        run: Callable[[Callable[[], Any]], Awaitable[Any]],
        shared: Made = NOTHING_MADE,
        retracted: Collection[str] = (),
    ) -> _Outcome | None:
        """The touched packages compared (``line_increment``); None when DT's suppressed rows
        are needed (findings left and DT lists some suppressed): the whole line then."""
        decoded = line_state.decode(data)
        part: line_increment.Increment = await run(
            lambda: line_increment.prepare(line, decoded, rows, changed, project_version=version)
        )
        if _left(part.earlier, part.later) and await _hidden(listed, rows):
            return None
        options = self._options
        now = epoch(stamp)

        def compared() -> _Outcome:
            made = compare(
                part.earlier, part.later, rows, options.zone, now=now, carry=options.carry,
                epss_delta=options.epss_delta, made=shared, retracted=retracted,
            )  # fmt: skip
            finished = line_increment.finish(part, made)
            return _Outcome(
                made.transitions, finished.packed, finished.open_counts, finished.opened_before,
                finished.oldest_open_at,
            )  # fmt: skip

        outcome: _Outcome = await run(compared)
        return outcome

    def _moved(
        self,
        line: Line,
        versions: list[VersionFacts],
        stored: StoredLine,
        export: fpf.Export,
        stamp: str,
        facts: fpf.ProjectFacts,
        outcome: _Outcome,
        *,
        quiet: bool,
    ) -> LineWork:
        transitions = [] if quiet else outcome.transitions
        tally = Tally(
            opened=outcome.opened_before,
            resolving=sum(t.kind == "resolved" for t in outcome.transitions),
            emptied=export.finding_count == 0,
        )
        events = LineChangeEvents(
            source=export.source,
            line=line,
            project=export.project(facts),
            basis=f"export {stamp}",
            fpf={
                "version": export.fpf_version,
                "dt_version": export.dt_version,
                "exported_at": export.exported_at,
            },
            time=stamp,
        )

        def numbered(first: int) -> list[outbox_rounds.Round]:
            made = [events.event(t, first + n) for n, t in enumerate(transitions)]
            return outbox_rounds.framed(made)

        move = LineMove(
            expected_revision=stored.revision,
            current_project=export.project_uuid,
            current_version=export.project_version,
            state=outcome.packed,
            open_counts=outcome.open_counts,
            oldest_open_at=outcome.oldest_open_at,
            events=numbered,
            changed=bool(transitions),
            transitions=transitions,
        )
        return LineWork(LinePart(line, versions, move), transitions, tally, quiet)

    async def _placed(
        self, export: fpf.Export
    ) -> tuple[Line, list[VersionFacts], StoredLine | None]:
        """The export's line, its versions, and the line's row when the export's project is
        its current version (else None)."""
        project = export.project_uuid
        line, versions, head = await self._place(export)
        if head is None or head.uuid != project:
            return line, versions, None
        stored = await self._store.line(line.id)
        if stored.current_project not in (None, project):
            # the line moves to this version: DT is listed again after the line's row was
            # read, so its revision (checked at commit) covers the listing that decides it; a
            # version switched meanwhile by another job is seen (REVIEW-1 H1)
            line, versions, head = await self._place(export)
            if head is None or head.uuid != project:
                return line, versions, None
        return line, versions, stored

    async def _place(
        self, export: fpf.Export
    ) -> tuple[Line, list[VersionFacts], ProjectVersion | None]:
        """The export's line from DT's listing of its name: the line, its versions, and the
        one it follows (``lines.current``) as DT lists them now."""
        project = export.project_uuid
        listing = await versions_of(self._dt, export.project_name)
        this = next((v for v in listing if v.uuid == project), None)
        if this is None:  # not listed (yet): the export says what it is, DT's flags unknown
            this = ProjectVersion(
                uuid=project, name=export.project_name, version=export.project_version
            )
            listing.append(this)
        line = line_of(this, self._options.line_by, self._options.source)
        same = [v for v in listing if line_of(v, self._options.line_by, line.source) == line]
        versions = [
            VersionFacts(v.uuid, v.version, v.is_latest, v.active, v.last_bom_import,
                         applied=v.uuid == project)
            for v in same
        ]  # fmt: skip
        return line, versions, current(same)

    def _keep(self, stored: StoredLine, export: fpf.Export) -> LineMove:
        return LineMove(
            expected_revision=stored.revision,
            current_project=export.project_uuid,
            current_version=export.project_version,
            state=None,
            open_counts=None,
            events=lambda _: [],
            changed=False,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class _Outcome:
    transitions: list[LineTransition]
    packed: bytes
    open_counts: dict[str, int]
    opened_before: int  # the line's open findings before: the guard's tally
    oldest_open_at: float | None = None  # for the console's Lines list


def _left(earlier: line_state.LineState, later: Grouped) -> bool:
    """An open (or carried) stored finding is not among ``later``'s."""
    ids = {f.id for f in later.findings}
    return any(
        (f.status == "open" or f.carried) and f.id not in ids for f in earlier.findings.values()
    )


async def _hidden(
    listed: Callable[[], Awaitable[list[dict[str, Any]]]],
    rows: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """DT's suppressed findings of the project that the export left out."""
    return [
        r
        for r in await listed()
        if r["matrix"] not in rows and (r.get("analysis") or {}).get("isSuppressed")
    ]
