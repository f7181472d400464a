"""Scoring one delivered answer, and summing the scores per provider and flow.

Pure functions over the flows' own results, so a test can check them without a run,
and a saved run can be scored again (`python -m harness.eval --rescore FILE`).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from activities.documents.chunking import parse_document
from harness.eval.dataset import EvalItem
from keel.payloads.contracts import Rubric
from keel.payloads.coordinator import MultiAgentReport
from keel.payloads.documents import shown_passage
from keel.payloads.research import ResearchReport
from keel.rules.checks import DEBRIS, REPETITION, TRUNCATED, check_draft, content_stems

# Rules that need no passages, so a delivered answer can be re-checked on its own.
TEXT_RULES = (REPETITION, TRUNCATED, DEBRIS)
RECALL_AT = 5
# A sentence is grounded when one retrieved passage holds this share of its content words.
GROUNDED_SHARE = 0.6
# How an answer says the documents do not answer the question.
NOT_IN_CORPUS_PHRASES = (
    "do not answer this question",
    "not in the corpus",
    "not in the documents",
    "documents do not say",
    "documents do not mention",
    "no passage found",
    "문서에 없",
)
CORPUS = Path(__file__).resolve().parents[2] / "corpus"
_SENTENCE = re.compile(r"(?<=[.!?。])\s+")
_MARKERS = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")


@cache
def corpus_chunks() -> dict[str, str]:
    """Every chunk of the corpora by id, split as the store splits them."""
    chunks: dict[str, str] = {}
    for folder in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        for file in sorted(folder.rglob("*.md")):
            doc = f"{folder.name}/{file.relative_to(folder).with_suffix('').as_posix()}"
            parsed = parse_document(file.read_text(encoding="utf-8"), file.stem)
            for n, body in enumerate(parsed.chunks):
                chunks[f"{doc}#{n}"] = f"{parsed.title}: {body}"
    return chunks


def grounded(answer: str, passages: list[str]) -> tuple[int, int]:
    """(sentences supported by one passage, sentences with content words)."""
    stems = [content_stems(p) for p in passages]
    supported = total = 0
    for sentence in _SENTENCE.split(_MARKERS.sub(" ", answer)):
        words = content_stems(sentence)
        if not words:
            continue
        total += 1
        if any(len(words & s) >= GROUNDED_SHARE * len(words) for s in stems):
            supported += 1
    return supported, total


def says_not_in_corpus(answer: str, flags: list[str]) -> bool:
    text = answer.lower()
    return "not_in_corpus" in flags or any(p in text for p in NOT_IN_CORPUS_PHRASES)


class ItemScore(BaseModel):
    """What one run delivered, measured against its eval item."""

    id: str
    provider: str
    flow: str
    namespace: str = ""
    in_corpus: bool = True
    passed_checks: bool = Field(description="the delivered draft broke no check rule")
    passed_review: bool
    extractive: bool
    recall: float | None = Field(
        default=None, description="answering chunks among the top 5 retrieved (None: unknown)"
    )
    citations: int
    citations_on_topic: int = Field(description="citations of a document that answers it")
    citations_answering: int = Field(default=0, description="citations of an answering chunk")
    citations_shown: bool = Field(description="every citation points at a passage shown")
    facts: int
    facts_stated: int
    sentences: int = 0
    sentences_grounded: int = 0
    said_not_in_corpus: bool = False
    contradictions: list[str]
    bad: list[str] = Field(
        default_factory=list, description="degenerate, truncated or debris rules the answer breaks"
    )
    unflagged_bad: list[str] = Field(
        description="degenerate, truncated or debris answers delivered without their flag"
    )
    passed_failing_check: bool = Field(
        default=False, description="delivered as passed although it breaks a check rule"
    )
    verdict_matches_rubric: bool | None = Field(
        description="the verdict is the rubric's threshold on its scores (None: no review)"
    )
    reasks: int
    revisions: int
    rewrites: int
    calls: int = 0
    tokens: int
    seconds: float
    flags: list[str] = Field(default_factory=list)
    answer: str = ""
    error: str = Field(default="", description="why the run failed, when it did")
    report: dict[str, Any] | None = Field(
        default=None, description="the flow's result as delivered, so it can be scored again"
    )


def failed(item: EvalItem, provider: str, flow: str, error: str, seconds: float) -> ItemScore:
    """A run that delivered nothing: it counts as passing nothing and stating nothing."""
    return ItemScore(
        id=item.id,
        provider=provider,
        flow=flow,
        namespace=item.namespace,
        in_corpus=item.in_corpus,
        passed_checks=False,
        passed_review=False,
        extractive=False,
        recall=0.0 if item.in_corpus else None,
        citations=0,
        citations_on_topic=0,
        citations_shown=True,
        facts=len(item.facts),
        facts_stated=0,
        contradictions=[],
        unflagged_bad=[],
        verdict_matches_rubric=None,
        reasks=0,
        revisions=0,
        rewrites=0,
        tokens=0,
        seconds=round(seconds, 2),
        error=error,
    )


def _text_rules(answer: str) -> list[str]:
    return [r for r in check_draft(answer, [], []).rules if r in TEXT_RULES]


def _unflagged(broken: list[str], flags: list[str], extractive: bool) -> list[str]:
    return [r for r in broken if not extractive and f"check_failed:{r}" not in flags]


def _matches(rubric: Rubric, scores: dict[str, int], weighted: float | None, passed: bool) -> bool:
    expected = rubric.weighted_score(scores)
    return weighted == expected and passed == (expected >= rubric.pass_threshold)


def _recall(item: EvalItem, retrieved: list[str]) -> float | None:
    if not item.in_corpus or not retrieved:
        return None if not item.in_corpus else 0.0
    top = set(retrieved[:RECALL_AT])
    return round(sum(1 for c in item.chunks if c in top) / len(item.chunks), 3)


def _delivered(
    item: EvalItem, report: ResearchReport | MultiAgentReport, seconds: float
) -> dict[str, Any]:
    """The fields both flows score alike: the delivered answer, its flags, what it cost."""
    broken = _text_rules(report.answer)
    stated = item.stated(report.answer)
    return {
        "id": item.id,
        "namespace": item.namespace,
        "in_corpus": item.in_corpus,
        "passed_checks": not report.extractive
        and not report.check_failures
        and "not_in_corpus" not in report.flags,
        "extractive": report.extractive,
        "citations": len(report.citations),
        "citations_on_topic": sum(1 for c in report.citations if c.doc_id in item.docs),
        "facts": len(stated),
        "facts_stated": sum(stated),
        "said_not_in_corpus": says_not_in_corpus(report.answer, report.flags),
        "contradictions": item.contradicted(report.answer),
        "bad": broken,
        "unflagged_bad": _unflagged(broken, report.flags, report.extractive),
        "calls": report.usage.calls,
        "tokens": report.usage.tokens,
        "seconds": round(seconds, 2),
        "flags": report.flags,
        "answer": report.answer,
        "report": report.model_dump(mode="json"),
    }


def score_research(
    item: EvalItem, report: ResearchReport, rubric: Rubric, seconds: float
) -> ItemScore:
    delivered = _delivered(item, report, seconds)
    supported, sentences = _grounding(report)
    rules = _draft_rules(report)
    return ItemScore(
        **delivered,
        provider=report.provider,
        flow="research",
        passed_review=report.review_passed,
        recall=_recall(item, report.retrieved),
        citations_answering=sum(1 for c in report.citations if c.chunk_id in item.chunks),
        citations_shown=all(c.number >= 1 and c.passage for c in report.citations),
        sentences=sentences,
        sentences_grounded=supported,
        passed_failing_check=report.review_passed
        and bool(rules or report.check_failures or delivered["bad"]),
        verdict_matches_rubric=_verdicts_match(report, rubric),
        reasks=report.reasks,
        revisions=report.revisions,
        rewrites=report.rewrites,
    )


def _grounding(report: ResearchReport) -> tuple[int, int]:
    """Sentences of the answer held by a passage, of all its sentences."""
    chunks = corpus_chunks()
    # The last evidence set, and the passages cited: a revision searches again, and the
    # delivered answer may come from an earlier round's passages.
    retrieved = [chunks[c] for c in report.retrieved if c in chunks]
    retrieved += [f"{c.title}: {c.passage}" for c in report.citations]
    return grounded(report.answer, retrieved)


def _draft_rules(report: ResearchReport) -> list[str]:
    """The delivered draft against every rule, with the passages it cites as shown."""
    shown = [""] * max((c.number for c in report.citations), default=0)
    for c in report.citations:
        shown[c.number - 1] = shown_passage(c.title, c.passage)
    return check_draft(report.answer, [c.number for c in report.citations], shown).rules


def _verdicts_match(report: ResearchReport, rubric: Rubric) -> bool | None:
    """Every review's verdict is what the rubric says of its scores; None with no review."""
    review = report.review
    # Every review of the run, the delivered draft's among them.
    reviews = [*report.reviews, *([review] if review and review not in report.reviews else [])]
    if not reviews:
        return None
    return all(
        _matches(rubric, {s.criterion: s.score for s in r.scores}, r.weighted_score, r.passed)
        for r in reviews
    ) and (review is None or review.passed == report.review_passed)


def score_team(
    item: EvalItem, report: MultiAgentReport, rubric: Rubric, provider: str, seconds: float
) -> ItemScore:
    delivered = _delivered(item, report, seconds)
    reviewed = [r for r in report.rounds if r.reviewer_workflow_id and r.scores]
    chunks = corpus_chunks()
    cited = [chunks[c.passage_id] for c in report.citations if c.passage_id in chunks]
    supported, sentences = grounded(report.answer, cited)
    return ItemScore(
        **delivered,
        provider=provider,
        flow="report",
        passed_review=report.passed,
        citations_answering=sum(1 for c in report.citations if c.passage_id in item.chunks),
        citations_shown=all(c.passage_id for c in report.citations),
        sentences=sentences,
        sentences_grounded=supported,
        passed_failing_check=report.passed and bool(report.check_failures or delivered["bad"]),
        verdict_matches_rubric=None
        if not reviewed
        else all(
            _matches(rubric, {s.criterion: s.score for s in r.scores}, r.weighted_score, r.passed)
            for r in reviewed
        ),
        reasks=0,
        revisions=sum(1 for r in report.rounds if r.trigger == "reviewer"),
        rewrites=sum(1 for r in report.rounds if r.trigger == "checks"),
    )
