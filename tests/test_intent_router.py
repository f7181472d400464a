"""`client.py ask`: the IntentRouter sends each request to its flow, or refuses it."""

from __future__ import annotations

import asyncio
import json

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from activities.documents.store import DocumentStore
from harness.testing.cli import cli_env
from harness.testing.processes import Completed, run_script
from harness.testing.stack import eventually, new_id, running_workers, worker_settings
from harness.testing.ticket_service import TicketService
from keel.infra.settings import WorkerSettings
from keel.payloads.routing import AskInput, AskResult
from keel.payloads.tickets import ApprovalDecision
from workflows.intent_router import IntentRouterWorkflow
from workflows.ticket_saga import TicketSagaWorkflow


async def ask(
    server_address: str,
    settings: WorkerSettings,
    request: str,
    *extra: str,
    script: str = "ask_everything",
) -> tuple[Completed, AskResult]:
    completed = await run_script(
        "client.py", "--address", server_address,
        "ask", request, "--provider", "scripted", "--model", script, "--json", *extra,
        env=cli_env(settings),
    )  # fmt: skip
    assert completed.stdout, completed.stderr
    return completed, AskResult.model_validate(json.loads(completed.stdout))


def assert_refused_before_a_child(
    completed: Completed, result: AskResult, flow: str, message_start: str
) -> None:
    """The router chose `flow`, then refused (exit code 4) without starting it."""
    assert completed.code == 4, completed.stderr
    assert result.refused
    assert result.decision.flow == flow
    assert result.child_workflow_id is None
    assert result.message.startswith(message_start)


async def child_type(client: Client, result: AskResult) -> str:
    assert result.child_workflow_id is not None
    return (await client.get_workflow_handle(result.child_workflow_id).describe()).workflow_type


async def approve_when_waiting(client: Client, prefix: str) -> None:
    """The incident's saga waits for a person; approve it once it is there."""

    async def approved() -> bool:
        async for wf in client.list_workflows('WorkflowType = "TicketSagaWorkflow"'):
            if wf.id.startswith(prefix):
                handle = client.get_workflow_handle_for(TicketSagaWorkflow.run, wf.id)
                progress = await handle.query(TicketSagaWorkflow.progress)
                if progress.status == "awaiting_approval":
                    await handle.execute_update(
                        TicketSagaWorkflow.decide, ApprovalDecision(decision="approve", by="test")
                    )
                    return True
        return False

    await eventually(approved, "the incident saga never waited for approval")


async def test_ask_routes_research_report_incident_and_small_talk(
    client: Client, store: DocumentStore, tickets: TicketService, server_address: str
) -> None:
    settings = worker_settings(tickets_url=tickets.url)
    async with running_workers(client, store, settings):
        research, report, small_talk = await asyncio.gather(
            ask(server_address, settings, "How do idempotency keys make retries safe?"),
            ask(server_address, settings, "Write a report on idempotency keys and breakers"),
            ask(server_address, settings, "hello there!"),
        )
        incident_id = new_id("incident")
        incident, _ = await asyncio.gather(
            ask(
                server_address, settings, "Checkout returns HTTP 500 since the 14:02 deploy",
                "--request-id", incident_id,
            ),
            approve_when_waiting(client, f"ask-{incident_id}-incident"),
        )  # fmt: skip
        types = [await child_type(client, r) for _, r in (research, report, incident, small_talk)]

    assert types == [
        "ResearchWorkflow",
        "CoordinatorWorkflow",
        "TicketSagaWorkflow",
        "AgentWorkflow",
    ]
    for completed, result in (research, report, incident, small_talk):
        assert completed.code == 0, completed.stderr
        assert not result.refused
        assert result.decision.method == "rule"
        assert "intent " in completed.stderr  # the routing decision, shown as it happens
    assert research[1].result is not None
    assert research[1].result["citations"]
    assert research[1].data_route is not None
    assert research[1].data_route.namespaces[0] == "demo"
    assert report[1].result is not None
    assert len(report[1].result["researchers"]) == 2
    assert [r["passed"] for r in report[1].result["rounds"]] == [False, True]
    # The team's progress as the CLI polled it, down to where it ended.
    team_lines = [line for line in report[0].stderr.splitlines() if "stage=" in line]
    assert team_lines[-1].startswith("[delivered] stage=delivered researchers=2/2 rounds=2")
    assert incident[1].result is not None
    assert incident[1].result["outcome"] == "completed"
    assert small_talk[1].message == "Hello! Ask me about durable agents."
    assert all(r.contract_versions for _, r in (research, report, incident, small_talk))


async def test_disallowed_and_unknown_intents_are_refused_with_a_reason(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    async with running_workers(client, store) as settings:
        forbidden, _ = await ask(server_address, settings, "Please transfer money to account 42")
        # The router agent names an unknown intent, then a known one.
        unknown, guessed = [
            await client.execute_workflow(
                IntentRouterWorkflow.run,
                AskInput.model_validate(
                    {
                        "request": "tell me a story about sagas",
                        "model": {"provider": "scripted", "model": script},
                        "llm_task_queue": settings.llm_task_queue,
                    }
                ),
                id=new_id("ask"),
                task_queue=settings.task_queue,
            )
            for script in ("ask_unknown", "ask_everything")
        ]
    assert forbidden.code == 4
    refused = json.loads(forbidden.stdout)
    assert refused["refused"]
    assert refused["child_workflow_id"] is None
    assert "forbidden_action" in refused["message"]
    assert "This assistant does not do that" in refused["message"]

    assert unknown.refused
    assert unknown.decision.method == "model"
    assert "named no known intent" in unknown.message
    assert unknown.usage.calls == 3  # the answer, then two re-asks with the error
    assert unknown.child_workflow_id is None

    assert not guessed.refused
    assert (guessed.decision.method, guessed.decision.intent) == ("model", "research")
    assert guessed.result is not None


async def test_a_caller_without_clearance_never_receives_restricted_passages(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    question = "What went wrong with Blueheron's ticket dedup?"
    async with running_workers(client, store) as settings:
        (public_run, public), (cleared_run, cleared) = await asyncio.gather(
            ask(server_address, settings, question, script="blueheron_ask"),
            ask(
                server_address, settings, question, "--clearance", "restricted",
                script="blueheron_ask",
            ),
        )  # fmt: skip
    assert public_run.code == 0, public_run.stderr
    assert cleared_run.code == 0, cleared_run.stderr
    assert public.data_route is not None
    assert public.data_route.namespaces == ["demo"]
    assert "clearance public too low" in public.data_route.excluded["postmortems"]
    assert public.result is not None
    # The public corpus says nothing about Blueheron: the public caller is told so.
    assert "not_in_corpus" in public.result["flags"]
    public_docs = [c["doc_id"] for c in public.result["citations"]]
    assert not any(d.startswith("postmortems/") for d in public_docs)
    assert "Blueheron" not in json.dumps(public.result["citations"])

    assert cleared.data_route is not None
    assert cleared.data_route.namespaces == ["demo", "postmortems"]
    assert cleared.result is not None
    assert any(c["doc_id"].startswith("postmortems/") for c in cleared.result["citations"])


async def test_a_korean_question_is_answered_from_the_korean_corpus(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    async with running_workers(client, store) as settings:
        completed, result = await ask(
            server_address, settings, "재시도 백오프와 지터는 무엇인가요?", script="ko_research"
        )
    assert completed.code == 0, completed.stderr
    assert result.decision.intent == "research"
    assert result.data_route is not None
    assert result.data_route.language == "ko"
    assert result.data_route.namespaces == ["demo-ko"]
    assert result.result is not None
    cited = [c["doc_id"] for c in result.result["citations"]]
    assert cited
    assert all(d.startswith("demo-ko/") for d in cited)


async def test_a_report_with_no_readable_namespace_is_refused_without_starting_a_team(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    async with running_workers(client, store) as settings:
        completed, result = await ask(
            server_address, settings, "Write a report on idempotency keys", "--corpus-version", "9"
        )
    assert_refused_before_a_child(
        completed, result, "report", "no document namespace that clearance public may read"
    )
    assert "demo: version 2, not 9" in result.message
    assert result.usage.calls == 0  # decided by rule and by the DataRouter: no model call


async def test_a_request_the_chosen_flow_cannot_take_is_refused_before_any_child_starts(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    async with running_workers(client, store) as settings:
        # "outage" routes to the incident flow, whose description needs 10 characters.
        completed, result = await ask(server_address, settings, "outage")
    assert_refused_before_a_child(completed, result, "incident", "This assistant does not do that.")
    assert "the incident flow cannot take this request: description:" in result.message
    # No advice about approving a child that never started.
    assert "approve or reject" not in completed.stderr
    ask_id = completed.stderr.split("workflow ", 1)[1].split()[0]
    with pytest.raises(RPCError, match="not found"):
        await client.get_workflow_handle(f"{ask_id}-incident").describe()
