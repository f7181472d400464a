"""`client.py watch` for a run with no live channel: its history, event by event.

A saga, an ingest or a flow of the user's own publishes no channel; its history
still says what it does (each activity's summary, its children, its timers, the
messages it took), so `watch` reads that as it grows, long-polling the server.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from keel.cli.live import LiveView
from keel.payloads.live import LiveEvent

_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "cancelled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued as new",
}


async def follow_history(client: Client, workflow_id: str, view: LiveView) -> None:
    """Show the run's steps from its start until it closes."""
    handle = client.get_workflow_handle(workflow_id)
    scheduled: dict[int, str] = {}
    async for event in handle.fetch_history_events(wait_new_event=True):
        line = await _line(client, event, scheduled)
        if line:
            view.show("", LiveEvent(kind="step", text=line))


async def _summary(client: Client, event: HistoryEvent) -> str:
    if not event.user_metadata.HasField("summary"):
        return ""
    [text] = await client.data_converter.decode([event.user_metadata.summary], [str])
    return str(text)


async def _line(client: Client, event: HistoryEvent, scheduled: dict[int, str]) -> str:
    """One line for an event a person would follow; empty for the engine's bookkeeping."""
    kind = event.event_type
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        name = await _summary(client, event)
        name = name or event.activity_task_scheduled_event_attributes.activity_type.name
        scheduled[event.event_id] = name
        return f"{name}: scheduled"
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        done = event.activity_task_completed_event_attributes.scheduled_event_id
        return f"{scheduled.get(done, 'activity')}: done"
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
        failed = event.activity_task_failed_event_attributes
        return f"{scheduled.get(failed.scheduled_event_id, 'activity')}: failed"
    if kind == EventType.EVENT_TYPE_TIMER_STARTED:
        return f"waiting: {await _summary(client, event) or 'timer'}"
    if kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        child = event.start_child_workflow_execution_initiated_event_attributes
        return f"child {child.workflow_id}"
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        return _message("signal", event.workflow_execution_signaled_event_attributes.signal_name)
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        accepted = event.workflow_execution_update_accepted_event_attributes
        return _message("update", accepted.accepted_request.input.name)
    if kind in _CLOSED:
        return f"run {_CLOSED[kind]}"
    return ""


def _message(what: str, name: str) -> str:
    """A person's message (`decide`, `feedback`); the SDK's own (`__temporal...`) are not."""
    return "" if name.startswith("__") else f"{what} {name}"
