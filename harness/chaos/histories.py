"""Facts read from a run's Temporal history and its children's.

The history is the record the engine acts on: the model calls it completed (and
the tokens they cost) and any workflow task that failed (non-determinism, a bug
in workflow code) are there whatever the run's result says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client
from temporalio.service import RPCError

MODEL_ACTIVITY = "complete_llm"
# Failed workflow tasks the server causes in normal operation and the SDK retries (a
# new event arrived while a task completed, a sticky queue reset): not a fault of the code.
BENIGN_TASK_FAILURES = {
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_UPDATE,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_STICKY_TASK_QUEUE,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND,
}


@dataclass
class HistoryFacts:
    workflows: list[str] = field(default_factory=list)
    model_calls: int = 0
    model_tokens: int = 0
    task_failures: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)


async def _plain(client: Client, payload: Payload) -> bytes:
    """A payload's bytes, decrypted with the client's codec when it has one."""
    codec = client.data_converter.payload_codec
    return (await codec.decode([payload]))[0].data if codec else payload.data


async def read_histories(client: Client, workflow_id: str) -> HistoryFacts:
    facts = HistoryFacts()
    pending = [workflow_id]
    while pending:
        current = pending.pop()
        facts.workflows.append(current)
        try:
            history = await client.get_workflow_handle(current).fetch_history()
        except RPCError as error:
            facts.unread.append(f"{current}: {error.message}")
            continue
        scheduled: dict[int, str] = {}
        for event in history.events:
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attrs = event.activity_task_scheduled_event_attributes
                scheduled[event.event_id] = attrs.activity_type.name
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                done = event.activity_task_completed_event_attributes
                if scheduled.get(done.scheduled_event_id) == MODEL_ACTIVITY:
                    body = json.loads(await _plain(client, done.result.payloads[0]))
                    usage = body.get("usage", {})
                    facts.model_calls += 1
                    facts.model_tokens += int(usage.get("tokens_in", 0)) + int(
                        usage.get("tokens_out", 0)
                    )
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
                # A rejected answer (schema violation) was paid for too; its usage
                # travels in the failure's details.
                failed = event.activity_task_failed_event_attributes
                details = failed.failure.application_failure_info.details.payloads
                if scheduled.get(failed.scheduled_event_id) == MODEL_ACTIVITY and len(details) > 1:
                    usage = json.loads(await _plain(client, details[1]))
                    facts.model_tokens += int(usage.get("tokens_in", 0)) + int(
                        usage.get("tokens_out", 0)
                    )
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                task = event.workflow_task_failed_event_attributes
                if task.cause not in BENIGN_TASK_FAILURES:
                    facts.task_failures.append(f"{current}: {task.failure.message[:200]}")
            elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
                child = event.start_child_workflow_execution_initiated_event_attributes
                pending.append(child.workflow_id)
    return facts
