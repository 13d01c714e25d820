"""A component's package identity across its versions: the key of "the same library". Pure.

DT gives a component a new UUID whenever its purl, CPE, group, name or version change (see
docs/lines.md), so a finding that should survive a version bump needs a key without them:

1. the purl (``worker.core.purl``) without version and subpath, and with only the qualifiers
   that make a different artifact of the same package (``ARTIFACT_QUALIFIERS``);
2. else group + name;
3. else the CPE's vendor:product (CPE 2.2 URI or 2.3 formatted string).

Never raises: an SBOM may say anything. A purl that does not parse falls back to 2 or 3 and the
key says why (``problem``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import unquote

from worker.core import purl as purls
from worker.core.purl import encode

Kind = Literal["purl", "name", "cpe", "none"]

# Qualifiers that make another artifact of one package, per type. The rest (repository_url,
# download_url, checksum, vcs_url, epoch, distro, ...) locate or describe the same artifact.
ARTIFACT_QUALIFIERS: Mapping[str, frozenset[str]] = {
    "maven": frozenset({"classifier", "type"}),  # sources/tests jars; a war is not the jar
    "deb": frozenset({"arch"}),
    "rpm": frozenset({"arch"}),
    "apk": frozenset({"arch"}),
    "alpm": frozenset({"arch"}),
    "gem": frozenset({"platform"}),  # java and ruby builds of a gem differ
    "conda": frozenset({"subdir"}),  # the platform
}
# Defaults that mean the same as no qualifier: a maven "type=jar" is the plain jar.
_DEFAULTS: Mapping[tuple[str, str], str] = {("maven", "type"): "jar"}


@dataclasses.dataclass(frozen=True, slots=True)
class Package:
    """A package's key, how it was made, and why a stronger way was not possible."""

    key: str
    kind: Kind
    problem: str | None = None


def of_component(component: Mapping[str, Any]) -> Package:
    """The package key of an FPF ``component`` (purl, group, name, cpe; any may be absent)."""
    return key(
        purl=_text(component.get("purl")),
        group=_text(component.get("group")),
        name=_text(component.get("name")),
        cpe=_text(component.get("cpe")),
    )


def key(
    *, purl: str | None, group: str | None, name: str | None, cpe: str | None = None
) -> Package:
    """The strongest key these attributes give (see the module's docstring)."""
    problem = None
    if purl:
        try:
            return Package(_purl_key(purls.parse(purl)), "purl")
        except purls.PurlError as exc:
            problem = f"purl not used: {exc}"
    if name:
        return Package(f"name:{encode(group or '')}/{encode(name)}", "name", problem)
    product = cpe_product(cpe) if cpe else None
    if product is not None:
        return Package(f"cpe:{encode(product[0])}:{encode(product[1])}", "cpe", problem)
    return Package("none:", "none", problem or "no purl, name or cpe")


def _purl_key(parsed: purls.Purl) -> str:
    name = parsed.name
    if parsed.type == "pypi":  # PEP 503: runs of - _ . are one "-"; the spec leaves "." as is
        name = re.sub(r"[-_.]+", "-", name)
    elif parsed.type == "nuget":  # NuGet ids are case-insensitive; the spec keeps the case
        name = name.lower()
    allowed = ARTIFACT_QUALIFIERS.get(parsed.type, frozenset())
    kept = [
        f"{k}={encode(v)}"
        for k, v in parsed.qualifiers
        if k in allowed and _DEFAULTS.get((parsed.type, k)) != v
    ]
    namespace = parsed.namespace
    prefix = "".join(encode(s) + "/" for s in namespace.split("/")) if namespace else ""
    text = f"pkg:{parsed.type}/{prefix}{encode(name)}"
    return text + ("?" + "&".join(kept) if kept else "")


def cpe_product(cpe: str) -> tuple[str, str] | None:
    """(vendor, product) of a CPE 2.3 formatted string or 2.2 URI, lowercased; None if either
    is missing or a wildcard."""
    text = cpe.strip()
    lowered = text.lower()
    if lowered.startswith("cpe:2.3:"):
        fields = [_unescape(f) for f in re.split(r"(?<!\\):", text)[3:5]]
    elif lowered.startswith("cpe:/"):
        fields = [unquote(f) for f in text[5:].split(":")[1:3]]
    else:
        return None
    if len(fields) < 2:
        return None
    vendor, product = (f.strip().lower() for f in fields)
    if vendor in ("", "*", "-") or product in ("", "*", "-"):
        return None
    return vendor, product


def _unescape(field: str) -> str:
    return re.sub(r"\\(.)", r"\1", field)


def _text(value: object) -> str | None:
    """A string attribute, or None for anything else (DT omits nulls; fuzzed input may not)."""
    return value if isinstance(value, str) and value.strip() else None
