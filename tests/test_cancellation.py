"""Cancellation reaches the running call, and is never taken for a failure.

A cancelled model call stops and gives its slot back at once (the local model's
queue has one); a fallback chain does not move on; an agent's in-flight side
effect is undone; a worker killed in the middle of a model call is noticed within
the heartbeat timeout, not after the call's three-minute start-to-close timeout.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle

from activities.documents.store import DocumentStore
from harness.testing.agents import agent_input
from harness.testing.processes import run_script, worker_process
from harness.testing.saga import until
from harness.testing.stack import (
    execute_scripted,
    new_id,
    running_workers,
    scripted_input,
    worker_settings,
)
from harness.testing.ticket_service import TicketService
from keel.payloads.llm import ModelChoice
from workflows.agent import AgentWorkflow
from workflows.research import ResearchWorkflow

QUESTION = "How do heartbeats find a crashed worker?"


async def until_pending(handle: WorkflowHandle, activity_type: str, seconds: float = 30) -> None:  # type: ignore[type-arg]
    """Until the run has an attempt of `activity_type` running on a worker."""
    for _ in range(int(seconds * 20)):
        description = await handle.describe()
        if any(
            p.activity_type.name == activity_type and p.HasField("last_started_time")
            for p in description.raw_description.pending_activities
        ):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no {activity_type} running within {seconds} s")


async def scheduled(handle: WorkflowHandle, activity_type: str) -> int:  # type: ignore[type-arg]
    history = await handle.fetch_history()
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == activity_type
    )


async def test_cancel_stops_a_hung_model_call_frees_its_slot_and_skips_the_fallback(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    async with running_workers(client, store) as settings:  # one model slot
        request = scripted_input(
            "hang",
            settings,
            QUESTION,
            fallback_models=[ModelChoice(provider="scripted", model="slow_pass")],
        )
        handle = await client.start_workflow(
            ResearchWorkflow.run, request, id=new_id(), task_queue=settings.task_queue
        )
        await until_pending(handle, "complete_llm")
        cancelled = await run_script("client.py", "--address", server_address, "cancel", handle.id)
        assert cancelled.code == 0, cancelled.stderr
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 30)
        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
        # The next run gets the model's only slot long before the hung call would end.
        _, report = await asyncio.wait_for(
            execute_scripted(client, settings, "slow_pass", QUESTION), 60
        )
    assert report.answer
    assert await scheduled(handle, "complete_llm") == 1  # no fallback after the cancel


async def test_a_cancelled_agent_undoes_the_ticket_its_call_had_in_flight(
    client: Client, store: DocumentStore, tickets: TicketService
) -> None:
    workflow_id = new_id("agent-incident")
    description = f"opened by agent run {workflow_id}"
    tickets.fault("create_ticket", after_commit_ms=10_000)  # committed, answer held
    settings = worker_settings(tickets_url=tickets.url)
    async with running_workers(client, store, settings):
        handle = await client.start_workflow(
            AgentWorkflow.run,
            agent_input(
                "incident_responder",
                "incident_agent",
                settings.llm_task_queue,
                task="Checkout returns HTTP 500 since the deploy",
            ),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
        await until(lambda: tickets.audit(description).tickets == 1)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 60)
        progress = await handle.query(AgentWorkflow.progress)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert progress.status == "cancelled"
    audit = tickets.audit(description)
    assert (audit.tickets, audit.open_tickets) == (1, 0)
    assert await scheduled(handle, "complete_llm") == 1  # the loop stopped at the cancel


async def test_a_worker_killed_mid_model_call_is_noticed_within_the_heartbeat_timeout(
    client: Client, server_address: str, tmp_path: Path
) -> None:
    settings = worker_settings()
    request = scripted_input("slow_write", settings, QUESTION, max_revisions=0)
    handle = await client.start_workflow(
        ResearchWorkflow.run, request, id=new_id(), task_queue=settings.task_queue
    )
    async with worker_process(server_address, settings, tmp_path) as first:
        await until_pending(handle, "complete_llm")
        first.kill()
        await first.wait()
    async with worker_process(server_address, settings, tmp_path):
        # Without heartbeats the call would wait out its 3-minute start-to-close timeout.
        report = await asyncio.wait_for(handle.result(), 60)
    assert report.answer
    history = await handle.fetch_history()
    retried = [
        e.activity_task_started_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.attempt > 1
    ]
    # The killed attempt ended on its heartbeat timeout; the next one answered.
    assert len(retried) == 1
    assert retried[0].last_failure.timeout_failure_info.timeout_type == (
        TimeoutType.TIMEOUT_TYPE_HEARTBEAT
    )
