"""Deterministic checks a draft must pass before a model reviews it.

A small model writes loops, copies, template debris and answers cut off at the
output limit, and a small reviewer passes them. These rules catch such drafts in
plain code, without a model call, and each failure carries feedback the writer
can act on. The rules are pure functions of the draft and what the writer was
shown, so workflow code runs them and they replay exactly.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from keel.payloads.checks import CheckFailure, DraftCheck

CITATIONS = "citations"
REPETITION = "repetition"
VERBATIM = "verbatim"
DEBRIS = "debris"
TRUNCATED = "truncated"
INTERNAL = "internal_text"
RULES = (CITATIONS, REPETITION, VERBATIM, DEBRIS, TRUNCATED, INTERNAL)

_WORD = re.compile(r"\w+", re.UNICODE)
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_TRAILING_MARKERS = re.compile(r"(\s*(\[\d+(?:\s*,\s*\d+)*\]|\(\d+\)))+\s*$")
# Braces, backslashes, backticks, `$name`, `":` and `]:` are JSON or template syntax,
# never prose.
_DEBRIS = re.compile(r"[{}\\`]|\$[A-Za-z_]|\"\s*:|\]\s*:|<\||\|>")
_SENTENCE_END = tuple(".!?。…\"”')")
_SENTENCE = re.compile(r"(?<=[.!?。])\s+")
# What the flow itself says to a writer or sees from a tool; never reader-facing.
INTERNAL_MARKERS = (
    "feedback on the last version",
    "did not pass the rubric",
    "reviewer rejected",
    "your last answer was sent back",
    "previous reply was rejected",
    "reply again with json",
    "validation error",
    "(not found)",
)
_STOP = frozenset(
    {
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "is",
        "are",
        "was",
        "were",
        "be",
        "by",
        "with",
        "as",
        "at",
        "it",
        "its",
        "this",
        "that",
        "from",
        "what",
        "how",
        "why",
        "when",
        "which",
        "who",
        "does",
        "do",
        "can",
        "will",
        "not",
        "no",
        "into",
        "than",
        "then",
        "so",
        "if",
    }
)

SUPPORT_WORDS = 2
INTERNAL_NGRAM = 4  # words in a row shared with a tool message that count as a leak
MIN_WORDS_FOR_COPY = 10
COPY_NGRAM = 8
COPY_SHARE = 0.6
REPEAT_SHARE = 0.3
MIN_DISTINCT_SHARE = 0.35


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def stem(word: str) -> str:
    """A crude stem: enough to match `retries` with `retried`, or `재시도는` with `재시도`."""
    return word[:2] if not word.isascii() else word[:5]


def content_stems(text: str) -> set[str]:
    return {
        stem(w)
        for w in words(text)
        if w not in _STOP and (len(w) >= 3 or not w.isascii()) and not w.isdigit()
    }


def check_draft(
    answer: str,
    citations: Sequence[int],
    passages: Sequence[str],
    internal: Sequence[str] = (),
) -> DraftCheck:
    """Every rule over one draft; `passages` are the texts the writer was shown, in order."""
    failures = [
        failure
        for failure in (
            _citations(answer, citations, passages),
            _repetition(answer),
            _verbatim(answer, passages),
            _debris(answer),
            _truncated(answer),
            _internal(answer, internal),
        )
        if failure is not None
    ]
    return DraftCheck(failures=failures)


def _citations(
    answer: str, citations: Sequence[int], passages: Sequence[str]
) -> CheckFailure | None:
    shown = len(passages)
    if not shown:
        return None  # nothing to cite: the flow flags the missing evidence itself
    inline = [int(n) for group in _MARKER.findall(answer) for n in group.split(",")]
    cited = list(dict.fromkeys([*citations, *inline]))
    unknown = [n for n in cited if not 1 <= n <= shown]
    if unknown:
        return CheckFailure(
            rule=CITATIONS,
            feedback=f"Cite only passages 1 to {shown}; "
            f"{', '.join(f'[{n}]' for n in unknown)} is not one of them.",
        )
    if not cited:
        return CheckFailure(rule=CITATIONS, feedback="Cite the passages the answer uses.")
    said = content_stems(answer)
    # Two shared words, not one: a single common word ("repeated") is not support.
    needed = min(SUPPORT_WORDS, len(said))
    unsupported = [n for n in cited if len(content_stems(passages[n - 1]) & said) < needed]
    if unsupported:
        return CheckFailure(
            rule=CITATIONS,
            feedback=f"Passage {', '.join(f'[{n}]' for n in unsupported)} says nothing the"
            " answer says: cite the passages the answer is taken from.",
        )
    return None


def _repetition(answer: str) -> CheckFailure | None:
    said = words(answer)
    degenerate = False
    if len(said) >= 6:
        for n in range(2, 7):
            grams = Counter(tuple(said[i : i + n]) for i in range(len(said) - n + 1))
            if not grams:
                break
            _, count = grams.most_common(1)[0]
            if count >= 3 and count * n >= REPEAT_SHARE * len(said):
                degenerate = True
                break
    if len(said) >= 15 and len(set(said)) < MIN_DISTINCT_SHARE * len(said):
        degenerate = True
    sentences = [" ".join(words(s)) for s in _SENTENCE.split(answer) if len(words(s)) >= 4]
    if len(sentences) != len(set(sentences)):
        degenerate = True
    if not degenerate:
        return None
    return CheckFailure(
        rule=REPETITION,
        feedback="The answer repeats the same words over and over: say each thing once.",
    )


def _verbatim(answer: str, passages: Sequence[str]) -> CheckFailure | None:
    said = words(answer)
    if len(said) < MIN_WORDS_FOR_COPY:
        return None
    n = min(COPY_NGRAM, len(said))
    for number, passage in enumerate(passages, 1):
        text = words(passage)
        grams = {tuple(text[i : i + n]) for i in range(len(text) - n + 1)}
        covered = [False] * len(said)
        for i in range(len(said) - n + 1):
            if tuple(said[i : i + n]) in grams:
                covered[i : i + n] = [True] * n
        if sum(covered) >= COPY_SHARE * len(said):
            return CheckFailure(
                rule=VERBATIM,
                feedback=f"The answer copies passage [{number}] word for word: answer the"
                " question in your own words.",
            )
    return None


def _debris(answer: str) -> CheckFailure | None:
    found = _DEBRIS.search(answer)
    if found is None:
        return None
    return CheckFailure(
        rule=DEBRIS,
        feedback=f"Remove the template or JSON fragment {found.group(0)!r}: write plain sentences.",
    )


def _truncated(answer: str) -> CheckFailure | None:
    body = _TRAILING_MARKERS.sub("", answer).rstrip()
    if body.endswith(_SENTENCE_END):
        return None
    return CheckFailure(
        rule=TRUNCATED,
        feedback="The answer stops mid-sentence: write shorter sentences and end the last one.",
    )


def _internal(answer: str, internal: Sequence[str]) -> CheckFailure | None:
    lowered = answer.lower()
    said = " ".join(words(answer))
    leaked = [marker for marker in INTERNAL_MARKERS if marker in lowered]
    for text in internal:
        seen = words(text)
        n = INTERNAL_NGRAM
        if len(seen) >= n and any(
            " ".join(seen[i : i + n]) in said for i in range(len(seen) - n + 1)
        ):
            leaked.append(text[:60])
    if not leaked:
        return None
    return CheckFailure(
        rule=INTERNAL,
        feedback="Leave out notes meant for you (reviewer feedback, tool messages): answer"
        " the request only.",
    )


NOTHING_LEFT = "No sentence of the draft could be delivered: it held only internal notes."


def scrub_internal(answer: str, internal: Sequence[str] = ()) -> str:
    """The answer without its sentences that carry internal text, for a flagged delivery.

    A draft that never passed the checks may still go out, flagged; what the flow said
    to its writer or saw from its tools must not go out with it.
    """
    kept = [s for s in _SENTENCE.split(answer) if _internal(s, internal) is None]
    return " ".join(s.strip() for s in kept if s.strip())


def query_problem(query: str) -> str | None:
    """Why a planned search query is not a real one, or None when it is."""
    text = query.strip()
    if _DEBRIS.search(text) or any(c in text for c in '[]"'):
        return f"{query!r} holds JSON or template syntax"
    letters = [w for w in _WORD.findall(text) if not w.isdigit() and len(w) >= 2]
    if not letters:
        return f"{query!r} has no words"
    kept = sum(1 for c in text if c.isalnum() or c in " -'")
    if kept < 0.8 * len(text):
        return f"{query!r} is mostly punctuation"
    return None
