"""CoordinatorWorkflow: a coordinator with researcher, writer and reviewer agents.

It splits the request into sub-questions, runs a researcher per sub-question in parallel
(child AgentWorkflows), has a writer draft from their passages (by id) and a reviewer
score the draft on the rubric, until it passes or the rounds run out. A person can hold
the report for approval or send notes; each child gets a part of the budget left.

The run walks `TEAM_GRAPH` (keel/graphs/team.py), one method per node returning the
outcome whose edge leads on; the rounds are `TeamRounds` (keel/graphs/team_rounds.py),
the `workflow.patched` gates `TeamGates` (workflows/team_gates.py), each read at the
step of the run where it always was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from keel.graphs.machine import Outcome
    from keel.graphs.team import (
        APPROVAL,
        CHECK,
        EXTRACT,
        PLAN,
        RELEVANCE,
        RESEARCH,
        REVIEW,
        TEAM_GRAPH,
        VERDICT,
        WRITE,
    )
    from keel.graphs.team_rounds import TeamRounds, no_report, score_round
    from keel.payloads.agents import AgentInput, AgentResult, RubricScores, SubQuestions
    from keel.payloads.contracts import ContractSnapshot, FlowQuality, Rubric
    from keel.payloads.coordinator import (
        CoordinatorInput,
        CoordinatorProgress,
        CoordinatorStatus,
        HumanFeedback,
        MultiAgentReport,
        ResearcherRun,
        ReviewRound,
        Stage,
    )
    from keel.payloads.errors import (
        NO_VALID_DRAFT,
    )
    from keel.payloads.flags import Flag, Flags, check_failed
    from keel.payloads.live import team_line
    from keel.payloads.llm import Usage
    from keel.payloads.research import Draft
    from keel.payloads.tickets import ApprovalDecision
    from keel.rules.extractive import relevant_to_any
    from keel.rules.topics import team_questions
    from workflows.live import LiveChannel
    from workflows.live_steps import team_stage
    from workflows.model_calls import BudgetExhausted, ModelCaller
    from workflows.search_attributes import RESEARCH_NODE, RESEARCH_STATUS
    from workflows.team_approval import TeamApproval
    from workflows.team_children import TeamChildren, researcher_runs
    from workflows.team_evidence import TeamEvidence
    from workflows.team_gates import TeamGates
    from workflows.team_report import passages, team_report
    from workflows.team_setup import coordinator_spec, team_setup


@workflow.defn(name="CoordinatorWorkflow")
class CoordinatorWorkflow:
    @workflow.init
    def __init__(self, request: CoordinatorInput) -> None:
        self._input = request
        self._progress = CoordinatorProgress()
        self._person = TeamApproval()
        self._model: ModelCaller | None = None
        self._flags = Flags()
        self._live = LiveChannel()
        self._gates = TeamGates()
        self._evidence = TeamEvidence()
        self._children = TeamChildren(self._live, self._gates, self._flags)
        # The run as it goes along TEAM_GRAPH: what each node leaves for the next.
        self._contracts: ContractSnapshot | None = None
        self._rubric: Rubric | None = None
        self._quality = FlowQuality()
        self._rounds = TeamRounds()
        self._questions: list[str] = []
        self._runs: list[ResearcherRun] = []
        self._passage_ids: list[str] = []
        self._notes = ""
        self._unanswered = False
        self._round_number = 0
        self._draft: Draft | None = None

    @workflow.query(name="progress")
    def progress(self) -> CoordinatorProgress:
        self._progress.usage = self._usage()
        return self._progress

    @workflow.update(name="decide")
    def decide(self, decision: ApprovalDecision) -> CoordinatorProgress:
        """Approve or reject the report a person was asked to look at."""
        self._person.decision = decision
        return self.progress()

    @decide.validator
    def _validate_decision(self, decision: ApprovalDecision) -> None:
        self._person.check_decision(self._progress)

    @workflow.update(name="feedback")
    async def feedback(self, note: HumanFeedback) -> CoordinatorProgress:
        """A person's notes: the writer revises, the reviewer scores, approval is asked again."""
        self._person.notes.append(note)
        self._progress.feedback.append(note)
        return self.progress()

    @feedback.validator
    def _validate_feedback(self, note: HumanFeedback) -> None:
        self._person.check_notes(self._progress, self._input.max_feedback_rounds)

    @workflow.run
    async def run(self, request: CoordinatorInput) -> MultiAgentReport:
        steps: dict[str, Callable[[], Awaitable[Outcome]]] = {
            PLAN: self._plan,
            RESEARCH: self._researchers,
            RELEVANCE: self._relevance,
            WRITE: self._write,
            CHECK: self._check_draft,
            REVIEW: self._review,
            VERDICT: self._verdict,
            APPROVAL: self._approval,
            EXTRACT: self._extract_instead,
        }
        self._gates.read_first()
        self._set_status("running")
        node = TEAM_GRAPH.start
        try:
            self._gates.read_after_status()
            setup = await team_setup(self._input, self._gates, self._progress)
            self._contracts, self._rubric = setup.contracts, setup.rubric
            self._quality, self._rounds = setup.quality, setup.rounds
            while not TEAM_GRAPH.node(node).terminal:
                node = TEAM_GRAPH.next(node, await steps[node]())
            report = self._deliver()
        except (Exception, asyncio.CancelledError) as error:
            # Not BaseException: the SDK tears evicted workflows down with its own.
            self._set_status("cancelled" if is_cancelled_exception(error) else "failed")
            team_stage(self._live, self._progress, release=True)
            raise
        self._set_status("delivered")
        team_stage(self._live, self._progress)
        await self._live.close()
        return report

    async def _plan(self) -> Outcome:
        """The coordinator agent splits the request; without a split the request is the one."""
        self._stage("planning")
        request = self._input
        spec = coordinator_spec(self._contracts)
        chain = request.models or spec.chain
        self._model = ModelCaller(chain[0], request.llm_task_queue, 2, request.budget, chain[1:])
        self._model.live = self._live
        node = TEAM_GRAPH.node(PLAN)
        outcome = Outcome.SCHEMA_FAILURE
        try:
            split = await self._model.ask(
                spec.final_prompt,
                SubQuestions,
                {"request": request.request, "count": str(request.max_researchers)},
                max_tokens=spec.max_tokens,
                start_to_close=node.start_to_close,
                retry=node.retry,
            )
        except BudgetExhausted as spent:
            self._flags.budget_spent(spent.tenant)
            split, outcome = None, Outcome.BUDGET_EXHAUSTED
        if split is None:
            self._flags.add(Flag.PLAN_FALLBACK)
            self._questions = [request.request]
            return outcome
        self._questions, rejected = team_questions(
            request.request,
            split.questions,
            request.max_researchers,
            grounded=self._gates.grounded,
            checked=self._gates.checked,
        )
        if rejected:
            self._flags.add(Flag.QUESTIONS_REJECTED)
        return Outcome.SUCCESS

    async def _researchers(self) -> Outcome:
        """One researcher per sub-question; their passage ids are what the writer reads."""
        self._stage("researching")
        route = self._progress.data_route
        assert route is not None  # decided in _prepare
        request = self._input
        self._runs = self._progress.researchers = researcher_runs(self._questions)
        share = request.budget.share(self._usage(), len(self._runs))
        internal = await self._children.researchers(request, self._runs, route.namespaces, share)
        self._evidence.internal.extend(internal)
        self._passage_ids = passages(self._runs)
        if self._gates.grounded:
            self._evidence.asked = [r.question for r in self._runs]
        self._notes = "\n".join(f"- {r.question}: {r.summary}" for r in self._runs if r.summary)
        return Outcome.SUCCESS

    async def _relevance(self) -> Outcome:
        """No passage found holds enough of any sub-question's words: the documents do
        not answer the request, and a report written anyway would cite unrelated text."""
        request = self._input
        if self._gates.grounded and not relevant_to_any(
            [request.request, *(r.question for r in self._runs)],
            await self._evidence.shown(request, self._passage_ids),
        ):
            self._unanswered = True
            self._flags.add(Flag.NOT_IN_CORPUS)
            return Outcome.NOTHING_RELEVANT
        if Flag.BUDGET_EXHAUSTED in self._flags:
            return Outcome.BUDGET_EXHAUSTED
        return Outcome.PASS

    async def _write(self) -> Outcome:
        """A writer drafts from the passages by id, the researchers' notes and the feedback."""
        if Flag.BUDGET_EXHAUSTED in self._flags:
            return Outcome.BUDGET_EXHAUSTED
        request = self._input
        self._round_number = number = len(self._progress.rounds) + 1
        self._stage("writing")
        written = await self._child(
            AgentInput(
                agent="writer",
                task=request.request,
                round=number,
                feedback=self._rounds.feedback,
                passage_ids=self._passage_ids,
                variables={"notes": self._notes or "(none)"},
            ),
            self._agent_id("writer"),
        )
        if written.output is None:
            self._flags.add(Flag.WRITER_FAILED)
            return Outcome.SCHEMA_FAILURE
        self._draft = Draft.model_validate(written.output)
        return Outcome.SUCCESS

    async def _check_draft(self) -> Outcome:
        """The deterministic rules; a draft that breaks one is not reviewed."""
        assert self._draft is not None
        if not self._gates.checked:
            return Outcome.PASS
        failures = await self._evidence.check(self._input, self._draft, self._passage_ids)
        if not failures:
            return Outcome.PASS
        feedback = " ".join(f.feedback for f in failures)
        checked = self._review_round("", check_failures=failures, feedback=feedback)
        self._progress.rounds.append(checked)
        return self._rounds.checked((self._draft, checked))

    async def _review(self) -> Outcome:
        """A reviewer scores each criterion; the rubric, not the model, decides the pass."""
        assert self._draft is not None
        assert self._rubric is not None
        rubric, reviewer_id = self._rubric, self._agent_id("reviewer")
        self._stage("reviewing")
        reviewed = await self._child(
            AgentInput(
                agent="reviewer",
                task=self._input.request,
                round=self._round_number,
                passage_ids=self._passage_ids,
                variables={"answer": self._draft.answer, "criteria": rubric.prompt_criteria},
                choices={"CriterionScore.criterion": [c.name for c in rubric.criteria]},
            ),
            reviewer_id,
        )
        review = self._review_round(reviewer_id)
        if reviewed.output is None:
            self._flags.add(Flag.UNREVIEWED)
        else:
            score_round(review, RubricScores.model_validate(reviewed.output), rubric)
        self._progress.rounds.append(review)
        self._rounds.reviewed((self._draft, review))
        return Outcome.SUCCESS

    async def _verdict(self) -> Outcome:
        """The rubric's verdict on the latest review, as `TeamRounds` reads it."""
        outcome = self._rounds.verdict(self._progress.rounds[-1])
        if outcome is Outcome.EXHAUSTED:
            self._flags.add(Flag.MAX_ROUNDS_REACHED)
        return outcome

    async def _approval(self) -> Outcome:
        """A person decides on the latest draft, or sends notes for another round."""
        assert self._draft is not None
        self._progress.draft = self._draft.answer
        self._stage("awaiting_approval")
        note = await self._person.wait(self._input, self._progress, self._flags)
        if note is None:
            return Outcome.DECIDED
        return self._rounds.revise(note.text)

    async def _extract_instead(self) -> Outcome:
        """No draft the rubric passed: the passages' own sentences, where the contract allows."""
        rules = self._rounds.extract_wanted(self._gates.grounded)
        if rules is None:
            return Outcome.FAIL
        for failure in rules:
            self._flags.add(check_failed(failure.rule))
        questions = [r.question for r in self._runs] or [self._input.request]
        provider = self._model.choice.provider if self._model else None
        if self._model is None and self._input.models:
            provider = self._input.models[0].provider
        extract = await self._evidence.extract(
            self._input, provider, self._quality, self._passage_ids, questions
        )
        if extract is None:
            return Outcome.FAIL
        self._rounds.extract = extract
        self._flags.add(Flag.EXTRACTIVE)
        return Outcome.SUCCESS

    def _deliver(self) -> MultiAgentReport:
        final = self._rounds.final(self._unanswered)
        if final is None and Flag.BUDGET_EXHAUSTED not in self._flags:
            raise ApplicationError(
                "the writer gave no valid draft", type=NO_VALID_DRAFT, non_retryable=True
            )
        self._stage("delivered")
        if final is None:
            self._flags.add(Flag.NO_DRAFT)
            final = no_report(self._notes, len(self._passage_ids))
        return self._report(*final)

    def _report(self, draft: Draft, review: ReviewRound) -> MultiAgentReport:
        own = self._model
        assert own is not None  # the plan, always the first node, made it
        return team_report(
            self._input,
            draft,
            review,
            progress=self._progress,
            passage_ids=self._passage_ids,
            extractive=self._rounds.extract is not None and not self._unanswered,
            internal=self._evidence.internal if self._gates.checked else None,
            usage=self._usage(),
            flags=self._flags,
            fallbacks=[*own.fallbacks, *self._children.fallbacks],
            prompts=own.prompts | self._children.prompts,
            contract_versions=self._contracts.versions if self._contracts else {},
        )

    async def _child(self, agent: AgentInput, workflow_id: str) -> AgentResult:
        budget = self._input.budget.for_child(self._usage())
        return await self._children.child(self._input, agent, workflow_id, budget)

    def _agent_id(self, agent: str) -> str:
        """The id of this round's writer or reviewer: `<run>-writer-2`."""
        return f"{workflow.info().workflow_id}-{agent}-{self._round_number}"

    def _review_round(self, reviewer_id: str, **fields: object) -> ReviewRound:
        """This round's record; a draft the checks stopped has no reviewer."""
        return ReviewRound.model_validate(
            {
                "round": self._round_number,
                "writer_workflow_id": self._agent_id("writer"),
                "reviewer_workflow_id": reviewer_id,
                "trigger": self._rounds.trigger,
                **fields,
            }
        )

    def _usage(self) -> Usage:
        own = self._model.usage if self._model else Usage()
        return own.add(self._children.usage)

    def _stage(self, stage: Stage) -> None:
        self._progress.stage = stage
        self._show(RESEARCH_NODE.value_set(stage))
        team_stage(self._live, self.progress())

    def _set_status(self, status: CoordinatorStatus) -> None:
        self._progress.status = status
        self._show(RESEARCH_STATUS.value_set(status))

    def _show(self, before_details: SearchAttributeUpdate[str]) -> None:
        """On the run's page, no event per stage; a run from before `in_details`: an upsert."""
        if self._gates.in_details:
            workflow.set_current_details(team_line(self.progress()))
        else:
            workflow.upsert_search_attributes([before_details])
