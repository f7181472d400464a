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
    from keel.graphs.machine import Outcome
    from keel.graphs.research import (
        CHECK_DRAFT,
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
    from keel.payloads.agents import RubricScores
    from keel.payloads.contracts import ContractSnapshot, FlowQuality, Rubric
    from keel.payloads.documents import Passage, numbered
    from keel.payloads.errors import NO_VALID_DRAFT, UNKNOWN_RUBRIC
    from keel.payloads.flags import Flag, Flags, check_failed
    from keel.payloads.live import research_line
    from keel.payloads.research import (
        Candidate,
        Draft,
        NodeVisit,
        ResearchInput,
        ResearchProgress,
        ResearchReport,
        RubricReview,
        RunStatus,
    )
    from keel.routing.data import clearance_refusal
    from keel.rules.checks import check_draft
    from keel.rules.extractive import NOT_IN_CORPUS, extract_answer
    from workflows.contract_snapshot import load_contracts_locally
    from workflows.live import LiveChannel
    from workflows.live_steps import research_node
    from workflows.model_calls import BudgetExhausted, ModelCaller
    from workflows.research_report import research_report
    from workflows.research_search import ResearchSearch

M = TypeVar("M", bound=BaseModel)

# Output budgets per node: small enough that a runaway generation stays short.
MAX_TOKENS = {PLAN: 160, REFINE: 120, WRITE: 420, REVIEW: 160}
# The release before marked each run with this patch; its runs took the path every run
# takes now. A run writes no marker any more (a marker and the SDK's search-attribute
# upsert were two of its 27 events); the marker in such a run's history is matched on
# replay, so those runs still finish on this code. Runs that started before that
# release (without the marker) do not replay here: docs/upgrades.md, "Retiring a patch".
RETIRED_PATCH = "progress-in-current-details"
FLOW = "research"
CRITERIA_KEY = "CriterionScore.criterion"


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
        self._feedback = ""
        self._current: Candidate | None = None
        self._best: Candidate | None = None
        self._chosen: Candidate | None = None
        self._flags = Flags()
        self._contracts: ContractSnapshot | None = None
        self._rewrite_feedback = ""
        self._reviews: list[RubricReview] = []
        self._search = ResearchSearch(
            request, self._progress, self._flags, self._live, self._ask, self._not_in_corpus
        )

    @workflow.query(name="progress")
    def progress(self) -> ResearchProgress:
        return self._progress

    @workflow.run
    async def run(self, request: ResearchInput) -> ResearchReport:
        steps: dict[str, Callable[[], Awaitable[Outcome]]] = {
            PLAN: lambda: self._search.plan(self._feedback),
            RETRIEVE: self._search.retrieve,
            CHECK_EVIDENCE: self._search.check_evidence,
            REFINE: self._search.refine,
            WRITE: self._write,
            REVIEW: self._review,
            VERDICT: self._verdict,
            CHECK_DRAFT: self._check_draft,
        }
        if workflow.unsafe.is_replaying():
            # Matches the retired patch's marker in a run of the release before; writes
            # nothing in a new run, which is never replaying at its first task.
            workflow.deprecate_patch(RETIRED_PATCH)
        self._set_status("running")
        node = RESEARCH_GRAPH.start
        try:
            await self._check_clearance()
            while not RESEARCH_GRAPH.node(node).terminal:
                self._enter(node)
                try:
                    outcome = await steps[node]()
                except BudgetExhausted as spent:
                    workflow.logger.info("budget exhausted at %s: %s", node, spent)
                    self._flags.budget_spent(spent.tenant)
                    self._chosen = self._current  # the latest draft, if any
                    if self._current is not None and self._current.review is None:
                        self._flags.add(Flag.UNREVIEWED)
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
        self._show()

    def _enter(self, node: str) -> None:
        self._progress.node = node
        self._show()
        research_node(self._live, self._progress)

    def _show(self) -> None:
        """Progress on the run's page, kept out of the history: no event per node."""
        workflow.set_current_details(research_line(self._progress))

    async def _check_clearance(self) -> None:
        """Refuse a namespace the caller may not read before any model call or search.

        Decided on the contracts the run recorded (a local activity, like the search:
        no extra trip through the server's queues), so the answer replays; the search
        activity still checks again at the store's boundary.
        """
        contracts = await load_contracts_locally()
        self._contracts = contracts  # the checks and the rubric read the same snapshot
        refusal = clearance_refusal(
            [self._input.namespace, *self._input.namespaces],
            contracts.routes.namespaces,
            self._input.clearance,
        )
        if refusal is not None:
            error_type, reason = refusal
            raise ApplicationError(reason, type=error_type, non_retryable=True)

    # --- nodes -------------------------------------------------------------------------

    async def _write(self) -> Outcome:
        passages = list(self._search.evidence.passages)
        feedback = (
            f"\nA reviewer rejected an earlier answer: {self._feedback}\n" if self._feedback else ""
        )
        if self._rewrite_feedback:
            feedback = f"\nYour last answer was sent back: {self._rewrite_feedback}\n"
            self._rewrite_feedback = ""
        draft = await self._ask(
            WRITE,
            Draft,
            {
                "question": self._input.question,
                "passages": numbered([p.shown for p in passages]),
                "feedback": feedback,
            },
        )
        if draft is None and await self._extract(passages):
            return Outcome.SCHEMA_FAILURE
        if draft is None:
            raise ApplicationError(
                "the writer gave no valid draft within the re-ask limit",
                type=NO_VALID_DRAFT,
                non_retryable=True,
            )
        self._current = Candidate(draft=draft, passages=passages)
        return Outcome.SUCCESS

    async def _check_draft(self) -> Outcome:
        """Deterministic rules before any review call; a broken one goes back to the writer."""
        assert self._current is not None
        current = self._current
        shown = [p.shown for p in current.passages]
        check = check_draft(current.draft.answer, current.draft.citations, shown)
        current.failures = check.failures
        if check.passed:
            return Outcome.PASS
        quality = await self._quality()
        if self._best is None or len(current.failures) < len(self._best.failures):
            self._best = current
        if self._progress.rewrites < quality.max_rewrites:
            self._progress.rewrites += 1
            self._rewrite_feedback = check.feedback
            return Outcome.FAIL
        best = self._best
        # The rules the last draft broke, even when an earlier, reviewed draft ranks best.
        for failure in current.failures:
            self._flags.add(check_failed(failure.rule))
        if not await self._extract(best.passages):
            self._chosen = best
        return Outcome.EXHAUSTED

    async def _review(self) -> Outcome:
        """The reviewer scores each criterion; the rubric, not the model, decides the verdict."""
        assert self._current is not None
        name, rubric = await self._rubric()
        scored = await self._ask(
            REVIEW,
            RubricScores,
            {
                "question": self._input.question,
                "passages": numbered([p.shown for p in self._current.passages]),
                "answer": self._current.draft.answer,
                "criteria": rubric.prompt_criteria,
            },
            prompt_id="review_rubric",
            choices={CRITERIA_KEY: [c.name for c in rubric.criteria]},
        )
        if scored is None:
            self._flags.add(Flag.UNREVIEWED)
            self._chosen = self._current
            return Outcome.SCHEMA_FAILURE
        weighted = rubric.weighted_score({s.criterion: s.score for s in scored.scores})
        self._current.review = RubricReview(
            rubric=name,
            scores=scored.scores,
            weighted_score=weighted,
            threshold=rubric.pass_threshold,
            passed=weighted >= rubric.pass_threshold,
            feedback=scored.feedback,
        )
        self._reviews.append(self._current.review)
        review = self._current.review
        self._live.step(
            f"review {'passed' if review.passed else 'failed'}: rubric {name}"
            f" {review.weighted_score:.2f} against {review.threshold:.2f}",
            REVIEW,
        )
        if (
            self._best is None
            or self._best.review is None
            or (self._current.score >= self._best.score)
        ):
            self._best = self._current
        return Outcome.SUCCESS

    async def _verdict(self) -> Outcome:
        assert self._current is not None
        review = self._current.review
        assert review is not None  # the review node always precedes the verdict
        if review.passed:
            self._chosen = self._current
            return Outcome.PASS
        if self._progress.revisions < self._input.max_revisions:
            self._progress.revisions += 1
            self._feedback = review.feedback or "the answer was not good enough"
            return Outcome.FAIL
        self._flags.add(Flag.MAX_REVISIONS_REACHED)
        # No draft passed the review: an extract of the passages, where the contract
        # allows one, rather than a draft the rubric rejected.
        best = self._best
        if not (best is not None and await self._extract(best.passages)):
            self._chosen = best
        return Outcome.EXHAUSTED

    def _deliver(self) -> ResearchReport:
        return research_report(
            self._input,
            self._chosen or self._current,
            evidence=self._search.evidence,
            flags=self._flags,
            progress=self._progress,
            model=self._model,
            reviews=self._reviews,
        )

    # --- helpers -----------------------------------------------------------------------

    async def _ask(
        self,
        node: str,
        output: type[M],
        variables: dict[str, str],
        *,
        prompt_id: str | None = None,
        choices: dict[str, list[str]] | None = None,
    ) -> M | None:
        spec = RESEARCH_GRAPH.node(node)
        try:
            return await self._model.ask(
                node,
                output,
                variables,
                max_tokens=MAX_TOKENS[node],
                start_to_close=spec.start_to_close,
                retry=spec.retry,
                prompt_id=prompt_id,
                choices=choices,
            )
        finally:
            self._progress.usage = self._model.usage
            self._progress.reasks = self._model.reasks
            self._progress.fallbacks = self._model.fallbacks

    def _not_in_corpus(self) -> Outcome:
        """Deliver that the documents do not answer the question; no model call."""
        self._flags.add(Flag.NOT_IN_CORPUS)
        self._chosen = Candidate(
            # Not model output, so not held to the model's output bounds.
            draft=Draft.model_construct(answer=NOT_IN_CORPUS, citations=[]),
            passages=[],
        )
        return Outcome.NOTHING_RELEVANT

    async def _snapshot(self) -> ContractSnapshot:
        """The contracts the run read at its start (`_check_clearance`)."""
        assert self._contracts is not None
        return self._contracts

    async def _quality(self) -> FlowQuality:
        return (await self._snapshot()).quality.flow(FLOW)

    async def _rubric(self) -> tuple[str, Rubric]:
        name = (await self._quality()).rubric
        rubric = (await self._snapshot()).rubrics.get(name)
        if rubric is None:
            raise ApplicationError(
                f"no rubric {name!r} in rubrics.toml", type=UNKNOWN_RUBRIC, non_retryable=True
            )
        return name, rubric

    async def _extract(self, passages: list[Passage]) -> bool:
        """Deliver the passages' best sentences, if the contract allows it for this model."""
        quality = await self._quality()
        if self._model.choice.provider not in quality.extractive_fallback:
            return False
        extract = extract_answer(
            self._input.question,
            [p.shown for p in passages],
            [p.question_score for p in passages],
        )
        if extract is None:
            return False
        self._chosen = Candidate(
            # Not model output, so not held to the model's output bounds.
            draft=Draft.model_construct(answer=extract.answer, citations=extract.citations),
            passages=passages,
            extractive=True,
        )
        return True
