"""What the team's results make: each researcher's record, and the report delivered.

Pure code over the children's results and the run's state, so a replay builds the
same report and a test can build one without a server.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.payloads.agents import AgentResult, Findings
    from keel.payloads.coordinator import (
        CoordinatorInput,
        CoordinatorProgress,
        MultiAgentReport,
        ReportCitation,
        ResearcherRun,
        ReviewRound,
    )
    from keel.payloads.flags import Flags
    from keel.payloads.llm import Fallback, Usage
    from keel.payloads.research import Draft
    from keel.rules.checks import NOTHING_LEFT, scrub_internal

PASSAGES_PER_RESEARCHER = 2
MAX_PASSAGES = 6


def record_researcher(run: ResearcherRun, result: AgentResult) -> list[str]:
    """Fill a finished researcher's record; returns what it saw that must never go out."""
    run.status = "done"
    run.turns = result.turns
    run.tool_calls = _calls(result)
    run.refusals = [d for d in result.decisions if not d.allowed]
    seen = [pid for o in result.observations for pid in o.passage_ids]
    findings = Findings.model_validate(result.output) if result.output else None
    if findings is not None:
        run.summary = findings.summary
    cited = findings.passage_ids if findings else []
    run.passages = list(dict.fromkeys(cited or seen[:PASSAGES_PER_RESEARCHER]))
    return [
        o.text.partition(": ")[2]
        for o in result.observations
        if o.refused or o.text.startswith("error: ")
    ]


def passages(researchers: list[ResearcherRun]) -> list[str]:
    """The writer's passages: every researcher's, in order, each once, six at the most."""
    ids: list[str] = []
    for run in researchers:
        ids.extend(pid for pid in run.passages if pid not in ids)
    return ids[:MAX_PASSAGES]


def team_report(
    request: CoordinatorInput,
    draft: Draft,
    review: ReviewRound,
    *,
    progress: CoordinatorProgress,
    passage_ids: list[str],
    extractive: bool,
    internal: list[str] | None,
    usage: Usage,
    flags: Flags,
    fallbacks: list[Fallback],
    prompts: dict[str, str],
    contract_versions: dict[str, str],
) -> MultiAgentReport:
    """The report on the final draft; `internal` given, that text is scrubbed from it."""
    assert progress.data_route is not None
    numbers = [n for n in dict.fromkeys(draft.citations) if 1 <= n <= len(passage_ids)]
    answer = draft.answer
    if internal is not None and not extractive:
        # Internal feedback and tool errors never go out, even in a flagged draft.
        answer = scrub_internal(answer, internal) or NOTHING_LEFT
    return MultiAgentReport(
        request=request.request,
        answer=answer,
        citations=[
            ReportCitation(
                number=n, passage_id=passage_ids[n - 1], doc_id=passage_ids[n - 1].split("#")[0]
            )
            for n in numbers
        ],
        passed=review.passed and not extractive,
        rubric=request.rubric,
        rounds=progress.rounds,
        researchers=progress.researchers,
        data_route=progress.data_route,
        usage=usage,
        budget=request.budget,
        flags=flags,
        decision=progress.decision,
        feedback=progress.feedback,
        fallbacks=fallbacks,
        prompts=prompts,
        contract_versions=contract_versions,
        extractive=extractive,
        check_failures=[] if extractive else review.check_failures,
    )


def _calls(result: AgentResult) -> dict[str, int]:
    calls: dict[str, int] = {}
    for decision in result.decisions:
        if decision.allowed and decision.tool:
            calls[decision.tool] = calls.get(decision.tool, 0) + 1
    return calls
