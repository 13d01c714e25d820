"""Package URLs: parsed and canonicalized per the purl specification. Pure.

Follows ``docs/specification/how-to-parse.md`` and the type definitions (``types/*.json``) of
package-url/purl-spec (checked at 16f3d0e3, 2026-08-21): right to left, percent-decoding each
part, then each type's own case rules. Invalid input raises ``PurlError``; ``worker.core.package``
turns that into a weaker key instead, since DT stores whatever an SBOM said.
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import quote, unquote


class PurlError(ValueError):
    """Text that is not a package URL; the message says which rule it breaks."""


@dataclasses.dataclass(frozen=True, slots=True)
class Purl:
    """A package URL's parts, canonical: decoded, with each type's case rules applied."""

    type: str
    namespace: str | None
    name: str
    version: str | None
    qualifiers: tuple[tuple[str, str], ...]  # sorted by key
    subpath: str | None

    def qualifier(self, key: str) -> str | None:
        return dict(self.qualifiers).get(key)


def _types(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Case and namespace rules from the spec's type definitions ("case_sensitive": false,
# "requirement": required / prohibited), for the registered types.
_NAMESPACE_LOWER = _types(
    "alpm apk bitbucket brew composer deb github hex luarocks qpkg rpm vscode-extension yocto"
)
_NAME_LOWER = _types(
    "alpm apk bitbucket bitnami brew chrome-extension composer deb github hex luarocks oci otp"
    " pub pypi vscode-extension"
)
_NAMESPACE_REQUIRED = _types(
    "alpm apk bitbucket composer deb git github golang huggingface maven qpkg rpm swift"
    " vscode-extension"
)
_NAMESPACE_PROHIBITED = _types(
    "bazel bitnami cargo chrome-extension cocoapods conda cran gem julia mlflow nuget oci opam"
    " otp pub pypi vcpkg"
)
_TYPE = re.compile(r"[a-z.+-][a-z0-9.+-]*")
_QUALIFIER_KEY = re.compile(r"[a-z.\-_][a-z0-9.\-_]*")


def parse(text: str) -> Purl:
    """The canonical parts of ``text``, or PurlError naming the broken rule."""
    if not isinstance(text, str):
        raise PurlError(f"a purl is a string, not {type(text).__name__}")
    remainder, _, subpath = text.strip().partition("#")
    remainder, _, query = remainder.partition("?")
    scheme, colon, remainder = remainder.partition(":")
    if not colon or scheme.lower() != "pkg":
        raise PurlError("a purl starts with the scheme pkg:")
    purl_type, slash, remainder = remainder.lstrip("/").partition("/")
    purl_type = purl_type.lower()
    if not slash or not _TYPE.fullmatch(purl_type):
        raise PurlError(f"no valid type: {purl_type!r}")
    version = None
    at = remainder.rfind("@")
    if at > remainder.rfind("/"):  # an "@" before the name is npm's scope (pkg:npm/@babel/core)
        remainder, version = remainder[:at], unquote(remainder[at + 1 :]) or None
    namespace_part, _, name = remainder.rstrip("/").rpartition("/")
    name = unquote(name)
    if not name:
        raise PurlError("a purl has a name")
    segments = [unquote(s) for s in namespace_part.split("/") if s]
    if purl_type == "git" and len(segments) > 1:  # the namespace is the host, the name its path
        name = "/".join([*segments[1:], name])
        segments = segments[:1]
    namespace = "/".join(segments) or None
    qualifiers = _qualifiers(query)
    namespace, name = _normalized(purl_type, namespace, name, dict(qualifiers))
    return Purl(
        type=purl_type,
        namespace=namespace,
        name=name,
        version=version.lower() if version and purl_type == "huggingface" else version,
        qualifiers=qualifiers,
        subpath=_subpath(subpath),
    )


def _qualifiers(query: str) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        key = key.lower()
        if not key and not value:
            continue
        if not _QUALIFIER_KEY.fullmatch(key):
            raise PurlError(f"invalid qualifier key: {key!r}")
        if value:  # an empty value means the qualifier is absent
            found[key] = unquote(value)
    return tuple(sorted(found.items()))


def _subpath(raw: str) -> str | None:
    segments = [unquote(s) for s in raw.split("/")]
    kept = [s for s in segments if s not in ("", ".", "..")]
    if any("/" in s for s in kept):
        raise PurlError("a subpath segment holds a slash")
    return "/".join(kept) or None


def _normalized(
    purl_type: str, namespace: str | None, name: str, qualifiers: dict[str, str]
) -> tuple[str | None, str]:
    """The type's own rules: required or prohibited namespace, case, pypi's dashes."""
    if namespace is None and purl_type in _NAMESPACE_REQUIRED:
        raise PurlError(f"a {purl_type} purl has a namespace")
    if namespace is not None and purl_type in _NAMESPACE_PROHIBITED:
        raise PurlError(f"a {purl_type} purl has no namespace")
    if namespace is not None and purl_type in _NAMESPACE_LOWER:
        namespace = namespace.lower()
    if purl_type in _NAME_LOWER:
        name = name.lower()
    if purl_type == "pypi":
        name = name.replace("_", "-")
    elif purl_type == "cpan" and "::" in name:
        raise PurlError("a cpan purl names a distribution, not a module (no '::')")
    elif purl_type == "mlflow" and "azuredatabricks.net" in qualifiers.get("repository_url", ""):
        name = name.lower()  # Databricks model names are case-insensitive, Azure ML ones are not
    return namespace, name


_NOTHING_TO_ESCAPE = re.compile(r"[A-Za-z0-9._~+:-]*")  # what ``quote`` leaves as it is


def encode(value: str) -> str:
    """A part as it is written in a purl (and in keys): reserved characters escaped."""
    if _NOTHING_TO_ESCAPE.fullmatch(value):  # most parts: quote is slow on every one
        return value
    return quote(value, safe=".-_~+:", errors="backslashreplace")  # never raises
