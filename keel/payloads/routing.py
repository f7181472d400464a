"""Routing payloads: intent, tool and data decisions, and the front door's input and result."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from keel.payloads.clearance import SecurityLevel
from keel.payloads.contracts import FlowName, Language
from keel.payloads.llm import Budget, ModelChoice, Usage


class ToolDecision(BaseModel):
    """The ToolRouter's answer for one proposed call; refusals carry their reason."""

    requested: str
    allowed: bool
    tool: str | None = Field(default=None, description="the tool to call, when allowed")
    reason: str
    turn: int = 0


class DataRoute(BaseModel):
    """Which namespaces a caller's question searches, and which were left out and why."""

    language: Language
    namespaces: list[str]
    excluded: dict[str, str] = Field(default_factory=dict, description="namespace -> reason")


class IntentDecision(BaseModel):
    """What the IntentRouter decided, and how: by a rule, by the model, or not at all."""

    intent: str | None
    flow: FlowName | None
    allowed: bool
    method: Literal["rule", "model", "none"]
    rule: str = Field(default="", description="the keyword or pattern that matched")
    reason: str = ""


class AskInput(BaseModel):
    """A request at the front door; every field has a default so old runs replay."""

    request: str = Field(min_length=1, max_length=2000)
    clearance: SecurityLevel = "public"
    version: str | None = Field(default=None, description="pin a corpus version")
    model: ModelChoice | None = Field(
        default=None, description="overrides every agent's model chain when given"
    )
    llm_task_queue: str = "llm"
    budget: Budget = Field(default_factory=Budget)
    approval_timeout_seconds: float = Field(default=3600, gt=0)
    require_approval: bool = False
    stream_tokens: bool = Field(
        default=False, description="publish model output as it is written (more history)"
    )


class AskProgress(BaseModel):
    status: Literal["routing", "running", "done", "refused", "failed"] = "routing"
    decision: IntentDecision | None = None
    child_workflow_id: str | None = None
    data_route: DataRoute | None = None


class AskResult(BaseModel):
    """The routed flow's result (shape named by `flow`), or a refusal."""

    request: str
    decision: IntentDecision
    refused: bool = False
    message: str = Field(default="", description="the refusal, or a direct answer")
    child_workflow_id: str | None = None
    data_route: DataRoute | None = None
    result: dict[str, Any] | None = None
    usage: Usage = Field(default_factory=Usage)
    contract_versions: dict[str, str] = Field(default_factory=dict)
