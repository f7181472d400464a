"""Sub-questions for a team: distinct from each other, and covering every topic asked.

A small coordinator gives two researchers the same question and drops the
request's second topic. The topics are read from the request itself (the parts
joined by "and", commas or semicolons), so a missing one is put back and a
duplicate dropped in plain code, before any researcher starts. Pure functions:
workflow code runs them and they replay exactly.
"""

from __future__ import annotations

import re

from keel.rules.checks import content_stems, query_problem, stem, words

_SUBJECT = re.compile(r"\b(?:on|about|of|covering|regarding)\b|:", re.IGNORECASE)
_JOINS = re.compile(r",|;|\band\b|\bvs\.?|\bversus\b|&|\bplus\b", re.IGNORECASE)
_FILLER = frozenset(
    {"how", "what", "why", "when", "where", "which", "work", "works", "together", "each", "other"}
)
_LEADING = re.compile(r"^(?:(?:how|what|why|compare|the|a|an)\s+)+", re.IGNORECASE)
DUPLICATE_OVERLAP = 0.8
# A researcher's task is one question, not a paragraph the model ran on with.
MAX_QUESTION_CHARS = 200
# Without a question mark, a topic ("circuit breaker states") is a task; a longer
# line is a statement the model made up, not something to research.
MAX_TOPIC_WORDS = 8


def topics(request: str) -> list[str]:
    """The request's topics: what follows "on"/"about"/":", split at its joins."""
    parts = _SUBJECT.split(request, maxsplit=1)
    subject = parts[1] if len(parts) > 1 and parts[1].strip() else request
    found: list[str] = []
    for raw in _JOINS.split(subject):
        topic = _LEADING.sub("", raw.strip(" .?!\"'"))
        if _stems(topic) and topic.lower() not in (t.lower() for t in found):
            found.append(topic)
    return found


def _stems(text: str) -> set[str]:
    return {s for s in content_stems(text) if s not in _FILLER}


def _head(topic: str) -> set[str]:
    """A topic's first two content words name it; what follows ("keep agents safe") is shared."""
    stems = [stem(w) for w in words(topic) if stem(w) in _stems(topic)]
    return set(stems[:2])


def _name(topic: str) -> str:
    """The topic up to its second content word: "circuit breakers", not "... keep agents safe"."""
    head, kept, seen = _head(topic), [], set()
    for word in topic.split():
        kept.append(word)
        seen |= {stem(w) for w in words(word)} & head
        if seen == head:
            break
    return " ".join(kept)


def covers(question: str, topic: str) -> bool:
    wanted = _head(topic)
    return bool(wanted & _stems(question))


def _duplicate(a: str, b: str) -> bool:
    sa, sb = _stems(a), _stems(b)
    if not sa or not sb:
        return a.strip().lower() == b.strip().lower()
    return len(sa & sb) / len(sa | sb) >= DUPLICATE_OVERLAP


def question_problem(question: str, request: str) -> str | None:
    """Why a sub-question cannot be a researcher's task, or None when it can.

    A small coordinator returns template debris ("]\\nQuestion: ..."), lines of
    JSON, or words off the request ("response"): each would send a researcher
    searching for nothing the request asked.
    """
    problem = query_problem(question)
    if problem is not None:
        return problem
    if "\n" in question.strip() or len(question) > MAX_QUESTION_CHARS:
        return f"{question[:40]!r}... is not one question"
    if "?" not in question and len(words(question)) > MAX_TOPIC_WORDS:
        return f"{question[:40]!r}... is a statement, not a question"
    if not _stems(question) & _stems(request):
        return f"{question!r} shares no word with the request"
    return None


def real_questions(request: str, questions: list[str]) -> list[str]:
    """The sub-questions a researcher can take (see question_problem)."""
    return [q.strip() for q in questions if question_problem(q, request) is None]


def distinct_covering(request: str, questions: list[str], limit: int) -> list[str]:
    """At most `limit` sub-questions: no two alike, and one for each topic none covered.

    A topic's question is added while there is room, else it replaces a question
    whose topics another question already covers.
    """
    kept: list[str] = []
    for question in questions:
        if not any(_duplicate(question, k) for k in kept):
            kept.append(question)
    kept = kept[:limit]
    for topic in topics(request):
        if any(covers(q, topic) for q in kept):
            continue
        asked = f"What do the documents say about {_name(topic)}?"
        if len(kept) < limit:
            kept.append(asked)
            continue
        for i, question in enumerate(kept):
            others = kept[:i] + kept[i + 1 :]
            own = [t for t in topics(request) if covers(question, t)]
            if all(any(covers(o, t) for o in others) for t in own):
                kept[i] = asked
                break
    return kept


def team_questions(
    request: str, proposed: list[str], limit: int, *, grounded: bool, checked: bool
) -> tuple[list[str], bool]:
    """The questions a team's researchers can take, and whether any proposed was dropped.

    Grounded: only real questions, the request itself when none is left. Checked:
    distinct, one at least for each topic the request names. Runs started before
    either gate keep the model's questions, each once, up to the limit.
    """
    asked, rejected = proposed, False
    if grounded:
        asked = real_questions(request, proposed)
        rejected = len(asked) < len(proposed)
        asked = asked or [request]
    if checked:
        return distinct_covering(request, asked, limit), rejected
    return list(dict.fromkeys(proposed))[:limit], rejected
