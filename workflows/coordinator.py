"""CoordinatorWorkflow: a coordinator with researcher, writer and reviewer agents.

The coordinator splits the request into sub-questions, runs one researcher per
sub-question in parallel as child AgentWorkflows, has the writer draft from
their passages (by id) and the reviewer score the draft against the rubric, and
asks for revisions until the rubric passes or the round limit is reached. A
person can hold the report for approval or send feedback through updates. The
budget is shared: each child gets a part of what the coordinator has left.

The run walks `TEAM_GRAPH` (keel/graphs/team.py): one method per node, each returning the
outcome whose edge leads on. Where the rounds go and which draft is kept is
`TeamRounds` (keel/graphs/team_rounds.py); the `workflow.patched` gates are `TeamGates`
(workflows/team_gates.py), each read at the step of the run where it always was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.documents.activities import DocumentActivities
    from activities.fork.activities import fork_seeds
    from keel.graphs.machine import Outcome
    from keel.graphs.policies import SEARCH_RETRY, SEARCH_TIMEOUT
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
    from keel.payloads.agents import AgentInput, AgentResult, Findings, RubricScores, SubQuestions
    from keel.payloads.checks import CheckFailure
    from keel.payloads.contracts import ContractSnapshot, FlowQuality, Rubric
    from keel.payloads.coordinator import (
        CoordinatorInput,
        CoordinatorProgress,
        CoordinatorStatus,
        HumanFeedback,
        MultiAgentReport,
        ReportCitation,
        ResearcherRun,
        ReviewRound,
        Stage,
    )
    from keel.payloads.documents import PassagesRequest, shown_passage
    from keel.payloads.errors import (
        NO_READABLE_NAMESPACE,
        NO_VALID_DRAFT,
        UNKNOWN_AGENT,
        UNKNOWN_RUBRIC,
    )
    from keel.payloads.flags import Flag, Flags, check_failed
    from keel.payloads.live import team_line
    from keel.payloads.llm import Fallback, Usage
    from keel.payloads.recorded import RecordedCall, SeedsRequest
    from keel.payloads.research import Draft
    from keel.payloads.tickets import ApprovalDecision
    from keel.routing.data import no_readable_namespace, route_data
    from keel.rules.checks import NOTHING_LEFT, check_draft, scrub_internal
    from keel.rules.extractive import extract_for_questions, relevant_to_any
    from keel.rules.topics import distinct_covering, real_questions
    from workflows.agent import AgentWorkflow
    from workflows.contract_snapshot import load_contracts
    from workflows.live import LiveChannel
    from workflows.live_steps import child_started, team_stage
    from workflows.model_calls import BudgetExhausted, ModelCaller
    from workflows.search_attributes import RESEARCH_NODE, RESEARCH_STATUS
    from workflows.team_gates import TeamGates

MAX_PASSAGES = 6
PASSAGES_PER_RESEARCHER = 2
FORK_SEEDS_TIMEOUT = timedelta(seconds=30)
FLOW = "report"


@workflow.defn(name="CoordinatorWorkflow")
class CoordinatorWorkflow:
    @workflow.init
    def __init__(self, request: CoordinatorInput) -> None:
        self._input = request
        self._progress = CoordinatorProgress()
        self._decision: ApprovalDecision | None = None
        self._feedback: list[HumanFeedback] = []
        self._children_usage = Usage()
        self._model: ModelCaller | None = None
        self._flags = Flags()
        self._prompts: dict[str, str] = {}
        self._fallbacks: list[Fallback] = []
        self._live = LiveChannel()
        self._gates = TeamGates()
        self._shown: list[str] | None = None
        # The sub-questions the passages are scored against, and their scores (one row
        # per question, one value per passage shown): the extract's ranks.
        self._asked: list[str] = []
        self._ranks: list[list[float]] = []
        # What the flow itself said to the writer or saw from tools: never reader-facing.
        self._internal: list[str] = []
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
        self._decision = decision
        return self.progress()

    @decide.validator
    def _validate_decision(self, decision: ApprovalDecision) -> None:
        if self._progress.stage != "awaiting_approval":
            raise ValueError(f"not awaiting approval: the coordinator is {self._progress.stage}")

    @workflow.update(name="feedback")
    async def feedback(self, note: HumanFeedback) -> CoordinatorProgress:
        """A person's notes: the writer revises, the reviewer scores, approval is asked again."""
        self._feedback.append(note)
        self._progress.feedback.append(note)
        return self.progress()

    @feedback.validator
    def _validate_feedback(self, note: HumanFeedback) -> None:
        if self._progress.stage != "awaiting_approval" or self._feedback:
            raise ValueError(f"not awaiting feedback: the coordinator is {self._progress.stage}")
        human = sum(1 for r in self._progress.rounds if r.trigger == "human")
        if human >= self._input.max_feedback_rounds:
            raise ValueError(f"feedback limit reached ({self._input.max_feedback_rounds} rounds)")

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
            await self._prepare()
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

    async def _prepare(self) -> None:
        """The rubric, the data route and the round policy, on the contracts the run recorded."""
        request = self._input
        contracts = await load_contracts()
        self._contracts = contracts
        self._rubric = contracts.rubrics.get(request.rubric)
        if self._rubric is None:
            raise ApplicationError(
                f"no rubric {request.rubric!r} in rubrics.toml",
                type=UNKNOWN_RUBRIC,
                non_retryable=True,
            )
        route = route_data(
            request.request, contracts.routes.namespaces, request.clearance, version=request.version
        )
        self._progress.data_route = route
        if not route.namespaces and self._gates.refuses_without_namespace():
            raise ApplicationError(
                no_readable_namespace(request.clearance, route.excluded),
                type=NO_READABLE_NAMESPACE,
                non_retryable=True,
            )
        self._quality = contracts.quality.flow(FLOW)
        self._rounds = TeamRounds(
            max_rounds=request.max_rounds,
            max_rewrites=self._quality.max_rewrites,
            require_approval=request.require_approval,
        )

    # --- nodes -------------------------------------------------------------------------

    async def _plan(self) -> Outcome:
        """The coordinator agent splits the request; without a split the request is the one."""
        self._stage("planning")
        request = self._input
        spec = self._snapshot().agents.get("coordinator")
        if spec is None:
            raise ApplicationError(
                "no coordinator agent in agents.toml", type=UNKNOWN_AGENT, non_retryable=True
            )
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
            self._flags.add(Flag.BUDGET_EXHAUSTED)
            if spent.tenant:
                self._flags.add(Flag.TENANT_BUDGET_EXHAUSTED)
            split, outcome = None, Outcome.BUDGET_EXHAUSTED
        self._prompts.update(self._model.prompts)
        self._fallbacks.extend(self._model.fallbacks)
        if split is None:
            self._flags.add(Flag.PLAN_FALLBACK)
            self._questions = [request.request]
            return outcome
        self._questions = self._sub_questions(split.questions)
        return Outcome.SUCCESS

    def _sub_questions(self, proposed: list[str]) -> list[str]:
        """The questions researchers can take: real ones, distinct, covering each topic."""
        request = self._input
        asked = proposed
        if self._gates.grounded:
            asked = real_questions(request.request, proposed)
            if len(asked) < len(proposed):
                self._flags.add(Flag.QUESTIONS_REJECTED)
            # With none left, the request itself is the one question, as with no plan.
            asked = asked or [request.request]
        if self._gates.checked:
            # Distinct questions, one at least for each topic the request names.
            return distinct_covering(request.request, asked, request.max_researchers)
        return list(dict.fromkeys(proposed))[: request.max_researchers]

    async def _researchers(self) -> Outcome:
        """One researcher per sub-question; their passage ids are what the writer reads."""
        self._stage("researching")
        route = self._progress.data_route
        assert route is not None  # decided in _prepare
        self._runs = await self._research(self._input, self._questions, route.namespaces)
        self._passage_ids = _passages(self._runs)
        if self._gates.grounded:
            self._asked = [r.question for r in self._runs]
        self._notes = "\n".join(f"- {r.question}: {r.summary}" for r in self._runs if r.summary)
        return Outcome.SUCCESS

    async def _relevance(self) -> Outcome:
        """No passage found holds enough of any sub-question's words: the documents do
        not answer the request, and a report written anyway would cite unrelated text."""
        request = self._input
        if self._gates.grounded and not relevant_to_any(
            [request.request, *(r.question for r in self._runs)],
            await self._passages_shown(request, self._passage_ids),
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
        failures = await self._check(self._input, self._draft, self._passage_ids)
        if not failures:
            return Outcome.PASS
        checked = ReviewRound(
            round=self._round_number,
            writer_workflow_id=self._agent_id("writer"),
            reviewer_workflow_id="",
            trigger=self._rounds.trigger,
            check_failures=failures,
            feedback=" ".join(f.feedback for f in failures),
        )
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
                variables={
                    "answer": self._draft.answer,
                    "criteria": "\n".join(
                        f"- {c.name} (weight {c.weight}): {c.description}" for c in rubric.criteria
                    ),
                },
                choices={"CriterionScore.criterion": [c.name for c in rubric.criteria]},
            ),
            reviewer_id,
        )
        review = ReviewRound(
            round=self._round_number,
            writer_workflow_id=self._agent_id("writer"),
            reviewer_workflow_id=reviewer_id,
            trigger=self._rounds.trigger,
        )
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
        note = await self._await_approval(self._input)
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
        extract = await self._extract(self._input, self._quality, self._passage_ids, questions)
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
        request, passage_ids = self._input, self._passage_ids
        assert self._progress.data_route is not None
        extractive = self._rounds.extract is not None and not self._unanswered
        numbers = [n for n in dict.fromkeys(draft.citations) if 1 <= n <= len(passage_ids)]
        answer = draft.answer
        if self._gates.checked and not extractive:
            # Internal feedback and tool errors never go out, even in a flagged draft.
            answer = scrub_internal(answer, self._internal) or NOTHING_LEFT
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
            rounds=self._progress.rounds,
            researchers=self._runs,
            data_route=self._progress.data_route,
            usage=self._usage(),
            budget=request.budget,
            flags=self._flags,
            decision=self._progress.decision,
            feedback=self._progress.feedback,
            fallbacks=self._fallbacks,
            prompts=self._prompts,
            contract_versions=self._snapshot().versions,
            extractive=extractive,
            check_failures=[] if extractive else review.check_failures,
        )

    # --- what the nodes call -----------------------------------------------------------

    async def _research(
        self, request: CoordinatorInput, questions: list[str], namespaces: list[str]
    ) -> list[ResearcherRun]:
        """One researcher per sub-question, all at once, sharing what the budget has left."""
        share = request.budget.share(self._usage(), len(questions))
        parent = workflow.info().workflow_id
        runs = [
            ResearcherRun(question=q, workflow_id=f"{parent}-researcher-{i}")
            for i, q in enumerate(questions, 1)
        ]
        self._progress.researchers = runs
        recorded = {run.workflow_id: await self._recorded(run.workflow_id) for run in runs}
        for run in runs:
            child_started(self._live, run.workflow_id)
        results = await asyncio.gather(
            *(
                workflow.execute_child_workflow(
                    AgentWorkflow.run,
                    AgentInput(
                        agent="researcher",
                        task=run.question,
                        namespaces=namespaces,
                        clearance=request.clearance,
                        models=request.models,
                        llm_task_queue=request.llm_task_queue,
                        budget=share,
                        stream_tokens=request.stream_tokens,
                        recorded=recorded[run.workflow_id],
                    ),
                    id=run.workflow_id,
                    static_summary=f"researcher: {run.question}"[:200],
                )
                for run in runs
            ),
            return_exceptions=True,
        )
        for run, result in zip(runs, results, strict=True):
            self._researcher_done(run, result)
        return runs

    def _researcher_done(self, run: ResearcherRun, result: AgentResult | BaseException) -> None:
        """A failed researcher is flagged and the others go on; a cancelled one stops the run."""
        if isinstance(result, BaseException):
            if is_cancelled_exception(result):
                raise result
            run.status = "failed"
            self._flags.add(Flag.RESEARCHER_FAILED)
            workflow.logger.warning("researcher %s failed: %s", run.workflow_id, result)
            return
        self._absorb(result)
        run.status = "done"
        run.turns = result.turns
        run.tool_calls = _calls(result)
        run.refusals = [d for d in result.decisions if not d.allowed]
        seen = [pid for o in result.observations for pid in o.passage_ids]
        self._internal.extend(
            o.text.partition(": ")[2]
            for o in result.observations
            if o.refused or o.text.startswith("error: ")
        )
        findings = Findings.model_validate(result.output) if result.output else None
        if findings is not None:
            run.summary = findings.summary
        cited = findings.passage_ids if findings else []
        run.passages = list(dict.fromkeys(cited or seen[:PASSAGES_PER_RESEARCHER]))

    async def _check(
        self, request: CoordinatorInput, draft: Draft, passage_ids: list[str]
    ) -> list[CheckFailure]:
        """The deterministic rules on a draft, before any reviewer is started."""
        if not self._gates.checked:
            return []
        shown = await self._passages_shown(request, passage_ids)
        return check_draft(draft.answer, draft.citations, shown, self._internal).failures

    async def _passages_shown(self, request: CoordinatorInput, passage_ids: list[str]) -> list[str]:
        """The passages as the writer read them, fetched once per run by a local activity."""
        if self._shown is None and not passage_ids:
            self._shown = []
        if self._shown is None:
            found = await workflow.execute_local_activity_method(
                DocumentActivities.passages,
                PassagesRequest(
                    chunk_ids=passage_ids, clearance=request.clearance, rank_for=self._asked
                ),
                start_to_close_timeout=SEARCH_TIMEOUT,
                retry_policy=SEARCH_RETRY,
                summary="read the passages the writer sees",
            )
            texts = {p.chunk_id: shown_passage(p.title, p.text) for p in found.passages}
            self._shown = [texts.get(pid, "") for pid in passage_ids]
            for row in found.ranks:
                scores = {p.chunk_id: r for p, r in zip(found.passages, row, strict=True)}
                self._ranks.append([scores.get(pid, 0.0) for pid in passage_ids])
        return self._shown

    async def _extract(
        self,
        request: CoordinatorInput,
        quality: FlowQuality,
        passage_ids: list[str],
        questions: list[str],
    ) -> Draft | None:
        """The passages' best sentences for each sub-question, when the contract allows it."""
        provider = request.models[0].provider if request.models else None
        if self._model is not None:
            provider = self._model.choice.provider
        if provider not in quality.extractive_fallback:
            return None
        shown = await self._passages_shown(request, passage_ids)
        # Ranks when the passages were scored against these very questions.
        ranks = self._ranks if questions == self._asked else []
        extract = extract_for_questions(questions, shown, ranks)
        if extract is None:
            return None
        # Not model output, so not held to the model's output bounds.
        return Draft.model_construct(answer=extract.answer, citations=extract.citations)

    async def _child(self, agent: AgentInput, workflow_id: str) -> AgentResult:
        """A writer or reviewer, with the models, queue and what is left of the budget."""
        request = self._input
        child_started(self._live, workflow_id)
        result = await workflow.execute_child_workflow(
            AgentWorkflow.run,
            agent.model_copy(
                update={
                    "models": request.models,
                    "llm_task_queue": request.llm_task_queue,
                    "budget": request.budget.for_child(self._usage()),
                    "clearance": request.clearance,
                    "stream_tokens": request.stream_tokens,
                    "recorded": await self._recorded(workflow_id),
                }
            ),
            id=workflow_id,
            static_summary=f"{agent.agent} round {agent.round}: {request.request}"[:200],
        )
        self._absorb(result)
        return result

    async def _recorded(self, child_id: str) -> list[RecordedCall]:
        """A forked team's child's original outcomes before the fork point (payloads/recorded.py);
        none in a run that was not reset (`TeamGates.fork_seeds`)."""
        if not self._gates.fork_seeds(child_id):
            return []
        return await workflow.execute_local_activity(
            fork_seeds,
            SeedsRequest(child_workflow_id=child_id),
            start_to_close_timeout=FORK_SEEDS_TIMEOUT,
            summary=f"recorded calls of {child_id}"[:200],
        )

    async def _await_approval(self, request: CoordinatorInput) -> HumanFeedback | None:
        """Wait for a decision or feedback; no answer in time takes the default decision."""
        self._stage("awaiting_approval")
        self._decision = None
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None or bool(self._feedback),
                timeout=timedelta(seconds=request.approval_timeout_seconds),
                timeout_summary="approval deadline",
            )
        except TimeoutError:
            self._decision = ApprovalDecision(
                decision=request.approval_default, by="timeout", reason="no decision in time"
            )
            self._flags.add(Flag.APPROVAL_TIMED_OUT)
        if self._feedback:
            return self._feedback.pop(0)
        assert self._decision is not None
        self._progress.decision = self._decision.decision
        if self._decision.decision == "reject":
            self._flags.add(Flag.REJECTED)
        return None

    # --- bookkeeping -------------------------------------------------------------------

    def _snapshot(self) -> ContractSnapshot:
        """The contracts the run recorded at its start (`_prepare`)."""
        assert self._contracts is not None
        return self._contracts

    def _agent_id(self, agent: str) -> str:
        """The id of this round's writer or reviewer: `<run>-writer-2`."""
        return f"{workflow.info().workflow_id}-{agent}-{self._round_number}"

    def _absorb(self, result: AgentResult) -> None:
        self._children_usage = self._children_usage.add(result.usage)
        self._prompts.update(result.prompts)
        self._fallbacks.extend(result.fallbacks)
        if "budget_exhausted" in result.flags:
            self._flags.add(Flag.BUDGET_EXHAUSTED)
        if Flag.TENANT_BUDGET_EXHAUSTED in result.flags:
            self._flags.add(Flag.TENANT_BUDGET_EXHAUSTED)

    def _usage(self) -> Usage:
        own = self._model.usage if self._model else Usage()
        return own.add(self._children_usage)

    def _stage(self, stage: Stage) -> None:
        self._progress.stage = stage
        if self._gates.in_details:
            # Shown on the run's page and kept out of the history: no event per stage.
            workflow.set_current_details(team_line(self.progress()))
        else:
            workflow.upsert_search_attributes([RESEARCH_NODE.value_set(stage)])
        team_stage(self._live, self.progress())

    def _set_status(self, status: CoordinatorStatus) -> None:
        self._progress.status = status
        if self._gates.in_details:
            workflow.set_current_details(team_line(self.progress()))
        else:
            workflow.upsert_search_attributes([RESEARCH_STATUS.value_set(status)])


def _calls(result: AgentResult) -> dict[str, int]:
    calls: dict[str, int] = {}
    for decision in result.decisions:
        if decision.allowed and decision.tool:
            calls[decision.tool] = calls.get(decision.tool, 0) + 1
    return calls


def _passages(researchers: list[ResearcherRun]) -> list[str]:
    ids: list[str] = []
    for run in researchers:
        ids.extend(pid for pid in run.passages if pid not in ids)
    return ids[:MAX_PASSAGES]
