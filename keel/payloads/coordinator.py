"""The coordinator-worker team: input, progress and the multi-agent report."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from keel.payloads.agents import CriterionScore
from keel.payloads.checks import CheckFailure
from keel.payloads.clearance import SecurityLevel
from keel.payloads.llm import Budget, Fallback, ModelChoice, Usage
from keel.payloads.routing import DataRoute, ToolDecision
from keel.payloads.tickets import Decision


class CoordinatorInput(BaseModel):
    """Start a team run; every field has a default so old runs replay."""

    request: str = Field(min_length=3, max_length=4000)
    clearance: SecurityLevel = "public"
    version: str | None = Field(default=None, description="pin a corpus version")
    models: list[ModelChoice] = Field(
        default_factory=list, description="overrides every agent's model chain when given"
    )
    llm_task_queue: str = "llm"
    budget: Budget = Field(default_factory=Budget)
    max_researchers: int = Field(default=3, ge=1, le=16)
    max_rounds: int = Field(default=2, ge=1, le=6, description="write-and-review rounds")
    rubric: str = "report"
    require_approval: bool = False
    approval_timeout_seconds: float = Field(default=3600, gt=0)
    approval_default: Decision = "approve"
    max_feedback_rounds: int = Field(default=2, ge=0, le=5)
    stream_tokens: bool = Field(
        default=False, description="publish model output as it is written (more history)"
    )


class HumanFeedback(BaseModel):
    """A person's notes for the writer; the Coordinator revises and asks again."""

    text: str = Field(min_length=1, max_length=2000)
    by: str = "cli"


class ResearcherRun(BaseModel):
    question: str
    workflow_id: str
    status: Literal["running", "done", "failed"] = "running"
    turns: int = 0
    passages: list[str] = Field(default_factory=list)
    summary: str = ""
    tool_calls: dict[str, int] = Field(default_factory=dict)
    refusals: list[ToolDecision] = Field(default_factory=list)


Trigger = Literal["first draft", "reviewer", "human", "checks"]


class ReviewRound(BaseModel):
    """One write-and-review round: the rubric's scores and the rubric's verdict."""

    round: int
    writer_workflow_id: str
    reviewer_workflow_id: str
    scores: list[CriterionScore] = Field(default_factory=list)
    weighted_score: float | None = None
    passed: bool = False
    feedback: str = ""
    trigger: Trigger = "first draft"
    check_failures: list[CheckFailure] = Field(
        default_factory=list, description="rules the draft broke; such a draft is not reviewed"
    )


Stage = Literal["planning", "researching", "writing", "reviewing", "awaiting_approval", "delivered"]


CoordinatorStatus = Literal["running", "delivered", "failed", "cancelled"]


class CoordinatorProgress(BaseModel):
    status: CoordinatorStatus = "running"
    stage: Stage = "planning"
    data_route: DataRoute | None = None
    researchers: list[ResearcherRun] = Field(default_factory=list)
    rounds: list[ReviewRound] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    decision: Decision | None = None
    feedback: list[HumanFeedback] = Field(default_factory=list)
    draft: str = Field(default="", description="the draft awaiting a person's decision")


class ReportCitation(BaseModel):
    number: int
    passage_id: str
    doc_id: str


class MultiAgentReport(BaseModel):
    request: str
    answer: str
    citations: list[ReportCitation]
    passed: bool
    rubric: str
    rounds: list[ReviewRound]
    researchers: list[ResearcherRun]
    data_route: DataRoute
    usage: Usage
    budget: Budget
    flags: list[str] = Field(default_factory=list)
    decision: Decision | None = None
    feedback: list[HumanFeedback] = Field(default_factory=list)
    fallbacks: list[Fallback] = Field(default_factory=list)
    prompts: dict[str, str] = Field(default_factory=dict)
    contract_versions: dict[str, str] = Field(default_factory=dict)
    extractive: bool = Field(
        default=False, description="the report is the passages' own sentences, not a draft"
    )
    check_failures: list[CheckFailure] = Field(
        default_factory=list, description="rules the delivered draft broke"
    )
