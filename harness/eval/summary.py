"""The evaluation's figures per provider and flow, from each item's score."""

from __future__ import annotations

from pydantic import BaseModel, Field

from harness.eval.score import ItemScore


class Summary(BaseModel):
    """One provider and flow over the questions run: shares, precision, sums."""

    provider: str
    flow: str
    runs: int
    failed: int
    in_corpus: int = 0
    out_of_corpus: int = 0
    recall_at_5: float | None = None
    passed_checks: float
    passed_review: float
    extractive: float
    citation_precision: float | None = Field(
        description="cited passages that are answering chunks, over in-corpus runs"
    )
    citation_precision_docs: float | None = Field(
        default=None, description="cited passages from an answering document"
    )
    citations_shown: float
    fact_coverage: float | None
    grounded_sentences: float | None = None
    not_in_corpus_said: float | None = Field(
        default=None, description="out-of-corpus questions answered as not in the corpus"
    )
    refused_in_corpus: int = Field(
        default=0, description="answerable questions answered as not in the corpus"
    )
    contradictions: int
    degenerate_or_truncated: float = 0.0
    unflagged_bad: int
    passed_failing_check: int = 0
    verdict_agrees_with_checks: str = ""
    verdicts_matching_rubric: str
    reasks: int
    revisions: int
    rewrites: int
    calls_per_run: float = 0.0
    tokens: int
    tokens_per_run: float
    seconds: float
    seconds_per_run: float


def _share(num: float, den: float) -> float | None:
    return round(num / den, 3) if den else None


def summarise(scores: list[ItemScore]) -> list[Summary]:
    groups: dict[tuple[str, str], list[ItemScore]] = {}
    for s in scores:
        groups.setdefault((s.provider, s.flow), []).append(s)
    out = []
    for (provider, flow), group in sorted(groups.items()):
        n = len(group)
        inside = [s for s in group if s.in_corpus]
        outside = [s for s in group if not s.in_corpus]
        recalls = [s.recall for s in inside if s.recall is not None]
        reviewed = [s.verdict_matches_rubric for s in group if s.verdict_matches_rubric is not None]
        with_review = [s for s in group if s.passed_review or s.verdict_matches_rubric is not None]
        out.append(
            Summary(
                provider=provider,
                flow=flow,
                runs=n,
                failed=sum(1 for s in group if s.error),
                in_corpus=len(inside),
                out_of_corpus=len(outside),
                recall_at_5=_share(sum(recalls), len(recalls)),
                passed_checks=round(sum(s.passed_checks for s in group) / n, 3),
                passed_review=round(sum(s.passed_review for s in group) / n, 3),
                extractive=round(sum(s.extractive for s in group) / n, 3),
                citation_precision=_share(
                    sum(s.citations_answering for s in inside), sum(s.citations for s in inside)
                ),
                citation_precision_docs=_share(
                    sum(s.citations_on_topic for s in inside), sum(s.citations for s in inside)
                ),
                citations_shown=round(sum(s.citations_shown for s in group) / n, 3),
                fact_coverage=_share(
                    sum(s.facts_stated for s in inside), sum(s.facts for s in inside)
                ),
                grounded_sentences=_share(
                    sum(s.sentences_grounded for s in inside), sum(s.sentences for s in inside)
                ),
                not_in_corpus_said=_share(sum(s.said_not_in_corpus for s in outside), len(outside)),
                refused_in_corpus=sum(1 for s in inside if s.said_not_in_corpus),
                contradictions=sum(1 for s in group if s.contradictions),
                degenerate_or_truncated=round(sum(1 for s in group if s.bad) / n, 3),
                unflagged_bad=sum(1 for s in group if s.unflagged_bad),
                passed_failing_check=sum(1 for s in group if s.passed_failing_check),
                verdict_agrees_with_checks=f"{sum(not s.passed_failing_check for s in with_review)}"
                f"/{len(with_review)}",
                verdicts_matching_rubric=f"{sum(reviewed)}/{len(reviewed)}",
                reasks=sum(s.reasks for s in group),
                revisions=sum(s.revisions for s in group),
                rewrites=sum(s.rewrites for s in group),
                calls_per_run=round(sum(s.calls for s in group) / n, 1),
                tokens=sum(s.tokens for s in group),
                tokens_per_run=round(sum(s.tokens for s in group) / n, 1),
                seconds=round(sum(s.seconds for s in group), 1),
                seconds_per_run=round(sum(s.seconds for s in group) / n, 1),
            )
        )
    return out
