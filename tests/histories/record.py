"""Record histories for the replay tests: `python -m tests.histories.record [NAME ...]`.

Runs the scripted flows on a throwaway dev server and writes each history as
JSON beside this file (all of them, or only the names given). Re-record only on
purpose: an old history that no longer replays means running executions would
break on deploy.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.contracts.loader import load_contracts
from activities.documents.store import DocumentStore
from harness.soak.run import researcher_loop
from harness.testing.side_effects import AGENT, turn, write_contracts, write_script
from harness.testing.stack import (
    DEMO_CORPUS,
    TEAM_REQUEST,
    running_workers,
    scripted_ask_input,
    scripted_input,
    scripted_team_input,
    worker_settings,
)
from harness.testing.ticket_service import TicketService
from keel.infra.binaries import temporal_cli
from keel.infra.settings import WorkerSettings
from keel.payloads.agents import AgentInput, AgentMessage, MessageOutcome
from keel.payloads.coordinator import CoordinatorInput
from keel.payloads.documents import IngestRequest
from keel.payloads.llm import ModelChoice
from keel.payloads.side_effects import Reconciliation, SideEffectCall
from keel.payloads.tickets import ApprovalDecision, TicketSagaInput
from keel.rules.breaker import BreakerConfig, BreakerStart, CallOutcome
from keel.rules.rate_limit import BackOff, Booking, LimiterStart, RateLimit, Settlement
from keel.rules.tenants import Charge, Reservation, TenantBudget, TenantDayStart
from workflows.agent import AgentWorkflow
from workflows.circuit_breaker import CircuitBreakerWorkflow
from workflows.coordinator import CoordinatorWorkflow
from workflows.ingest import IngestWorkflow
from workflows.intent_router import IntentRouterWorkflow
from workflows.rate_limiter import RateLimiterWorkflow
from workflows.research import ResearchWorkflow
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES
from workflows.tenant_budget import TenantBudgetWorkflow
from workflows.ticket_saga import TicketSagaWorkflow

HERE = Path(__file__).parent

# Each recorder runs one flow to its end and returns the ids of the executions to keep.
Recorder = Callable[[Client, WorkerSettings, str], Awaitable[list[str]]]


def research(script: str, question: str) -> Recorder:
    async def record(client: Client, settings: WorkerSettings, workflow_id: str) -> list[str]:
        await client.execute_workflow(
            ResearchWorkflow.run,
            scripted_input(script, settings, question),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
        return [workflow_id]

    return record


def team(script: str, children: tuple[str, ...] = (), request: str = TEAM_REQUEST) -> Recorder:
    """The team on one scripted model; `children` are the agents' ids to keep too."""

    async def record(client: Client, settings: WorkerSettings, workflow_id: str) -> list[str]:
        await client.execute_workflow(
            CoordinatorWorkflow.run,
            scripted_team_input(CoordinatorInput, script, settings.llm_task_queue, request=request),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
        return [workflow_id, *(f"{workflow_id}-{child}" for child in children)]

    return record


def ask(request: str) -> Recorder:
    async def record(client: Client, settings: WorkerSettings, workflow_id: str) -> list[str]:
        await client.execute_workflow(
            IntentRouterWorkflow.run,
            scripted_ask_input(request, "ask_everything", settings.llm_task_queue),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
        return [workflow_id]

    return record


def incident(decision: str) -> Recorder:
    """A saga that waits for approval and is approved (it notifies) or rejected (it unwinds)."""

    async def record(client: Client, settings: WorkerSettings, workflow_id: str) -> list[str]:
        handle = await client.start_workflow(
            TicketSagaWorkflow.run,
            TicketSagaInput(
                description="Checkout returns HTTP 500 since 14:02 for every card payment",
                model=ModelChoice(provider="scripted", model="incident_triage"),
                llm_task_queue=settings.llm_task_queue,
                step_timeout_seconds=5,
            ),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
        for _ in range(600):
            progress = await handle.query(TicketSagaWorkflow.progress)
            if progress.status == "awaiting_approval":
                break
            await asyncio.sleep(0.1)
        await handle.execute_update(
            TicketSagaWorkflow.decide, ApprovalDecision.model_validate({"decision": decision})
        )
        await handle.result()
        return [workflow_id]

    return record


async def agent_continued(client: Client, settings: WorkerSettings, workflow_id: str) -> list[str]:
    """An agent loop long enough to continue as new twice: every run is kept."""
    await client.execute_workflow(
        AgentWorkflow.run,
        researcher_loop("agent_long", settings.llm_task_queue, 10, history_event_limit=30),
        id=workflow_id,
        task_queue=settings.task_queue,
    )
    return [workflow_id]


async def agent_queued_message(
    client: Client, settings: WorkerSettings, workflow_id: str
) -> list[str]:
    """An agent that took a message while it worked and answered it after its request."""
    handle = await client.start_workflow(
        AgentWorkflow.run,
        scripted_team_input(
            AgentInput, "agent_messages", settings.llm_task_queue,
            agent="researcher", task="How should retries back off?", namespaces=["demo"],
        ),
        id=workflow_id,
        task_queue=settings.task_queue,
    )  # fmt: skip
    message = AgentMessage(id="m1", text="And what about jitter?")
    await handle.execute_update(
        "send_message", message, id="message-m1", result_type=MessageOutcome
    )
    await handle.result()
    return [workflow_id]


async def agent_reconciled(client: Client, _base: WorkerSettings, workflow_id: str) -> list[str]:
    """An at-most-once call whose outcome was lost (it timed out mid-call) waits for an
    operator, who says it took effect; on workers with the notice board's contracts."""
    folder = Path(tempfile.mkdtemp(prefix="keel-record-board-"))
    os.environ["KEEL_TEST_BOARD"] = str(folder / "board.db")
    (folder / "hold").touch()  # the call stays in flight past its 1 s limit
    contracts = load_contracts(write_contracts(folder, timeout_seconds=1))
    scripts = write_script(folder, [turn("post_notice", "first"), turn(None)])
    settings = worker_settings(scripted_dir=scripts)
    store = DocumentStore(folder / "documents.db")
    async with running_workers(client, store, settings, contracts=contracts):
        handle = await client.start_workflow(
            AgentWorkflow.run,
            scripted_team_input(
                AgentInput, AGENT, settings.llm_task_queue, agent=AGENT, task="Post the notice"
            ),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
        for _ in range(600):
            progress = await handle.query(AgentWorkflow.progress)
            if progress.needs_reconciliation is not None:
                break
            await asyncio.sleep(0.1)
        (folder / "hold").unlink()
        decision = Reconciliation(call=1, resolution="done", by="recorder")
        await handle.execute_update("reconcile_call", decision, result_type=SideEffectCall)
        await handle.result()
    return [workflow_id]


async def breaker(client: Client, settings: WorkerSettings, workflow_id: str) -> list[str]:
    """A breaker entity that opens after failures and refuses a call; recorded while open.

    It runs until the server suggests continuing as new, so its history is taken
    from the running execution, then the entity is terminated.
    """
    handle: WorkflowHandle[CircuitBreakerWorkflow, None] = await client.start_workflow(
        CircuitBreakerWorkflow.run,
        BreakerStart(name="openai:recorded", config=BreakerConfig(min_calls=2, window=4)),
        id=workflow_id,
        task_queue=settings.task_queue,
    )
    for failed in (False, True, True):
        await handle.execute_update(CircuitBreakerWorkflow.acquire)
        await handle.execute_update(CircuitBreakerWorkflow.record, CallOutcome(failed=failed))
    permission = await handle.execute_update(CircuitBreakerWorkflow.acquire)
    assert not permission.allowed
    return [workflow_id]


async def rate_limiter(client: Client, settings: WorkerSettings, workflow_id: str) -> list[str]:
    """A limiter that books calls past its limit, settles one, gives one back and is closed
    by a Retry-After; recorded while it runs, like the breaker."""
    limit = RateLimit(requests_per_minute=2)
    handle: WorkflowHandle[RateLimiterWorkflow, None] = await client.start_workflow(
        RateLimiterWorkflow.run,
        LimiterStart(label="openai/recorded", limit=limit),
        id=workflow_id,
        task_queue=settings.task_queue,
    )
    for n in range(3):
        booking = Booking(id=f"call-{n}", tokens=100, limit=limit)
        await handle.execute_update(RateLimiterWorkflow.book, booking)
    await handle.execute_update(RateLimiterWorkflow.settle, Settlement(id="call-0", tokens=40))
    await handle.execute_update(RateLimiterWorkflow.settle, Settlement(id="call-2", sent=False))
    await handle.execute_update(RateLimiterWorkflow.back_off, BackOff(seconds=5))
    return [workflow_id]


async def tenant_day(client: Client, settings: WorkerSettings, workflow_id: str) -> list[str]:
    """A tenant's day: a call reserved and charged, then one refused; recorded while it runs."""
    budget = TenantBudget(tokens_per_day=600)
    handle: WorkflowHandle[TenantBudgetWorkflow, None] = await client.start_workflow(
        TenantBudgetWorkflow.run,
        TenantDayStart(tenant="recorded", day=datetime.now(UTC).date(), budget=budget),
        id=workflow_id,
        task_queue=settings.task_queue,
    )
    for call in ("call-0", "call-1"):
        reservation = Reservation(
            id=call, budget=budget, prompt_tokens=100, max_output_tokens=400,
            min_output_tokens=16, usd_per_input_token=0, usd_per_output_token=0,
        )  # fmt: skip
        grant = await handle.execute_update(TenantBudgetWorkflow.reserve, reservation)
        if grant.granted:
            await handle.execute_update(TenantBudgetWorkflow.charge, Charge(id=call, tokens=550))
    assert not grant.granted
    return [workflow_id]


async def ingest(client: Client, settings: WorkerSettings, workflow_id: str) -> list[str]:
    await client.execute_workflow(
        IngestWorkflow.run,
        IngestRequest(path=str(DEMO_CORPUS), namespace="demo"),
        id=workflow_id,
        task_queue=settings.task_queue,
    )
    return [workflow_id]


FLOWS: dict[str, Recorder] = {
    # A question only one passage is about: the refine loop, then the revise loop.
    "research_refine_and_revise": research("narrow_refine_and_revise", "What is jitter?"),
    "research_reask_and_fallback": research(
        "plan_always_broken", "Why add jitter to retries with backoff?"
    ),
    "team_report": team("team_report", ("researcher-1", "writer-2")),
    "ask_small_talk": ask("hello there!"),
    "incident_approved": incident("approve"),
    "incident_rejected": incident("reject"),
    "agent_continued": agent_continued,
    "agent_queued_message": agent_queued_message,
    "agent_reconciled": agent_reconciled,
    "breaker": breaker,
    "rate_limiter": rate_limiter,
    "tenant_day": tenant_day,
    "ingest": ingest,
    # Drafts sent back by the checks before review, and drafts that never pass them.
    "research_checks_then_pass": research(
        "checks_then_pass", "How do idempotency keys make retries safe?"
    ),
    "research_never_checks": research("never_checks", "How do idempotency keys make retries safe?"),
    # The team with its check node: a draft sent back to the writer without a reviewer.
    "team_checks": team("team_checks"),
    # The router refusing a request its chosen flow cannot take, before any child.
    "ask_refused_by_flow_input": ask("outage"),
    # Sub-questions no researcher can take dropped; a request the documents do not answer.
    "team_real_questions": team("team_broken_questions"),
    "team_not_in_corpus": team(
        "team_not_in_corpus",
        request="Write a report on how Kafka consumer groups rebalance partitions",
    ),
}
# Not recorded again: `research_in_details.json` is a run of the release before, with
# the marker that this release's research flow no longer writes but still replays;
# `team_in_details.json` is a team run of the release before, with only the
# `progress-in-current-details` marker (this release's runs add a second);
# `retired/` holds research runs older than that, which this release refuses (see
# docs/upgrades.md, "Retiring a patch").


async def main(names: list[str]) -> None:
    unknown = set(names) - set(FLOWS)
    if unknown:
        raise SystemExit(f"unknown flows {sorted(unknown)}; known: {sorted(FLOWS)}")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        search_attributes=list(ALL_SEARCH_ATTRIBUTES),
        # Recorded in plaintext on purpose: committed histories must replay without a
        # key, and the codec passes plaintext payloads through, so they replay with it on.
        data_converter=pydantic_data_converter,
    )
    # The ticket service and the workers share a token of the recording's own.
    os.environ.setdefault("KEEL_TICKETS_TOKEN", secrets.token_urlsafe(24))
    tickets = TicketService(Path(tempfile.mkdtemp(prefix="keel-record-")) / "tickets.db")
    tickets.start()
    try:
        store = DocumentStore(HERE / ".record-documents.db")
        store.ingest_folder(DEMO_CORPUS, "demo")
        settings = worker_settings(tickets_url=tickets.url)
        async with running_workers(env.client, store, settings):
            for name in names or FLOWS:
                ids = await FLOWS[name](env.client, settings, f"history-{name}")
                for workflow_id in ids:
                    await _write(env.client, workflow_id)
    finally:
        tickets.stop()
        (HERE / ".record-documents.db").unlink(missing_ok=True)
        await env.shutdown()


async def _write(client: Client, workflow_id: str) -> None:
    """Every run of the execution, oldest first: `<stem>.json`, then `<stem>@2.json`, ...

    The file is named for the workflow id (child ids derive from it); runs after a
    continue-as-new are numbered.
    """
    runs = [e async for e in client.list_workflows(f'WorkflowId = "{workflow_id}"')]
    runs.sort(key=lambda e: e.start_time)
    stem = workflow_id.removeprefix("history-")
    for number, execution in enumerate(runs, start=1):
        handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        history = await handle.fetch_history()
        name = stem if number == 1 else f"{stem}@{number}"
        (HERE / f"{name}.json").write_text(history.to_json())
        print(f"wrote {name}.json ({len(history.events)} events)")
    if runs and runs[-1].status is not None and runs[-1].status.name == "RUNNING":
        await client.get_workflow_handle(workflow_id).terminate("recorded")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
