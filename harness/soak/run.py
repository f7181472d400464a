"""Runs the soak on a dev server of its own and measures every history it leaves.

Two loads, on the project's own workers and payload store:

- a conversation of `calls` model calls, each carrying the whole transcript so far
  (the pattern of the public report: 53 calls, 209k tokens, terminated at 50.48 MB);
- the researcher agent's tool loop for `turns` turns, continuing as new as it goes.

Every run of both (each continued run too) is held to the limits: history under
2 MB and 10,240 events, no payload in it over 256 KiB, none terminated.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHistory,
)

from harness.soak.workflows import ConversationSoakInput, SoakConversationWorkflow
from keel.payloads.agents import AgentInput
from keel.payloads.llm import ModelChoice
from workflows.agent import AgentWorkflow

MAX_HISTORY_BYTES = 2 * 1024 * 1024
MAX_EVENTS = 10_240
MAX_PAYLOAD_BYTES = 256 * 1024
SCRIPTS = Path(__file__).parent / "scripts"


def payloads(message: Message) -> Iterator[Payload]:
    """Every payload anywhere inside a history event."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        else:
            items = [value] if isinstance(value, Message) else list(value)
        for item in items:
            if isinstance(item, Payload):
                yield item
            elif isinstance(item, Message):
                yield from payloads(item)


def history_figures(history: WorkflowHistory) -> dict[str, Any]:
    """Events, bytes, the largest payload and how many payloads are store references."""
    found = [p for event in history.events for p in payloads(event)]
    return {
        "events": len(history.events),
        "bytes": sum(event.ByteSize() for event in history.events),
        "largest_payload": max((p.ByteSize() for p in found), default=0),
        "references": sum(1 for p in found if p.external_payloads),
        "stored_bytes": sum(e.size_bytes for p in found for e in p.external_payloads),
    }


async def runs_of(client: Client, workflow_id: str) -> list[dict[str, Any]]:
    """Each run under the id, oldest first, with its status and history figures."""
    found = [wf async for wf in client.list_workflows(f'WorkflowId = "{workflow_id}"')]
    found.sort(key=lambda wf: wf.start_time)
    runs = []
    for wf in found:
        handle = client.get_workflow_handle(workflow_id, run_id=wf.run_id)
        runs.append(
            {
                "run_id": wf.run_id,
                "status": wf.status.name if wf.status else "UNKNOWN",
                **history_figures(await handle.fetch_history()),
            }
        )
    return runs


async def conversation(
    client: Client, task_queue: str, llm_task_queue: str, calls: int, chars: int, marker: str
) -> dict[str, Any]:
    """The conversation to its end, or to the server's termination of it (without a store)."""
    workflow_id = f"soak-conversation-{uuid.uuid4().hex[:8]}"
    figures: dict[str, Any] = {"workflow_id": workflow_id, "calls": calls}
    try:
        result = await client.execute_workflow(
            SoakConversationWorkflow.run,
            ConversationSoakInput(
                calls=calls, message_chars=chars, marker=marker, llm_task_queue=llm_task_queue
            ),
            id=workflow_id,
            task_queue=task_queue,
        )
        figures.update(result.model_dump())
    except WorkflowFailureError as failure:
        figures["failure"] = str(failure.cause)
    figures["runs"] = await runs_of(client, workflow_id)
    return figures


def researcher_loop(script: str, llm_task_queue: str, turns: int, **more: Any) -> AgentInput:
    """The researcher agent's tool loop on the demo corpus, for `turns` scripted turns."""
    return AgentInput(
        agent="researcher",
        task="How should retries back off?",
        namespaces=["demo"],
        models=[ModelChoice(provider="scripted", model=script)],
        llm_task_queue=llm_task_queue,
        max_turns=turns,
        **more,
    )


async def agent_loop(
    client: Client, task_queue: str, llm_task_queue: str, turns: int
) -> dict[str, Any]:
    workflow_id = f"soak-agent-{uuid.uuid4().hex[:8]}"
    result = await client.execute_workflow(
        AgentWorkflow.run,
        researcher_loop("soak_agent", llm_task_queue, turns),
        id=workflow_id,
        task_queue=task_queue,
    )
    return {
        "workflow_id": workflow_id,
        "turns": result.turns,
        "continued_runs": result.runs,
        "flags": result.flags,
        "runs": await runs_of(client, workflow_id),
    }


def violations(load: dict[str, Any]) -> list[str]:
    """What in a load's runs breaks a limit, one line each; empty when all hold."""
    found = []
    for run in load["runs"]:
        where = f"{load['workflow_id']} run {run['run_id'][:8]}"
        if run["status"] == WorkflowExecutionStatus.TERMINATED.name:
            found.append(f"{where}: terminated")
        if run["bytes"] >= MAX_HISTORY_BYTES:
            found.append(f"{where}: history {run['bytes']:,} bytes")
        if run["events"] >= MAX_EVENTS:
            found.append(f"{where}: {run['events']:,} events")
        if run["largest_payload"] > MAX_PAYLOAD_BYTES:
            found.append(f"{where}: a payload of {run['largest_payload']:,} bytes")
    return found


def store_figures(root: Path, marker: str) -> dict[str, Any]:
    """Files and bytes in the local payload store, and whether any holds the marker."""
    files = [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
    return {
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "plaintext_found": any(marker.encode() in p.read_bytes() for p in files),
    }
