"""An answer built from the retrieved passages' own sentences, when no draft passes.

What a tiny model writes can fail the checks round after round; the passages it
was shown still hold the answer. Picking their sentences that best match the
question gives a plain, correctly cited answer, flagged `extractive` so a reader
knows no model wrote it. Pure code, so workflows run it and it replays exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel

from models.checks import content_stems

_SENTENCE = re.compile(r"(?<=[.!?。])\s+|\n+")
_HEADING = re.compile(r"^\s*(#+|[-*]|\d+\.)\s*")
# "Idempotency Keys: Deriving the key: An idempotency key must ...": a passage as shown
# starts with its title and section; the sentence starts after them.
_LABELS = re.compile(r"^(?:[^.!?:]{1,60}:\s+)+(?=[A-Z0-9\"\uac00-\ud7a3])")

MAX_SENTENCES = 3
MAX_CHARS = 800
MIN_SENTENCE_CHARS = 25
# A passage answers a question only when it holds at least this share of the
# question's content words; with no such passage the documents do not answer it.
MIN_RELEVANCE = 0.5
NOT_IN_CORPUS = "The documents searched do not answer this question: no passage found is about it."


class Extract(BaseModel):
    answer: str
    citations: list[int]


def sentences(text: str) -> list[str]:
    """Prose sentences of a passage; headings and list markers dropped."""
    found = []
    for raw in _SENTENCE.split(text):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = _LABELS.sub("", _HEADING.sub("", line)).strip()
        if len(line) >= MIN_SENTENCE_CHARS and line.endswith((".", "!", "?", "。")):
            found.append(line)
    return found


def relevance(question: str, passage: str) -> float:
    """The share of the question's content words that the passage holds (0 to 1)."""
    wanted = content_stems(question)
    if not wanted:
        return 0.0
    return len(wanted & content_stems(passage)) / len(wanted)


def relevant(question: str, passages: Sequence[str]) -> bool:
    """Whether any passage is about the question (see MIN_RELEVANCE)."""
    return any(relevance(question, p) >= MIN_RELEVANCE for p in passages)


def extract_answer(question: str, passages: Sequence[str]) -> Extract | None:
    """The best-matching sentences, in passage order, each followed by its citation.

    None when no sentence shares a word with the question: an extract of nothing
    relevant would be worse than the flagged draft.
    """
    wanted = content_stems(question)
    found = [
        (number, position, sentence, content_stems(sentence))
        for number, passage in enumerate(passages, 1)
        for position, sentence in enumerate(sentences(passage))
    ]
    scored: list[tuple[float, int, int, str]] = []
    for number, position, sentence, stems in found:
        overlap = len(stems & wanted)
        if overlap:
            # Earlier passages rank higher in retrieval; a small nudge keeps ties stable.
            scored.append((overlap - 0.01 * number, number, position, sentence))
    if not scored:
        return None
    scored.sort(key=lambda s: (-s[0], s[1], s[2]))
    chosen: list[tuple[int, int, str]] = []
    length = 0
    for _, number, position, sentence in scored:
        piece = len(sentence) + 5
        if length + piece > MAX_CHARS:
            continue
        chosen.append((number, position, sentence))
        length += piece
        if len(chosen) == MAX_SENTENCES:
            break
    if not chosen:
        return None
    chosen.sort()
    answer = " ".join(f"{sentence} [{number}]" for number, _, sentence in chosen)
    return Extract(answer=answer, citations=list(dict.fromkeys(n for n, _, _ in chosen)))
