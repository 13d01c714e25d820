"""One stable vulnerability id per alias group. Pure.

DT keeps one vulnerability row per (source, vulnId): a CVE and its GHSA are two rows, and one
component gets two findings for what is one vulnerability. Here every identifier a finding names
(its own ``vulnId`` and its aliases) is a *token*; findings whose tokens overlap are one alias
group (union-find over one package's findings of one export; only CVE and GHSA aliases
join, see ``Identifiers.links``; never two distinct CVEs, see ``grouping``). A group's id is
its CVE if it has one, else its GHSA, else ``SOURCE:vulnId``.

Aliases grow: a GHSA learns its CVE weeks later. The id must not change then, so a line keeps
the ids it gave (``known``: token -> id, one map per package) and ``assign`` reuses them;
only a group no token of which was ever seen gets a fresh id. See docs/lines.md, "Alias growth".
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# FPF 1.2+ alias keys (and the leaky 1.1 ones) -> DT's source name for that identifier.
ALIAS_SOURCES: Mapping[str, str] = {
    "cveId": "NVD",
    "ghsaId": "GITHUB",
    "sonatypeId": "OSSINDEX",
    "osvId": "OSV",
    "snykId": "SNYK",
    "vulnDbId": "VULNDB",
    "gsdId": "GSD",
    "internalId": "INTERNAL",
}
_CVE = re.compile(r"CVE-(\d+)-(\d+)", re.IGNORECASE)
_GHSA = re.compile(r"GHSA(-[0-9a-z]{4}){3}", re.IGNORECASE)


def token(source: str | None, vuln_id: str) -> str:
    """An identifier as a token: CVE and GHSA ids are global, so they stand alone (upper-case
    prefix, GHSA body lower-case as GitHub writes it); any other id is qualified by its source."""
    text = vuln_id.strip()
    if _CVE.fullmatch(text):
        return text.upper()
    if _GHSA.fullmatch(text):
        return "GHSA" + text[4:].lower()
    return f"{(source or 'UNKNOWN').strip().upper()}:{text}"


@dataclasses.dataclass(frozen=True, slots=True)
class Identifiers:
    """One finding's tokens: its own, and its aliases'."""

    own: str | None  # None for a blank vulnId (never seen from DT)
    aliases: frozenset[str]

    @property
    def links(self) -> frozenset[str]:
        """The tokens that join findings into one group: the own id, and CVE and GHSA aliases.

        Other aliases do not join: a distribution advisory names many CVEs (DT 4.7 lists
        DLA-3132-1 as an alias of four snakeyaml CVEs), so joining through it would make four
        vulnerabilities one.
        """
        joining = {a for a in self.aliases if _CVE.fullmatch(a) or a.startswith("GHSA-")}
        return frozenset(joining | ({self.own} if self.own else set()))

    @property
    def all(self) -> frozenset[str]:
        return self.aliases | ({self.own} if self.own else set())


def identifiers(source: str | None, vuln_id: str, aliases: object) -> Identifiers:
    """A finding's own id and its aliases as tokens, in any shape DT wrote the aliases.

    FPF 1.2+: ``[{"cveId": .., "ghsaId": ..}]``; FPF 1.1 adds ``id`` (a database id, skipped)
    and ``allBySource`` (``{"NVD": "CVE-.."}``); webhooks: ``[{"vulnId": .., "source": ..}]``;
    a bare string is read as an id. Anything else is ignored.
    """
    own = token(source, vuln_id) if vuln_id.strip() else None
    found: set[str] = set()
    for alias in aliases if isinstance(aliases, list) else ():
        found.update(_alias_tokens(alias))
    found.discard(own or "")
    return Identifiers(own, frozenset(found))


def _alias_tokens(alias: object) -> Iterable[str]:
    if isinstance(alias, str):
        return [token(None, alias)] if alias.strip() else []
    if not isinstance(alias, dict):
        return []
    if isinstance(alias.get("vulnId"), str):  # the webhook shape
        source = alias.get("source")
        return [token(source if isinstance(source, str) else None, alias["vulnId"])]
    pairs: list[tuple[str, Any]] = [(ALIAS_SOURCES.get(k, k), v) for k, v in alias.items()]
    by_source = alias.get("allBySource")
    if isinstance(by_source, dict):
        pairs.extend(by_source.items())
    return [
        token(source, value)
        for source, value in pairs
        if isinstance(value, str) and value.strip() and source != "allBySource"
    ]


def preferred(group: Iterable[str]) -> str:
    """A group's id: its oldest, lowest CVE, else its lowest GHSA, else its lowest token."""
    members = sorted(group)
    cves = [t for t in members if _CVE.fullmatch(t)]
    if cves:
        return min(cves, key=lambda t: tuple(int(n) for n in t.split("-")[1:]))
    ghsas = [t for t in members if t.startswith("GHSA-")]
    return (ghsas or members)[0]


def is_cve(token: str) -> bool:
    return _CVE.fullmatch(token) is not None


@dataclasses.dataclass(frozen=True, slots=True)
class Conflict:
    """Tokens that would have joined distinct CVEs into one group (a GHSA naming two CVEs):
    ``tokens`` became a group of their own (empty when CVEs named each other directly), each
    of ``cves`` stayed apart."""

    tokens: tuple[str, ...]
    cves: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Grouping:
    """The alias groups (sorted by their lowest token) and the joins refused on the way."""

    groups: tuple[frozenset[str], ...]
    conflicts: tuple[Conflict, ...]


def grouping(token_sets: Iterable[frozenset[str]]) -> Grouping:
    """The alias groups: token sets (``Identifiers.links``) joined wherever they share a token,
    but never two distinct CVEs. Two CVEs are two vulnerabilities, even when a GHSA names both.

    Where union-find would join several CVEs, each CVE keeps its own group. The other tokens
    of that union are joined among themselves (never through a CVE), and each part goes to
    the one CVE it names directly. A part that names several CVEs stays a group of its own
    and is reported as a ``Conflict``. Every step is a set operation, so the result does not
    depend on the order of the sets or of their tokens.
    """
    sets = [frozenset(s) for s in token_sets]
    found: list[frozenset[str]] = []
    conflicts: list[Conflict] = []
    for joined in _union(sets):
        cves = frozenset(t for t in joined if is_cve(t))
        if len(cves) < 2:
            found.append(joined)
            continue
        inside = [s for s in sets if s & joined]  # a set is wholly in one union
        parts = {c: {c} for c in cves}
        for rest in _union([s - cves for s in inside if s - cves]):
            named = sorted({t for s in inside if s & rest for t in s & cves})
            if len(named) == 1:
                parts[named[0]] |= rest
            else:
                found.append(rest)
                conflicts.append(Conflict(tuple(sorted(rest)), tuple(named)))
        for s in inside:
            if len(s & cves) > 1 and not s - cves:  # CVEs naming each other, nothing else
                conflicts.append(Conflict((), tuple(sorted(s))))
        found.extend(frozenset(p) for p in parts.values())
    return Grouping(
        tuple(sorted(found, key=min)), tuple(sorted(set(conflicts), key=_conflict_order))
    )


def _conflict_order(conflict: Conflict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return conflict.tokens, conflict.cves


def groups(token_sets: Iterable[frozenset[str]]) -> list[frozenset[str]]:
    """``grouping``'s groups alone."""
    return list(grouping(token_sets).groups)


def _union(token_sets: Iterable[frozenset[str]]) -> list[frozenset[str]]:
    """Token sets joined wherever they share a token (union-find), sorted."""
    parent: dict[str, str] = {}

    def root(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]  # path halving
            t = parent[t]
        return t

    for members in token_sets:
        ordered = sorted(members)
        for t in ordered:
            parent.setdefault(t, t)
        for t in ordered[1:]:
            a, b = root(ordered[0]), root(t)
            if a != b:
                parent[max(a, b)] = min(a, b)
    joined: dict[str, set[str]] = {}
    for t in parent:
        joined.setdefault(root(t), set()).add(t)
    return sorted((frozenset(g) for g in joined.values()), key=min)


@dataclasses.dataclass(frozen=True, slots=True)
class Merge:
    """Ids given earlier to what is now one group: ``kept`` lives on, ``absorbed`` end."""

    kept: str
    absorbed: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Split:
    """An id whose tokens now fall in several groups: ``kept`` stays with one, ``new`` are
    the fresh ids of the others (an alias DT withdrew)."""

    kept: str
    new: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Assignment:
    """The stable id of every group's tokens, the map to keep for next time, and what moved."""

    ids: Mapping[str, str]  # token -> stable id, for every token of this export
    known: Mapping[str, str]  # the earlier map with this export's tokens added (or re-pointed)
    merges: tuple[Merge, ...]
    splits: tuple[Split, ...]


def assign(known: Mapping[str, str], alias_groups: Sequence[frozenset[str]]) -> Assignment:
    """Stable ids for this export's ``alias_groups``, given the ids ``known`` from before.

    * No token known: the group's ``preferred`` id.
    * Tokens known under one id: that id, even if the group now has a better one (a CVE).
    * Never another CVE: a group holding a CVE ignores earlier ids that are other CVEs, so no
      CVE is ever stored under another CVE.
    * Tokens known under several ids: the groups merged; the ``preferred`` of those ids is kept.
    * One id claimed by several groups (an alias withdrawn): the group holding the id's own
      token keeps it (else the group first in order); the others get their ``preferred`` id,
      or the id's own token qualified by ``#`` and the group's if that is taken.
    """
    claimed: dict[str, list[frozenset[str]]] = {}
    merges: list[Merge] = []
    chosen: list[tuple[frozenset[str], str]] = []
    for group in alias_groups:
        cves = {t for t in group if is_cve(t)}
        # a group holding a CVE never takes another CVE as its id: that id was another
        # vulnerability's, and a token that carried it (a GHSA) was moved by DT to this one
        earlier = sorted(
            e
            for e in {known[t] for t in group if t in known}
            if not (cves and is_cve(e) and e not in cves)
        )
        stable = preferred(earlier) if earlier else preferred(group)
        if len(earlier) > 1:
            merges.append(Merge(stable, tuple(e for e in earlier if e != stable)))
        chosen.append((group, stable))
        claimed.setdefault(stable, []).append(group)
    renamed, splits = _resolve_splits(claimed)
    ids: dict[str, str] = {}
    updated = dict(known)
    for group, stable in chosen:
        final = renamed.get((stable, group), stable)
        for t in group:
            ids[t] = final
            updated[t] = final
    return Assignment(ids, updated, tuple(merges), splits)


def _resolve_splits(
    claimed: Mapping[str, list[frozenset[str]]],
) -> tuple[dict[tuple[str, frozenset[str]], str], tuple[Split, ...]]:
    taken = set(claimed)
    renamed: dict[tuple[str, frozenset[str]], str] = {}
    splits: list[Split] = []
    for stable, contenders in sorted(claimed.items()):
        if len(contenders) == 1:
            continue
        owner = next((g for g in contenders if stable in g), contenders[0])
        fresh = []
        for group in contenders:
            if group is owner:
                continue
            new = preferred(group)
            if new in taken:
                new = f"{stable}#{preferred(group)}"
            taken.add(new)
            renamed[(stable, group)] = new
            fresh.append(new)
        splits.append(Split(stable, tuple(fresh)))
    return renamed, tuple(splits)
