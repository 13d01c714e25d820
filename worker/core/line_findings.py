"""An export's findings as findings of its line: (line, package, vulnerability). Pure.

DT's finding key, the ``matrix``, names a component row and a vulnerability row; both change
under users' feet (a version bump, a re-upload with another generator, a GHSA that is also a
CVE). A line finding is keyed by what stays: the package (``worker.core.package``) and the
alias group's stable id (``worker.core.vulnid``). The DT findings behind it are its
*instances*. See docs/lines.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from worker.core import ids, vulnid
from worker.core.lines import LINE_ID_NAMESPACE, Line
from worker.core.package import Package, of_component


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Instance:
    """One DT finding behind a line finding: where to find it in DT, and what it was."""

    matrix: str  # project:component:vulnerability UUIDs, DT's own key
    project_uuid: str
    project_version: str | None
    component_uuid: str
    component_version: str | None
    purl: str | None
    vulnerability_uuid: str | None
    source: str
    vuln_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LineFinding:
    """A finding of a line: its stable id (the events' ``subject``), its identity parts, and
    the DT findings now behind it, in matrix order."""

    id: str
    line: Line
    package: Package
    vulnerability: str  # the alias group's stable id
    aliases: tuple[str, ...]  # every token of the group, sorted
    instances: tuple[Instance, ...]

    @property
    def versions(self) -> tuple[str, ...]:
        """The component versions behind it (a library present twice has two)."""
        return tuple(sorted({i.component_version or "" for i in self.instances}))

    def identity(self) -> dict[str, Any]:
        """Its identity parts and instances as event data: enough for a consumer to find each
        DT finding again (project, component and vulnerability UUIDs)."""
        return {
            "line": {
                "id": self.line.id,
                "group": self.line.group,
                "name": self.line.name,
                "track": self.line.track,
            },
            "package": {
                "key": self.package.key,
                "kind": self.package.kind,
                "problem": self.package.problem,
            },
            "vulnerability": {"id": self.vulnerability, "aliases": list(self.aliases)},
            "instances": [dataclasses.asdict(i) for i in self.instances],
        }


Known = Mapping[str, Mapping[str, str]]  # package key -> token -> vulnerability id


@dataclasses.dataclass(frozen=True, slots=True)
class Unjoined:
    """A join refused in one package (``vulnid.Conflict``): ``tokens`` would have made the
    distinct ``cves`` one vulnerability, so they are a line finding's group of their own."""

    package: str  # the package key
    tokens: tuple[str, ...]
    cves: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Grouped:
    """An export's line findings (by id order), the alias assignment of each package that
    keyed them, the joins refused, and the line's ids to keep for the next export."""

    findings: tuple[LineFinding, ...]
    assignments: Mapping[str, vulnid.Assignment]  # by package key, this export's packages
    unjoined: tuple[Unjoined, ...]
    known: Known  # the earlier map, this export's packages updated


def finding_id(line: Line, package: Package, vulnerability: str) -> str:
    """A line finding's stable id: a UUIDv5 of line key, package key and vulnerability id."""
    return _FindingIds(line)(package, vulnerability)


class _FindingIds:
    """``finding_id`` for many findings of one line: the line's key is escaped (and hashed)
    once, not once per finding."""

    __slots__ = ("_prefix",)

    def __init__(self, line: Line) -> None:
        self._prefix = ids.Uuid5Prefix(LINE_ID_NAMESPACE, f"finding\n{line.key}\n")

    def __call__(self, package: Package, vulnerability: str) -> str:
        return self._prefix(f"{package.key}\n{vulnerability}")


@dataclasses.dataclass(frozen=True, slots=True)
class _Seen:
    row: Mapping[str, Any]
    found: vulnid.Identifiers
    package: Package


class _Packages:
    """``package.of_component`` of an export's components: a purl keyed before is not parsed
    again, and a component many rows share (one per vulnerability) is keyed once."""

    __slots__ = ("_by_component", "_by_purl")

    def __init__(self, by_purl: Mapping[str, Package]) -> None:
        self._by_purl = by_purl
        self._by_component: dict[tuple[object, ...], Package] = {}

    def __call__(self, component: Mapping[str, Any]) -> Package:
        purl = component.get("purl")
        if isinstance(purl, str):  # a purl that parsed gives the key alone
            known = self._by_purl.get(purl)
            if known is not None:
                return known
        names = tuple(  # of_component reads anything but text as absent; so does the key
            v if isinstance(v, str) else None
            for v in (purl, *(component.get(k) for k in ("group", "name", "cpe")))
        )
        package = self._by_component.get(names)
        if package is None:
            package = self._by_component[names] = of_component(component)
        return package


def group(
    line: Line,
    rows: Iterable[Mapping[str, Any]],
    known: Known | None = None,
    *,
    project_version: str | None = None,
    purls: Mapping[str, Package] | None = None,
) -> Grouped:
    """The line findings of one export's (schema-valid) finding rows.

    ``known``: the line's earlier ids (``Grouped.known``: package key -> token -> id, as
    ``vulnid.assign`` keeps them); without it, ids are those a first export would get.
    ``project_version``: the export's ``project.version``, kept on each instance. Rows
    repeating a matrix (one per attribution) are one instance. ``purls``: purl -> the package
    ``package.of_component`` made of a component with that purl before (a line's stored
    purl-keyed findings, ``line_state.purl_packages``), taken rather than parsed again.

    Alias groups are made per package: a finding is (package, vulnerability), so another
    component's GHSA naming two CVEs must not join this package's two CVE findings.
    """
    seen: dict[str, _Seen] = {}
    package_of = _Packages(purls or {})
    for row in rows:
        matrix = row["matrix"]
        if matrix in seen:
            continue
        vuln = row["vulnerability"]
        found = vulnid.identifiers(vuln.get("source"), vuln["vulnId"], vuln.get("aliases"))
        seen[matrix] = _Seen(row, found, package_of(row["component"]))
    by_package: dict[str, list[vulnid.Identifiers]] = {}
    packages: dict[str, Package] = {}
    for entry in seen.values():
        by_package.setdefault(entry.package.key, []).append(entry.found)
        packages[entry.package.key] = entry.package
    earlier = known or {}
    assignments: dict[str, vulnid.Assignment] = {}
    unjoined: list[Unjoined] = []
    for key in sorted(by_package):
        grouping = vulnid.grouping(found.links for found in by_package[key])
        assignments[key] = vulnid.assign(earlier.get(key, {}), grouping.groups)
        unjoined.extend(Unjoined(key, c.tokens, c.cves) for c in grouping.conflicts)
    members: dict[tuple[str, str], list[Instance]] = {}
    tokens_of: dict[tuple[str, str], set[str]] = {}
    for entry in seen.values():
        found, key = entry.found, entry.package.key
        anchor = found.own or min(found.links, default=None)
        stable = assignments[key].ids[anchor] if anchor else _no_id(entry.row)
        tokens_of.setdefault((key, stable), set()).update(found.all)
        members.setdefault((key, stable), []).append(instance_of(entry.row, project_version))
    finding_ids = _FindingIds(line)
    findings = [
        LineFinding(
            id=finding_ids(packages[package_key], stable),
            line=line,
            package=packages[package_key],
            vulnerability=stable,
            aliases=tuple(sorted(tokens_of[(package_key, stable)])),
            instances=tuple(sorted(instances, key=lambda i: i.matrix)),
        )
        for (package_key, stable), instances in members.items()
    ]
    return Grouped(
        findings=tuple(sorted(findings, key=lambda f: f.id)),
        assignments=assignments,
        unjoined=tuple(unjoined),
        known={**earlier, **{key: a.known for key, a in assignments.items()}},
    )


def _no_id(row: Mapping[str, Any]) -> str:
    """A finding with a blank vulnId (never seen from DT): keyed by DT's vulnerability uuid."""
    vuln = row["vulnerability"]
    return f"{vuln.get('source') or 'UNKNOWN'}:uuid:{vuln.get('uuid') or row['matrix']}"


def instance_of(row: Mapping[str, Any], project_version: str | None) -> Instance:
    """The instance a (schema-valid) finding row is."""
    component, vuln = row["component"], row["vulnerability"]
    return Instance(
        matrix=row["matrix"],
        project_uuid=component.get("project") or row["matrix"].partition(":")[0],
        project_version=project_version,
        component_uuid=component["uuid"],
        component_version=component.get("version"),
        purl=component.get("purl"),
        vulnerability_uuid=vuln.get("uuid"),
        source=vuln["source"],
        vuln_id=vuln["vulnId"],
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Move:
    """A component version that moved while the finding stayed (issue 26 §3: ``changed``)."""

    before: Instance
    after: Instance


@dataclasses.dataclass(frozen=True, slots=True)
class InstanceDiff:
    """How one line finding's instances changed between two exports."""

    kept: tuple[Instance, ...]  # the same matrix
    moved: tuple[Move, ...]  # a version (or purl) bump of one instance
    added: tuple[Instance, ...]
    removed: tuple[Instance, ...]


def diff_instances(before: Sequence[Instance], after: Sequence[Instance]) -> InstanceDiff:
    """Pair the instances of a finding across two exports: by matrix; then an unchanged
    component of one DT vulnerability (same version and purl, a new UUID); then, among the rest
    of one DT vulnerability (a GHSA row with a GHSA row), in version order (the lowest old
    version moved to the lowest new one); then the rest in version order. The surplus is added
    or removed."""
    if len(before) == 1 and len(after) == 1:  # most findings: one instance, kept or moved
        if before[0].matrix == after[0].matrix:
            return InstanceDiff(kept=(after[0],), moved=(), added=(), removed=())
        return InstanceDiff(kept=(), moved=(Move(before[0], after[0]),), added=(), removed=())
    return _diff_instances(before, after)


def _diff_instances(before: Sequence[Instance], after: Sequence[Instance]) -> InstanceDiff:
    """``diff_instances``, any number of instances."""
    old_by = {i.matrix: i for i in before}
    new_by = {i.matrix: i for i in after}
    kept = tuple(new_by[m] for m in sorted(old_by.keys() & new_by.keys()))
    old = sorted((i for m, i in old_by.items() if m not in new_by), key=version_order)
    new = sorted((i for m, i in new_by.items() if m not in old_by), key=version_order)
    moved: list[Move] = []
    # an unchanged component under a new UUID (a new project version) first: a library present
    # twice that lost one copy must not look like the lost copy bumped onto the other
    for same in (_unchanged, _same_vulnerability, _any):
        for b in list(old):
            a = next((n for n in new if same(b, n)), None)
            if a is not None:
                moved.append(Move(b, a))
                old.remove(b)
                new.remove(a)
    return InstanceDiff(
        kept=kept,
        moved=tuple(sorted(moved, key=lambda m: version_order(m.before))),
        added=tuple(new),
        removed=tuple(old),
    )


def _vuln(instance: Instance) -> tuple[str, str]:
    return instance.source, instance.vuln_id


def _unchanged(before: Instance, after: Instance) -> bool:
    return _vuln(before) == _vuln(after) and (before.component_version, before.purl) == (
        after.component_version,
        after.purl,
    )


def _same_vulnerability(before: Instance, after: Instance) -> bool:
    return _vuln(before) == _vuln(after)


def _any(before: Instance, after: Instance) -> bool:
    return True


def version_order(instance: Instance) -> tuple[tuple[tuple[int, int | str], ...], str]:
    """Version order, good enough for pairing: numeric parts as numbers, the rest as text."""
    parts = (instance.component_version or "").replace("-", ".").split(".")
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts), instance.matrix
