"""`client.py fork`: run a flow again from one of its model calls, the durable way.

The fork is Temporal's reset: a new run of the same workflow id whose history is the
original's up to the workflow task that started the chosen call, so the steps before
it are neither run nor paid again. From there the run executes on today's workers,
so a changed prompt template (contracts/prompts.toml, read by the model worker) or
model worker code applies from the fork point on. The original run stays as it was
(a running one is terminated by the reset) and both are shown side by side.

A research run and an agent run make their model calls themselves. A team makes
most of its calls inside its children (researchers, writer, reviewer), each a run of
its own: a fork at a child's call resets the team to the step that started that
child, which then runs again on today's workers. A child's first call is its fork
point in the team; a later one (a researcher's second turn) forks the child's own
run (`client.py fork <child id> --at ...`), outside the team: a reset team is given
the results its children recorded before, never a child's new run.
"""

from __future__ import annotations

import argparse
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, ResetReapplyExcludeType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowFailureError

from cli.commands import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Context, err
from cli.fork_view import side_by_side
from cli.kinds import kind_of
from cli.render import root_cause

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
        if not event.user_metadata.HasField("summary"):
            continue
        [summary] = await client.data_converter.decode([event.user_metadata.summary], [str])
        match = _SUMMARY.match(summary)
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


@dataclass(frozen=True)
class Reset:
    """A fork's reset: this run, back to just after this workflow task."""

    workflow_id: str
    run_id: str
    task_completed_event_id: int


def fork_point(team: TeamHistory, steps: list[Step], step: Step) -> int | str:
    """The team's step to reset to for `step`, or why the team cannot fork there."""
    if not step.child:
        return step.task_completed_event_id
    first = next(s for s in steps if s.child == step.child)
    if first != step:
        return (
            f"{step.label} is not {step.child}'s first call ({first.label}), its fork point"
            f" in the team; to run {step.child} again alone from there: client.py fork"
            f" {team.children[step.child].workflow_id} --at {step.node}#{step.number}"
        )
    return team.children[step.child].started_by


async def team_steps(client: Client, team_id: str, run_id: str) -> tuple[list[Step], TeamHistory]:
    """The team's own calls and then each child's, labelled `writer-2/writer #1`."""
    history = await client.get_workflow_handle(team_id, run_id=run_id).fetch_history()
    team = team_history(team_id, history.events)
    steps = await _steps(client, history.events, "")
    for role, child in team.children.items():
        if child.run_id:
            steps += await model_steps(client, child.workflow_id, child.run_id, role)
    return steps, team


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


async def reset(ctx: Context, target: Reset, reason: str) -> str:
    """Resets a run to just after a workflow task; returns the new run id."""
    event_id = target.task_completed_event_id
    request = ResetWorkflowExecutionRequest(
        namespace=ctx.client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=target.workflow_id, run_id=target.run_id),
        reason=reason,
        workflow_task_finish_event_id=event_id,
        request_id=str(uuid.uuid4()),
        # Signals and updates after the reset point belong to the original run only.
        reset_reapply_exclude_types=[
            ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL,
            ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_UPDATE,
        ],
    )
    response = await ctx.client.workflow_service.reset_workflow_execution(request)
    return response.run_id


async def cmd_fork(ctx: Context, args: argparse.Namespace) -> int:
    original = ctx.client.get_workflow_handle(args.workflow_id)
    description = await original.describe()
    kind = kind_of(description.workflow_type)
    if kind is None or not kind.forks:
        err(
            f"error: {args.workflow_id} is a {description.workflow_type}; research, team and"
            " agent runs fork"
        )
        return EXIT_USAGE
    run_id = description.run_id
    team: TeamHistory | None = None
    if description.workflow_type == "CoordinatorWorkflow":
        steps, team = await team_steps(ctx.client, args.workflow_id, run_id)
    else:
        steps = await model_steps(ctx.client, args.workflow_id, run_id)
    step = choose(steps, args.at)
    if step is None:
        known = ", ".join(s.label for s in steps) or "none"
        err(f"error: run {run_id} made no model call {args.at!r}; its calls: {known}")
        return EXIT_USAGE
    point = fork_point(team, steps, step) if team else step.task_completed_event_id
    if isinstance(point, str):
        err(f"error: {point}")
        return EXIT_USAGE
    before = await _result(ctx.client, args.workflow_id, run_id, kind.result)
    target = Reset(args.workflow_id, run_id, point)
    forked_run = await reset(ctx, target, f"fork at {step.label}")
    err(f"forked {args.workflow_id} at {step.label}: run {forked_run}")
    if team is not None:
        again = [r for r, c in team.children.items() if c.started_by == point and r != step.child]
        if again:
            err(f"  started in the same step, and run again: {', '.join(again)}")
    err(f"Web UI: {ctx.link(args.workflow_id, forked_run)}")
    after = await _result(ctx.client, args.workflow_id, forked_run, kind.result)
    print(side_by_side(("original", run_id, before), (f"fork at {step.label}", forked_run, after)))
    return EXIT_OK if not isinstance(after, str) else EXIT_FAILED


async def _result(
    client: Client, workflow_id: str, run_id: str, model: type[BaseModel] | None
) -> BaseModel | str:
    """The run's result, or one line on why there is none."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id, result_type=model)
    try:
        result = await handle.result(follow_runs=False)
    except WorkflowFailureError as failure:
        return f"no report: {root_cause(failure)}"
    return result if isinstance(result, BaseModel) else str(result)
