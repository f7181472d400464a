"""CoordinatorWorkflow: a coordinator with researcher, writer and reviewer agents.

The coordinator splits the request into sub-questions, runs one researcher per
sub-question in parallel as child AgentWorkflows, has the writer draft from
their passages (by id) and the reviewer score the draft against the rubric, and
asks for revisions until the rubric passes or the round limit is reached. A
person can hold the report for approval or send feedback through updates. The
budget is shared: each child gets a part of what the coordinator has left.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.documents.activities import DocumentActivities
    from activities.fork.activities import fork_seeds
    from graphs.policies import LLM_RETRY, LLM_TIMEOUT, SEARCH_RETRY, SEARCH_TIMEOUT
    from models.agents import AgentInput, AgentResult, Findings, RubricScores, SubQuestions
    from models.checks import NOTHING_LEFT, CheckFailure, check_draft, scrub_internal
    from models.contracts import ContractSnapshot, FlowQuality, Rubric
    from models.coordinator import (
        CoordinatorInput,
        CoordinatorProgress,
        CoordinatorStatus,
        HumanFeedback,
        MultiAgentReport,
        ReportCitation,
        ResearcherRun,
        ReviewRound,
        Stage,
        Trigger,
    )
    from models.documents import PassagesRequest, shown_passage
    from models.errors import (
        NO_READABLE_NAMESPACE,
        NO_VALID_DRAFT,
        UNKNOWN_AGENT,
        UNKNOWN_RUBRIC,
    )
    from models.extractive import NOT_IN_CORPUS, extract_for_questions, relevant_to_any
    from models.flags import Flag, Flags, check_failed
    from models.live import team_line
    from models.llm import Fallback, Usage
    from models.recorded import RecordedCall, SeedsRequest
    from models.research import Draft
    from models.tickets import ApprovalDecision
    from models.topics import distinct_covering, real_questions
    from routing.data import no_readable_namespace, route_data
    from workflows.agent import AgentWorkflow
    from workflows.contract_snapshot import load_contracts
    from workflows.live import LiveChannel
    from workflows.live_steps import child_started, team_stage
    from workflows.model_calls import BudgetExhausted, ModelCaller
    from workflows.search_attributes import RESEARCH_NODE, RESEARCH_STATUS

MAX_PASSAGES = 6
PASSAGES_PER_RESEARCHER = 2
# Runs started before this patch plan as the model said and review every draft.
CHECKS_PATCH = "team-draft-checks-and-topics"
# One marker for every change before it: a run started with it checks drafts, covers
# topics, refuses without a readable namespace, and shows its stage in the Web UI's
# current details instead of a search-attribute upsert per stage. Runs started before
# it replay through the two patches it stands for.
PROGRESS_PATCH = "progress-in-current-details"
# Runs started with it drop sub-questions no researcher can take, say so when the
# documents hold nothing about the request instead of writing a report from unrelated
# passages, and deliver an extract (where the contract allows) rather than a draft the
# rubric rejected at the round limit.
GROUNDED_PATCH = "team-grounded-answers"
# Per child (`team-fork-seeds:-writer-2`): a reset run that starts the child with it
# hands it its original outcomes before the fork point (cli/fork.py) instead of
# running them.
FORK_SEEDS_PATCH = "team-fork-seeds"
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
        self._checked = False
        self._in_details = False
        self._grounded = False
        self._shown: list[str] | None = None
        # The sub-questions the passages are scored against, and their scores (one row
        # per question, one value per passage shown): the extract's ranks.
        self._asked: list[str] = []
        self._ranks: list[list[float]] = []
        # What the flow itself said to the writer or saw from tools: never reader-facing.
        self._internal: list[str] = []

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
        self._in_details = workflow.patched(PROGRESS_PATCH)
        self._set_status("running")
        try:
            report = await self._run(request)
        except (Exception, asyncio.CancelledError) as error:
            self._set_status("cancelled" if is_cancelled_exception(error) else "failed")
            team_stage(self._live, self._progress, release=True)
            raise
        self._set_status("delivered")
        team_stage(self._live, self._progress)
        await self._live.close()
        return report

    async def _run(self, request: CoordinatorInput) -> MultiAgentReport:
        self._checked = self._in_details or workflow.patched(CHECKS_PATCH)
        self._grounded = workflow.patched(GROUNDED_PATCH)
        contracts = await load_contracts()
        rubric = contracts.rubrics.get(request.rubric)
        if rubric is None:
            raise ApplicationError(
                f"no rubric {request.rubric!r} in rubrics.toml",
                type=UNKNOWN_RUBRIC,
                non_retryable=True,
            )
        route = route_data(
            request.request, contracts.routes.namespaces, request.clearance, version=request.version
        )
        self._progress.data_route = route
        # Runs started before this patch planned and researched with no namespace at all.
        if not route.namespaces and (
            self._in_details or workflow.patched("refuse-without-readable-namespace")
        ):
            raise ApplicationError(
                no_readable_namespace(request.clearance, route.excluded),
                type=NO_READABLE_NAMESPACE,
                non_retryable=True,
            )
        questions = await self._plan(request, contracts)

        self._stage("researching")
        researchers = await self._research(request, questions, route.namespaces)
        passage_ids = _passages(researchers)
        if self._grounded:
            self._asked = [r.question for r in researchers]
        # No passage found holds enough of any sub-question's words: the documents do
        # not answer the request, and a report written anyway would cite unrelated text.
        unanswered = self._grounded and not relevant_to_any(
            [request.request, *(r.question for r in researchers)],
            await self._passages_shown(request, passage_ids),
        )
        if unanswered:
            self._flags.add(Flag.NOT_IN_CORPUS)
        notes = "\n".join(f"- {r.question}: {r.summary}" for r in researchers if r.summary)

        quality = contracts.quality.flow(FLOW)
        best: tuple[Draft, ReviewRound] | None = None
        failing: tuple[Draft, ReviewRound] | None = None
        rewrites = 0
        feedback = ""
        trigger: Trigger = "first draft"
        reviews = 0
        # The rules the draft that ended the rounds broke, when the checks ended them.
        stopped_by: list[CheckFailure] = []
        while not unanswered and Flag.BUDGET_EXHAUSTED not in self._flags:
            drafted = await self._round(request, rubric, passage_ids, notes, feedback, trigger)
            if drafted is None:
                break
            draft, review = drafted
            if review.check_failures:
                # Not reviewed: back to the writer with the rules' own feedback.
                if failing is None or len(review.check_failures) < len(failing[1].check_failures):
                    failing = drafted
                if rewrites < quality.max_rewrites:
                    rewrites += 1
                    feedback = " ".join(f.feedback for f in review.check_failures)
                    trigger = "checks"
                    continue
                stopped_by = review.check_failures
                break
            if trigger != "human":
                reviews += 1
            # With a person in the loop the latest draft is the one they decide on.
            if (
                best is None
                or request.require_approval
                or (review.weighted_score or 0) >= (best[1].weighted_score or 0)
            ):
                best = drafted
            if request.require_approval and (review.passed or reviews >= request.max_rounds):
                self._progress.draft = draft.answer
                note = await self._await_approval(request)
                if note is None:
                    break
                feedback, trigger = note.text, "human"
                continue
            if review.passed:
                break
            if reviews >= request.max_rounds:
                self._flags.add(Flag.MAX_ROUNDS_REACHED)
                break
            feedback = review.feedback or "the draft did not pass the rubric"
            trigger = "reviewer"
        extractive = False
        questions_asked = [r.question for r in researchers] or [request.request]
        bounded = Flag.MAX_ROUNDS_REACHED in self._flags or bool(stopped_by)
        if self._grounded and best is not None and not best[1].passed and bounded:
            # No draft passed the review within the rounds, or the last revision broke
            # a rule with no rewrite left: the passages' own sentences, where the
            # contract allows them, rather than a draft the rubric rejected.
            for failure in stopped_by:
                self._flags.add(check_failed(failure.rule))
            extract = await self._extract(request, quality, passage_ids, questions_asked)
            if extract is not None:
                best, extractive = (extract, best[1]), True
                self._flags.add(Flag.EXTRACTIVE)
        if best is None and failing is not None:
            for failure in failing[1].check_failures:
                self._flags.add(check_failed(failure.rule))
            best = failing
            extract = await self._extract(request, quality, passage_ids, questions_asked)
            if extract is not None:
                best, extractive = (extract, failing[1]), True
                self._flags.add(Flag.EXTRACTIVE)
        if unanswered:
            best = (
                Draft.model_construct(answer=NOT_IN_CORPUS, citations=[]),
                ReviewRound(round=0, writer_workflow_id="", reviewer_workflow_id=""),
            )
        if best is None and Flag.BUDGET_EXHAUSTED not in self._flags:
            raise ApplicationError(
                "the writer gave no valid draft", type=NO_VALID_DRAFT, non_retryable=True
            )
        self._stage("delivered")
        if best is None:
            # Only a spent budget ends the team before a draft: deliver the research, flagged.
            self._flags.add(Flag.NO_DRAFT)
            best = (
                Draft.model_construct(
                    answer="No report was written: the budget ran out first. The researchers'"
                    f" notes:\n{notes or '(none)'}",
                    citations=list(range(1, len(passage_ids) + 1)),
                ),
                ReviewRound(round=0, writer_workflow_id="", reviewer_workflow_id=""),
            )
        draft, review = best
        numbers = [n for n in dict.fromkeys(draft.citations) if 1 <= n <= len(passage_ids)]
        answer = draft.answer
        if self._checked and not extractive:
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
            researchers=researchers,
            data_route=route,
            usage=self._usage(),
            budget=request.budget,
            flags=self._flags,
            decision=self._progress.decision,
            feedback=self._progress.feedback,
            fallbacks=self._fallbacks,
            prompts=self._prompts,
            contract_versions=contracts.versions,
            extractive=extractive,
            check_failures=[] if extractive else review.check_failures,
        )

    # --- stages ------------------------------------------------------------------------

    async def _plan(self, request: CoordinatorInput, contracts: ContractSnapshot) -> list[str]:
        self._stage("planning")
        spec = contracts.agents.get("coordinator")
        if spec is None:
            raise ApplicationError(
                "no coordinator agent in agents.toml", type=UNKNOWN_AGENT, non_retryable=True
            )
        chain = request.models or spec.chain
        self._model = ModelCaller(chain[0], request.llm_task_queue, 2, request.budget, chain[1:])
        self._model.live = self._live
        try:
            split = await self._model.ask(
                spec.final_prompt,
                SubQuestions,
                {"request": request.request, "count": str(request.max_researchers)},
                max_tokens=spec.max_tokens,
                start_to_close=LLM_TIMEOUT,
                retry=LLM_RETRY,
            )
        except BudgetExhausted:
            self._flags.add(Flag.BUDGET_EXHAUSTED)
            split = None
        self._prompts.update(self._model.prompts)
        self._fallbacks.extend(self._model.fallbacks)
        if split is None:
            self._flags.add(Flag.PLAN_FALLBACK)
            return [request.request]
        asked = split.questions
        if self._grounded:
            asked = real_questions(request.request, split.questions)
            if len(asked) < len(split.questions):
                self._flags.add(Flag.QUESTIONS_REJECTED)
            # With none left, the request itself is the one question, as with no plan.
            asked = asked or [request.request]
        if self._checked:
            # Distinct questions, one at least for each topic the request names.
            return distinct_covering(request.request, asked, request.max_researchers)
        return list(dict.fromkeys(split.questions))[: request.max_researchers]

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
            if isinstance(result, BaseException):
                if is_cancelled_exception(result):
                    raise result
                run.status = "failed"
                self._flags.add(Flag.RESEARCHER_FAILED)
                workflow.logger.warning("researcher %s failed: %s", run.workflow_id, result)
                continue
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
        return runs

    async def _round(
        self,
        request: CoordinatorInput,
        rubric: Rubric,
        passage_ids: list[str],
        notes: str,
        feedback: str,
        trigger: Trigger,
    ) -> tuple[Draft, ReviewRound] | None:
        number = len(self._progress.rounds) + 1
        parent = workflow.info().workflow_id
        writer_id, reviewer_id = f"{parent}-writer-{number}", f"{parent}-reviewer-{number}"
        self._stage("writing")
        written = await self._child(
            AgentInput(
                agent="writer",
                task=request.request,
                round=number,
                feedback=feedback,
                passage_ids=passage_ids,
                variables={"notes": notes or "(none)"},
            ),
            writer_id,
        )
        if written.output is None:
            self._flags.add(Flag.WRITER_FAILED)
            return None
        draft = Draft.model_validate(written.output)
        failures = await self._check(request, draft, passage_ids)
        if failures:
            checked = ReviewRound(
                round=number,
                writer_workflow_id=writer_id,
                reviewer_workflow_id="",
                trigger=trigger,
                check_failures=failures,
                feedback=" ".join(f.feedback for f in failures),
            )
            self._progress.rounds.append(checked)
            return draft, checked
        self._stage("reviewing")
        reviewed = await self._child(
            AgentInput(
                agent="reviewer",
                task=request.request,
                round=number,
                passage_ids=passage_ids,
                variables={
                    "answer": draft.answer,
                    "criteria": "\n".join(
                        f"- {c.name} (weight {c.weight}): {c.description}" for c in rubric.criteria
                    ),
                },
                choices={"CriterionScore.criterion": [c.name for c in rubric.criteria]},
            ),
            reviewer_id,
        )
        review = ReviewRound(
            round=number,
            writer_workflow_id=writer_id,
            reviewer_workflow_id=reviewer_id,
            trigger=trigger,
        )
        if reviewed.output is None:
            self._flags.add(Flag.UNREVIEWED)
        else:
            scores = RubricScores.model_validate(reviewed.output)
            known = {c.name for c in rubric.criteria}
            review.scores = [s for s in scores.scores if s.criterion in known]
            review.weighted_score = rubric.weighted_score(
                {s.criterion: s.score for s in review.scores}
            )
            review.passed = review.weighted_score >= rubric.pass_threshold
            review.feedback = scores.feedback
        self._progress.rounds.append(review)
        return draft, review

    async def _check(
        self, request: CoordinatorInput, draft: Draft, passage_ids: list[str]
    ) -> list[CheckFailure]:
        """The deterministic rules on a draft, before any reviewer is started."""
        if not self._checked:
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
        """A forked team's child's original outcomes before the fork point (models/recorded.py).

        Asked only by a reset run (its run id is not its chain's first), under a patch
        per child: a replay asks where the marker is, and only there (a replayer
        does not know the run's own id). One patch per child, because a child started
        before the reset point replays without one, and that must not decide for the
        child the reset step starts again. A run never reset makes every call itself,
        and its history is as before.
        """
        patch = f"{FORK_SEEDS_PATCH}:{child_id.removeprefix(workflow.info().workflow_id)}"
        if workflow.unsafe.is_replaying():
            asked = workflow.patched(patch)
        else:
            info = workflow.info()
            asked = info.run_id != info.first_execution_run_id and workflow.patched(patch)
        if not asked:
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

    def _absorb(self, result: AgentResult) -> None:
        self._children_usage = self._children_usage.add(result.usage)
        self._prompts.update(result.prompts)
        self._fallbacks.extend(result.fallbacks)
        if "budget_exhausted" in result.flags:
            self._flags.add(Flag.BUDGET_EXHAUSTED)

    def _usage(self) -> Usage:
        own = self._model.usage if self._model else Usage()
        return own.add(self._children_usage)

    def _stage(self, stage: Stage) -> None:
        self._progress.stage = stage
        if self._in_details:
            # Shown on the run's page and kept out of the history: no event per stage.
            workflow.set_current_details(team_line(self.progress()))
        else:
            workflow.upsert_search_attributes([RESEARCH_NODE.value_set(stage)])
        team_stage(self._live, self.progress())

    def _set_status(self, status: CoordinatorStatus) -> None:
        self._progress.status = status
        if self._in_details:
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
