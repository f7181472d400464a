"""IntentRouter rules: keywords and patterns from routes.toml, tried before any model."""

from __future__ import annotations

import re
from typing import Literal

from keel.payloads.contracts import Routes
from keel.payloads.routing import IntentDecision

_WORDS = re.compile(r"\w+")


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    """Whole words for English; a word prefix for Korean, whose particles attach to words."""
    tail = r"\b" if keyword[-1].isascii() else ""
    return re.compile(r"(?<!\w)" + re.escape(keyword.lower()) + tail)


def match_rules(request: str, routes: Routes) -> IntentDecision | None:
    """The first intent, in file order, whose keyword or pattern matches the request."""
    text = " ".join(request.lower().split())
    words = len(_WORDS.findall(text))
    for name, route in routes.intents.items():
        if route.max_words is not None and words > route.max_words:
            continue
        for keyword in route.keywords:
            if _keyword_pattern(keyword).search(text):
                return _decision(name, routes, f"keyword {keyword!r}")
        for pattern in route.patterns:
            if re.search(pattern, text, flags=re.IGNORECASE):
                return _decision(name, routes, f"pattern {pattern!r}")
    return None


def from_model(guess: str, routes: Routes) -> IntentDecision:
    """The router agent's guess, accepted only if it names a known intent."""
    name = guess.strip().lower()
    if name not in routes.intents:
        return IntentDecision(
            intent=None,
            flow=None,
            allowed=False,
            method="model",
            reason=f"the model named no known intent ({guess[:40]!r})",
        )
    return _decision(name, routes, "", method="model")


def refused(reason: str, method: Literal["model", "none"] = "none") -> IntentDecision:
    return IntentDecision(intent=None, flow=None, allowed=False, method=method, reason=reason)


def _decision(name: str, routes: Routes, rule: str, method: str = "rule") -> IntentDecision:
    route = routes.intents[name]
    return IntentDecision(
        intent=name,
        flow=route.flow,
        allowed=route.allowed,
        method="rule" if method == "rule" else "model",
        rule=rule,
        reason="" if route.allowed else f"intent {name!r} is not allowed: {route.description}",
    )
