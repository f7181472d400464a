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
child. The reset run starts that child again, and the worker hands it its original
outcomes before the chosen call instead of running them; a child started in the same
step gets all of its own back (activities/fork/): nothing before the fork point is run
or paid again. The reset's reason (`fork at writer-2/writer #2`) names the call, so
the worker needs nothing else from the CLI.
"""

from __future__ import annotations

import argparse
import uuid
from dataclasses import dataclass

from pydantic import BaseModel
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import ResetReapplyExcludeType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowFailureError

from activities.fork.history import (
    FORK_REASON,
    Step,
    TeamHistory,
    choose,
    model_steps,
    team_steps,
)
from keel.cli.context import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Context, err
from keel.cli.fork_view import FlowResult, side_by_side
from keel.cli.kinds import kind_of
from keel.cli.render import root_cause


@dataclass(frozen=True)
class Reset:
    """A fork's reset: this run, back to just after this workflow task."""

    workflow_id: str
    run_id: str
    task_completed_event_id: int


def fork_point(team: TeamHistory, step: Step) -> int:
    """The team's step to reset to for `step`: its own call's, or the child's start."""
    if not step.child:
        return step.task_completed_event_id
    return team.children[step.child].started_by


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
    if kind is not None and not kind.forks:
        err(
            f"error: {args.workflow_id} is a {description.workflow_type}; research, team,"
            " agent runs and flows of your own fork"
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
    point = fork_point(team, step) if team else step.task_completed_event_id
    before = await _result(ctx.client, args.workflow_id, run_id, kind.result if kind else None)
    target = Reset(args.workflow_id, run_id, point)
    forked_run = await reset(ctx, target, f"{FORK_REASON}{step.label}")
    err(f"forked {args.workflow_id} at {step.label}: run {forked_run}")
    if team is not None:
        again = [r for r, c in team.children.items() if c.started_by == point]
        if again:
            err(
                f"  started again, their calls before the fork point answered from the"
                f" original: {', '.join(again)}"
            )
    err(f"Web UI: {ctx.link(args.workflow_id, forked_run)}")
    after = await _result(ctx.client, args.workflow_id, forked_run, kind.result if kind else None)
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
    return result if isinstance(result, BaseModel) else FlowResult(value=result)
