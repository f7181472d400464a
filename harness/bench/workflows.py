"""Workflows used only for measurement, registered on a worker the bench starts itself."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.llm.activities import LLMActivities
    from activities.tools.activities import ToolActivities
    from harness.bench.activities import Echo, echo
    from harness.soak.workflows import write_call
    from keel.graphs.policies import HEARTBEAT_TIMEOUT, LLM_RETRY, LLM_TIMEOUT, TOOL_RETRY
    from keel.payloads.llm import LLMRequest, LLMResult, ModelChoice
    from keel.payloads.research import ResearchInput, ResearchReport
    from keel.payloads.tools import ToolInvocation
    from workflows.research import ResearchWorkflow
    from workflows.search_attributes import RESEARCH_NODE, RESEARCH_STATUS

ECHO_TIMEOUT = timedelta(seconds=10)
# The server's history warning limits, which a conversation stops short of.
WARN_EVENTS = 10_240
WARN_BYTES = 10 * 1024 * 1024

StepKind = Literal["none", "activity", "local_activity"]


class ProbeInput(BaseModel):
    """How many steps of which kind one probe run makes."""

    kind: StepKind = "none"
    steps: int = 0
    batch: int = 1
    # Activities on another queue than the workflow's, as model calls on `llm` are.
    activity_queue: str | None = None


@workflow.defn(name="BenchProbe")
class ProbeWorkflow:
    """Sequential no-op steps: isolates what one step of a kind costs."""

    @workflow.run
    async def run(self, probe: ProbeInput) -> int:
        done = 0
        while done < probe.steps:
            size = min(probe.batch, probe.steps - done)
            if probe.kind == "activity":
                calls = [
                    workflow.execute_activity(
                        echo,
                        Echo(index=done + i),
                        task_queue=probe.activity_queue,
                        start_to_close_timeout=ECHO_TIMEOUT,
                    )
                    for i in range(size)
                ]
            else:
                calls = [
                    workflow.execute_local_activity(
                        echo, Echo(index=done + i), start_to_close_timeout=ECHO_TIMEOUT
                    )
                    for i in range(size)
                ]
            await asyncio.gather(*calls)
            done += size
        return done


class Scripted(BaseModel):
    """Which scripted model answers, and the queue its calls go to."""

    script: str
    llm_task_queue: str


class AgentCall(Scripted):
    """One model call of a sub-agent, on the model queue."""

    index: int


def agent_request(call: AgentCall, node: str = "plan") -> LLMRequest:
    return LLMRequest(
        node=node,
        call_index=0,
        choice=ModelChoice(provider="scripted", model=call.script),
        prompt_id=node,
        variables={"question": f"sub-question {call.index}", "feedback": ""},
        output_schema="ResearchPlan",
        max_tokens=160,
    )


async def _model_call(call: AgentCall) -> LLMResult:
    return await workflow.execute_activity_method(
        LLMActivities.complete,
        agent_request(call),
        task_queue=call.llm_task_queue,
        start_to_close_timeout=LLM_TIMEOUT,
        retry_policy=LLM_RETRY,
    )


@workflow.defn(name="BenchSubAgent")
class SubAgentWorkflow:
    """A sub-agent as a child workflow: its own history, its own model call."""

    @workflow.run
    async def run(self, call: AgentCall) -> int:
        result = await _model_call(call)
        return result.usage.tokens_out


class FanOutInput(Scripted):
    agents: int
    mode: Literal["child_workflows", "activities"]


@workflow.defn(name="BenchFanOut")
class FanOutWorkflow:
    """A coordinator that runs its sub-agents at once, as children or as activities."""

    @workflow.run
    async def run(self, fan: FanOutInput) -> int:
        calls = [
            AgentCall(script=fan.script, index=i, llm_task_queue=fan.llm_task_queue)
            for i in range(fan.agents)
        ]
        if fan.mode == "child_workflows":
            info = workflow.info()
            tokens = await asyncio.gather(
                *(
                    workflow.execute_child_workflow(
                        SubAgentWorkflow.run, call, id=f"{info.workflow_id}-agent-{call.index}"
                    )
                    for call in calls
                )
            )
            return sum(tokens)
        results = await asyncio.gather(*(_model_call(call) for call in calls))
        return sum(r.usage.tokens_out for r in results)


class ConversationInput(Scripted):
    """A long conversation: one model call per turn, only the new message in its input."""

    max_turns: int
    max_events: int = WARN_EVENTS
    max_bytes: int = WARN_BYTES


class ConversationResult(BaseModel):
    """Where the conversation stopped: the bench divides the history by the turns."""

    turns: int = Field(description="turns taken, each one model call")
    history_events: int = Field(description="events in the history as the run ends")
    history_bytes: int = Field(description="the history's size as the run ends")


@workflow.defn(name="BenchConversation")
class ConversationWorkflow:
    """Talks until one more turn would cross the history warning limits."""

    @workflow.run
    async def run(self, conversation: ConversationInput) -> ConversationResult:
        turns = 0
        per_turn_events = 0
        per_turn_bytes = 0
        info = workflow.info()
        while turns < conversation.max_turns:
            events, size = info.get_current_history_length(), info.get_current_history_size()
            if (
                events + per_turn_events >= conversation.max_events
                or size + per_turn_bytes >= conversation.max_bytes
            ):
                break
            await write_call(
                conversation.script,
                conversation.llm_task_queue,
                f"user message {turns}: what about the next point?",
                "(no passages found)",
            )
            turns += 1
            per_turn_events = max(per_turn_events, info.get_current_history_length() - events)
            per_turn_bytes = max(per_turn_bytes, info.get_current_history_size() - size)
        return ConversationResult(
            turns=turns,
            history_events=info.get_current_history_length(),
            history_bytes=info.get_current_history_size(),
        )


BENCH_WORKFLOWS = [ProbeWorkflow, SubAgentWorkflow, FanOutWorkflow, ConversationWorkflow]


@workflow.defn(name="BenchUpsertingResearch")
class UpsertingResearchWorkflow(ResearchWorkflow):
    """The research flow with a search-attribute upsert per node, as releases before showed it.

    Same nodes, same activities; only how progress reaches the Web UI differs. Beside
    the flow itself it gives what the current details save in events and server CPU,
    and its upserts time each node for the per-step overhead.
    """

    @workflow.run
    async def run(self, request: ResearchInput) -> ResearchReport:
        return await super().run(request)

    def _show(self) -> None:
        super()._show()
        workflow.upsert_search_attributes(
            [
                RESEARCH_NODE.value_set(self._progress.node),
                RESEARCH_STATUS.value_set(self._progress.status),
            ]
        )


@workflow.defn(name="BenchToolCalls")
class ToolCallsWorkflow:
    """`count` calls of one tool, one after another, as an agent makes them."""

    @workflow.run
    async def run(self, count: int) -> int:
        for n in range(count):
            await workflow.execute_activity_method(
                ToolActivities.call,
                ToolInvocation(
                    tool="get_current_time",
                    arguments={"timezone": "Europe/Paris"},
                    idempotency_key=f"{workflow.info().workflow_id}:{n}",
                ),
                start_to_close_timeout=timedelta(seconds=20),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=TOOL_RETRY,
                summary=f"get_current_time {n + 1}",
            )
        return count
