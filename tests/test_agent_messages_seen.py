"""Messages to a running agent as others see them: the live channel, the CLI, a long run."""

from __future__ import annotations

import asyncio
import json

from temporalio.client import Client

from activities.documents.store import DocumentStore
from harness.testing.agents import start_agent
from harness.testing.cli import cli_env
from harness.testing.live import Recorder
from harness.testing.messages import SCRIPT, contracts_with, send, until_turn
from harness.testing.processes import run_script
from harness.testing.stack import new_id, running_workers, worker_settings
from keel.cli.live import follow


async def test_a_message_outcome_is_published_on_the_live_channel(
    client: Client, store: DocumentStore
) -> None:
    settings = worker_settings()
    workflow_id = new_id("agent-msg-live")
    recorder = Recorder()
    async with running_workers(client, store, settings, contracts=contracts_with("queue")):
        handle = await start_agent(client, settings, "researcher", SCRIPT, workflow_id)
        watcher = asyncio.ensure_future(follow(client, workflow_id, recorder.view))
        await send(handle, "m1", "And what about jitter?")
        result = await handle.result()
        await asyncio.wait_for(watcher, 30)
    recorder.view.close()

    steps = [e.text for e in recorder.events if e.kind == "step"]
    assert "message m1 queued at position 1" in steps
    # Published when the update is taken in, and the follow-up announced after it.
    assert steps.index("message m1 queued at position 1") < steps.index("answering message m1")
    assert "message m1 queued at position 1" in recorder.text
    assert [(m.id, m.status) for m in result.messages] == [("m1", "answered")]


async def test_client_message_prints_the_outcome_and_its_json(
    client: Client, store: DocumentStore, server_address: str
) -> None:
    settings = worker_settings()
    workflow_id = new_id("agent-msg-cli")
    base = ["client.py", "--address", server_address, "message", workflow_id]
    env = cli_env(settings)
    async with running_workers(client, store, settings, contracts=contracts_with("queue")):
        # A slow script (2.5 s a call), so both commands reach the run while it works.
        handle = await start_agent(
            client, settings, "researcher", "agent_messages_slow", workflow_id
        )
        plain = await run_script(*base, "And what about jitter?", "--id", "m1", env=env)
        as_json = await run_script(*base, "And the maximum delay?", "--id", "m2", "--json", env=env)
        result = await handle.result()

    assert plain.code == 0, plain.stderr
    assert plain.stdout.strip().splitlines() == ["message m1: queued at position 1"]
    assert as_json.code == 0, as_json.stderr
    reply = json.loads(as_json.stdout)
    assert (reply["id"], reply["status"]) == ("m2", "queued")
    assert reply["position"] in (1, 2)  # 1 once m1 has left the queue to be answered
    assert (reply["text"], reply["policy"], reply["answer"]) == (
        "And the maximum delay?",
        "queue",
        None,
    )
    assert [(m.id, m.status) for m in result.messages] == [("m1", "answered"), ("m2", "answered")]
    assert str((result.messages[1].answer or {}).get("summary")).startswith("Answer three")


async def test_an_interrupted_first_request_that_continues_as_new_answers_the_message(
    client: Client, store: DocumentStore
) -> None:
    settings = worker_settings()
    async with running_workers(client, store, settings, contracts=contracts_with("interrupt")):
        handle = await start_agent(
            client, settings, "researcher", "agent_interrupt_long", new_id("agent-int-can"),
            max_turns=4, history_event_limit=30,
        )  # fmt: skip
        await until_turn(handle, 1)
        outcome = await send(handle, "stop", "Only about jitter, please.")
        result = await handle.result()

    assert outcome["status"] == "interrupted"
    assert result.runs >= 2  # the restarted request continued as new before its answer
    assert "interrupted" in result.flags  # raised in the first run, carried
    assert result.output is not None
    assert [(m.id, m.status) for m in result.messages] == [("stop", "interrupted")]
    # The request with the message in it was answered in a later run: so was the message.
    assert result.messages[0].answer == result.output
