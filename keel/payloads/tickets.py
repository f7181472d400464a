"""Incident-triage saga payloads: the model's triage, side-effect calls, the saga's result."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from keel.payloads.llm import ModelChoice, Usage

Severity = Literal["low", "medium", "high", "critical"]


class IncidentTriage(BaseModel):
    """The triage node's output: what ticket to open and how to split the work."""

    title: str = Field(min_length=5, max_length=120)
    severity: Severity
    subtasks: list[str] = Field(min_length=1, max_length=4)


# --- side-effect calls: each carries the idempotency key the service deduplicates on ---


class SideEffect(BaseModel):
    idempotency_key: str = Field(min_length=8, max_length=200)


class CreateTicket(SideEffect):
    title: str
    description: str
    severity: Severity


class CreateSubtask(SideEffect):
    ticket_id: int
    title: str


class AssignTicket(SideEffect):
    ticket_id: int
    assignee: str


class SendNotification(SideEffect):
    ticket_id: int
    channel: str
    message: str


class UndoRecord(SideEffect):
    """A compensation: undo the record with this id (cancel, delete, revoke, retract)."""

    record_id: int


class UndoByKey(SideEffect):
    """A compensation known before its step runs: undo whatever the write under
    `target_key` did, or make sure it never happens if it has not landed yet."""

    target_key: str = Field(min_length=8, max_length=200)


class ServiceRecord(BaseModel):
    """What the service answered; `replayed` when the key had been seen before."""

    id: int
    status: str
    replayed: bool = False


# --- the saga -------------------------------------------------------------------------

Decision = Literal["approve", "reject"]


class TicketSagaInput(BaseModel):
    description: str = Field(min_length=10, max_length=5000)
    assignee: str = "oncall"
    channel: str = "#incidents"
    model: ModelChoice = Field(default_factory=ModelChoice)
    llm_task_queue: str = "llm"
    max_reasks: int = Field(default=2, ge=0, le=5)
    approval_timeout_seconds: float = Field(default=3600, gt=0)
    approval_default: Decision = "reject"
    step_timeout_seconds: float = Field(default=10, gt=0, description="start-to-close per call")


class ApprovalDecision(BaseModel):
    decision: Decision
    by: str = "cli"
    reason: str = ""


class CompensationEntry(BaseModel):
    """One compensation in the saga's log, visible through the `progress` query."""

    step: str
    action: str
    record_id: int
    status: Literal["registered", "running", "done", "failed"] = "registered"
    error: str = Field(default="", description="why the undo failed, when it did")


class SagaProgress(BaseModel):
    status: Literal[
        "triage", "acting", "awaiting_approval", "notifying", "compensating", "done"
    ] = "triage"
    outcome: Literal["completed", "rejected", "failed", "cancelled"] | None = None
    ticket_id: int | None = None
    steps_done: list[str] = Field(default_factory=list)
    compensations: list[CompensationEntry] = Field(default_factory=list)
    decision: ApprovalDecision | None = None
    usage: Usage = Field(default_factory=Usage)


class TicketSagaResult(BaseModel):
    outcome: Literal["completed", "rejected"]
    ticket_id: int
    triage: IncidentTriage
    subtask_ids: list[int]
    assignment_id: int | None
    notification_id: int | None
    decision: ApprovalDecision
    compensations: list[CompensationEntry]
    usage: Usage
    prompts: dict[str, str] = Field(default_factory=dict)
