"""The incident saga against the real ticket service: nothing twice, nothing half done.

Every test reads the service's database directly and counts duplicates and orphans.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)

from activities.documents.store import DocumentStore
from harness.testing.cli import cli_env
from harness.testing.processes import run_script
from harness.testing.saga import (
    SUBTASKS,
    Handle,
    completed_results,
    decide,
    incident,
    progress_when,
    saga_workers,
    start,
)
from harness.testing.stack import new_id, typed_cause
from harness.testing.ticket_service import TicketService
from keel.payloads.tickets import (
    SagaProgress,
    TicketSagaInput,
    TicketSagaResult,
    UndoByKey,
)
from workflows.ticket_saga import TicketSagaWorkflow


def assert_unwound(tickets: TicketService, description: str, **counts: int) -> None:
    """The incident left one ticket, cancelled, with every subtask deleted, no duplicate
    and no orphan; `counts` are the audit's further counts the test expects."""
    audit = tickets.audit(description)
    assert (audit.tickets, audit.open_tickets, audit.deleted_subtasks) == (1, 0, SUBTASKS)
    assert (audit.duplicates, audit.orphans) == (0, 0)
    assert {name: getattr(audit, name) for name in counts} == counts


@asynccontextmanager
async def waiting_saga(
    client: Client, store: DocumentStore, tickets: TicketService, **overrides: object
) -> AsyncIterator[tuple[Handle, TicketSagaInput, SagaProgress]]:
    """A saga on an incident of its own, on workers of its own, once it awaits approval."""
    async with saga_workers(client, store, tickets) as settings:
        request = incident(settings, **overrides)
        handle = await start(client, settings, request)
        yield handle, request, await progress_when(handle, "awaiting_approval")


async def decided(handle: Handle, decision: str) -> TicketSagaResult:
    """The saga's result once `decision` is made."""
    await decide(handle, decision)
    return await handle.result()


async def test_approved_saga_acts_once_per_step_and_notifies(
    client: Client, store: DocumentStore, tickets: TicketService
) -> None:
    async with waiting_saga(client, store, tickets) as (handle, request, waiting):
        assert waiting.steps_done == [
            "create_ticket", "create_subtask_0", "create_subtask_1", "create_subtask_2", "assign"
        ]  # fmt: skip
        assert [c.action for c in waiting.compensations] == [
            "cancel_ticket", "delete_subtask", "delete_subtask", "delete_subtask",
            "revoke_assignment",
        ]  # fmt: skip
        await decide(handle, "approve")
        with pytest.raises(WorkflowUpdateFailedError):
            await decide(handle, "reject")  # one decision only
        result = await handle.result()
    assert result.outcome == "completed"
    assert result.triage.severity == "high"
    assert len(result.subtask_ids) == SUBTASKS
    assert result.usage.calls == 2  # a malformed triage, then a re-ask
    audit = tickets.audit(request.description)
    assert (audit.tickets, audit.open_tickets, audit.open_subtasks) == (1, 1, SUBTASKS)
    assert (audit.active_assignments, audit.notices, audit.retractions) == (1, 1, 0)
    assert (audit.duplicates, audit.orphans) == (0, 0)
    # Every key the service saw for this saga is made of the workflow id and the step.
    keys = [k for (k,) in tickets.query(
        "SELECT key FROM idempotency_keys WHERE key LIKE ?", f"{handle.id}:%"
    )]  # fmt: skip
    assert sorted(keys) == sorted(
        f"{handle.id}:{s}"
        for s in ["create-ticket", "create-subtask-0", "create-subtask-1", "create-subtask-2",
                  "assign", "notify"]
    )  # fmt: skip


async def test_reject_from_the_cli_unwinds_every_step_in_reverse(
    client: Client, store: DocumentStore, tickets: TicketService, server_address: str
) -> None:
    async with waiting_saga(client, store, tickets) as (handle, request, _):
        rejected = await run_script(
            "client.py", "--address", server_address, "reject", handle.id, "--reason", "dup"
        )
        assert rejected.code == 0, rejected.stderr
        result = await handle.result()
    assert result.outcome == "rejected"
    assert result.decision.reason == "dup"
    assert [(c.action, c.status) for c in result.compensations] == [
        ("cancel_ticket", "done"), ("delete_subtask", "done"), ("delete_subtask", "done"),
        ("delete_subtask", "done"), ("revoke_assignment", "done"),
    ]  # fmt: skip
    history = await client.get_workflow_handle(handle.id).fetch_history()
    undos = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ][-5:]
    assert {u.activity_type.name for u in undos} == {"undo_side_effect"}
    # Each undo names the key of the step it undoes: the reverse of the steps.
    targets = [
        (await client.data_converter.decode(u.input.payloads, [UndoByKey]))[0].target_key
        for u in undos
    ]
    assert [t.removeprefix(f"{handle.id}:") for t in targets] == [
        "assign", "create-subtask-2", "create-subtask-1", "create-subtask-0", "create-ticket"
    ]  # fmt: skip
    assert_unwound(tickets, request.description, revoked_assignments=1, notices=0)


async def test_a_permanently_failing_step_compensates_every_earlier_step(
    client: Client, store: DocumentStore, tickets: TicketService
) -> None:
    async with saga_workers(client, store, tickets) as settings:
        request = incident(settings, assignee="nobody")  # the service refuses: 422
        handle = await start(client, settings, request)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        progress = await handle.query(TicketSagaWorkflow.progress)
    cause = typed_cause(failure.value, "SagaFailed")
    assert cause.message.startswith("saga failed at assign: ")
    assert "unknown assignee 'nobody'" in cause.message
    assert progress.outcome == "failed"
    # The refused assignment's own undo runs too, and finds nothing to undo.
    assert [c.status for c in progress.compensations] == ["done"] * (2 + SUBTASKS)
    assert_unwound(tickets, request.description, active_assignments=0, revoked_assignments=0)


async def test_overlapping_attempts_after_a_start_to_close_timeout_make_one_ticket(
    client: Client, store: DocumentStore, tickets: TicketService
) -> None:
    # The first attempt holds its transaction past its 2 s timeout; the retry runs
    # while it is still open, waits for it, and gets its answer back.
    tickets.fault("create_ticket", hold_ms=3500)
    async with waiting_saga(client, store, tickets, step_timeout_seconds=2) as (handle, request, _):
        result = await decided(handle, "approve")
    assert result.outcome == "completed"
    created = await completed_results(client, handle.id, "create_ticket")
    assert len(created) == 1
    assert created[0]["attempt"] >= 2
    assert created[0]["replayed"] is True
    audit = tickets.audit(request.description)
    assert (audit.tickets, audit.duplicates, audit.orphans) == (1, 0, 0)


async def test_cancelling_a_waiting_saga_unwinds_it(
    client: Client, store: DocumentStore, tickets: TicketService
) -> None:
    async with waiting_saga(client, store, tickets) as (handle, request, _):
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        progress = await handle.query(TicketSagaWorkflow.progress)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert progress.outcome == "cancelled"
    audit = tickets.audit(request.description)
    assert (audit.tickets, audit.open_tickets, audit.revoked_assignments) == (1, 0, 1)
    assert (audit.duplicates, audit.orphans) == (0, 0)


async def test_no_decision_in_time_applies_the_default(
    client: Client, store: DocumentStore, tickets: TicketService
) -> None:
    async with saga_workers(client, store, tickets) as settings:
        request = incident(settings, approval_timeout_seconds=1, approval_default="reject")
        result = await (await start(client, settings, request)).result()
    assert result.outcome == "rejected"
    assert result.decision.by == "timeout"
    audit = tickets.audit(request.description)
    assert (audit.open_tickets, audit.duplicates, audit.orphans) == (0, 0, 0)


async def test_a_duplicate_submission_starts_one_saga(
    client: Client, store: DocumentStore, tickets: TicketService, server_address: str
) -> None:
    request_id = new_id("dup-incident")
    description = f"Payments queue is backing up ({uuid.uuid4().hex})"
    args = ["--address", server_address, "incident", description, "--request-id", request_id]
    args += ["--provider", "scripted", "--model", "incident_triage"]
    async with saga_workers(client, store, tickets) as settings:
        env = cli_env(settings)
        first, second = await asyncio.gather(
            run_script("client.py", *args, env=env), run_script("client.py", *args, env=env)
        )
        assert first.code == second.code == 0, first.stderr + second.stderr
        assert json.loads(first.stdout) == json.loads(second.stdout)
        handle = client.get_workflow_handle_for(TicketSagaWorkflow.run, f"incident-{request_id}")
        await progress_when(handle, "awaiting_approval")
        approved = await run_script("client.py", "--address", server_address, "approve", handle.id)
        assert approved.code == 0, approved.stderr
        # A third submission after the end still finds the same saga.
        third = await run_script("client.py", *args, env=env)
        assert json.loads(third.stdout) == json.loads(first.stdout)
        assert (await handle.result()).outcome == "completed"
    audit = tickets.audit(description)
    assert (audit.tickets, audit.notices, audit.duplicates, audit.orphans) == (1, 1, 0, 0)


async def test_a_failing_compensation_is_retried_until_it_succeeds(
    client: Client, store: DocumentStore, tickets: TicketService
) -> None:
    tickets.fault("cancel_ticket", status=503, times=2)
    async with waiting_saga(client, store, tickets) as (handle, request, _):
        result = await decided(handle, "reject")
    assert result.outcome == "rejected"
    # Revoke, three deletes, then the cancel: two 503s, done on its third attempt.
    undone = await completed_results(client, handle.id, "undo_side_effect")
    assert [c["attempt"] for c in undone] == [1, 1, 1, 1, 3]
    audit = tickets.audit(request.description)
    assert (audit.open_tickets, audit.duplicates, audit.orphans) == (0, 0, 0)


async def test_a_cancellation_during_the_unwind_does_not_stop_it(
    client: Client, store: DocumentStore, tickets: TicketService
) -> None:
    tickets.fault("delete_subtask", hold_ms=1500, times=SUBTASKS)
    async with waiting_saga(client, store, tickets) as (handle, request, _):
        await decide(handle, "reject")
        await progress_when(handle, "compensating")
        await handle.cancel()
        result = await handle.result()  # the rejection's unwind finished all the same
        progress = await handle.query(TicketSagaWorkflow.progress)
    assert result.outcome == "rejected"
    assert [c.status for c in progress.compensations] == ["done"] * (2 + SUBTASKS)
    assert_unwound(tickets, request.description, revoked_assignments=1)
