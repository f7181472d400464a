"""The incident saga as tests drive it: its input, its workers, its progress and decisions."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from activities.documents.store import DocumentStore
from harness.testing.stack import new_id, plaintext, running_workers, worker_settings
from harness.testing.ticket_service import TicketService
from keel.cli.channel import TRANSIENT
from keel.infra.settings import WorkerSettings
from keel.payloads.llm import ModelChoice
from keel.payloads.tickets import ApprovalDecision, SagaProgress, TicketSagaInput, TicketSagaResult
from workflows.ticket_saga import TicketSagaWorkflow

SUBTASKS = 3  # in the incident_triage script

Handle = WorkflowHandle[TicketSagaWorkflow, TicketSagaResult]


def incident(settings: WorkerSettings, **overrides: object) -> TicketSagaInput:
    """An incident of its own (a fresh description), triaged by the scripted model."""
    values: dict[str, object] = {
        "description": f"Checkout returns HTTP 500 since 14:02 ({uuid.uuid4().hex})",
        "model": ModelChoice(provider="scripted", model="incident_triage"),
        "llm_task_queue": settings.llm_task_queue,
        "step_timeout_seconds": 5,
    }
    values.update(overrides)
    return TicketSagaInput.model_validate(values)


@asynccontextmanager
async def saga_workers(
    client: Client, store: DocumentStore, tickets: TicketService
) -> AsyncIterator[WorkerSettings]:
    """Workers of their own whose ticket activities call `tickets`."""
    async with running_workers(client, store, worker_settings(tickets_url=tickets.url)) as s:
        yield s


async def start(client: Client, settings: WorkerSettings, request: TicketSagaInput) -> Handle:
    return await client.start_workflow(
        TicketSagaWorkflow.run, request, id=new_id("incident"), task_queue=settings.task_queue
    )


async def progress_when(handle: Handle, status: str, seconds: float = 60) -> SagaProgress:
    """The saga's progress once it reaches `status`.

    A query that reaches the run while the worker it was on lies dead (kill -9) can be
    cancelled by the server: it is asked again, as `client.py watch` does."""
    async with asyncio.timeout(seconds):
        while True:
            try:
                progress = await handle.query(TicketSagaWorkflow.progress)
            except RPCError as error:
                if error.status not in TRANSIENT:
                    raise
                await asyncio.sleep(0.5)
                continue
            if progress.status == status:
                return progress
            await asyncio.sleep(0.1)


async def decide(handle: Handle, decision: str) -> SagaProgress:
    return await handle.execute_update(
        TicketSagaWorkflow.decide, ApprovalDecision.model_validate({"decision": decision})
    )


async def completed_results(
    client: Client, workflow_id: str, activity: str
) -> list[dict[str, Any]]:
    """Results of one activity type, and the attempt each completed on."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled: dict[int, str] = {}
    attempts: dict[int, int] = {}
    found: list[dict[str, Any]] = []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = e.activity_task_started_event_attributes
            attempts[started.scheduled_event_id] = started.attempt
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = e.activity_task_completed_event_attributes
            if scheduled[done.scheduled_event_id] == activity:
                body = json.loads((await plaintext(client, done.result.payloads[0])).data)
                found.append({**body, "attempt": attempts[done.scheduled_event_id]})
    return found


async def until(predicate: Callable[[], bool], seconds: float = 60) -> None:
    """Poll the service's database, which has no change feed to wait on."""
    for _ in range(int(seconds * 10)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"not true within {seconds} s")
