"""What a research run delivers, as pure rules: the draft, its citations and the flags."""

from __future__ import annotations

from keel.graphs.research_delivery import cited, final_candidate
from keel.payloads.documents import Passage
from keel.payloads.flags import Flag, Flags
from keel.payloads.research import Candidate, Draft


def passage(n: int) -> Passage:
    return Passage(doc_id=f"d{n}", chunk_id=f"d{n}#0", title=f"T{n}", text=f"text {n}", score=1.0)


def test_without_a_draft_the_evidence_is_delivered_and_flagged() -> None:
    flags = Flags()
    chosen = final_candidate(None, [passage(1), passage(2)], flags)
    assert flags == [Flag.NO_DRAFT.value]
    assert [c.number for c in cited(chosen, flags)] == [1, 2]
    assert "budget ran out" in chosen.draft.answer


def test_citations_outside_the_passages_shown_are_dropped_or_inferred() -> None:
    flags = Flags()
    draft = Draft.model_construct(answer="a", citations=[2, 2, 9])
    chosen = Candidate(draft=draft, passages=[passage(1), passage(2)])
    assert [(c.number, c.chunk_id) for c in cited(chosen, flags)] == [(2, "d2#0")]
    assert flags == []
    none_valid = Candidate(
        draft=Draft.model_construct(answer="a", citations=[7]), passages=[passage(1)]
    )
    assert [c.number for c in cited(none_valid, flags)] == [1]
    assert flags == [Flag.CITATIONS_INFERRED.value]


def test_no_evidence_is_flagged_unless_the_corpus_said_it_has_none() -> None:
    empty = Candidate(draft=Draft.model_construct(answer="a", citations=[]), passages=[])
    flags = Flags()
    assert cited(empty, flags) == []
    assert flags == [Flag.NO_EVIDENCE.value]
    flags = Flags([Flag.NOT_IN_CORPUS.value])
    cited(empty, flags)
    assert flags == [Flag.NOT_IN_CORPUS.value]
