"""DataRouter: which corpus namespaces a question searches.

By language (detected from the question's script), by version (the newest unless
the caller pins one) and by the caller's clearance: a namespace above it is never
searched, and the route says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from keel.payloads.clearance import SecurityLevel, may_read
from keel.payloads.contracts import DataNamespace, Language
from keel.payloads.errors import ACCESS_DENIED, UNKNOWN_NAMESPACE
from keel.payloads.routing import DataRoute


def detect_language(text: str) -> Language:
    """Korean when Hangul makes up a fair share of the letters, English otherwise."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "en"
    hangul = sum(1 for c in letters if "\uac00" <= c <= "\ud7a3" or "\u1100" <= c <= "\u11ff")
    return "ko" if hangul / len(letters) >= 0.3 else "en"


def clearance_refusal(
    requested: Iterable[str], namespaces: Mapping[str, DataNamespace], clearance: SecurityLevel
) -> tuple[str, str] | None:
    """(error type, reason) for the first namespace a caller may not search, else None.

    A namespace routes.toml does not declare is refused rather than assumed public:
    nobody has said who may read it. Pure, so a workflow decides it before any model
    call or search.
    """
    for name in dict.fromkeys(requested):
        ns = namespaces.get(name)
        if ns is None:
            return UNKNOWN_NAMESPACE, f"namespace {name!r} is not declared in routes.toml"
        if not may_read(clearance, ns.security):
            return (
                ACCESS_DENIED,
                f"namespace {name!r} is {ns.security}; clearance {clearance} may not read it",
            )
    return None


def no_readable_namespace(clearance: SecurityLevel, excluded: Mapping[str, str]) -> str:
    """One line: why a request has nothing to search, namespace by namespace."""
    reasons = "; ".join(f"{name}: {why}" for name, why in sorted(excluded.items()))
    return f"no document namespace that clearance {clearance} may read matches the request" + (
        f" ({reasons})" if reasons else ""
    )


def _version_key(version: str) -> tuple[int, ...] | tuple[str]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (version,)


def route_data(
    question: str,
    namespaces: Mapping[str, DataNamespace],
    clearance: SecurityLevel,
    *,
    version: str | None = None,
    topic: str | None = None,
) -> DataRoute:
    """Readable namespaces in the question's language, one edition of each corpus."""
    language = detect_language(question)
    excluded: dict[str, str] = {}
    eligible: dict[str, DataNamespace] = {}
    for name, ns in namespaces.items():
        if topic is not None and ns.topic != topic:
            excluded[name] = f"topic {ns.topic!r}"
        elif ns.language != language:
            excluded[name] = f"language {ns.language}"
        elif not may_read(clearance, ns.security):
            excluded[name] = f"{ns.security}: clearance {clearance} too low"
        elif version is not None and ns.version != version:
            excluded[name] = f"version {ns.version}, not {version}"
        else:
            eligible[name] = ns
    chosen: list[str] = []
    # One edition of each corpus: a corpus is its topic at one security level.
    for corpus in sorted({(ns.topic, ns.security) for ns in eligible.values()}):
        editions = [n for n, ns in eligible.items() if (ns.topic, ns.security) == corpus]
        newest = max(editions, key=lambda n: _version_key(eligible[n].version))
        chosen.append(newest)
        for other in editions:
            if other != newest:
                excluded[other] = f"version {eligible[other].version}, older"
    chosen.sort(key=lambda n: (eligible[n].security != "public", n))
    return DataRoute(language=language, namespaces=chosen, excluded=excluded)
