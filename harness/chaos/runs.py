"""Workloads as a user drives them: start, decide, cancel, wait, through the SDK or the CLI.

A saga, a research flow and a team run are started the way `client.py` starts
them (or with `client.py` itself), against the scripted endpoint through the
`openai` provider. Waiting tolerates a server that is down and workers that are
dead: the suite is there to see what the runs do about it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.service import RPCError

from harness.chaos.plan import Via, Workload
from harness.chaos.processes import run_script
from keel.payloads.coordinator import CoordinatorInput, MultiAgentReport
from keel.payloads.llm import Budget, ModelChoice
from keel.payloads.research import ResearchInput, ResearchReport
from keel.payloads.tickets import ApprovalDecision, SagaProgress, TicketSagaInput, TicketSagaResult
from workflows.coordinator import CoordinatorWorkflow
from workflows.research import ResearchWorkflow
from workflows.ticket_saga import TicketSagaWorkflow

# The `openai` provider against the scripted endpoint; priced at 0 in contracts/prices.toml.
MODEL = ModelChoice(provider="openai", model="smollm2")
QUESTION = "How do idempotency keys make retries safe?"
REPORT_REQUEST = "Write a report on idempotency keys and circuit breakers"
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Queues:
    """Where one seed's runs go, and the environment `client.py` needs to find them."""

    address: str
    task_queue: str
    llm_task_queue: str

    def cli_env(self) -> dict[str, str]:
        return {
            "TEMPORAL_ADDRESS": self.address,
            "KEEL_TASK_QUEUE": self.task_queue,
            "KEEL_LLM_TASK_QUEUE": self.llm_task_queue,
        }


@dataclass
class RunRecord:
    workload: Workload
    workflow_id: str
    description: str
    started: float
    ended: float | None = None
    status: str = "RUNNING"
    summary: dict[str, Any] | None = None
    failure: str = ""
    usage_tokens: int | None = None
    cancel_requested: float | None = None
    decided: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        return None if self.ended is None else self.ended - self.started


def saga_description(tag: str) -> str:
    return f"Checkout returns HTTP 500 since the 14:02 deploy ({tag})"


def workflow_id_for(workload: Workload, tag: str) -> str:
    """The id `client.py` gives a run submitted with `--request-id tag`."""
    prefix = {"saga": "incident", "research": "research", "team": "team"}[workload.kind]
    return f"{prefix}-{tag}"


async def start_run(client: Client, queues: Queues, workload: Workload, tag: str) -> RunRecord:
    """Start one workload; `tag` makes its workflow id and description unique."""
    kind = workload.kind
    budget = Budget(max_tokens=workload.budget_tokens)
    description = saga_description(tag) if kind == "saga" else ""
    workflow_id = workflow_id_for(workload, tag)
    record = RunRecord(workload, workflow_id, description, time.monotonic())
    if workload.via == "cli":
        await _start_by_cli(queues, workload, tag, description)
        return record
    arg: BaseModel
    if kind == "saga":
        arg = TicketSagaInput(
            description=description, model=MODEL, llm_task_queue=queues.llm_task_queue
        )
        await client.start_workflow(
            TicketSagaWorkflow.run, arg, id=workflow_id, task_queue=queues.task_queue
        )
    elif kind == "research":
        arg = ResearchInput(
            question=QUESTION, model=MODEL, llm_task_queue=queues.llm_task_queue, budget=budget
        )
        await client.start_workflow(
            ResearchWorkflow.run, arg, id=workflow_id, task_queue=queues.task_queue
        )
    else:
        arg = CoordinatorInput(
            request=REPORT_REQUEST,
            models=[MODEL],
            llm_task_queue=queues.llm_task_queue,
            max_researchers=2,
            budget=budget,
        )
        await client.start_workflow(
            CoordinatorWorkflow.run, arg, id=workflow_id, task_queue=queues.task_queue
        )
    return record


async def _start_by_cli(queues: Queues, workload: Workload, tag: str, description: str) -> None:
    model = ["--provider", MODEL.provider, "--model", MODEL.model, "--request-id", tag]
    if workload.kind == "saga":
        args = ["client.py", "incident", description, *model]
    elif workload.kind == "research":
        args = ["client.py", "start", QUESTION, *model]
        if workload.budget_tokens:
            args += ["--budget-tokens", str(workload.budget_tokens)]
    else:
        raise ValueError("team runs are started with the SDK")
    result = await run_script(*args, env=queues.cli_env())
    if result.code != 0:
        raise RuntimeError(f"{' '.join(args[:2])} exited {result.code}: {result.stderr}")


async def cancel_run(client: Client, queues: Queues, record: RunRecord, via: Via) -> str:
    """`client.py cancel` or the SDK's cancel; returns what happened, for the schedule."""
    record.cancel_requested = time.monotonic()
    if via == "cli":
        result = await run_script("client.py", "cancel", record.workflow_id, env=queues.cli_env())
        return "requested" if result.code == 0 else result.stderr.strip().splitlines()[-1]
    for _ in range(100):
        try:
            await client.get_workflow_handle(record.workflow_id).cancel()
            return "requested"
        except RPCError as error:
            if "not found" in error.message.lower() or "completed" in error.message.lower():
                return error.message
            await asyncio.sleep(0.5)  # the server is down: try again
    return "server unreachable"


async def drive_decision(client: Client, queues: Queues, record: RunRecord) -> None:
    """A person who approves or rejects the saga once it awaits approval."""
    decision = record.workload.decision
    if decision is None:
        return
    handle = client.get_workflow_handle_for(TicketSagaWorkflow.run, record.workflow_id)
    while record.ended is None:
        try:
            progress: SagaProgress = await handle.query(TicketSagaWorkflow.progress)
        except (RPCError, Exception):  # no worker, server down: ask again
            await asyncio.sleep(0.5)
            continue
        if progress.status == "awaiting_approval":
            break
        if progress.status in ("compensating", "done"):
            return
        await asyncio.sleep(POLL_SECONDS)
    if record.ended is not None:
        return
    record.decided = decision
    if record.workload.via == "cli":
        result = await run_script("client.py", decision, record.workflow_id, env=queues.cli_env())
        if result.code != 0:
            record.notes.append(f"{decision} refused: {result.stderr.strip()[-200:]}")
        return
    while record.ended is None:
        try:
            await handle.execute_update(
                TicketSagaWorkflow.decide, ApprovalDecision(decision=decision, by="chaos")
            )
            return
        except RPCError:
            await asyncio.sleep(0.5)
        except Exception as error:  # refused by the validator: record why
            record.notes.append(f"{decision} refused: {_root(error)}")
            return


CLOSED = {
    WorkflowExecutionStatus.COMPLETED: "COMPLETED",
    WorkflowExecutionStatus.FAILED: "FAILED",
    WorkflowExecutionStatus.CANCELED: "CANCELED",
    WorkflowExecutionStatus.TERMINATED: "TERMINATED",
    WorkflowExecutionStatus.TIMED_OUT: "TIMED_OUT",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "CONTINUED_AS_NEW",
}


async def wait_closed(client: Client, record: RunRecord, limit: float) -> None:
    """Poll until the run is closed or `limit` seconds have passed since its start."""
    handle = client.get_workflow_handle(record.workflow_id)
    while time.monotonic() - record.started < limit:
        try:
            status = (await handle.describe()).status
        except RPCError:
            status = None
        if status is not None and status in CLOSED:
            record.ended = time.monotonic()
            record.status = CLOSED[status]
            return
        await asyncio.sleep(POLL_SECONDS)


async def terminate(client: Client, record: RunRecord, reason: str) -> None:
    try:
        await client.get_workflow_handle(record.workflow_id).terminate(reason=reason)
        record.status = "TERMINATED"
    except RPCError as error:
        record.notes.append(f"terminate: {error.message}")


async def collect_result(client: Client, record: RunRecord) -> None:
    """The delivered result, reduced to what must not change under faults."""
    kind = record.workload.kind
    wid = record.workflow_id
    try:
        if kind == "saga":
            saga = await client.get_workflow_handle_for(TicketSagaWorkflow.run, wid).result()
            record.summary, record.usage_tokens = saga_summary(saga), saga.usage.tokens
        elif kind == "research":
            report = await client.get_workflow_handle_for(ResearchWorkflow.run, wid).result()
            record.summary, record.usage_tokens = research_summary(report), report.usage.tokens
        else:
            team = await client.get_workflow_handle_for(CoordinatorWorkflow.run, wid).result()
            record.summary, record.usage_tokens = team_summary(team), team.usage.tokens
    except WorkflowFailureError as failure:
        record.failure = _root(failure)
    except RPCError as error:
        record.failure = f"result not read: {error.message}"


def saga_summary(result: TicketSagaResult) -> dict[str, Any]:
    return {
        "outcome": result.outcome,
        "triage": result.triage.model_dump(),
        "decision": result.decision.decision,
        "compensations": [c.action for c in result.compensations],
    }


def research_summary(report: ResearchReport) -> dict[str, Any]:
    return {
        "answer": report.answer,
        "citations": [c.chunk_id for c in report.citations],
        "review_passed": report.review_passed,
        "review_score": report.review_score,
        "flags": sorted(report.flags),
        "iterations": report.iterations,
        "refinements": report.refinements,
    }


def team_summary(report: MultiAgentReport) -> dict[str, Any]:
    return {
        "answer": report.answer,
        "citations": [c.passage_id for c in report.citations],
        "passed": report.passed,
        "flags": sorted(report.flags),
        "rounds": len(report.rounds),
    }


def _root(error: BaseException) -> str:
    """The innermost cause's message: what a user needs to see."""
    while error.__cause__ is not None or getattr(error, "cause", None) is not None:
        error = getattr(error, "cause", None) or error.__cause__  # type: ignore[assignment]
    return f"{type(error).__name__}: {error}"[:300]


def handle_of(client: Client, record: RunRecord) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(record.workflow_id)
