"""Reading a run's history: its model calls, its children, and its recorded outcomes.

`client.py fork` reads them to find a fork point; the worker reads them again when a
team forked at a child's call starts that child anew (activities/fork/activities.py),
and hands the child its original outcomes before the chosen call instead of running
them (keel/payloads/recorded.py says why).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.json_format import MessageToDict
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from keel.payloads.recorded import RecordedCall

# How `client.py fork` words a reset's reason: `fork at researcher-1/researcher_turn #2`.
FORK_REASON = "fork at "

# A model call's summary, as workflows/model_calls.py writes it: "write #2 (re-ask 1)".
_SUMMARY = re.compile(r"^(?P<node>[a-z_]+) #(?P<number>\d+)")


@dataclass(frozen=True)
class Step:
    """A model call of the run, and the workflow task that scheduled it."""

    node: str
    number: int
    task_completed_event_id: int
    child: str = ""  # the role of the team's child that made it; "" for the run itself

    @property
    def label(self) -> str:
        own = f"{self.node} #{self.number}"
        return f"{self.child}/{own}" if self.child else own


@dataclass
class Child:
    """A child workflow as the parent's history records it."""

    workflow_id: str
    started_by: int  # the parent's workflow task that started it
    run_id: str = ""  # the child's run the parent waited for


@dataclass
class TeamHistory:
    """What a fork needs from the team's own history: its children, by role."""

    children: dict[str, Child] = field(default_factory=dict)


async def model_steps(client: Client, workflow_id: str, run_id: str, child: str = "") -> list[Step]:
    """The run's model calls in order, first attempts only (re-asks belong to their call)."""
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    return await _steps(client, history.events, child)


async def _steps(client: Client, events: Sequence[HistoryEvent], child: str) -> list[Step]:
    steps: list[Step] = []
    for event in events:
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        match = _SUMMARY.match(summary := await _summary(client, event))
        if match is None or "re-ask" in summary:
            continue
        attributes = event.activity_task_scheduled_event_attributes
        steps.append(
            Step(
                match["node"],
                int(match["number"]),
                attributes.workflow_task_completed_event_id,
                child,
            )
        )
    return steps


async def team_steps(client: Client, team_id: str, run_id: str) -> tuple[list[Step], TeamHistory]:
    """The team's own calls and then each child's, labelled `writer-2/writer #1`."""
    history = await client.get_workflow_handle(team_id, run_id=run_id).fetch_history()
    team = team_history(team_id, history.events)
    steps = await _steps(client, history.events, "")
    for role, child in team.children.items():
        if child.run_id:
            steps += await model_steps(client, child.workflow_id, child.run_id, role)
    return steps, team


def team_history(parent_id: str, events: Sequence[HistoryEvent]) -> TeamHistory:
    """The team's children, by role (`writer-2`), and the steps that started them."""
    team = TeamHistory()
    by_event: dict[int, Child] = {}
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            asked = event.start_child_workflow_execution_initiated_event_attributes
            child = Child(asked.workflow_id, asked.workflow_task_completed_event_id)
            team.children[asked.workflow_id.removeprefix(f"{parent_id}-")] = child
            by_event[event.event_id] = child
        elif event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            started = event.child_workflow_execution_started_event_attributes
            by_event[started.initiated_event_id].run_id = started.workflow_execution.run_id
    return team


def choose(steps: list[Step], at: str) -> Step | None:
    """`write` is the node's first call, `write#2` or `write #2` its second; a team's
    child's call is `writer-2/writer`, and `writer-2` alone is the child's first call."""
    owner, _, call = at.replace(" ", "").rpartition("/")
    node, _, number = call.partition("#")
    for step in steps:
        if not owner and step.child == node:
            return step  # a child's name alone: its first call
        if step.child == owner and step.node == node and (not number or str(step.number) == number):
            return step
    return None


@dataclass
class _Call:
    activity: str
    summary: str
    outcome: RecordedCall | None = None


async def recorded_calls(
    client: Client, events: Sequence[HistoryEvent], before: int | None = None
) -> list[RecordedCall]:
    """The run's activities in the order it scheduled them, up to the first one with no
    outcome; only those scheduled by a workflow task before `before`, when given."""
    calls: dict[int, _Call] = {}
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = event.activity_task_scheduled_event_attributes
            if before is None or scheduled.workflow_task_completed_event_id < before:
                summary = await _summary(client, event)
                calls[event.event_id] = _Call(scheduled.activity_type.name, summary)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            if (call := calls.get(done.scheduled_event_id)) is not None:
                [result] = await client.data_converter.decode(done.result.payloads)
                call.outcome = RecordedCall(
                    activity=call.activity, summary=call.summary, result=result
                )
        elif event.event_type in _FAILED:
            failed = _failed(event)
            if (call := calls.get(failed[0])) is not None:
                call.outcome = RecordedCall(
                    activity=call.activity,
                    summary=call.summary,
                    failure=await _decoded(client, failed[1]),
                )
    outcomes: list[RecordedCall] = []
    for call in calls.values():
        if call.outcome is None:
            break  # cancelled or still running: from here the child calls for real
        outcomes.append(call.outcome)
    return outcomes


_FAILED = (EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT)


def _failed(event: HistoryEvent) -> tuple[int, Failure]:
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
        attributes = event.activity_task_failed_event_attributes
        return attributes.scheduled_event_id, attributes.failure
    timed_out = event.activity_task_timed_out_event_attributes
    return timed_out.scheduled_event_id, timed_out.failure


async def _summary(client: Client, event: HistoryEvent) -> str:
    if not event.user_metadata.HasField("summary"):
        return ""
    [summary] = await client.data_converter.decode([event.user_metadata.summary], [str])
    return str(summary)


async def _decoded(client: Client, failure: Failure) -> dict[str, object]:
    """The failure as JSON with its payloads decrypted: the signal is encrypted whole."""
    plain = Failure()
    plain.CopyFrom(failure)
    if client.data_converter.payload_codec is not None:
        await client.data_converter.payload_codec.decode_failure(plain)
    return MessageToDict(plain)


@dataclass(frozen=True)
class _ResetPoint:
    event_id: int  # the reset step's task; the new run's history has its failure there
    base_run_id: str
    reason: str


def _last_reset(events: Sequence[HistoryEvent]) -> _ResetPoint | None:
    """Where this run was last reset from, as its own history says."""
    found = None
    for event in events:
        if event.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            continue
        failed = event.workflow_task_failed_event_attributes
        if failed.base_run_id:
            found = _ResetPoint(event.event_id, failed.base_run_id, failed.failure.message)
    return found


async def child_seeds(
    client: Client, team_id: str, run_id: str, child_id: str
) -> list[RecordedCall]:
    """A forked team's child's original outcomes before the fork point; none when the
    run was not forked by `client.py fork` or the child was not started at the fork."""
    own = await client.get_workflow_handle(team_id, run_id=run_id).fetch_history()
    point = _last_reset(own.events)
    if point is None or not point.reason.startswith(FORK_REASON):
        return []
    base = await client.get_workflow_handle(team_id, run_id=point.base_run_id).fetch_history()
    role = child_id.removeprefix(f"{team_id}-")
    child = team_history(team_id, base.events).children.get(role)
    if child is None or child.started_by != point.event_id or not child.run_id:
        return []
    history = await client.get_workflow_handle(child_id, run_id=child.run_id).fetch_history()
    label = point.reason.removeprefix(FORK_REASON)
    if label.partition("/")[0] != role:
        return await recorded_calls(client, history.events)  # started beside the forked one
    step = choose(await _steps(client, history.events, role), label)
    if step is None:
        return []  # the call is not in the child's history: it runs again, every call
    return await recorded_calls(client, history.events, step.task_completed_event_id)
