"""Agent payloads: the models' output schemas, and an AgentWorkflow's input and result."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field
from temporalio.contrib.workflow_streams import WorkflowStreamState

from keel.payloads.approvals import DecidedCall, PendingCall
from keel.payloads.clearance import SecurityLevel
from keel.payloads.contracts import MessagePolicy
from keel.payloads.llm import Budget, Fallback, ModelChoice, Usage
from keel.payloads.recorded import RecordedCall
from keel.payloads.routing import ToolDecision
from keel.payloads.side_effects import SideEffectCall
from keel.payloads.tools import ToolInvocation

# --- output schemas the gateway validates model output against ---------------------

FINISH = "finish"


class IntentGuess(BaseModel):
    """The router agent's answer when no rule matched; checked against routes.toml."""

    intent: str = Field(min_length=1, max_length=40)


class DirectAnswer(BaseModel):
    answer: str = Field(min_length=1, max_length=400)


class SubQuestions(BaseModel):
    """The coordinator's split of a report request, one researcher each."""

    questions: list[Annotated[str, Field(min_length=5, max_length=160)]] = Field(
        min_length=1, max_length=6
    )


class AgentTurn(BaseModel):
    """One step of the tool loop: a tool to call with its arguments, or `finish`."""

    thought: str = Field(default="", max_length=300)
    tool: str = Field(min_length=1, max_length=60)
    arguments: dict[str, str | int] = Field(default_factory=dict)


class Findings(BaseModel):
    """A researcher's result: what the passages say, and which passages."""

    summary: str = Field(min_length=1, max_length=800)
    passage_ids: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=8
    )


class CriterionScore(BaseModel):
    criterion: str = Field(min_length=1, max_length=40)
    # An enum, not a range: llama.cpp's schema grammar enforces enums but not bounds.
    score: Literal[1, 2, 3, 4, 5]


class RubricScores(BaseModel):
    """The reviewer's scores; the pass decision is the rubric's, made in the workflow."""

    scores: list[CriterionScore] = Field(min_length=1, max_length=8)
    feedback: str = Field(default="", max_length=300)


# --- the agent loop -----------------------------------------------------------------


class Observation(BaseModel):
    """What one turn saw: kept short, since it is carried from turn to turn."""

    turn: int
    tool: str
    text: str = Field(description="a short preview; full passages stay in the store")
    passage_ids: list[str] = Field(default_factory=list)
    refused: bool = False


class AgentMessage(BaseModel):
    """A message to a running agent; its id makes a resend harmless."""

    id: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=4000)


MessageStatus = Literal["queued", "interrupted", "rejected", "answered", "superseded"]


class MessageOutcome(BaseModel):
    """What the agent's policy did with one message, and later what came of it."""

    id: str
    text: str
    policy: MessagePolicy
    status: MessageStatus
    position: int | None = Field(default=None, description="place in the queue when queued")
    reason: str = ""
    answer: dict[str, object] | None = Field(
        default=None, description="the agent's answer to the message, once answered"
    )


class AgentCarry(BaseModel):
    """What a continued-as-new run takes over from the run before it."""

    turns: int = 0
    observations: list[Observation] = Field(default_factory=list)
    tool_calls: dict[str, int] = Field(default_factory=dict)
    decisions: list[ToolDecision] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    runs: int = 1
    compensations: list[ToolInvocation] = Field(
        default_factory=list, description="undo calls for side effects done so far"
    )
    prompts: dict[str, str] = Field(default_factory=dict)
    fallbacks: list[Fallback] = Field(default_factory=list)
    live: WorkflowStreamState | None = Field(
        default=None, description="the live channel so far, so a watcher reads on"
    )
    approvals: list[DecidedCall] = Field(
        default_factory=list, description="decisions on calls that needed approval"
    )
    messages: list[MessageOutcome] = Field(
        default_factory=list, description="messages received so far, as first answered"
    )
    queue: list[str] = Field(default_factory=list, description="ids of messages still to answer")
    task: str = Field(default="", description="the request being answered, when not the input's")
    turn_base: int = Field(default=0, description="turns taken before the current request")
    answer: dict[str, object] | None = Field(
        default=None, description="the request's answer, once given, while messages follow"
    )
    answered: bool = Field(default=False, description="the request is answered; messages follow")
    joined: list[str] = Field(
        default_factory=list,
        description="ids of interrupting messages merged into the request `task` carries",
    )
    flags: list[str] = Field(default_factory=list, description="the runs' flags so far")
    side_effects: list[SideEffectCall] = Field(
        default_factory=list, description="at-most-once calls so far, with their outcomes"
    )


class AgentInput(BaseModel):
    """Start one agent on one task; every field has a default so old runs replay."""

    agent: str = Field(min_length=1)
    task: str = Field(min_length=1, max_length=4000)
    context: str = Field(default="", max_length=12000, description="passages or notes to use")
    feedback: str = Field(default="", max_length=2000)
    variables: dict[str, str] = Field(
        default_factory=dict, description="more prompt variables, e.g. a rubric's criteria"
    )
    passage_ids: list[str] = Field(
        default_factory=list, description="passages the model reads, rendered by the LLM worker"
    )
    choices: dict[str, list[str]] = Field(
        default_factory=dict, description="`Model.field` -> values the final answer may use"
    )
    round: int = Field(default=1, ge=1, description="revision round, for a writer or reviewer")
    namespaces: list[str] = Field(default_factory=list, description="what searches may read")
    clearance: SecurityLevel = "public"
    models: list[ModelChoice] = Field(
        default_factory=list, description="overrides the agent's model chain when given"
    )
    llm_task_queue: str = "llm"
    budget: Budget = Field(default_factory=Budget)
    max_turns: int | None = Field(default=None, ge=1, le=10_000)
    max_reasks: int = Field(default=2, ge=0, le=5)
    history_event_limit: int = Field(
        default=8000,
        ge=20,
        description="continue as new past this many events, below Temporal's 10,240 warning",
    )
    history_bytes_limit: int = Field(
        default=1_500_000,
        ge=10_000,
        description="continue as new past this many history bytes: every run stays under"
        " 2 MB, far below the 10 MB warning (large payloads are references:"
        " keel/infra/payload_store)",
    )
    carry: AgentCarry = Field(default_factory=AgentCarry)
    stream_tokens: bool = Field(
        default=False, description="publish model output as it is written (more history)"
    )
    recorded: list[RecordedCall] = Field(
        default_factory=list,
        description="a forked team's child: the original's outcomes before the fork point",
    )


class AgentProgress(BaseModel):
    agent: str
    status: Literal["running", "done", "failed", "cancelled"] = "running"
    turn: int = 0
    runs: int = 1
    tool_calls: dict[str, int] = Field(default_factory=dict)
    refusals: int = 0
    usage: Usage = Field(default_factory=Usage)
    pending_approval: PendingCall | None = Field(
        default=None, description="the tool call waiting for a person, with its arguments"
    )
    approvals: list[DecidedCall] = Field(default_factory=list)
    side_effects: list[SideEffectCall] = Field(
        default_factory=list, description="at-most-once calls: recorded before each was sent"
    )
    needs_reconciliation: SideEffectCall | None = Field(
        default=None, description="the call whose outcome was lost, waiting for an operator"
    )


class AgentResult(BaseModel):
    """The agent's validated output, how it got there and what it spent."""

    agent: str
    role: str
    output_schema: str
    output: dict[str, object] | None = Field(
        default=None, description="None when the model gave no valid output within its re-asks"
    )
    turns: int
    runs: int = Field(description="workflow runs, counting each continue-as-new")
    observations: list[Observation]
    decisions: list[ToolDecision]
    usage: Usage
    fallbacks: list[Fallback] = Field(default_factory=list)
    prompts: dict[str, str] = Field(default_factory=dict)
    flags: list[str] = Field(default_factory=list)
    approvals: list[DecidedCall] = Field(
        default_factory=list, description="decisions on the calls that needed approval"
    )
    messages: list[MessageOutcome] = Field(
        default_factory=list, description="each message sent to the run and what became of it"
    )
    side_effects: list[SideEffectCall] = Field(
        default_factory=list, description="at-most-once calls and what became of each"
    )
