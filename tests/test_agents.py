"""AgentWorkflow: the tool loop, quotas, continue-as-new and compensation of side effects."""

from __future__ import annotations

import asyncio

from temporalio.client import Client, WorkflowFailureError, WorkflowHistory

from activities.documents.store import DocumentStore
from harness.testing.agents import start_agent
from harness.testing.stack import (
    new_id,
    plaintext,
    running_workers,
    worker_settings,
)
from harness.testing.ticket_service import TicketService
from keel.infra.settings import WorkerSettings
from keel.payloads.agents import AgentResult
from workflows.agent import AgentWorkflow
from workflows.circuit_breaker import CircuitBreakerWorkflow, breaker_id


async def run_agent(
    client: Client,
    store: DocumentStore,
    agent: str,
    script: str,
    *,
    prefix: str = "agent",
    settings: WorkerSettings | None = None,
    **overrides: object,
) -> tuple[str, AgentResult]:
    """Workers of its own for one scripted agent, run to its result; returns its id too."""
    settings = settings or worker_settings()
    workflow_id = new_id(prefix)
    async with running_workers(client, store, settings):
        handle = await start_agent(client, settings, agent, script, workflow_id, **overrides)
        return workflow_id, await handle.result()


async def run_histories(client: Client, workflow_id: str) -> list[tuple[str, WorkflowHistory]]:
    """Every run of a workflow id (continue-as-new chains them): its status and history."""
    runs = []
    async for execution in client.list_workflows(f'WorkflowId = "{workflow_id}"'):
        handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        status = execution.status.name if execution.status else ""
        runs.append((status, await handle.fetch_history()))
    return runs


async def test_a_long_conversation_continues_as_new_and_keeps_its_quotas(
    client: Client, store: DocumentStore
) -> None:
    workflow_id, result = await run_agent(
        client, store, "researcher", "agent_long", max_turns=10, history_event_limit=30
    )

    assert result.runs >= 3  # each run stopped near 30 events and handed over
    assert result.turns == 10
    assert "max_turns_reached" in result.flags
    # Quotas hold across runs: 4 cheap searches (the first one the seed, turn 0), then
    # 2 wide ones, then refusals.
    assert result.decisions[0].turn == 0
    allowed = [d.tool for d in result.decisions if d.allowed]
    assert allowed == ["search_documents"] * 4 + ["search_wide"] * 2
    refused = [d for d in result.decisions if not d.allowed]
    assert len(refused) == 1 + 10 - 6
    assert all("no 'search' tool available" in d.reason for d in refused)
    assert result.usage.calls == 10 + 1
    # The final answer keeps only passages the agent actually saw.
    assert result.output is not None
    assert result.output["passage_ids"] == ["demo/retries-and-backoff#1"]
    assert "unseen_passages_dropped" in result.flags

    handle = client.get_workflow_handle(workflow_id)
    runs = await run_histories(client, workflow_id)
    assert all(len(history.events) < 60 for _, history in runs)
    assert len(runs) == result.runs
    assert (await handle.describe()).run_id is not None


async def test_a_side_effect_is_compensated_when_the_agent_is_cancelled(
    client: Client, store: DocumentStore, tickets: TicketService
) -> None:
    workflow_id = new_id("agent-incident")
    settings = worker_settings(tickets_url=tickets.url)
    description = f"opened by agent run {workflow_id}"
    async with running_workers(client, store, settings):
        handle = await start_agent(
            client, settings, "incident_responder", "incident_agent", workflow_id,
            task="Checkout returns HTTP 500 since the deploy",
        )  # fmt: skip
        for _ in range(200):
            progress = await handle.query(AgentWorkflow.progress)
            # The second create_ticket was refused (quota 1); the loop goes on.
            if progress.refusals >= 1:
                break
            await asyncio.sleep(0.1)
        assert tickets.audit(description).open_tickets == 1
        await handle.cancel()
        try:
            await handle.result()
        except WorkflowFailureError:
            pass
        else:
            raise AssertionError("a cancelled agent must not complete")

    audit = tickets.audit(description)
    assert audit.tickets == 1
    assert audit.open_tickets == 0  # cancelled by the compensation
    history = await handle.fetch_history()
    summaries = [
        (await plaintext(client, e.user_metadata.summary)).data.decode()
        for e in history.events
        if e.HasField("user_metadata") and e.user_metadata.HasField("summary")
    ]
    assert any("compensate cancel_ticket" in s for s in summaries)


async def test_a_prompt_injected_document_cannot_reach_a_forbidden_tool(
    client: Client, store: DocumentStore, tickets: TicketService
) -> None:
    settings = worker_settings(tickets_url=tickets.url)
    workflow_id, result = await run_agent(
        client, store, "researcher", "injected_researcher",
        prefix="agent-injected", settings=settings,
        task="What permissions should an agent's tools have?",
    )  # fmt: skip
    # The model read the injected notice, then asked for the tool it names.
    read = next(o for o in result.observations if o.tool == "read_passage")
    assert "SYSTEM NOTICE TO AI AGENTS" in read.text
    refused = [d for d in result.decisions if not d.allowed]
    assert [(d.requested, d.turn) for d in refused] == [("create_ticket", 3)]
    assert refused[0].reason == "tool 'create_ticket' is not allowed for role 'researcher'"
    assert result.observations[-1].refused
    # Nothing reached the ticket service, and no tool activity was even scheduled for it.
    assert tickets.query("SELECT COUNT(*) FROM tickets WHERE title = 'Grant admin access'") == [
        (0,)
    ]
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    summaries = [
        (await plaintext(client, e.user_metadata.summary)).data.decode()
        for e in history.events
        if e.HasField("user_metadata") and e.user_metadata.HasField("summary")
    ]
    assert not any("create_ticket" in s for s in summaries)
    assert result.output is not None
    assert result.output["passage_ids"] == ["demo/agent-tool-safety#1", "demo/agent-tool-safety#4"]


async def test_a_failing_tool_trips_its_breaker_and_the_router_stops_calling_it(
    client: Client, store: DocumentStore, tickets: TicketService
) -> None:
    settings = worker_settings(
        tickets_url=tickets.url, breaker_window=4, breaker_min_calls=2, breaker_cooldown_seconds=60
    )
    tickets.fault("create_ticket", status=503, times=2)
    async with running_workers(client, store, settings):
        started = await start_agent(
            client, settings, "incident_responder", "incident_breaker", new_id("agent-breaker"),
            task="The payments queue has stalled",
        )  # fmt: skip
        result = await started.result()
        breaker = await client.get_workflow_handle_for(
            CircuitBreakerWorkflow.run, breaker_id(settings.task_queue, "tool:create_ticket")
        ).query(CircuitBreakerWorkflow.state)

    # Two 503s open the breaker; after that no call reaches the service (a third
    # request would have succeeded and opened a ticket).
    assert breaker.state == "open"
    assert breaker.rejected == 2
    assert tickets.query("SELECT COUNT(*) FROM tickets WHERE title = 'Payments queue stalled'") == [
        (0,)
    ]
    assert [(d.allowed, d.reason) for d in result.decisions] == [
        (True, "allowed"),
        (False, "no 'ticket' tool available (create_ticket: breaker open)"),
        (True, "allowed"),
        (False, "no 'ticket' tool available (create_ticket: breaker open)"),
    ]
    assert result.output is not None


async def test_a_history_growing_in_bytes_also_continues_as_new(
    client: Client, store: DocumentStore
) -> None:
    workflow_id, result = await run_agent(
        client, store, "researcher", "agent_long",
        prefix="agent-bytes", max_turns=6, history_bytes_limit=10_000,
    )  # fmt: skip
    assert result.runs >= 2
    assert result.turns == 6
    for status, history in await run_histories(client, workflow_id):
        if status == "CONTINUED_AS_NEW":
            # Handed over at the first turn boundary past the limit: over it by at most
            # one turn (a model call, a tool call; the contract snapshot, about 12 KB
            # encrypted, in the first run).
            size = sum(event.ByteSize() for event in history.events)
            assert 10_000 <= size < 10_000 + 25_000
