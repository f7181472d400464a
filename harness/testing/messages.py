"""Sending messages to a running agent in tests: its contract, script and the waits between."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from temporalio.client import Client, WorkflowHandle

from activities.contracts.loader import load_contracts
from activities.documents.store import DocumentStore
from harness.testing.agents import start_agent
from harness.testing.stack import new_id, running_workers, worker_settings
from keel.payloads.agents import AgentMessage, AgentResult, MessageOutcome
from keel.payloads.contracts import ContractSnapshot, MessagePolicy
from workflows.agent import AgentWorkflow

SCRIPT = "agent_messages"


def contracts_with(policy: MessagePolicy) -> ContractSnapshot:
    """The project's contracts, the researcher on `policy`."""
    contracts = load_contracts()
    researcher = contracts.agents["researcher"].model_copy(update={"on_message": policy})
    return contracts.model_copy(update={"agents": {**contracts.agents, "researcher": researcher}})


async def send(
    handle: WorkflowHandle[AgentWorkflow, AgentResult], message_id: str, text: str
) -> dict[str, object]:
    # A fresh update id each time: the workflow itself must notice a resent message id.
    outcome = await handle.execute_update(
        "send_message",
        AgentMessage(id=message_id, text=text),
        id=new_id("update"),
        result_type=MessageOutcome,
    )
    dumped: dict[str, object] = outcome.model_dump(exclude={"answer"})
    return dumped


async def until_turn(handle: WorkflowHandle[AgentWorkflow, AgentResult], turn: int) -> None:
    for _ in range(300):
        if (await handle.query(AgentWorkflow.progress)).turn >= turn:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the agent never reached turn {turn}")


async def messages_to_agent(
    client: Client,
    store: DocumentStore,
    policy: MessagePolicy,
    prefix: str,
    messages: Sequence[tuple[str, str]],
    *,
    after_turn: int = 0,
) -> tuple[list[dict[str, object]], WorkflowHandle[AgentWorkflow, AgentResult], AgentResult]:
    """The researcher on `policy`, on workers of its own, sent `messages` (id, text) in order
    once it reached `after_turn`; their outcomes, the run's handle and its result."""
    settings = worker_settings()
    async with running_workers(client, store, settings, contracts=contracts_with(policy)):
        handle = await start_agent(client, settings, "researcher", SCRIPT, new_id(prefix))
        if after_turn:
            await until_turn(handle, after_turn)
        outcomes = [await send(handle, message_id, text) for message_id, text in messages]
        return outcomes, handle, await handle.result()
