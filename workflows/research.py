"""ResearchWorkflow: the research state machine, driven by its transition table.

Every model call and every search is an activity, so a crash of any worker or
of the server loses nothing: the run resumes from its recorded history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.documents.activities import DocumentActivities
    from graphs.machine import Outcome
    from graphs.research import (
        CHECK_EVIDENCE,
        DELIVER,
        PLAN,
        REFINE,
        RESEARCH_GRAPH,
        RETRIEVE,
        REVIEW,
        VERDICT,
        WRITE,
    )
    from models.documents import Passage, SearchRequest
    from models.errors import NO_VALID_DRAFT
    from models.research import (
        Candidate,
        Citation,
        Draft,
        EvidenceSet,
        NodeVisit,
        RefinedQueries,
        ResearchInput,
        ResearchPlan,
        ResearchProgress,
        ResearchReport,
        ReviewVerdict,
        RunStatus,
    )
    from routing.data import clearance_refusal
    from workflows.contract_snapshot import load_contracts_locally
    from workflows.live import LiveChannel
    from workflows.live_steps import research_node, review_step, search_step
    from workflows.model_calls import BudgetExhausted, ModelCaller
    from workflows.search_attributes import RESEARCH_NODE, RESEARCH_STATUS

M = TypeVar("M", bound=BaseModel)

# Output budgets per node: small enough that a runaway generation stays short.
MAX_TOKENS = {PLAN: 160, REFINE: 120, WRITE: 420, REVIEW: 160}
PROMPT_PASSAGE_CHARS = 500


@workflow.defn(name="ResearchWorkflow")
class ResearchWorkflow:
    @workflow.init
    def __init__(self, request: ResearchInput) -> None:
        self._input = request
        self._progress = ResearchProgress()
        self._live = LiveChannel()
        self._model = ModelCaller(
            request.model,
            request.llm_task_queue,
            request.max_reasks,
            request.budget,
            request.fallback_models,
            live=self._live,
            stream_tokens=request.stream_tokens,
        )
        self._queries: list[str] = []
        self._tried_queries: list[str] = []
        self._evidence = EvidenceSet()
        self._feedback = ""
        self._current: Candidate | None = None
        self._best: Candidate | None = None
        self._chosen: Candidate | None = None
        self._flags: list[str] = []

    @workflow.query(name="progress")
    def progress(self) -> ResearchProgress:
        return self._progress

    @workflow.run
    async def run(self, request: ResearchInput) -> ResearchReport:
        steps: dict[str, Callable[[], Awaitable[Outcome]]] = {
            PLAN: self._plan,
            RETRIEVE: self._retrieve,
            CHECK_EVIDENCE: self._check_evidence,
            REFINE: self._refine,
            WRITE: self._write,
            REVIEW: self._review,
            VERDICT: self._verdict,
        }
        self._set_status("running")
        node = RESEARCH_GRAPH.start
        try:
            # Runs started before this patch let the search activity refuse, after the plan.
            if workflow.patched("clearance-at-start"):
                await self._check_clearance()
            while not RESEARCH_GRAPH.node(node).terminal:
                self._enter(node)
                try:
                    outcome = await steps[node]()
                except BudgetExhausted as spent:
                    workflow.logger.info("budget exhausted at %s: %s", node, spent)
                    self._flag("budget_exhausted")
                    self._chosen = self._current  # the latest draft, if any
                    if self._current is not None and self._current.verdict is None:
                        self._flag("unreviewed")
                    outcome = Outcome.BUDGET_EXHAUSTED
                self._progress.visits.append(NodeVisit(node=node, outcome=outcome.value))
                node = RESEARCH_GRAPH.next(node, outcome)
        except (Exception, asyncio.CancelledError) as error:
            # Not BaseException: the SDK tears evicted workflows down with its own.
            self._set_status("cancelled" if is_cancelled_exception(error) else "failed")
            if self._progress.iteration or self._progress.visits:
                research_node(self._live, self._progress, release=True)
            else:  # refused at its start: the refusal is the whole story
                self._live.release()
            raise
        self._enter(DELIVER)
        self._progress.visits.append(NodeVisit(node=DELIVER, outcome="delivered"))
        report = self._deliver()
        self._set_status("delivered")
        research_node(self._live, self._progress)
        await self._live.close()
        return report

    def _set_status(self, status: RunStatus) -> None:
        self._progress.status = status
        workflow.upsert_search_attributes([RESEARCH_STATUS.value_set(status)])

    def _enter(self, node: str) -> None:
        self._progress.node = node
        workflow.upsert_search_attributes([RESEARCH_NODE.value_set(node)])
        research_node(self._live, self._progress)

    async def _check_clearance(self) -> None:
        """Refuse a namespace the caller may not read before any model call or search.

        Decided on the contracts the run recorded (a local activity, like the search:
        no extra trip through the server's queues), so the answer replays; the search
        activity still checks again at the store's boundary.
        """
        contracts = await load_contracts_locally()
        refusal = clearance_refusal(
            [self._input.namespace, *self._input.namespaces],
            contracts.routes.namespaces,
            self._input.clearance,
        )
        if refusal is not None:
            error_type, reason = refusal
            raise ApplicationError(reason, type=error_type, non_retryable=True)

    # --- nodes -------------------------------------------------------------------------

    async def _plan(self) -> Outcome:
        self._progress.iteration += 1
        feedback = (
            f"A reviewer rejected the previous answer: {self._feedback}" if self._feedback else ""
        )
        plan = await self._ask(
            PLAN, ResearchPlan, {"question": self._input.question, "feedback": feedback}
        )
        if plan is None:
            self._queries = [self._input.question]
            self._flag("plan_fallback")
            return Outcome.SCHEMA_FAILURE
        self._queries = plan.queries
        return Outcome.SUCCESS

    async def _retrieve(self) -> Outcome:
        node = RESEARCH_GRAPH.node(RETRIEVE)
        request = SearchRequest(
            namespace=self._input.namespace,
            queries=self._queries,
            limit=self._input.evidence_limit,
            namespaces=self._input.namespaces,
            clearance=self._input.clearance,
        )
        summary = f"retrieve: {'; '.join(self._queries)}"[:200]
        # Runs recorded before this patch searched with a regular activity and replay so.
        if workflow.patched("retrieve-local-activity"):
            # A search is fast, read-only and reads a store every orchestration worker
            # has, so it runs as a local activity: inside the workflow task, recorded as
            # a marker, without two dispatches through the server's task queues. A
            # crash before the marker is recorded runs it again, which is harmless.
            result = await workflow.execute_local_activity_method(
                DocumentActivities.search,
                request,
                start_to_close_timeout=node.start_to_close,
                retry_policy=node.retry,
                summary=summary,
            )
        else:
            result = await workflow.execute_activity_method(
                DocumentActivities.search,
                request,
                start_to_close_timeout=node.start_to_close,
                retry_policy=node.retry,
                summary=summary,
            )
        self._tried_queries.extend(q for q in self._queries if q not in self._tried_queries)
        merged = {p.chunk_id: p for p in self._evidence.passages}
        for passage in result.passages:
            merged.setdefault(passage.chunk_id, passage)
        best = sorted(merged.values(), key=lambda p: p.score, reverse=True)
        self._evidence = EvidenceSet(passages=best[: self._input.evidence_limit])
        self._progress.evidence = len(self._evidence.passages)
        search_step(self._live, RETRIEVE, result.passages)
        return Outcome.SUCCESS

    async def _check_evidence(self) -> Outcome:
        if len(self._evidence.passages) >= self._input.min_evidence:
            return Outcome.ENOUGH
        if self._progress.refinements < self._input.max_refinements:
            return Outcome.NOT_ENOUGH
        self._flag("insufficient_evidence")
        return Outcome.EXHAUSTED

    async def _refine(self) -> Outcome:
        self._progress.refinements += 1
        refined = await self._ask(
            REFINE,
            RefinedQueries,
            {
                "question": self._input.question,
                "failed_queries": "; ".join(self._tried_queries),
            },
        )
        if refined is None:
            self._flag("refine_failed")
            return Outcome.SCHEMA_FAILURE
        self._queries = refined.queries
        return Outcome.SUCCESS

    async def _write(self) -> Outcome:
        passages = list(self._evidence.passages)
        feedback = (
            f"\nA reviewer rejected an earlier answer: {self._feedback}\n" if self._feedback else ""
        )
        draft = await self._ask(
            WRITE,
            Draft,
            {
                "question": self._input.question,
                "passages": _numbered(passages),
                "feedback": feedback,
            },
        )
        if draft is None:
            raise ApplicationError(
                "the writer gave no valid draft within the re-ask limit",
                type=NO_VALID_DRAFT,
                non_retryable=True,
            )
        self._current = Candidate(draft=draft, passages=passages)
        return Outcome.SUCCESS

    async def _review(self) -> Outcome:
        assert self._current is not None
        verdict = await self._ask(
            REVIEW,
            ReviewVerdict,
            {
                "question": self._input.question,
                "passages": _numbered(self._current.passages),
                "answer": self._current.draft.answer,
            },
        )
        if verdict is None:
            self._flag("unreviewed")
            self._chosen = self._current
            return Outcome.SCHEMA_FAILURE
        self._current.verdict = verdict
        review_step(self._live, verdict)
        if self._best is None or _score(self._current) >= _score(self._best):
            self._best = self._current
        return Outcome.SUCCESS

    async def _verdict(self) -> Outcome:
        assert self._current is not None
        assert self._current.verdict is not None
        verdict = self._current.verdict
        if verdict.passed:
            self._chosen = self._current
            return Outcome.PASS
        if self._progress.revisions < self._input.max_revisions:
            self._progress.revisions += 1
            self._feedback = verdict.feedback or "the answer was not good enough"
            return Outcome.FAIL
        self._flag("max_revisions_reached")
        self._chosen = self._best
        return Outcome.EXHAUSTED

    def _deliver(self) -> ResearchReport:
        chosen = self._chosen or self._current
        if chosen is None:
            # Only a spent budget ends the flow before a draft: deliver the evidence.
            self._flag("no_draft")
            chosen = Candidate(
                # Not model output, so not held to the model's output bounds.
                draft=Draft.model_construct(
                    answer="No answer was written: the budget ran out first. The passages"
                    " below are the evidence gathered so far.",
                    citations=list(range(1, len(self._evidence.passages) + 1)),
                ),
                passages=list(self._evidence.passages),
            )
        numbers = [
            n for n in dict.fromkeys(chosen.draft.citations) if 1 <= n <= len(chosen.passages)
        ]
        if not numbers and chosen.passages:
            # The writer saw only these passages; cite them all rather than none, and say so.
            numbers = list(range(1, len(chosen.passages) + 1))
            self._flag("citations_inferred")
        if not chosen.passages:
            self._flag("no_evidence")
        citations = [
            Citation(
                number=n,
                doc_id=chosen.passages[n - 1].doc_id,
                chunk_id=chosen.passages[n - 1].chunk_id,
                title=chosen.passages[n - 1].title,
                passage=chosen.passages[n - 1].text,
            )
            for n in numbers
        ]
        last = self._model.last
        return ResearchReport(
            question=self._input.question,
            answer=chosen.draft.answer,
            citations=citations,
            review_score=chosen.verdict.score if chosen.verdict else None,
            review_passed=bool(chosen.verdict and chosen.verdict.passed),
            flags=self._flags,
            iterations=self._progress.iteration,
            refinements=self._progress.refinements,
            usage=self._progress.usage,
            provider=last.provider if last else self._input.model.provider,
            model=last.model if last else self._input.model.model,
            visits=self._progress.visits,
            prompts=self._model.prompts,
            reasks=self._progress.reasks,
            fallbacks=self._model.fallbacks,
        )

    # --- helpers -----------------------------------------------------------------------

    async def _ask(self, node: str, output: type[M], variables: dict[str, str]) -> M | None:
        spec = RESEARCH_GRAPH.node(node)
        try:
            return await self._model.ask(
                node,
                output,
                variables,
                max_tokens=MAX_TOKENS[node],
                start_to_close=spec.start_to_close,
                retry=spec.retry,
            )
        finally:
            self._progress.usage = self._model.usage
            self._progress.reasks = self._model.reasks
            self._progress.fallbacks = self._model.fallbacks

    def _flag(self, flag: str) -> None:
        if flag not in self._flags:
            self._flags.append(flag)


def _numbered(passages: list[Passage]) -> str:
    if not passages:
        return "(no passages found)"
    return "\n".join(
        f"[{i}] {p.title}: {p.text[:PROMPT_PASSAGE_CHARS]}" for i, p in enumerate(passages, 1)
    )


def _score(candidate: Candidate) -> int:
    return candidate.verdict.score if candidate.verdict else 0
