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

from keel.rules.checks import content_stems, stem

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
# Words a question is asked with rather than about ("should", "어떤"): they pick no passage.
_ASKING = frozenset(
    stem(w)
    for w in ("should", "would", "could", "did", "어떤", "무엇", "어떻게", "언제", "누가", "어디")
)
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


def relevant_to_any(questions: Sequence[str], passages: Sequence[str]) -> bool:
    """Whether any passage is about any of the questions: a team's request and its parts."""
    return any(relevant(q, passages) for q in questions)


def extract_answer(
    question: str, passages: Sequence[str], ranks: Sequence[float] = ()
) -> Extract | None:
    """The best-matching sentences of the one passage most about the question, cited.

    One passage, not the best sentences of all: neighbouring passages share the
    question's words without answering it, and an extract that mixed them cited
    passages that do not hold the answer. `ranks` are the passages' relevance to the
    question as the store scores it (bm25, with the corpus's term weights); without
    them, the passage holding most of the question's words. None when no sentence
    shares a word with the question: an extract of nothing relevant would be worse
    than the flagged draft.
    """
    wanted = content_stems(question)
    scored: list[tuple[int, int, int, str]] = []
    for number, passage in enumerate(passages, 1):
        for position, sentence in enumerate(sentences(passage)):
            overlap = len(content_stems(sentence) & wanted)
            if overlap:
                scored.append((overlap, number, position, sentence))
    if not scored:
        return None
    topic = (wanted - _ASKING) or wanted
    scored_ranks = len(ranks) == len(passages) and any(r > 0 for r in ranks)

    def about(n: int) -> float:
        """How much passage n is about the question: its rank, else its share of words."""
        return ranks[n - 1] if scored_ranks else len(topic & content_stems(passages[n - 1]))

    # The earlier passage in retrieval order on a tie.
    best = min({number for _, number, _, _ in scored}, key=lambda n: (-about(n), n))
    scored.sort(key=lambda s: (-s[0], s[2]))
    chosen: list[tuple[int, str]] = []
    length = 0
    for _, number, position, sentence in scored:
        piece = len(sentence) + 5
        if number != best or length + piece > MAX_CHARS:
            continue
        chosen.append((position, sentence))
        length += piece
        if len(chosen) == MAX_SENTENCES:
            break
    if not chosen:
        return None
    chosen.sort()
    answer = " ".join(f"{sentence} [{best}]" for _, sentence in chosen)
    return Extract(answer=answer, citations=[best])


def extract_for_questions(
    questions: Sequence[str],
    passages: Sequence[str],
    ranks: Sequence[Sequence[float]] = (),
) -> Extract | None:
    """One extract per question, joined: a team's sub-questions each get their own passage.

    A request on several topics has no one passage that answers it; the extract of
    each sub-question cites the passage that answers that part. `ranks`, one row per
    question when given, are the passages' relevance to that question as the store
    scores it.
    """
    rows = list(ranks) if len(ranks) == len(questions) else [()] * len(questions)
    parts = [
        e
        for q, row in zip(questions, rows, strict=True)
        if (e := extract_answer(q, passages, row)) is not None
    ]
    if not parts:
        return None
    return Extract(
        answer=" ".join(dict.fromkeys(p.answer for p in parts)),
        citations=list(dict.fromkeys(c for p in parts for c in p.citations)),
    )
