"""Scoring one delivered answer, and summing the scores per provider and flow.

Pure functions over the flows' own results, so a test can check them without a run.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from eval.dataset import EvalItem
from models.checks import DEBRIS, REPETITION, TRUNCATED, check_draft
from models.contracts import Rubric
from models.coordinator import MultiAgentReport
from models.research import ResearchReport

# Rules that need no passages, so a delivered answer can be re-checked on its own.
TEXT_RULES = (REPETITION, TRUNCATED, DEBRIS)


class ItemScore(BaseModel):
    """What one run delivered, measured against its eval item."""

    id: str
    provider: str
    flow: str
    passed_checks: bool = Field(description="the delivered draft broke no check rule")
    passed_review: bool
    extractive: bool
    citations: int
    citations_on_topic: int = Field(description="citations of a document that answers it")
    citations_shown: bool = Field(description="every citation points at a passage shown")
    facts: int
    facts_stated: int
    contradictions: list[str]
    unflagged_bad: list[str] = Field(
        description="degenerate, truncated or debris answers delivered without their flag"
    )
    verdict_matches_rubric: bool | None = Field(
        description="the verdict is the rubric's threshold on its scores (None: no review)"
    )
    reasks: int
    revisions: int
    rewrites: int
    tokens: int
    seconds: float
    flags: list[str] = Field(default_factory=list)
    answer: str = ""
    error: str = Field(default="", description="why the run failed, when it did")


def failed(item: EvalItem, provider: str, flow: str, error: str, seconds: float) -> ItemScore:
    """A run that delivered nothing: it counts as passing nothing and stating nothing."""
    return ItemScore(
        id=item.id,
        provider=provider,
        flow=flow,
        passed_checks=False,
        passed_review=False,
        extractive=False,
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


def _unflagged(answer: str, flags: list[str], extractive: bool) -> list[str]:
    broken = [r for r in check_draft(answer, [], []).rules if r in TEXT_RULES]
    return [r for r in broken if not extractive and f"check_failed:{r}" not in flags]


def _matches(rubric: Rubric, scores: dict[str, int], weighted: float | None, passed: bool) -> bool:
    expected = rubric.weighted_score(scores)
    return weighted == expected and passed == (expected >= rubric.pass_threshold)


def score_research(
    item: EvalItem, report: ResearchReport, rubric: Rubric, seconds: float
) -> ItemScore:
    review = report.review
    # Every review of the run, the delivered draft's among them.
    reviews = [*report.reviews, *([review] if review and review not in report.reviews else [])]
    stated = item.stated(report.answer)
    return ItemScore(
        id=item.id,
        provider=report.provider,
        flow="research",
        passed_checks=not report.extractive and not report.check_failures,
        passed_review=report.review_passed,
        extractive=report.extractive,
        citations=len(report.citations),
        citations_on_topic=sum(1 for c in report.citations if c.doc_id in item.docs),
        citations_shown=all(c.number >= 1 and c.passage for c in report.citations),
        facts=len(stated),
        facts_stated=sum(stated),
        contradictions=item.contradicted(report.answer),
        unflagged_bad=_unflagged(report.answer, report.flags, report.extractive),
        verdict_matches_rubric=None
        if not reviews
        else all(
            _matches(rubric, {s.criterion: s.score for s in r.scores}, r.weighted_score, r.passed)
            for r in reviews
        )
        and (review is None or review.passed == report.review_passed),
        reasks=report.reasks,
        revisions=report.revisions,
        rewrites=report.rewrites,
        tokens=report.usage.tokens,
        seconds=round(seconds, 2),
        flags=report.flags,
        answer=report.answer,
    )


def score_team(
    item: EvalItem, report: MultiAgentReport, rubric: Rubric, provider: str, seconds: float
) -> ItemScore:
    reviewed = [r for r in report.rounds if r.reviewer_workflow_id and r.scores]
    stated = item.stated(report.answer)
    return ItemScore(
        id=item.id,
        provider=provider,
        flow="report",
        passed_checks=not report.extractive and not report.check_failures,
        passed_review=report.passed,
        extractive=report.extractive,
        citations=len(report.citations),
        citations_on_topic=sum(1 for c in report.citations if c.doc_id in item.docs),
        citations_shown=all(c.passage_id for c in report.citations),
        facts=len(stated),
        facts_stated=sum(stated),
        contradictions=item.contradicted(report.answer),
        unflagged_bad=_unflagged(report.answer, report.flags, report.extractive),
        verdict_matches_rubric=None
        if not reviewed
        else all(
            _matches(rubric, {s.criterion: s.score for s in r.scores}, r.weighted_score, r.passed)
            for r in reviewed
        ),
        reasks=0,
        revisions=sum(1 for r in report.rounds if r.trigger == "reviewer"),
        rewrites=sum(1 for r in report.rounds if r.trigger == "checks"),
        tokens=report.usage.tokens,
        seconds=round(seconds, 2),
        flags=report.flags,
        answer=report.answer,
    )


class Summary(BaseModel):
    """One provider and flow over the questions run: shares, precision, sums."""

    provider: str
    flow: str
    runs: int
    failed: int
    passed_checks: float
    passed_review: float
    extractive: float
    citation_precision: float | None
    citations_shown: float
    fact_coverage: float
    contradictions: int
    unflagged_bad: int
    verdicts_matching_rubric: str
    reasks: int
    revisions: int
    rewrites: int
    tokens: int
    tokens_per_run: float
    seconds: float
    seconds_per_run: float


def summarise(scores: list[ItemScore]) -> list[Summary]:
    groups: dict[tuple[str, str], list[ItemScore]] = {}
    for s in scores:
        groups.setdefault((s.provider, s.flow), []).append(s)
    out = []
    for (provider, flow), group in sorted(groups.items()):
        n = len(group)
        cited = sum(s.citations for s in group)
        reviewed = [s.verdict_matches_rubric for s in group if s.verdict_matches_rubric is not None]
        out.append(
            Summary(
                provider=provider,
                flow=flow,
                runs=n,
                failed=sum(1 for s in group if s.error),
                passed_checks=round(sum(s.passed_checks for s in group) / n, 3),
                passed_review=round(sum(s.passed_review for s in group) / n, 3),
                extractive=round(sum(s.extractive for s in group) / n, 3),
                citation_precision=round(sum(s.citations_on_topic for s in group) / cited, 3)
                if cited
                else None,
                citations_shown=round(sum(s.citations_shown for s in group) / n, 3),
                fact_coverage=round(
                    sum(s.facts_stated for s in group) / sum(s.facts for s in group), 3
                ),
                contradictions=sum(1 for s in group if s.contradictions),
                unflagged_bad=sum(1 for s in group if s.unflagged_bad),
                verdicts_matching_rubric=f"{sum(reviewed)}/{len(reviewed)}",
                reasks=sum(s.reasks for s in group),
                revisions=sum(s.revisions for s in group),
                rewrites=sum(s.rewrites for s in group),
                tokens=sum(s.tokens for s in group),
                tokens_per_run=round(sum(s.tokens for s in group) / n, 1),
                seconds=round(sum(s.seconds for s in group), 1),
                seconds_per_run=round(sum(s.seconds for s in group) / n, 1),
            )
        )
    return out
