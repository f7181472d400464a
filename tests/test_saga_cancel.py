"""A cancel at the worst moment: while a side effect is in flight, or the worker is dead.

Each saga step's undo is registered before the step is called, by the step's
idempotency key, so whatever the service committed is undone, and a write still
on its way when the undo runs is refused when it arrives. Each test reads the
service's own database afterwards.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from activities.documents.store import DocumentStore
from harness.testing.processes import run_script, worker_process
from harness.testing.saga import (
    Handle,
    decide,
    incident,
    progress_when,
    saga_workers,
    start,
    until,
)
from harness.testing.stack import typed_cause, worker_settings
from harness.testing.ticket_service import TicketService
from workflows.ticket_saga import TicketSagaWorkflow


async def cancelled_by_cli(handle: Handle, server_address: str) -> None:
    """`client.py cancel`, as a user would; then the run must end CANCELED."""
    done = await run_script("client.py", "--address", server_address, "cancel", handle.id)
    assert done.code == 0, done.stdout + done.stderr
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), 60)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED


async def until_pending(handle: Handle, activity_type: str, seconds: float = 30) -> None:
    """Until the run has an attempt of `activity_type` in flight."""
    for _ in range(int(seconds * 20)):
        description = await handle.describe()
        if any(
            p.activity_type.name == activity_type
            for p in description.raw_description.pending_activities
        ):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no {activity_type} in flight within {seconds} s")


@pytest.mark.parametrize(
    ("route", "landed"),
    [
        ("create_ticket", "SELECT COUNT(*) FROM tickets WHERE description = ?"),
        (
            "create_subtask",
            "SELECT COUNT(*) FROM subtasks JOIN tickets t ON t.id = ticket_id"
            " WHERE t.description = ?",
        ),
        (
            "notify",
            "SELECT COUNT(*) FROM notifications JOIN tickets t ON t.id = ticket_id"
            " WHERE t.description = ?",
        ),
    ],
)
async def test_cancel_while_a_committed_step_awaits_its_answer_undoes_it(
    client: Client,
    store: DocumentStore,
    tickets: TicketService,
    server_address: str,
    route: str,
    landed: str,
) -> None:
    # The service commits the write, then holds its answer: the step is in flight.
    tickets.fault(route, after_commit_ms=10_000)
    async with saga_workers(client, store, tickets) as settings:
        request = incident(settings)
        handle = await start(client, settings, request)
        if route == "notify":
            await progress_when(handle, "awaiting_approval")
            await decide(handle, "approve")
        await until(lambda: tickets.query(landed, request.description)[0][0] >= 1)
        await cancelled_by_cli(handle, server_address)
    audit = tickets.audit(request.description)
    assert (audit.tickets, audit.open_tickets, audit.duplicates, audit.orphans) == (1, 0, 0, 0)
    assert audit.notices == audit.retractions


async def test_cancel_before_a_slow_write_lands_keeps_it_from_landing(
    client: Client, store: DocumentStore, tickets: TicketService, server_address: str
) -> None:
    # A slow service: the first subtask's request waits 10 s before its transaction,
    # time enough for `client.py cancel` to start and connect on a loaded machine.
    tickets.fault("create_subtask", delay_ms=10_000)
    async with saga_workers(client, store, tickets) as settings:
        request = incident(settings)
        handle = await start(client, settings, request)
        await until(lambda: tickets.audit(request.description).tickets == 1)
        await until_pending(handle, "create_subtask")
        lands_at = asyncio.get_running_loop().time() + 10
        await cancelled_by_cli(handle, server_address)
        # The slow request reaches the database now, too late.
        await asyncio.sleep(max(lands_at - asyncio.get_running_loop().time(), 0) + 1)
    subtasks = tickets.query(
        "SELECT COUNT(*) FROM subtasks JOIN tickets t ON t.id = ticket_id WHERE t.description = ?",
        request.description,
    )[0][0]
    refused = tickets.query(
        "SELECT route FROM idempotency_keys WHERE key = ?", f"{handle.id}:create-subtask-0"
    )
    assert subtasks == 0
    assert refused == [("tombstone",)]
    audit = tickets.audit(request.description)
    assert (audit.tickets, audit.open_tickets, audit.orphans) == (1, 0, 0)


async def test_cancel_while_the_worker_is_dead_unwinds_when_it_returns(
    client: Client, tickets: TicketService, server_address: str, tmp_path: Path
) -> None:
    settings = worker_settings(tickets_url=tickets.url)
    tickets.fault("create_ticket", after_commit_ms=10_000)
    request = incident(settings)
    async with worker_process(server_address, settings, tmp_path) as first:
        handle = await start(client, settings, request)
        await until(lambda: tickets.audit(request.description).tickets == 1)
        first.kill()  # SIGKILL with the ticket committed and its answer unsent
        await first.wait()
    cancelled = await run_script("client.py", "--address", server_address, "cancel", handle.id)
    assert cancelled.code == 0, cancelled.stdout + cancelled.stderr
    async with worker_process(server_address, settings, tmp_path):
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 60)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    audit = tickets.audit(request.description)
    assert (audit.tickets, audit.open_tickets, audit.duplicates, audit.orphans) == (1, 0, 0, 0)


async def test_an_undo_that_fails_for_good_does_not_stop_the_unwind(
    client: Client, store: DocumentStore, tickets: TicketService
) -> None:
    # The first undo of a subtask (the last one created) is refused outright.
    tickets.fault("delete_subtask", status=409)
    async with saga_workers(client, store, tickets) as settings:
        request = incident(settings)
        handle = await start(client, settings, request)
        await progress_when(handle, "awaiting_approval")
        await decide(handle, "reject")
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), 60)
        progress = await handle.query(TicketSagaWorkflow.progress)
    cause = typed_cause(failure.value, "CompensationFailed")
    assert cause.message.startswith("compensation failed for create_subtask_2: ")
    assert "409" in cause.message
    statuses = {c.step: c.status for c in progress.compensations}
    assert statuses == {
        "create_ticket": "done",
        "create_subtask_0": "done",
        "create_subtask_1": "done",
        "create_subtask_2": "failed",
        "assign": "done",
    }
    audit = tickets.audit(request.description)
    assert (audit.open_tickets, audit.deleted_subtasks, audit.revoked_assignments) == (0, 2, 1)
