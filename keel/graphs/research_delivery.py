"""What a research run delivers: the draft chosen, its citations, each flag they raise.

Pure, so the rules of what goes out are tested without a server, and the workflow
only hands over its state.
"""

from __future__ import annotations

from keel.payloads.documents import Passage
from keel.payloads.flags import Flag, Flags, check_failed
from keel.payloads.research import Candidate, Citation, Draft


def final_candidate(chosen: Candidate | None, evidence: list[Passage], flags: Flags) -> Candidate:
    """The draft delivered, flagged for what it is; the evidence alone if none was written."""
    if chosen is not None and chosen.failures:
        # A draft that never passed the checks: say which rules it broke.
        for failure in chosen.failures:
            flags.add(check_failed(failure.rule))
    if chosen is not None and chosen.extractive:
        flags.add(Flag.EXTRACTIVE)
    if chosen is not None:
        return chosen
    # Only a spent budget ends the flow before a draft: deliver the evidence.
    flags.add(Flag.NO_DRAFT)
    return Candidate(
        # Not model output, so not held to the model's output bounds.
        draft=Draft.model_construct(
            answer="No answer was written: the budget ran out first. The passages"
            " below are the evidence gathered so far.",
            citations=list(range(1, len(evidence) + 1)),
        ),
        passages=list(evidence),
    )


def cited(chosen: Candidate, flags: Flags) -> list[Citation]:
    """The draft's citation numbers that name a passage it was shown, as citations."""
    numbers = [n for n in dict.fromkeys(chosen.draft.citations) if 1 <= n <= len(chosen.passages)]
    if not numbers and chosen.passages:
        # The writer saw only these passages; cite them all rather than none, and say so.
        numbers = list(range(1, len(chosen.passages) + 1))
        flags.add(Flag.CITATIONS_INFERRED)
    if not chosen.passages and Flag.NOT_IN_CORPUS not in flags:
        flags.add(Flag.NO_EVIDENCE)
    return [
        Citation(
            number=n,
            doc_id=chosen.passages[n - 1].doc_id,
            chunk_id=chosen.passages[n - 1].chunk_id,
            title=chosen.passages[n - 1].title,
            passage=chosen.passages[n - 1].text,
        )
        for n in numbers
    ]


def review_score(candidate: Candidate) -> int | None:
    return round(candidate.review.weighted_score) if candidate.review is not None else None
