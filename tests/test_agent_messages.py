"""Messages to a running agent: queued, interrupting or rejected, as its contract says."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.documents.store import DocumentStore
from harness.testing.agents import start_agent
from harness.testing.messages import SCRIPT, contracts_with, messages_to_agent, send
from harness.testing.processes import run_script
from harness.testing.stack import new_id, running_workers, worker_settings
from keel.payloads.agents import AgentCarry, AgentMessage
from workflows.agent_messages import Inbox


async def test_queued_messages_are_answered_in_order_after_the_request(
    client: Client, store: DocumentStore
) -> None:
    sent = [("m1", "And what about jitter?"), ("m2", "And the maximum delay?")]
    (first, second), _, result = await messages_to_agent(client, store, "queue", "agent-msg", sent)

    assert (first["status"], first["position"]) == ("queued", 1)
    assert (second["status"], second["position"]) == ("queued", 2)
    assert result.output is not None
    assert str(result.output["summary"]).startswith("Answer one")
    assert [(m.id, m.status) for m in result.messages] == [("m1", "answered"), ("m2", "answered")]
    answers = [str((m.answer or {}).get("summary")) for m in result.messages]
    assert answers[0].startswith("Answer two")
    assert answers[1].startswith("Answer three")
    assert result.usage.calls == 3 * 2  # a turn and a final answer per request


async def test_a_resent_message_id_is_applied_once(client: Client, store: DocumentStore) -> None:
    sent = [("same", "And what about jitter?")] * 2
    (first, again), _, result = await messages_to_agent(client, store, "queue", "agent-dup", sent)

    assert again == first
    assert [(m.id, m.status) for m in result.messages] == [("same", "answered")]
    assert result.usage.calls == 2 * 2


async def test_an_interrupting_message_cancels_the_model_call_and_restarts(
    client: Client, store: DocumentStore
) -> None:
    [outcome], handle, result = await messages_to_agent(
        client, store, "interrupt", "agent-int", [("stop", "Only about jitter, please.")],
        after_turn=1,  # the first model call is in flight
    )  # fmt: skip

    assert outcome["status"] == "interrupted"
    assert "interrupted" in result.flags
    assert [(m.id, m.status) for m in result.messages] == [("stop", "interrupted")]
    assert result.messages[0].answer == result.output
    history = await handle.fetch_history()
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    cancelled = [
        scheduled[e.activity_task_cancel_requested_event_attributes.scheduled_event_id]
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED
    ]
    model_calls = [i for i, name in sorted(scheduled.items()) if name == "complete_llm"]
    # The first model call was the one cancelled, and the request ran again after it.
    cancelled_ids = [
        e.activity_task_cancel_requested_event_attributes.scheduled_event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED
    ]
    assert cancelled_ids == [model_calls[0]]
    assert cancelled == ["complete_llm"]
    assert len(model_calls) == 3  # the cut turn, then a turn and a final answer


async def test_a_rejecting_agent_refuses_with_a_reason(
    client: Client, store: DocumentStore
) -> None:
    sent = [("no", "And what about jitter?")]
    [outcome], _, result = await messages_to_agent(client, store, "reject", "agent-rej", sent)

    assert outcome["status"] == "rejected"
    assert "on_message = reject" in str(outcome["reason"])
    assert [(m.id, m.status) for m in result.messages] == [("no", "rejected")]
    assert result.usage.calls == 2


async def test_a_message_to_an_ended_or_unknown_run_is_one_line_and_exit_2(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    settings = worker_settings()
    workflow_id = new_id("agent-ended")
    async with running_workers(client, store, settings):
        handle = await start_agent(client, settings, "researcher", SCRIPT, workflow_id)
        await handle.result()
    base = ["--address", server_address, "message"]
    ended = await run_script("client.py", *base, workflow_id, "Still there?")
    unknown = await run_script("client.py", *base, "agent-no-such-run", "Hello?")

    assert ended.code == 2
    assert ended.stderr.strip().splitlines() == [
        f"error: agent run {workflow_id} has ended (COMPLETED); start a new one"
    ]
    assert unknown.code == 2
    assert unknown.stderr.strip().splitlines() == ["error: no agent run agent-no-such-run"]


async def test_a_queued_message_survives_a_worker_restart(
    client: Client, store: DocumentStore
) -> None:
    settings = worker_settings()
    contracts = contracts_with("queue")
    async with running_workers(client, store, settings, contracts=contracts):
        handle = await start_agent(client, settings, "researcher", SCRIPT, new_id("agent-restart"))
        queued = await send(handle, "kept", "And what about jitter?")
    # New workers with no cache: the run is rebuilt from its history, message included.
    async with running_workers(
        client, store, settings, contracts=contracts, max_cached_workflows=0
    ):
        result = await handle.result()

    assert queued["status"] == "queued"
    assert [(m.id, m.status) for m in result.messages] == [("kept", "answered")]
    assert str((result.messages[0].answer or {}).get("summary")).startswith("Answer two")


def test_interrupts_that_come_in_together_are_each_answered_and_carried() -> None:
    """Pure: two interrupting messages before the run looks are two follow-ups, not one."""
    inbox = Inbox(AgentCarry())
    for mid in ("m1", "m2"):
        outcome, new = inbox.receive(AgentMessage(id=mid, text=f"text {mid}"), "interrupt", "a")
        assert new
        assert outcome.status == "interrupted"
    assert inbox.pending() == ["m1", "m2"]
    first = inbox.next_message()
    assert first is not None
    assert first.id == "m1"
    # A continue-as-new now carries the one left, after the one being answered.
    assert inbox.pending() == ["m2"]
    later = Inbox(AgentCarry(messages=inbox.outcomes(), queue=["m1", *inbox.pending()]))
    ids = [m.id for m in iter(later.next_message, None)]
    assert ids == ["m1", "m2"]
    again, new = later.receive(AgentMessage(id="m2", text="text m2"), "interrupt", "a")
    assert not new
    assert again.status == "interrupted"
