"""The team's agents as child workflows: researchers at once, then a writer and a reviewer.

Each child gets the run's models, queue, clearance and a part of what the budget has
left; a forked team hands each child the outcomes it recorded before the fork point.
What the children bring back (usage, prompts, fallbacks, budget flags) is kept here;
what a researcher saw that must never go out is handed back to the caller.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.fork.activities import fork_seeds
    from keel.payloads.agents import AgentInput, AgentResult
    from keel.payloads.coordinator import CoordinatorInput, ResearcherRun
    from keel.payloads.flags import Flag, Flags
    from keel.payloads.llm import Budget, Fallback, Usage
    from keel.payloads.recorded import RecordedCall, SeedsRequest
    from workflows.agent import AgentWorkflow
    from workflows.live import LiveChannel
    from workflows.live_steps import child_started
    from workflows.team_gates import TeamGates
    from workflows.team_report import record_researcher

FORK_SEEDS_TIMEOUT = timedelta(seconds=30)


def researcher_runs(questions: list[str]) -> list[ResearcherRun]:
    """A researcher per sub-question, its id under the run's: `<run>-researcher-2`."""
    parent = workflow.info().workflow_id
    return [
        ResearcherRun(question=q, workflow_id=f"{parent}-researcher-{i}")
        for i, q in enumerate(questions, 1)
    ]


class TeamChildren:
    """Starts the team's child agents and keeps what they spent and used."""

    def __init__(self, live: LiveChannel, gates: TeamGates, flags: Flags) -> None:
        self._live = live
        self._gates = gates
        self._flags = flags
        self.usage = Usage()
        self.prompts: dict[str, str] = {}
        self.fallbacks: list[Fallback] = []

    async def researchers(
        self,
        request: CoordinatorInput,
        runs: list[ResearcherRun],
        namespaces: list[str],
        share: Budget,
    ) -> list[str]:
        """One researcher per sub-question, all at once, each with the same share; returns
        what the researchers saw that must never reach a reader (errors, refusals)."""
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
        internal: list[str] = []
        for run, result in zip(runs, results, strict=True):
            internal.extend(self._researcher_done(run, result))
        return internal

    def _researcher_done(
        self, run: ResearcherRun, result: AgentResult | BaseException
    ) -> list[str]:
        """A failed researcher is flagged and the others go on; a cancelled one stops the run."""
        if isinstance(result, BaseException):
            if is_cancelled_exception(result):
                raise result
            run.status = "failed"
            self._flags.add(Flag.RESEARCHER_FAILED)
            workflow.logger.warning("researcher %s failed: %s", run.workflow_id, result)
            return []
        self._absorb(result)
        return record_researcher(run, result)

    async def child(
        self, request: CoordinatorInput, agent: AgentInput, workflow_id: str, budget: Budget
    ) -> AgentResult:
        """A writer or reviewer, with the models, queue and what is left of the budget."""
        child_started(self._live, workflow_id)
        result = await workflow.execute_child_workflow(
            AgentWorkflow.run,
            agent.model_copy(
                update={
                    "models": request.models,
                    "llm_task_queue": request.llm_task_queue,
                    "budget": budget,
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

    def _absorb(self, result: AgentResult) -> None:
        self.usage = self.usage.add(result.usage)
        self.prompts.update(result.prompts)
        self.fallbacks.extend(result.fallbacks)
        if Flag.BUDGET_EXHAUSTED in result.flags:
            self._flags.add(Flag.BUDGET_EXHAUSTED)
        if Flag.TENANT_BUDGET_EXHAUSTED in result.flags:
            self._flags.add(Flag.TENANT_BUDGET_EXHAUSTED)

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
