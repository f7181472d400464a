"""The research flow's report: the chosen draft (or extract), scrubbed, with its record.

Pure code over the run's state, so a replay builds the same report.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.graphs.research_delivery import cited, final_candidate, review_score
    from keel.payloads.flags import Flags
    from keel.payloads.research import (
        Candidate,
        EvidenceSet,
        ResearchInput,
        ResearchProgress,
        ResearchReport,
        RubricReview,
    )
    from keel.rules.checks import NOTHING_LEFT, scrub_internal
    from workflows.model_calls import ModelCaller


def research_report(
    request: ResearchInput,
    candidate: Candidate | None,
    *,
    evidence: EvidenceSet,
    flags: Flags,
    progress: ResearchProgress,
    model: ModelCaller,
    reviews: list[RubricReview],
) -> ResearchReport:
    """The report on `candidate` (the chosen draft, else the latest), flags as raised."""
    chosen = final_candidate(candidate, evidence.passages, flags)
    last = model.last
    answer = chosen.draft.answer
    if not chosen.extractive:
        # The flow's own words to its writer never go out, even in a flagged draft.
        answer = scrub_internal(answer) or NOTHING_LEFT
    return ResearchReport(
        question=request.question,
        answer=answer,
        citations=cited(chosen, flags),
        review_score=review_score(chosen),
        review_passed=chosen.review is not None and chosen.review.passed,
        flags=flags,
        iterations=progress.iteration,
        refinements=progress.refinements,
        usage=progress.usage,
        provider=last.provider if last else request.model.provider,
        model=last.model if last else request.model.model,
        visits=progress.visits,
        prompts=model.prompts,
        reasks=progress.reasks,
        fallbacks=model.fallbacks,
        review=chosen.review,
        reviews=reviews,
        check_failures=[] if chosen.extractive else chosen.failures,
        extractive=chosen.extractive,
        revisions=progress.revisions,
        rewrites=progress.rewrites,
        decoding=last.decoding if last else {},
        retrieved=[p.chunk_id for p in evidence.passages],
    )
